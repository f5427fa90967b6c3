"""A ``vtts serve`` process tree on 127.0.0.1, started and stopped the way a service manager would.

One starter for everything that needs a real server in a subprocess: ``vtts bench`` and the integration
tests. Stopping reports what a service manager would see: how long SIGTERM took and which processes of
the tree outlived it (those are then killed, so a failing test leaves nothing behind).
"""

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
from collections.abc import Mapping, Sequence
from pathlib import Path

#: how long processes of the tree may linger after the supervisor exited before they count as left behind
ORPHAN_GRACE_S = 2.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid``."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def terminate(proc: subprocess.Popen, timeout: float) -> None:
    """SIGTERM ``proc`` as a service manager would (vTTS drains and exits); SIGKILL it after ``timeout``."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class LocalServer:
    """``python -m vtts serve --port PORT ARGS...`` with its output in ``log_path``."""

    #: default seconds for :meth:`wait_ready` and :meth:`stop`; a subclass sets its own
    ready_timeout_s = 120.0
    stop_timeout_s = 20.0

    def __init__(self, args: Sequence[str], log_path: Path, *, env: Mapping[str, str] | None = None,
                 port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "vtts", "serve", "--port", str(self.port), *args],
                                     stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env={**os.environ, **(env or {})})

    def logs(self, limit: int = 5000) -> str:
        """The last ``limit`` characters the server wrote."""
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-limit:]

    def wait_ready(self, timeout: float | None = None) -> None:
        """Return once ``/ready`` says ready; RuntimeError (with the log's tail) on exit or timeout."""
        timeout = self.ready_timeout_s if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"vtts serve exited with {self.proc.returncode} ({self.log_path}):\n"
                                   f"{self.logs()}")
            try:
                with urllib.request.urlopen(self.url + "/ready", timeout=5) as r:
                    if json.loads(r.read()).get("ready"):
                        return
            except (urllib.error.URLError, OSError, ValueError):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"vtts serve not ready after {timeout:.0f} s ({self.log_path}):\n{self.logs()}")

    def stop(self, timeout: float | None = None) -> tuple[float, set[int]]:
        """SIGTERM the supervisor; return (seconds it took to exit, processes of its tree left behind).
        Those are SIGKILLed before returning."""
        tree = descendants(self.proc.pid)
        start = time.monotonic()
        terminate(self.proc, self.stop_timeout_s if timeout is None else timeout)
        took = time.monotonic() - start
        deadline = time.monotonic() + ORPHAN_GRACE_S
        while any(alive(p) for p in tree) and time.monotonic() < deadline:
            time.sleep(0.05)
        left = {p for p in tree if alive(p)}
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._log.close()
        return took, left
