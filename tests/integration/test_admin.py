"""The admin API on real process trees: list, load, unload, hot swap under load, and its errors."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from tests.integration.conftest import Server, start_server

FAST = """
[server]
drain_timeout_s = 60.0
load_timeout_s = 30.0

[[models]]
id = "joe"
engine = "piper"
model = "en_US-joe-medium"
# no warm-up at load (about 1 s of each start or reload on 2 cores): nothing here measures memory; the entries the
# tests send (loads, swaps) keep their own options
options = { warmup = false }
"""


def call(srv: Server, method: str, path: str, body: dict | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(srv.url + path, data=data, method=method,
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=90) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read())


def speak(srv: Server, model: str = "joe", text: str = "Hello there.") -> tuple[int, bytes]:
    req = urllib.request.Request(
        srv.url + "/v1/audio/speech",
        data=json.dumps({"model": model, "voice": "alloy", "input": text, "response_format": "wav"}).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=90) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read()


@pytest.fixture(scope="module")
def admin_server(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("admin")
    cfg = tmp / "vtts.toml"
    cfg.write_text(FAST)
    srv = start_server(["--config", str(cfg)], tmp)
    yield srv
    _, left = srv.stop()
    assert not left


def test_list_shows_state_replicas_and_memory(admin_server: Server) -> None:
    status, body = call(admin_server, "GET", "/admin/models")
    assert status == 200
    (joe,) = [m for m in body["data"] if m["id"] == "joe"]
    assert joe["state"] == "ready"
    (replica,) = joe["replicas"]
    assert replica["pid"] > 0 and replica["device"] == "cpu" and replica["memory_bytes"] > 10 * 2**20
    assert replica["queue_depth"] == 0 and replica["state"] == "ready"
    assert joe["last_error"] == ""


def test_load_a_new_entry_then_unload_it(admin_server: Server) -> None:
    entry = {"id": "joe-fast", "engine": "piper", "model": "en_US-joe-medium", "options": {"length_scale": 0.8}}
    status, body = call(admin_server, "POST", "/admin/models", entry)
    assert status == 200, body
    assert body["state"] == "ready"
    assert speak(admin_server, "joe-fast")[0] == 200
    assert "joe-fast" in {m["id"] for m in json.loads(admin_server.get("/v1/models")[1])["data"]}
    status, body = call(admin_server, "DELETE", "/admin/models/joe-fast")
    # added at run time, so removed with its names; a configured model stays (see the next test)
    assert status == 200 and body == {"object": "model_state", "id": "joe-fast"}
    assert speak(admin_server, "joe-fast")[0] == 404
    assert call(admin_server, "DELETE", "/admin/models/joe-fast")[0] == 404


def test_delete_under_load_drains_and_a_reload_gets_fresh_worker_ids(admin_server: Server) -> None:
    """Issue 12 #6: requests arriving during the drain used to reload the model under the draining worker's
    id, which took over its identity and cut its streams; the DELETE then timed out with the model loaded."""
    before = [m for m in call(admin_server, "GET", "/admin/models")[1]["data"] if m["id"] == "joe"][0]
    old_ids = {r["worker_id"] for r in before["replicas"]}
    outcomes: list[int | str] = []
    stop = threading.Event()

    def client() -> None:
        while not stop.is_set():
            try:
                outcomes.append(speak(admin_server, text="Unloading while I talk. Every word arrives.")[0])
            except Exception as exc:  # a cut stream: IncompleteRead, ConnectionReset
                outcomes.append(type(exc).__name__)

    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    time.sleep(2)
    started = time.monotonic()
    status, body = call(admin_server, "DELETE", "/admin/models/joe")
    took = time.monotonic() - started
    stop.set()
    for t in threads:
        t.join(120)
    assert status == 200 and body["state"] == "unloaded" and body["replicas"] == [], body
    assert took < 20, f"DELETE took {took:.1f} s"
    # in-flight streams finished; requests arriving during the drain were refused cleanly
    assert 200 in outcomes and set(outcomes) <= {200, 503}, outcomes
    assert speak(admin_server)[0] == 200  # configured: loads again on demand, as a new generation
    after = [m for m in call(admin_server, "GET", "/admin/models")[1]["data"] if m["id"] == "joe"][0]
    assert after["state"] == "ready" and not {r["worker_id"] for r in after["replicas"]} & old_ids


def test_delete_of_a_failed_model_answers_at_once_and_frees_ready(tmp_path: Path) -> None:
    cfg = tmp_path / "vtts.toml"
    cfg.write_text(FAST + '[[models]]\nid = "broken"\nengine = "piper"\nmodel = "/nowhere/voice.onnx"\n')
    srv = Server(["--config", str(cfg)], tmp_path)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                models = call(srv, "GET", "/admin/models")[1]["data"]
            except OSError:
                models = []
            if any(m["id"] == "broken" and m["state"] == "failed" for m in models):
                break
            assert time.monotonic() < deadline, "the broken model was never marked failed"
            time.sleep(0.2)
        assert srv.get("/ready")[0] == 503
        started = time.monotonic()
        status, body = call(srv, "DELETE", "/admin/models/broken")
        assert status == 200 and body["state"] == "unloaded", body
        assert time.monotonic() - started < 5
        srv.wait_ready(10)
    finally:
        _, left = srv.stop()
    assert not left


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", "/admin/models", {"id": "nope"}, 404),
        ("POST", "/admin/models", {}, 400),
        ("POST", "/admin/models", {"id": "x", "engine": "piper", "replicas": 0}, 400),
        ("POST", "/admin/models", {"id": "x", "engine": "piper", "colour": "red"}, 400),
        ("POST", "/admin/models", {"id": "joe", "engine": "piper", "model": "/other.onnx"}, 409),
        ("DELETE", "/admin/models/nope", None, 404),
        ("PUT", "/admin/models/nope", {"engine": "piper", "model": "en_US-joe-medium"}, 404),
        ("PUT", "/admin/models/joe", {"id": "other", "engine": "piper"}, 400),
    ],
)
def test_admin_errors_are_openai_shaped(admin_server: Server, method: str, path: str, body: dict | None,
                                        status: int) -> None:
    got, payload = call(admin_server, method, path, body)
    assert got == status, payload
    assert set(payload["error"]) == {"message", "type", "param", "code"}


def test_swap_to_a_model_that_fails_keeps_the_old_one(admin_server: Server) -> None:
    status, body = call(admin_server, "PUT", "/admin/models/joe", {"engine": "piper", "model": "/missing/v.onnx"})
    assert status == 409 and body["error"]["code"] == "load_failed"
    assert "/missing/v.onnx" in body["error"]["message"]
    assert speak(admin_server)[0] == 200
    joe = [m for m in call(admin_server, "GET", "/admin/models")[1]["data"] if m["id"] == "joe"][0]
    assert joe["state"] == "ready" and joe["generation"] == 0 or joe["entry"]["model"] == "en_US-joe-medium"


def test_hot_swap_under_16_clients_fails_no_request(admin_server: Server) -> None:
    results: list[int] = []
    errors: list[bytes] = []
    stop = threading.Event()

    def client() -> None:
        while not stop.is_set():
            code, body = speak(admin_server, text="Swapping while I talk. Nothing may fail.")
            results.append(code)
            if code != 200:
                errors.append(body[:300])

    threads = [threading.Thread(target=client) for _ in range(16)]
    for t in threads:
        t.start()
    time.sleep(2)
    before = call(admin_server, "GET", "/admin/models")[1]["data"]
    old_pids = {r["pid"] for m in before if m["id"] == "joe" for r in m["replicas"]}
    status, body = call(admin_server, "PUT", "/admin/models/joe",
                        {"engine": "piper", "model": "en_US-joe-medium", "options": {"noise_scale": 0.5}})
    time.sleep(3)
    stop.set()
    for t in threads:
        t.join(120)
    assert status == 200, body
    assert body["entry"]["options"] == {"noise_scale": 0.5}
    serving = {r["pid"] for r in body["replicas"] if r["role"] == "serving"}
    assert serving and not serving & old_pids
    assert len(results) >= 16 and set(results) == {200}, errors[:3]


def test_admin_needs_the_key_when_one_is_configured(tmp_path: Path) -> None:
    cfg = tmp_path / "vtts.toml"
    cfg.write_text(FAST.replace("[server]", '[server]\nadmin_keys = ["root-key"]'))
    srv = start_server(["--config", str(cfg)], tmp_path)
    try:
        assert call(srv, "GET", "/admin/models")[0] == 401
        assert call(srv, "GET", "/admin/models", headers={"Authorization": "Bearer wrong"})[0] == 401
        assert call(srv, "GET", "/admin/models", headers={"Authorization": "Bearer root-key"})[0] == 200
    finally:
        srv.stop()
