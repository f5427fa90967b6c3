"""On-demand loading and eviction on the CPU, for real: a memory budget that fits two models of three."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.integration.conftest import Server, start_server

CONFIG = """
[server]
cpu_memory_budget_mb = 1500  # a warmed-up Piper worker holds about 0.5 GB
load_timeout_s = 30.0
request_timeout_s = 30.0

[[models]]
id = "pin"
engine = "piper"
model = "en_US-joe-medium"
pinned = true
memory_mb = 600

[[models]]
id = "a"
engine = "piper"
model = "en_US-joe-medium"
preload = false
memory_mb = 600

[[models]]
id = "b"
engine = "piper"
model = "en_US-joe-medium"
preload = false
memory_mb = 600
"""


def speak(srv: Server, model: str, text: str = "On demand.") -> tuple[int, dict]:
    req = urllib.request.Request(
        srv.url + "/v1/audio/speech", headers={"Content-Type": "application/json"},
        data=json.dumps({"model": model, "voice": "alloy", "input": text, "response_format": "pcm"}).encode(),
    )
    try:
        with urllib.request.urlopen(req, timeout=90) as r:
            r.read()
            return r.status, dict(r.headers)
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, {**dict(exc.headers), "body": json.loads(exc.read())}


def states(srv: Server) -> dict[str, str]:
    return {m["id"]: m["state"] for m in json.loads(srv.get("/admin/models")[1])["data"]}


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("memory")
    (tmp / "vtts.toml").write_text(CONFIG)
    server = start_server(["--config", str(tmp / "vtts.toml")], tmp)
    yield server
    _, left = server.stop()
    assert not left


def test_on_demand_models_are_not_loaded_until_asked(srv: Server) -> None:
    assert states(srv) == {"pin": "ready", "a": "unloaded", "b": "unloaded"}
    assert srv.get("/ready")[0] == 200  # on-demand models do not hold readiness back


def test_first_request_loads_the_model(srv: Server) -> None:
    status, _ = speak(srv, "a")
    assert status == 200
    assert states(srv)["a"] == "ready"


def test_loading_past_the_budget_evicts_the_idle_lru_model_not_the_pinned_one(srv: Server) -> None:
    status, answer = speak(srv, "b")
    assert status == 200, answer.get("body")
    deadline = time.monotonic() + 30
    while states(srv)["a"] != "unloaded":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert states(srv) == {"pin": "ready", "a": "unloaded", "b": "ready"}


def test_a_busy_model_is_never_evicted(srv: Server) -> None:
    long_text = " ".join(f"Sentence number {i} keeps model b busy for a good while." for i in range(24))
    outcome: dict[str, int] = {}
    busy = threading.Thread(target=lambda: outcome.update(b=speak(srv, "b", long_text)[0]))
    busy.start()
    deadline = time.monotonic() + 10
    while not any(r["active"] for m in json.loads(srv.get("/admin/models")[1])["data"] if m["id"] == "b"
                  for r in m["replicas"]):
        assert time.monotonic() < deadline, "b never became busy"
        time.sleep(0.05)
    status, info = speak(srv, "a")
    busy.join(120)
    assert status == 503 and info["body"]["error"]["code"] == "insufficient_memory", info
    assert info["Retry-After"]
    assert outcome["b"] == 200
    assert states(srv)["b"] == "ready" and states(srv)["pin"] == "ready"


def test_gpu_memory_through_nvml_when_a_gpu_is_present() -> None:
    pynvml = pytest.importorskip("pynvml")
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        pytest.skip("no NVIDIA GPU on this machine")
    from vtts.supervisor.memory import NvmlMemory

    assert NvmlMemory().free_bytes("cuda:0") > 0
    assert Path("/dev/nvidiactl").exists()
