"""Which work items run in the next engine step. Pure bookkeeping: no model, no sockets, no torch.

Policy (docs/engines.md explains it to engine authors):

1. items already running in an iterative engine keep their slot (they hold state across steps), oldest
   request first;
2. every other request — preempted, new, or waiting for its next segment — joins in order of its playback
   deadline, earliest first (:meth:`Scheduler.due`): a request that has sent no audio yet is due at its
   arrival plus the first-audio target, less its first segment's synthesis where the engine's rate is
   measured (so the target bounds first audio, not the step's start); one that has is due when its
   listener's buffer runs dry (its first audio's send time plus the audio seconds sent so far), less a
   margin. Ties go to first audio. A request
   with no listener (a non-streamed answer) is due ``relaxed_s`` later. Deadlines of waiting requests do not
   move, and new requests are due after their arrival, so none starves. Once a listener has run dry the
   worker is overloaded and deadlines would put every late stream ahead of every new request (EDF's domino
   effect); then new requests go first, by arrival, and streams take turns, least recently served first
   (:meth:`Scheduler._orderer`): first audio stays prompt and the shortfall is shared.

"First segments first, then round robin" starved running streams whenever new requests arrived (a quarter
of the streams stalled at half the engine's capacity); earliest deadline first keeps first audio within its
target while there is slack, and otherwise serves the stream whose listener would hear a gap soonest.

A request has at most one item in flight, so its audio comes out in order. Waiting requests (nothing
scheduled yet) are bounded by ``max_queue``; past it :meth:`Scheduler.add` raises :class:`QueueFull`.

With an engine that has a budget (:meth:`Engine.capacity`, e.g. free KV tokens), an item joins a step only
if its :meth:`Engine.cost` fits; when the running items alone would exceed it, the youngest running request
is preempted (:meth:`Engine.preempt` frees its memory; it resumes later). Admission stops at the first
request that does not fit, so a large request is not starved by smaller ones behind it.

Segment sizing (``max_cuts`` > 0, with an engine that can :meth:`Engine.split` its segments): a single-pass step
runs a whole segment, so a long later segment blocks everyone behind it for its whole synthesis. When a
request's next segment (never its first: that one is short already) would take longer to make than the
slack of the requests waiting behind it (the earliest of their deadlines, less now, while it is still
positive: once one of them is late, under overload, a cut saves no deadline and costs a step), it is cut at a clause
boundary so its head fits the slack, and the tail becomes the request's next segment. Each piece of an
original segment is cut at most ``max_cuts`` times in all, neither part below ``min_cut_tokens``; with nobody
waiting, or with slack to spare, nothing is cut (but see the newcomer's reserve below), and a request
nothing was cut from is synthesized exactly as before. The estimate is tokens × the engine's measured
seconds per token (:class:`StepRate`, fed by the worker); 0 (not measured yet) cuts nothing.

The newcomer's reserve (``short_steps``): a step cannot be interrupted, so a request that arrives while a
long later segment is being made waits for all of it (at half a 20x Piper's capacity that put first audio
p99 at 0.5-0.6 s although nobody was late). While other streams are in flight (their clients' next requests
are the likely arrivals) and nobody is late, a later segment is also cut so its step ends within the slack a
request arriving now would have: the first-audio target less a first segment's synthesis (the mean first
segment's tokens × the rate). Alone, late, or when a first segment alone outlasts the target, it cuts nothing.

Every way out of the scheduler goes through one place, which calls :meth:`Engine.release` exactly once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from vtts.protocol import FinishReason

from .engine import RequestContext, Segment, StepOutput, WorkItem

if TYPE_CHECKING:
    from .engine import Engine

log = logging.getLogger("vtts.scheduler")

#: the default bound on waiting requests per worker (configs/default.toml ``max_queue``)
DEFAULT_MAX_QUEUE = 128
#: defaults of the model entry's pacing fields (configs/default.toml ``first_audio_target_s``,
#: ``playback_margin_s``, ``relaxed_deadline_s``)
DEFAULT_FIRST_AUDIO_TARGET_S = 0.3
DEFAULT_PLAYBACK_MARGIN_S = 0.2
DEFAULT_RELAXED_S = 5.0
#: default of the model entry's ``max_cuts``: how many times a segment may be cut for waiting streams
#: (0 = never), and the bound on it
DEFAULT_MAX_CUTS, MAX_CUTS = 1, 2

#: ``split(segment, max_tokens)``: an engine's :meth:`Engine.split`
Splitter = Callable[[Segment, int], "tuple[Segment, Segment] | None"]


class QueueFull(Exception):
    """The worker's queue of not-yet-started requests is at its bound."""


