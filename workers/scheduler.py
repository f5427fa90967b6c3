"""Which work items run in the next engine step. Pure bookkeeping: no model, no sockets, no torch.

Policy (ARCHITECTURE.md §4), in order:

1. items already running in an iterative engine keep their slot (they hold state across steps);
2. the first segment of a request that has produced nothing yet, oldest first — time to first audio
   comes first;
3. the next segment of a running request, least recently served first — fairness among streams.

A request has at most one item in flight, so its audio comes out in order. Waiting requests (nothing
scheduled yet) are bounded by ``max_queue``; past it :meth:`Scheduler.add` raises :class:`QueueFull`.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from .engine import Segment, StepOutput, SynthesisParams, WorkItem


class QueueFull(Exception):
    """The worker's queue of not-yet-started requests is at its bound."""


@dataclass
class Request:
    """A request's scheduling state inside a worker."""

    id: str
    params: SynthesisParams
    segments: list[Segment]
    arrival: float = field(default_factory=time.monotonic)
    #: monotonic time after which the request may not start (0 = none)
    deadline: float = 0.0
    next_index: int = 0
    in_flight: WorkItem | None = None
    first_scheduled: float | None = None
    last_served: int = -1

    @property
    def started(self) -> bool:
        return self.first_scheduled is not None

    @property
    def finished(self) -> bool:
        return self.in_flight is None and self.next_index >= len(self.segments)


class Scheduler:
    """Picks the items of each step; the worker loop reports outputs back with :meth:`update`."""

    def __init__(self, max_batch: int = 1, max_queue: int = 64, clock: Callable[[], float] = time.monotonic):
        if max_batch < 1 or max_queue < 1:
            raise ValueError("max_batch and max_queue must be positive")
        self.max_batch = max_batch
        self.max_queue = max_queue
        self._clock = clock
        self._requests: dict[str, Request] = {}
        self._tick = itertools.count()

    # -- admission -----------------------------------------------------------------------------------
    def add(self, request: Request) -> None:
        """Queue a new request; raise :class:`QueueFull` past the bound, ValueError on a duplicate id."""
        if request.id in self._requests:
            raise ValueError(f"duplicate request id {request.id!r}")
        if self.num_waiting >= self.max_queue:
            raise QueueFull(f"{self.num_waiting} requests already waiting")
        self._requests[request.id] = request

    def cancel(self, request_id: str) -> bool:
        """Forget a request; an item of it already inside a running step finishes but is discarded."""
        return self._requests.pop(request_id, None) is not None

    def expire(self, now: float | None = None) -> list[Request]:
        """Remove and return the requests whose deadline passed before they could start."""
        now = self._clock() if now is None else now
        late = [r for r in self._requests.values() if not r.started and r.deadline and now > r.deadline]
        for r in late:
            del self._requests[r.id]
        return late

    # -- the step loop -------------------------------------------------------------------------------
    def schedule(self) -> list[WorkItem]:
        """The items to run in the next step (empty when idle)."""
        running = [r.in_flight for r in self._requests.values() if r.in_flight is not None]
        batch: list[WorkItem] = list(running[: self.max_batch])
        room = self.max_batch - len(batch)
        if room <= 0:
            return batch
        idle = [r for r in self._requests.values() if r.in_flight is None and not r.finished]
        fresh = sorted((r for r in idle if not r.started), key=lambda r: r.arrival)
        going = sorted((r for r in idle if r.started), key=lambda r: (r.last_served, r.arrival))
        now = self._clock()
        for r in itertools.islice(itertools.chain(fresh, going), room):
            item = WorkItem(r.id, r.next_index, r.segments[r.next_index], r.params)
            r.next_index += 1
            r.in_flight = item
            r.last_served = next(self._tick)
            if r.first_scheduled is None:
                r.first_scheduled = now
            batch.append(item)
        return batch

    def update(self, outputs: Iterable[StepOutput]) -> list[Request]:
        """Record a step's outputs; return the requests that are now complete (and forget them).
        Outputs of cancelled requests are ignored."""
        done: list[Request] = []
        for out in outputs:
            r = self._requests.get(out.item.request_id)
            if r is None or r.in_flight is not out.item:
                continue
            if out.finished:
                r.in_flight = None
                if r.finished:
                    done.append(self._requests.pop(r.id))
        return done

    def fail(self, request_id: str) -> Request | None:
        """Drop a request whose step raised."""
        return self._requests.pop(request_id, None)

    # -- load ----------------------------------------------------------------------------------------
    def get(self, request_id: str) -> Request | None:
        return self._requests.get(request_id)

    @property
    def num_waiting(self) -> int:
        return sum(1 for r in self._requests.values() if not r.started)

    @property
    def num_active(self) -> int:
        return sum(1 for r in self._requests.values() if r.started)

    def __len__(self) -> int:
        return len(self._requests)
