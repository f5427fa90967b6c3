"""What every engine does the same way around its model: pauses, and how long one step may be.

* :func:`pad`: the silence around a segment (SSML breaks, sentence gaps), scaled by 1/speed like the speech,
  so ``speed`` is a playback-rate multiplier (OpenAI's meaning): at 2.0 the whole request is half as long.
* :func:`token_limit` and :func:`split_tokens`: one step turns one segment into audio, so its time and
  memory grow with the segment's tokens divided by the speed. Engines cut segments longer than their limit
  whatever made them long (a long ``<phoneme>``, an IPA lexicon entry, a word without spaces), at a word
  boundary when there is one, so no step outlasts a heartbeat or inflates the worker for good.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

import numpy as np

T = TypeVar("T")
#: never cut a segment shorter than this many tokens, however slow the speed (a cut costs prosody)
MIN_TOKENS = 32


def pad(audio: np.ndarray, before_s: float, after_s: float, sample_rate: int, speed: float = 1.0) -> np.ndarray:
    """``audio`` with ``before_s`` and ``after_s`` seconds of silence around it, each divided by ``speed``."""
    before, after = pause_samples(before_s, sample_rate, speed), pause_samples(after_s, sample_rate, speed)
    if not (before or after):
        return audio
    return np.concatenate([np.zeros(before, np.float32), audio, np.zeros(after, np.float32)])


def pause_samples(seconds: float, sample_rate: int, speed: float = 1.0) -> int:
    """Samples of a pause of ``seconds`` at ``speed``."""
    return max(0, round(seconds / speed * sample_rate))


def token_limit(max_tokens: int, speed: float) -> int:
    """Tokens one segment may have at ``speed`` (the request's speed times the segment's SSML rate): below
    1.0 the limit shrinks in proportion, so one step's audio (tokens / speed) stays what ``max_tokens``
    makes at normal speed."""
    return max(MIN_TOKENS, int(max_tokens * min(1.0, speed)))


def split_tokens(tokens: Sequence[T], limit: int, boundary: Callable[[T], bool]) -> list[Sequence[T]]:
    """``tokens`` in runs of at most ``limit``, each cut after the last ``boundary`` token in the second half
    of its window, else at the limit (a hard cut, the last resort). Linear: each scan of at most half a
    window advances by at least half a window."""
    limit = max(2, limit)
    runs: list[Sequence[T]] = []
    start = 0
    while len(tokens) - start > limit:
        cut = next((k + 1 for k in range(start + limit - 1, start + limit // 2 - 1, -1) if boundary(tokens[k])),
                   start + limit)
        runs.append(tokens[start:cut])
        start = cut
    if start < len(tokens):
        runs.append(tokens[start:])
    return runs
