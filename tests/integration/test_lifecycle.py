"""API keys, start-up from a model path, and shutdown without orphans, each on its own process tree."""

from __future__ import annotations

import http.client
import json
import os
import signal
import stat
import time
import urllib.request
from pathlib import Path

import openai
import pytest

from tests.integration.conftest import KEYED_API_KEY, Server, alive, descendants, processes, start_server
from tests.tiny_models import make_tiny_piper_voice


def test_api_keys_guard_v1_routes_but_not_health(keyed_server: Server) -> None:
    """On the session's ``--api-key`` server (its fixture checks that its stop leaves no process behind)."""
    srv, key = keyed_server, KEYED_API_KEY
    status, body = srv.get("/v1/models")
    assert status == 401 and json.loads(body)["error"]["code"] == "invalid_api_key"
    status, _ = srv.get("/v1/models", {"Authorization": "Bearer wrong"})
    assert status == 401
    status, _ = srv.get("/v1/models", {"Authorization": f"Bearer {key}"})
    assert status == 200
    assert srv.get("/health")[0] == 200
    with openai.OpenAI(base_url=srv.url + "/v1", api_key="bad", max_retries=0) as bad:
        with pytest.raises(openai.AuthenticationError):
            bad.audio.speech.create(model="tts-1", voice="alloy", input="hi")
    with openai.OpenAI(base_url=srv.url + "/v1", api_key=key, max_retries=0) as good:
        assert good.audio.speech.create(model="tts-1", voice="alloy", input="hi", response_format="wav").content


def test_api_key_from_environment(tmp_path) -> None:
    srv = start_server([], tmp_path, env={"VTTS_API_KEY": "envkey"})
    try:
        assert srv.get("/v1/models")[0] == 401
        assert srv.get("/v1/models", {"Authorization": "Bearer envkey"})[0] == 200
    finally:
        srv.stop()


def test_sigterm_stops_every_process_quickly(tmp_path) -> None:
    srv = start_server(["--replicas", "2"], tmp_path)
    deadline = time.monotonic() + 30
    while json.loads(srv.get("/ready")[1])["models"]["piper-joe"]["ready"] < 2:
        assert time.monotonic() < deadline, "second replica never became ready"
        time.sleep(0.1)
    # one request in flight while we stop: it is allowed to finish or be cut, but nothing may linger
    req = urllib.request.Request(
        srv.url + "/v1/audio/speech",
        data=json.dumps({"model": "tts-1", "voice": "alloy", "input": "Goodbye. " * 20}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        r.read(10)
        took, left = srv.stop()
    assert took < 15.0
    assert not left, f"orphans: {left}"


def worker_pids(srv) -> list[int]:
    return processes(srv, b"vtts.workers")


def test_a_killed_worker_fails_its_request_and_comes_back(tmp_path) -> None:
    srv = start_server([], tmp_path)
    try:
        (pid,) = worker_pids(srv)
        text = " ".join(f"Sentence {i} keeps the worker busy for a while." for i in range(80))
        req = urllib.request.Request(
            srv.url + "/v1/audio/speech",
            data=json.dumps({"model": "tts-1", "voice": "alloy", "input": text, "response_format": "pcm"}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=30) as r:
            r.read(1000)
            os.kill(pid, signal.SIGKILL)
            start = time.monotonic()
            with pytest.raises(http.client.IncompleteRead):
                r.read()  # the stream is cut promptly, not left hanging
            assert time.monotonic() - start < 10
        deadline = time.monotonic() + 30
        while True:
            pids = worker_pids(srv)
            ready = json.loads(srv.get("/ready")[1])["ready"]
            if ready and pids and pids != [pid]:
                break
            assert time.monotonic() < deadline, "worker was not restarted"
            time.sleep(0.2)
        with openai.OpenAI(base_url=srv.url + "/v1", api_key="x", max_retries=0) as good:
            again = good.audio.speech.create(model="tts-1", voice="alloy", input="Back again.", response_format="wav")
        assert again.content
    finally:
        _, left = srv.stop()
    assert not left


def test_serve_a_local_multi_speaker_voice_by_path(tmp_path) -> None:
    onnx_file = make_tiny_piper_voice(tmp_path / "v", multi_speaker=True)
    srv = start_server([str(onnx_file)], tmp_path)
    try:
        voices = json.loads(srv.get("/v1/audio/voices")[1])["data"]
        model = onnx_file.name.removesuffix(".onnx")
        assert {(v["model"], v["id"]) for v in voices} == {(model, "alice"), (model, "bob")}
        with openai.OpenAI(base_url=srv.url + "/v1", api_key="x", max_retries=0) as client:
            alice = client.audio.speech.create(model="tts-1", voice="alice", input="Hello.", response_format="wav")
            bob = client.audio.speech.create(model=model, voice="bob", input="Hello.", response_format="wav")
        assert alice.content != bob.content and len(bob.content) > 1000
        assert alice.response.headers["x-sample-rate"] == "16000"
    finally:
        _, left = srv.stop()
    assert not left


def frontend_config_path(srv) -> Path:
    """The config file the supervisor handed its frontend (``--config PATH`` on its command line)."""
    (front,) = processes(srv, b"vtts.frontend")
    argv = Path(f"/proc/{front}/cmdline").read_bytes().split(b"\0")
    return Path(argv[argv.index(b"--config") + 1].decode())


def test_sighup_stops_cleanly_and_removes_the_run_directory(tmp_path) -> None:
    """A closed terminal sends SIGHUP to the whole group: a clean stop, like SIGTERM, nothing left behind."""
    srv = start_server([], tmp_path)
    run_dir = frontend_config_path(srv).parent
    tree = descendants(srv.proc.pid)
    for pid in (srv.proc.pid, *tree):  # what the terminal's process group gets
        os.kill(pid, signal.SIGHUP)
    assert srv.proc.wait(20) == 0
    assert "received SIGHUP; shutting down" in srv.logs(20000)
    deadline = time.monotonic() + 5
    while any(alive(p) for p in tree):
        assert time.monotonic() < deadline, "children outlived the supervisor"
        time.sleep(0.1)
    assert not run_dir.exists()
    srv.stop()


def test_explicit_run_dir_keeps_the_keys_private_and_survives_a_lost_config(tmp_path) -> None:
    """config.json holds the API and admin keys: 0600 in a 0700 directory we create. If it is deleted,
    the next frontend restart writes it again instead of crash-looping."""
    run_dir = tmp_path / "run"
    cfg = tmp_path / "vtts.toml"
    cfg.write_text(f'[server]\nrun_dir = "{run_dir}"\napi_keys = ["sekret"]\n')
    srv = start_server(["--config", str(cfg)], tmp_path)
    try:
        config_json = run_dir / "config.json"
        assert frontend_config_path(srv) == config_json
        assert stat.S_IMODE(config_json.stat().st_mode) == 0o600
        assert stat.S_IMODE(run_dir.stat().st_mode) == 0o700
        config_json.unlink()
        (front,) = processes(srv, b"vtts.frontend")
        os.kill(front, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while not _serves(srv, {"Authorization": "Bearer sekret"}):
            assert time.monotonic() < deadline, "the frontend did not come back"
            time.sleep(0.2)
        assert stat.S_IMODE(config_json.stat().st_mode) == 0o600
    finally:
        _, left = srv.stop()
    assert not left
    assert run_dir.exists() and not (run_dir / "config.json").exists()


def _serves(srv, headers: dict[str, str]) -> bool:
    try:
        return srv.get("/v1/models", headers)[0] == 200
    except OSError:
        return False
