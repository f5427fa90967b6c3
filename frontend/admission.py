"""Admission by streaming capacity: refuse a new stream (429 with Retry-After) rather than make every
admitted stream stutter.

A replica can keep a stream smooth only while it makes audio at least as fast as its listeners play it. Its
speed — audio seconds per second of engine time, the × real time its engine reaches when busy — is learnt
from the workers' ``done`` timings (``audio_s`` over ``engine_s``, an exponentially weighted mean over its
recent requests, so batching's gains show). Each in-flight request of a replica is a committed stream that
needs one second of audio per second. A model admits a new stream while its committed streams stay within
``stream_headroom`` × the sum of its ready replicas' speeds (each replica counts for at least one stream, so
an engine slower than real time still serves one). A replica whose speed is not known yet admits anything:
the first requests measure it. ``server.stream_headroom = 0`` (the default) turns admission off.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from vtts import protocol as P

from .pool import WorkerInfo

#: weight of each new request in a replica's speed (about the last 1 / (1 - DECAY) requests count)
DECAY = 0.9
#: requests a replica must have finished before its speed is trusted
MIN_SAMPLES = 3


@dataclass
class _Speed:
    audio_s: float = 0.0
    engine_s: float = 0.0
    samples: int = 0


class StreamAdmission:
    """Per replica speed, and the decision whether a model takes one more stream."""

    def __init__(self, headroom: float = 0.0) -> None:
        if not 0 <= headroom < math.inf:
            raise ValueError("headroom must be >= 0")
        self.headroom = headroom
        self._speeds: dict[str, _Speed] = {}

    @property
    def enabled(self) -> bool:
        return self.headroom > 0

    def record(self, worker_id: str, done: P.Done) -> None:
        """A request finished on ``worker_id``: fold its audio and engine seconds into the replica's speed."""
        audio, engine = done.timings.get("audio_s", 0.0), done.timings.get("engine_s", 0.0)
        if not (audio > 0 and engine > 0 and math.isfinite(audio) and math.isfinite(engine)):
            return
        s = self._speeds.setdefault(worker_id, _Speed())
        s.audio_s = s.audio_s * DECAY + audio
        s.engine_s = s.engine_s * DECAY + engine
        s.samples += 1

    def forget(self, worker_id: str) -> None:
        """The replica is gone: a new one under the same id measures itself again."""
        self._speeds.pop(worker_id, None)

    def speed(self, worker_id: str) -> float | None:
        """× real time the replica reaches when busy, or None before it finished ``MIN_SAMPLES`` requests."""
        s = self._speeds.get(worker_id)
        if s is None or s.samples < MIN_SAMPLES:
            return None
        return s.audio_s / s.engine_s

    def streams_allowed(self, workers: Iterable[WorkerInfo]) -> float:
        """How many streams the replicas can keep smooth (inf when off or while a speed is unknown)."""
        if not self.enabled:
            return math.inf
        total = 0.0
        for w in workers:
            speed = self.speed(w.id)
            if speed is None:
                return math.inf
            total += max(1.0, self.headroom * speed)
        return total

    def admits(self, workers: Iterable[WorkerInfo]) -> bool:
        """Whether one more stream fits on the model's ready ``workers`` (none: the caller's NoWorker)."""
        workers = list(workers)
        committed = sum(len(w.streams) for w in workers)
        return committed + 1 <= self.streams_allowed(workers)
