"""A hard time limit for a block of code, for tests that bound the work of one input.

Counting regular-expression steps is not possible from Python, and comparing timings is flaky on a shared
machine; an alarm a hundred times above the expected time is neither: linear rules take milliseconds on the
inputs these tests use, the backtracking ones they replace took minutes.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager


class Overrun(AssertionError):
    """The block did not finish within its limit."""


@contextmanager
def within(seconds: float, what: str = "the block") -> Iterator[None]:
    """Fail with :class:`Overrun` when the block runs longer than ``seconds`` (main thread only: SIGALRM)."""

    def alarm(signum: int, frame: object) -> None:
        raise Overrun(f"{what} took longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
