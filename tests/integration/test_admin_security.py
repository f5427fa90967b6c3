"""The admin surface under hostile or clumsy input, on a real process tree: nothing an admin request
sends may kill the supervisor, take over another model's names, start unbounded processes or arbitrary
code without the admin key, or reach the key-less admin API through a browser (DNS rebinding)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.integration.conftest import Server, start_server
from tests.integration.test_admin import call, speak

CONFIG = """
[server]
drain_timeout_s = 20.0
load_timeout_s = 30.0

[[models]]
id = "joe"
engine = "piper"
model = "en_US-joe-medium"
# no warm-up at load (about 1 s of each start on 2 cores): nothing here measures memory; the entries the tests
# send keep their own options
options = { warmup = false }
"""


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("admin-security")
    cfg = tmp / "vtts.toml"
    cfg.write_text(CONFIG)
    server = start_server(["--config", str(cfg)], tmp)
    yield server
    _, left = server.stop()
    assert not left


def test_a_device_that_does_not_exist_is_a_400_and_the_server_lives_on(srv: Server) -> None:
    """Issue 12 #1: this request used to kill the supervisor (an uncaught NVML error)."""
    status, body = call(srv, "POST", "/admin/models",
                        {"id": "x", "engine": "piper", "model": "en_US-joe-medium", "device": "cuda:99"})
    assert status == 400, body
    assert "cuda:99" in body["error"]["message"]
    assert srv.proc.poll() is None
    assert speak(srv)[0] == 200
    assert "x" not in {m["id"] for m in call(srv, "GET", "/admin/models")[1]["data"]}


@pytest.mark.parametrize("entry", [
    {"replicas": 1000},
    {"replicas": 2**64},
    {"memory_mb": 2**64},
    {"max_batch": 2**64},
    {"max_queue": 10**12},
    {"options": {"length_scale": 2**64}},
    {"options": json.loads('{"a": ' * 20 + "1" + "}" * 20)},
    {"model": "en_US-joe-medium\ud800"},  # a lone surrogate: JavaScript clients cut strings inside emoji
    {"options": {"speaker": "\udfff"}},
])
def test_every_admin_number_and_nesting_is_bounded(srv: Server, entry: dict) -> None:
    status, body = call(srv, "POST", "/admin/models", {"id": "bounded", "engine": "piper",
                                                      "model": "en_US-joe-medium", **entry})
    assert status == 400, body
    assert body["error"]["code"] == "invalid_model"


@pytest.mark.parametrize("entry", [
    {"id": "thief", "aliases": ["tts-1"]},
    {"id": "thief", "aliases": ["joe"]},
    {"id": "tts-1-hd"},
])
def test_names_cannot_take_over_openai_names_or_another_model(srv: Server, entry: dict) -> None:
    status, body = call(srv, "POST", "/admin/models", {"engine": "piper", "model": "en_US-joe-medium", **entry})
    assert status in (400, 409), body
    models = {m["id"]: m["root"] for m in json.loads(srv.get("/v1/models")[1])["data"]}
    assert models["tts-1"] == "joe" and models["joe"] == "joe" and "thief" not in models


def test_aliases_go_with_their_model_on_delete(srv: Server) -> None:
    entry = {"id": "joe-extra", "engine": "piper", "model": "en_US-joe-medium", "aliases": ["joe-nickname"]}
    status, body = call(srv, "POST", "/admin/models", entry)
    assert status == 200, body
    assert speak(srv, "joe-nickname")[0] == 200
    (worker,) = [r["worker_id"] for r in body["replicas"]]
    assert f'worker="{worker}"' in srv.get("/metrics")[1].decode()
    status, body = call(srv, "DELETE", "/admin/models/joe-extra")
    assert status == 200, body
    names = {m["id"] for m in json.loads(srv.get("/v1/models")[1])["data"]}
    assert "joe-nickname" not in names and "joe-extra" not in names
    assert speak(srv, "joe-nickname")[0] == 404
    # the gone worker's metric series go too (the pool forgets it within its monitor tick)
    deadline = time.monotonic() + 10
    while f'worker="{worker}"' in srv.get("/metrics")[1].decode():
        assert time.monotonic() < deadline, "the removed worker's metric series stayed"
        time.sleep(0.2)


def test_a_failed_admin_load_is_forgotten_and_does_not_hold_ready(srv: Server) -> None:
    status, body = call(srv, "POST", "/admin/models", {"id": "broken", "engine": "piper", "model": "/missing/v.onnx"})
    assert status == 409 and body["error"]["code"] == "load_failed", body
    assert "broken" not in {m["id"] for m in call(srv, "GET", "/admin/models")[1]["data"]}
    assert srv.get("/ready")[0] == 200
    # the id is free again for a corrected entry
    status, body = call(srv, "POST", "/admin/models", {"id": "broken", "engine": "piper", "model": "en_US-joe-medium"})
    assert status == 200, body
    assert call(srv, "DELETE", "/admin/models/broken")[0] == 200


@pytest.mark.parametrize(("entry", "param"), [
    ({"python": "/usr/bin/python3"}, "python"),
    ({"engine": "os:system"}, "engine"),
])
def test_interpreters_and_plugin_engines_need_the_admin_key(srv: Server, entry: dict, param: str) -> None:
    status, body = call(srv, "POST", "/admin/models", {"id": "code", "engine": "piper", "model": "en_US-joe-medium",
                                                      **entry})
    assert status == 403, body
    assert body["error"]["param"] == param and body["error"]["code"] == "admin_key_required"


@pytest.mark.parametrize(("headers", "status"), [
    ({"Host": "evil.example:8000"}, 403),
    ({"Host": "127.0.0.1.nip.io"}, 403),
    ({"Origin": "http://evil.example"}, 403),
    ({"Origin": "null"}, 403),
    ({"Host": "localhost:1234", "Origin": "http://127.0.0.1:1234"}, 200),
    ({"Host": "[::1]:80"}, 200),
])
def test_keyless_admin_needs_a_loopback_host_and_origin(srv: Server, headers: dict, status: int) -> None:
    """DNS rebinding: a page the operator visits can point its own name at 127.0.0.1, but the browser still
    sends that name as Host and the page's origin as Origin."""
    got, body = call(srv, "GET", "/admin/models", headers=headers)
    assert got == status, body


def test_allowlisted_interpreter_is_accepted_without_a_key(tmp_path: Path) -> None:
    import sys

    cfg = tmp_path / "vtts.toml"
    cfg.write_text(CONFIG.replace("[server]", f"[server]\nadmin_python_allowlist = [{json.dumps(sys.executable)}]"))
    srv = start_server(["--config", str(cfg)], tmp_path)
    try:
        status, body = call(srv, "POST", "/admin/models", {"id": "venv", "engine": "piper",
                                                          "model": "en_US-joe-medium", "python": sys.executable})
        assert status == 200, body
        assert call(srv, "POST", "/admin/models", {"id": "other", "engine": "piper", "model": "en_US-joe-medium",
                                                   "python": "/bin/sh"})[0] == 403
    finally:
        _, left = srv.stop()
    assert not left
