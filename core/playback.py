"""What a listener hears: a player that starts a jitter buffer's time after the first audio arrives and plays
at real time. Shared by the worker (``Done.timings`` ``stall_s``/``stalls``, as the server sends) and
``vtts bench`` (as the client receives), so both measure a gap the same way.

A stall is a time the player's buffer was empty before the last audio arrived: the listener hears a gap.
The player resumes as soon as audio arrives again (no re-buffering), so the longest stall is the longest
gap a listener hears.
"""

from __future__ import annotations

from dataclasses import dataclass

#: the player's buffer ``vtts bench --jitter`` and the model entry's ``jitter_buffer_s`` default to
DEFAULT_JITTER_S = 0.2


@dataclass
class PlaybackMeter:
    """Feed it each chunk's arrival time and duration, in order; it keeps the longest gap and how many."""

    jitter_s: float = DEFAULT_JITTER_S
    #: the longest time the buffer was empty, in seconds
    longest: float = 0.0
    #: how many times it ran empty
    stalls: int = 0
    #: seconds it was empty in all
    total: float = 0.0
    #: when the audio received so far runs out (None before the first chunk)
    _dry_at: float | None = None

    def add(self, at: float, audio_s: float) -> None:
        """``audio_s`` seconds of audio arrived at time ``at`` (any clock, as long as it is one clock)."""
        if audio_s <= 0:
            return
        if self._dry_at is None:
            self._dry_at = at + self.jitter_s + audio_s
            return
        gap = at - self._dry_at
        if gap > 0:
            self.stalls += 1
            self.total += gap
            self.longest = max(self.longest, gap)
            self._dry_at = at
        self._dry_at += audio_s
