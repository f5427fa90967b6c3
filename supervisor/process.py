"""One supervised child process: how to start it, and the restart backoff when it dies."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field

log = logging.getLogger("vtts.supervisor")

PR_SET_PDEATHSIG = 1
BACKOFF_START_S = 0.5
BACKOFF_MAX_S = 30.0
#: a child that lived this long is considered healthy again: its backoff resets
HEALTHY_AFTER_S = 30.0


def _die_with_parent() -> None:  # runs in the forked child before exec
    """Ask Linux to SIGTERM this child when the supervisor dies, even by SIGKILL."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # pragma: no cover - not Linux: the children poll getppid instead
        pass


@dataclass
class Child:
    """A process the supervisor keeps running."""

    name: str
    argv: list[str]
    env: dict[str, str] | None = None
    proc: subprocess.Popen | None = None
    started_at: float = 0.0
    restarts: int = 0
    backoff_s: float = BACKOFF_START_S
    next_start: float = 0.0
    exit_codes: list[int] = field(default_factory=list)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self) -> None:
        self.proc = subprocess.Popen(self.argv, env=self.env, preexec_fn=_die_with_parent, stdin=subprocess.DEVNULL)
        self.started_at = time.monotonic()
        log.info("started %s (pid %d)", self.name, self.proc.pid)

    def poll(self) -> int | None:
        """The exit code if the child has exited (and is reaped), else None."""
        return self.proc.poll() if self.proc else None

    def schedule_restart(self) -> float:
        """Record an exit and return the delay before the next start (exponential, reset when healthy)."""
        code = self.poll()
        self.exit_codes.append(code if code is not None else -1)
        lived = time.monotonic() - self.started_at
        if lived >= HEALTHY_AFTER_S:
            self.backoff_s = BACKOFF_START_S
        delay = self.backoff_s
        self.backoff_s = min(BACKOFF_MAX_S, self.backoff_s * 2)
        self.next_start = time.monotonic() + delay
        self.proc = None
        self.restarts += 1
        return delay

    def signal(self, sig: int) -> None:
        if self.proc and self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, sig)
            except ProcessLookupError:
                pass
