"""Faults on real process trees: crashed workers, a dead frontend, a killed supervisor, crash loops."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.integration.conftest import Server, alive, descendants, processes, start_server

#: Piper's warm-up at load (ONNX Runtime's arena at its working size, about 1 s of a start or restart on 2 cores)
#: is off in this module's configs: nothing here measures memory; the two tests on the default config keep it
NO_WARMUP = "options = { warmup = false }\n"


def speak(url: str, text: str = "A short request.") -> str:
    req = urllib.request.Request(
        url + "/v1/audio/speech",
        data=json.dumps({"model": "tts-1", "voice": "alloy", "input": text, "response_format": "pcm"}).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            r.read()
            return "ok"
    except urllib.error.HTTPError as exc:
        exc.close()
        return f"http {exc.code}"
    except Exception as exc:  # a cut stream: IncompleteRead, ConnectionReset...
        return f"cut {type(exc).__name__}"


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_kill_9_under_load_errors_promptly_and_recovers(tmp_path: Path) -> None:
    cfg = tmp_path / "vtts.toml"
    cfg.write_text(f'[[models]]\nid = "joe"\nengine = "piper"\nmodel = "en_US-joe-medium"\nreplicas = 2\n{NO_WARMUP}')
    srv = start_server(["--config", str(cfg)], tmp_path)
    try:
        wait_for(lambda: len(processes(srv, b"vtts.workers")) == 2
                 and json.loads(srv.get("/ready")[1])["models"]["joe"]["ready"] == 2, 30, "two replicas")
        results: list[tuple[float, float, str]] = []
        stop = threading.Event()

        def client() -> None:
            while not stop.is_set():
                start = time.monotonic()
                outcome = speak(srv.url, "Under load. Several sentences keep both workers busy. One more.")
                results.append((start, time.monotonic(), outcome))

        threads = [threading.Thread(target=client) for _ in range(8)]
        for t in threads:
            t.start()
        time.sleep(2)
        victim = processes(srv, b"vtts.workers")[0]
        killed_at = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: len(processes(srv, b"vtts.workers")) == 2 and victim not in processes(srv, b"vtts.workers")
                 and json.loads(srv.get("/ready")[1])["models"]["joe"]["ready"] == 2, 30, "the restart")
        restarted_at = time.monotonic()
        time.sleep(6)
        stop.set()
        for t in threads:
            t.join(60)
        failures = [r for r in results if r[2] != "ok"]
        # only requests already streaming from the killed worker may fail, and they fail promptly
        assert all(r[0] < killed_at + 1 for r in failures), failures
        assert all(r[1] - killed_at < 10 for r in failures), failures
        assert len(failures) <= 8
        late = [r for r in results if r[0] > restarted_at + 2]
        assert late and all(r[2] == "ok" for r in late)
    finally:
        _, left = srv.stop()
    assert not left


def test_dead_frontend_is_restarted(tmp_path: Path) -> None:
    srv = start_server([], tmp_path)
    try:
        (front,) = processes(srv, b"vtts.frontend")
        os.kill(front, signal.SIGKILL)
        wait_for(lambda: processes(srv, b"vtts.frontend") not in ([], [front]), 20, "a new frontend")

        def serving() -> bool:
            try:
                return speak(srv.url) == "ok"
            except OSError:
                return False

        wait_for(serving, 30, "the restarted frontend to serve")
    finally:
        _, left = srv.stop()
    assert not left


def test_killed_supervisor_takes_its_children_along(tmp_path: Path) -> None:
    srv = start_server([], tmp_path)
    children = descendants(srv.proc.pid)
    assert len(children) >= 2
    os.kill(srv.proc.pid, signal.SIGKILL)
    srv.proc.wait()
    start = time.monotonic()
    wait_for(lambda: not any(alive(p) for p in children), 10, "the orphans to exit")
    assert time.monotonic() - start < 10
    srv.stop()  # the supervisor is gone already: this only closes its log


def test_a_model_that_cannot_load_is_marked_failed(tmp_path: Path) -> None:
    cfg = tmp_path / "vtts.toml"
    cfg.write_text(f'[[models]]\nid = "joe"\nengine = "piper"\nmodel = "en_US-joe-medium"\n{NO_WARMUP}'
                   '[[models]]\nid = "broken"\nengine = "piper"\nmodel = "/nowhere/voice.onnx"\n')
    srv = Server(["--config", str(cfg)], tmp_path)
    try:
        def failed() -> bool:
            try:
                status, body = srv.get("/ready")
            except OSError:
                return False
            return status == 503 and json.loads(body)["models"]["broken"]["state"] == "failed"

        wait_for(failed, 30, "the broken model to be marked failed")
        ready = json.loads(srv.get("/ready")[1])
        assert "/nowhere/voice.onnx" in " ".join(ready["models"]["broken"]["errors"])
        models = json.loads(srv.get("/admin/models")[1])["data"]
        broken = next(m for m in models if m["id"] == "broken")
        assert broken["state"] == "failed" and "/nowhere/voice.onnx" in broken["last_error"]
        # the healthy model keeps serving; the failed one answers 503 with the reason
        assert speak(srv.url) == "ok"
        req = urllib.request.Request(srv.url + "/v1/audio/speech", headers={"Content-Type": "application/json"},
                                     data=json.dumps({"model": "broken", "voice": "alloy", "input": "x"}).encode())
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, timeout=30)
        err.value.close()
        assert err.value.code == 503 and err.value.headers["Retry-After"]
    finally:
        _, left = srv.stop()
    assert not left


def test_a_crash_loop_marks_the_model_failed(tmp_path: Path) -> None:
    cfg = tmp_path / "vtts.toml"
    cfg.write_text('[server]\nmax_restarts = 3\nrestart_window_s = 60.0\n'
                   f'[[models]]\nid = "joe"\nengine = "piper"\nmodel = "en_US-joe-medium"\n{NO_WARMUP}')
    srv = start_server(["--config", str(cfg)], tmp_path)
    try:
        for _ in range(3):
            wait_for(lambda: processes(srv, b"vtts.workers"), 30, "a worker")
            os.kill(processes(srv, b"vtts.workers")[0], signal.SIGKILL)
            time.sleep(0.3)

        def failed() -> bool:
            return json.loads(srv.get("/ready")[1])["models"]["joe"]["state"] == "failed"

        wait_for(failed, 30, "the crash loop to be detected")
        assert srv.get("/ready")[0] == 503
        assert not processes(srv, b"vtts.workers")
    finally:
        _, left = srv.stop()
    assert not left
