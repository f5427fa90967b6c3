"""The subprocess starter: real processes, real signals; a stand-in script plays the server where the
test is about process handling, not about vTTS."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vtts.local_server import LocalServer, alive, descendants, free_port, terminate

STUBBORN = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(60)"


def test_free_port_can_be_bound() -> None:
    port = free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
        assert s.getsockname()[1] == port


def test_descendants_and_alive_follow_the_tree() -> None:
    parent = subprocess.Popen([sys.executable, "-c",
                               "import subprocess, sys, time; "
                               "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
                               "time.sleep(60)"])
    try:
        deadline = time.monotonic() + 10
        while not descendants(parent.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        (child,) = descendants(parent.pid)
        assert alive(child) and alive(parent.pid)
        assert os.getpid() not in descendants(parent.pid)
    finally:
        for pid in descendants(parent.pid):
            os.kill(pid, 9)
        parent.kill()
        parent.wait()
    assert not alive(parent.pid)


def test_terminate_kills_what_ignores_sigterm() -> None:
    proc = subprocess.Popen([sys.executable, "-c", STUBBORN], stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline() == b"up\n"  # the handler is in place
    start = time.monotonic()
    terminate(proc, timeout=0.5)
    assert proc.returncode == -9 and time.monotonic() - start < 10
    proc.stdout.close()


def test_a_server_that_cannot_start_reports_its_log(tmp_path: Path) -> None:
    srv = LocalServer(["/no/such/voice.onnx"], tmp_path / "logs" / "serve.log")
    with pytest.raises(RuntimeError, match="exited with") as failure:
        srv.wait_ready(timeout=60)
    assert "/no/such/voice.onnx" in str(failure.value)  # the tail of the server's own output
    took, left = srv.stop()
    assert left == set() and took < 1
    assert srv.url == f"http://127.0.0.1:{srv.port}"