@dataclass(eq=False)
class Request(RequestContext):
    """A request's scheduling state inside a worker; the engine sees it as its :class:`RequestContext`."""

    arrival: float = field(default_factory=time.monotonic)
    #: monotonic time after which the request may not start (0 = none)
    deadline: float = 0.0
    in_flight: WorkItem | None = None
    #: its in-flight item gave its memory back and waits to resume
    preempted: bool = False
    first_scheduled: float | None = None
    #: how many items of the scheduler had been scheduled when this request's last one was (its turn)
    last_turn: int = -1
    #: a listener plays the audio as it arrives; False = the answer is delivered whole (relaxed deadline)
    streaming: bool = True
    #: monotonic time the request's first audio was sent (None = none yet)
    first_sent: float | None = None
    #: seconds of audio sent so far
    audio_sent_s: float = 0.0
    #: how many cuts made each segment that came from one (keyed by id(): segments live as long as the
    #: request); an original segment is absent (0)
    cut_depth: dict[int, int] = field(default_factory=dict)
    #: how many of its segments were cut
    cuts: int = 0

    @property
    def started(self) -> bool:
        return self.first_scheduled is not None

    @property
    def finished(self) -> bool:
        return self.in_flight is None and self.cursor >= len(self.segments)


class Ewma:
    """An exponentially weighted mean (a shared machine's speed and a workload's texts drift); 0.0 until the
    first value."""

    def __init__(self, weight: float = 0.2) -> None:
        self.weight = weight
        self.value = 0.0

    def observe(self, value: float) -> None:
        if value > 0:
            self.value = value if not self.value else self.value + self.weight * (value - self.value)

    def __call__(self) -> float:
        return self.value


class StepRate(Ewma):
    """An engine's seconds of synthesis per token over measured steps. The worker feeds it, segment sizing
    reads it."""

    def observe(self, tokens: int, seconds: float) -> None:  # type: ignore[override]
        if tokens > 0 and seconds > 0:
            super().observe(seconds / tokens)


