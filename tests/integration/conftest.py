"""Real ``vtts serve`` process trees on 127.0.0.1, started as subprocesses and stopped with SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from vtts.bench import descendants, terminate  # live processes below a pid (/proc); SIGTERM then SIGKILL

STARTUP_TIMEOUT_S = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def processes(srv: Server, needle: bytes) -> list[int]:
    """Live processes of a server's tree whose command line holds ``needle``."""
    pids = []
    for pid in descendants(srv.proc.pid):
        try:
            if needle in Path(f"/proc/{pid}/cmdline").read_bytes():
                pids.append(pid)
        except OSError:
            continue
    return sorted(pids)


class Server:
    """A running ``vtts serve`` subprocess."""

    def __init__(self, args: list[str], tmp: Path, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp / f"vtts-{self.port}.log"
        self.log = self.log_path.open("wb")
        full_env = {**os.environ, **(env or {})}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "vtts", "serve", "--port", str(self.port), *args],
            stdout=self.log, stderr=subprocess.STDOUT, env=full_env,
        )

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        req = urllib.request.Request(self.url + path, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, exc.read()

    def wait_ready(self, timeout: float = STARTUP_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"vtts serve exited with {self.proc.returncode}:\n{self.logs()}")
            try:
                status, body = self.get("/ready")
                if status == 200 and json.loads(body)["ready"]:
                    return
            except (urllib.error.URLError, ConnectionError):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"server not ready after {timeout} s:\n{self.logs()}")

    def logs(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")[-5000:]

    def stop(self, timeout: float = 15.0) -> tuple[float, set[int]]:
        """SIGTERM the supervisor; return (seconds to exit, processes left behind)."""
        tree = descendants(self.proc.pid)
        start = time.monotonic()
        terminate(self.proc, timeout)
        took = time.monotonic() - start
        deadline = time.monotonic() + 2
        while any(alive(p) for p in tree) and time.monotonic() < deadline:
            time.sleep(0.05)
        left = {p for p in tree if alive(p)}
        for p in left:
            os.kill(p, signal.SIGKILL)
        self.log.close()
        return took, left


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The default configuration (the bundled voice), shared by the read-only tests."""
    srv = Server([], tmp_path_factory.mktemp("server"))
    try:
        srv.wait_ready()
        yield srv
    finally:
        srv.stop()


def start_server(args: list[str], tmp: Path, env: dict[str, str] | None = None) -> Server:
    srv = Server(args, tmp, env)
    try:
        srv.wait_ready()
    except Exception:
        srv.stop()
        raise
    return srv
