"""Liveness on real process trees: a hung worker is replaced, and a paused frontend does not mistake its
own pause for its workers' silence (issue 12 #7)."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import signal
import time
from pathlib import Path

import pytest

from tests.integration.conftest import Server, alive, processes, start_server
from tests.integration.test_faults import speak, wait_for

SHORT = """
[server]
heartbeat_timeout_s = 2.0

[[models]]
id = "joe"
engine = "piper"
model = "en_US-joe-medium"
# no warm-up at load (about 1 s of each start or replacement on 2 cores): nothing here measures memory
options = { warmup = false }
"""


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory):
    """One server for both process-tree tests: each leaves it serving with one healthy worker and one frontend
    (the first replaces the stopped worker, the second only pauses the frontend), which is all either needs."""
    tmp_path = tmp_path_factory.mktemp("liveness")
    cfg = tmp_path / "vtts.toml"
    cfg.write_text(SHORT)
    server = start_server(["--config", str(cfg)], tmp_path)
    yield server
    _, left = server.stop()
    assert not left


def test_a_stopped_worker_is_killed_and_replaced(srv: Server) -> None:
    """A worker that stops (SIGSTOP stands in for a hang) used to stay "ready" in /admin/models forever
    while the frontend had given up on it: nothing was served again until an operator stepped in."""
    (hung,) = processes(srv, b"vtts.workers")
    os.kill(hung, signal.SIGSTOP)
    try:
        wait_for(lambda: not alive(hung), 20, "the supervisor to kill the stopped worker")
        wait_for(lambda: processes(srv, b"vtts.workers") not in ([], [hung]), 20, "a replacement worker")
        wait_for(lambda: speak(srv.url) == "ok", 30, "the replacement to serve")
    finally:
        if alive(hung):
            os.kill(hung, signal.SIGKILL)
    models = json.loads(srv.get("/admin/models")[1])["data"]
    (replica,) = next(m for m in models if m["id"] == "joe")["replicas"]
    assert replica["restarts"] >= 1 and replica["pid"] != hung
    assert "sent no heartbeat" in srv.logs(20000)


def test_a_paused_frontend_does_not_cut_streams_of_a_healthy_worker(srv: Server) -> None:
    """The frontend paused longer than heartbeat_timeout_s used to wake up, see every worker "silent" on its
    own clock, declare them dead and cut their streams."""
    (front,) = processes(srv, b"vtts.frontend")
    text = " ".join(f"This is sentence number {i} of a long answer that is still being spoken." for i in range(40))
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=60)
    conn.request("POST", "/v1/audio/speech", json.dumps({"model": "joe", "voice": "alloy", "input": text,
                                                           "response_format": "pcm"}),
                 {"Content-Type": "application/json"})
    resp = conn.getresponse()
    assert resp.status == 200
    first = resp.read1(4096)
    assert first
    os.kill(front, signal.SIGSTOP)
    try:
        time.sleep(5.0)  # > heartbeat_timeout_s (2 s): long enough to look like silence
    finally:
        os.kill(front, signal.SIGCONT)
    rest = resp.read()  # http.client raises IncompleteRead if the chunked stream is cut
    conn.close()
    seconds = (len(first) + len(rest)) / 2 / 22050
    assert seconds > 60, f"only {seconds:.1f} s of audio arrived"
    assert processes(srv, b"vtts.frontend") == [front]
    assert speak(srv.url) == "ok"


def test_the_monitor_forgives_its_own_pause_but_not_a_silent_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same rule, in-process with a scripted clock: with real processes, whether the frontend's monitor
    or its socket wakes first after SIGCONT is a race, so the test above may pass on the old code by luck."""
    from vtts import protocol as P
    from vtts.frontend import pool as pool_mod

    clock = [time.monotonic()]
    monkeypatch.setattr(pool_mod, "time", type("Clock", (), {"monotonic": staticmethod(lambda: clock[0])}))
    monkeypatch.setattr(pool_mod, "MONITOR_INTERVAL_S", 0.005)
    seen: list[str] = []

    async def scenario() -> None:
        pool = pool_mod.WorkerPool("inproc://liveness", 2.0, on_status=lambda s: seen.append(s.state))
        try:
            pool._on_status(P.Status("w-0", "m", os.getpid(), "ready"))
            worker = pool.workers["w-0"]
            worker.last_seen = clock[0]
            stream = pool_mod.Stream("r1", worker)
            pool.streams["r1"] = stream
            worker.streams.add("r1")
            monitor = asyncio.create_task(pool._monitor_loop())
            await asyncio.sleep(0.05)
            clock[0] += 15.0  # the frontend was stopped for 15 s: its next tick comes that late
            await asyncio.sleep(0.05)
            assert "w-0" in pool.workers and stream.queue.empty(), "the frontend blamed the worker for its pause"
            for _ in range(3):  # now the worker itself stays silent, ticks on time: 2.7 s > 2 s
                clock[0] += 0.9
                await asyncio.sleep(0.05)
            assert "w-0" not in pool.workers
            assert isinstance(stream.queue.get_nowait(), P.Error)
            assert seen[-1] == pool_mod.GONE  # listeners (metrics) are told the worker is gone
            monitor.cancel()
        finally:
            pool.sock.close(linger=0)
            pool.ctx.term()

    asyncio.run(scenario())


def test_the_watchdog_kills_a_worker_stuck_in_one_engine_step(tmp_path: Path) -> None:
    """``Status.step_started_at`` older than ``worker_stall_timeout_s`` means a hung step (heartbeats come
    from their own thread, so they alone cannot tell): the process is killed, to be restarted."""
    from vtts import config as cfg
    from vtts import protocol as P
    from vtts.supervisor.process import Child
    from vtts.supervisor.supervisor import Supervisor

    config = cfg.parse({"server": {"worker_stall_timeout_s": 5.0, "run_dir": str(tmp_path / "run")}})
    sup = Supervisor(config)
    stuck, busy = Child("worker stuck", ["sleep", "60"]), Child("worker busy", ["sleep", "60"])
    try:
        for child, step_age in ((stuck, 10.0), (busy, 1.0)):
            child.start()
            sup.on_status(P.Status(child.name, "m", child.pid, "ready", step_started_at=time.time() - step_age))
            sup._watchdog(child.name, child, time.monotonic())
        assert stuck.proc.wait(5) == -signal.SIGKILL
        assert busy.poll() is None
    finally:
        for child in (stuck, busy):
            child.signal(signal.SIGKILL)
            child.proc.wait()
        sup.control.close(linger=0)
        sup.ctx.term()