class Scheduler:
    """Picks the items of each step; the worker loop reports outputs back with :meth:`update`.

    ``engine`` (optional, duck-typed: ``capacity``, ``cost``, ``preempt``, ``release``) supplies the budget
    and hears of preemptions and releases; without it only ``max_batch`` bounds a step."""

    def __init__(self, max_batch: int = 1, max_queue: int = DEFAULT_MAX_QUEUE,
                 clock: Callable[[], float] = time.monotonic, engine: Engine | None = None, *,
                 first_audio_target_s: float = DEFAULT_FIRST_AUDIO_TARGET_S,
                 playback_margin_s: float = DEFAULT_PLAYBACK_MARGIN_S, relaxed_s: float = DEFAULT_RELAXED_S,
                 split: Splitter | None = None, seconds_per_token: Callable[[], float] | None = None,
                 max_cuts: int = 0, min_cut_tokens: int = 1, short_steps: bool = False):
        if max_batch < 1 or max_queue < 1:
            raise ValueError("max_batch and max_queue must be positive")
        if not 0 <= max_cuts <= MAX_CUTS:
            raise ValueError(f"max_cuts must be 0..{MAX_CUTS}")
        if min(first_audio_target_s, playback_margin_s, relaxed_s) < 0:
            raise ValueError("pacing times must not be negative")
        self.max_batch = max_batch
        self.max_queue = max_queue
        self.engine = engine
        self.first_audio_target_s = first_audio_target_s
        self.playback_margin_s = playback_margin_s
        self.relaxed_s = relaxed_s
        #: segment sizing (see the module docstring); off without a splitter, a rate or max_cuts
        self.split = split
        self.seconds_per_token = seconds_per_token
        self.max_cuts = max_cuts if split is not None and seconds_per_token is not None else 0
        self.min_cut_tokens = max(1, min_cut_tokens)
        #: the newcomer's reserve (see the module docstring): keep later steps within the first-audio target
        #: less a first segment's synthesis, while other streams are in flight and nothing is late
        self.short_steps = short_steps
        #: tokens of a first segment, an exponentially weighted mean over scheduled ones (0 = none yet)
        self.first_tokens = Ewma()
        #: how many segments were cut (for tests, logs and the sim)
        self.cuts = 0
        self._clock = clock
        self._requests: dict[str, Request] = {}
        #: how many preemptions happened (for tests and logs)
        self.preemptions = 0
        #: items scheduled so far (the clock of the round robin that overload falls back to)
        self._turns = 0

    # -- admission -----------------------------------------------------------------------------------
    def add(self, request: Request) -> None:
        """Queue a new request; raise :class:`QueueFull` past the bound, ValueError on a duplicate id."""
        if request.id in self._requests:
            raise ValueError(f"duplicate request id {request.id!r}")
        if self.num_waiting >= self.max_queue:
            raise QueueFull(f"{self.num_waiting} requests already waiting")
        self._requests[request.id] = request

    def cancel(self, request_id: str) -> bool:
        """Forget a request (its client went away); an item of it already inside a running step finishes
        but is discarded."""
        return self._drop(request_id, FinishReason.CANCELLED) is not None

    def expire(self, now: float | None = None) -> list[Request]:
        """Remove and return the requests whose deadline passed before they could start."""
        now = self._clock() if now is None else now
        late = [r for r in self._requests.values() if not r.started and r.deadline and now > r.deadline]
        for r in late:
            self._drop(r.id, FinishReason.EXPIRED)
        return late

    def fail(self, request_id: str) -> Request | None:
        """Drop a request whose step failed."""
        return self._drop(request_id, FinishReason.FAILED)

    def close(self, reason: FinishReason) -> list[Request]:
        """Drop every request (drain timed out, worker stopping); return them."""
        return [r for rid in list(self._requests) if (r := self._drop(rid, reason)) is not None]

    def _drop(self, request_id: str, reason: FinishReason) -> Request | None:
        """The one way out: forget the request and release it in the engine, exactly once."""
        r = self._requests.pop(request_id, None)
        if r is not None and self.engine is not None:
            try:
                self.engine.release(r, reason)
            except Exception:  # a faulty release must not take the worker (or the other requests) down
                log.exception("release of request %s (%s) failed", request_id, reason.value)
        return r

    # -- deadlines -----------------------------------------------------------------------------------
    def sent(self, request_id: str, audio_s: float, at: float | None = None) -> None:
        """The worker sent ``audio_s`` seconds of the request's audio at monotonic time ``at`` (default now):
        its listener's buffer now runs dry later."""
        r = self._requests.get(request_id)
        if r is None or audio_s <= 0:
            return
        if r.first_sent is None:
            r.first_sent = self._clock() if at is None else at
        r.audio_sent_s += audio_s

    def due(self, r: Request) -> float:
        """Monotonic time by which the request's next segment should run: arrival + first-audio target
        before any audio was sent, else when its listener's buffer runs dry, less the margin; a request
        nobody listens to as it arrives is due ``relaxed_s`` later."""
        if r.first_sent is None:
            due = r.arrival + self.first_audio_target_s - self._first_synthesis_s(r)
        else:
            due = r.first_sent + r.audio_sent_s - self.playback_margin_s
        return due if r.streaming else due + self.relaxed_s

    def _first_synthesis_s(self, r: Request) -> float:
        """How long the request's first segment will take to make (its tokens × the measured rate), so that its
        first audio, not just its step's start, is due at the target; 0 where the rate is unknown or is not a
        single-pass segment's (engines that cannot be cut)."""
        if self.split is None or self.seconds_per_token is None or r.cursor >= len(r.segments):
            return 0.0
        return min(self.first_audio_target_s, r.segments[r.cursor].num_tokens * self.seconds_per_token())

    def stalled(self, r: Request) -> bool:
        """The request's listener has already run dry (it hears silence now)."""
        return r.streaming and r.first_sent is not None and r.first_sent + r.audio_sent_s <= self._clock()

    def _orderer(self, waiting: list[Request]) -> Callable[[Request], tuple]:
        """The sort key for this step's waiting requests: earliest deadline first (ties toward first audio,
        then the older request) while every listener still has audio; once one has run dry the worker is
        overloaded, and deadlines would rank every late stream ahead of every new request (EDF's domino
        effect: first audio p50 3.7 s at 32 clients on a 22x engine, 15 s at 100). Then first audio goes
        first, by arrival, and streams take turns (least recently served first), as under the policy before
        deadlines: first audio stays prompt and the shortfall is shared."""
        if not any(self.stalled(r) for r in waiting):
            return lambda r: (self.due(r), r.first_sent is not None, r.arrival)
        return lambda r: (1, r.last_turn, r.arrival) if r.first_sent is not None else (0, r.arrival, r.arrival)

    # -- segment sizing ------------------------------------------------------------------------------
    def _cut(self, r: Request, behind: list[Request], now: float) -> None:
        """Cut ``r``'s next segment (a later one, not started) when its synthesis would outlast the slack
        of the requests waiting ``behind`` it, or with ``short_steps`` the newcomer's reserve (a request that
        arrives during the step waits for it) while nothing is late: the head keeps what fits (at least
        ``min_cut_tokens``), the tail becomes the request's next segment."""
        if not self.max_cuts or r.cursor == 0 or r.first_sent is None:
            return
        segment = r.segments[r.cursor]
        depth = r.cut_depth.get(id(segment), 0)
        spt = self.seconds_per_token() if self.seconds_per_token is not None else 0.0
        if depth >= self.max_cuts or spt <= 0 or segment.num_tokens < 2 * self.min_cut_tokens:
            return
        slack = min((self.due(w) for w in behind), default=float("inf")) - now
        if slack <= 0:
            # with a request already late (overload: a listener has run dry, a first audio is overdue) a
            # cut saves no deadline and costs one more step's fixed cost: on a 20x Piper, cutting every
            # step at 2x its ceiling took 0.97 R to 0.79
            return
        if self.short_steps and len(self._requests) > 1 and self.due(r) > now and self.first_tokens():
            # nothing late, other streams in flight (their clients' next requests are the likely arrivals):
            # a request arriving now is due after the first-audio target and needs its own first segment; a
            # first segment that alone outlasts the target leaves no reserve to keep
            reserve = self.first_audio_target_s - self.first_tokens() * spt
            if reserve > 0:
                slack = min(slack, reserve)
        if segment.num_tokens * spt <= slack:
            return  # fits: nobody waits too long for it
        target = max(self.min_cut_tokens, int(slack / spt + 1e-9))  # 0.2 / 0.01 is 19.99...
        assert self.split is not None
        try:
            parts = self.split(segment, target)
        except Exception:  # a faulty split must not fail the request: the segment runs whole
            log.exception("cutting a segment of request %s failed", r.id)
            return
        if parts is None or min(p.num_tokens for p in parts) < self.min_cut_tokens:
            return
        r.segments[r.cursor:r.cursor + 1] = parts
        for part in parts:
            r.cut_depth[id(part)] = depth + 1
        r.cuts += 1
        self.cuts += 1

    # -- the step loop -------------------------------------------------------------------------------
    def _free(self) -> float:
        free = self.engine.capacity() if self.engine is not None else None
        return float("inf") if free is None else free

    def _cost(self, item: WorkItem) -> int:
        return self.engine.cost(item) if self.engine is not None else 0

    def _preempt(self, r: Request) -> None:
        assert r.in_flight is not None and self.engine is not None
        self.engine.preempt(r.in_flight)
        r.preempted = True
        self.preemptions += 1

    def schedule(self) -> list[WorkItem]:
        """The items to run in the next step (empty when idle)."""
        running = sorted((r for r in self._requests.values() if r.in_flight is not None and not r.preempted),
                         key=lambda r: (r.first_scheduled, r.arrival))
        batch: list[WorkItem] = []
        used = 0
        just_preempted: set[str] = set()
        while running:
            r = running.pop(0)
            item = r.in_flight
            assert item is not None
            cost = self._cost(item)
            if len(batch) >= self.max_batch:
                continue  # keeps its state; runs in a later step
            while used + cost > self._free() and running:  # make room: the youngest running request yields
                young = running.pop()
                self._preempt(young)
                just_preempted.add(young.id)
            if batch and used + cost > self._free():
                self._preempt(r)
                just_preempted.add(r.id)
                continue
            batch.append(item)  # alone, it runs even over budget: nothing else could ever make room
            used += cost
        if just_preempted:
            return batch  # the budget is short: nothing joins (a request just preempted would only thrash)
        idle = [r for r in self._requests.values() if (r.in_flight is None or r.preempted) and not r.finished]
        idle.sort(key=self._orderer(idle))
        now = self._clock()
        for position, r in enumerate(idle):
            if len(batch) >= self.max_batch:
                break
            if r.in_flight is None:  # those behind: the waiting requests this step leaves out
                self._cut(r, idle[position + self.max_batch - len(batch):], now)
            item = r.in_flight or WorkItem(r.id, r.cursor, r.segments[r.cursor], r.params, context=r)
            cost = self._cost(item)
            if batch and used + cost > self._free():
                break
            if r.in_flight is None:
                r.cursor += 1
                r.in_flight = item
            r.preempted = False
            if r.first_scheduled is None:
                r.first_scheduled = now
                self.first_tokens.observe(item.segment.num_tokens)
            r.last_turn = self._turns
            self._turns += 1
            batch.append(item)
            used += cost
        return batch

    def update(self, outputs: Iterable[StepOutput]) -> list[Request]:
        """Record a step's outputs; return the requests that are now complete (forgotten and released).
        Outputs of cancelled requests are ignored."""
        done: list[Request] = []
        for out in outputs:
            r = self._requests.get(out.item.request_id)
            if r is None or r.in_flight is not out.item:
                continue
            if out.finished:
                r.in_flight = None
                if r.finished:
                    self._drop(r.id, FinishReason.FINISHED)
                    done.append(r)
        return done

    # -- load ----------------------------------------------------------------------------------------
    def get(self, request_id: str) -> Request | None:
        return self._requests.get(request_id)

    def __contains__(self, request_id: str) -> bool:
        return request_id in self._requests

    @property
    def num_waiting(self) -> int:
        return sum(1 for r in self._requests.values() if not r.started)

    @property
    def num_active(self) -> int:
        return sum(1 for r in self._requests.values() if r.started)

    def __len__(self) -> int:
        return len(self._requests)
