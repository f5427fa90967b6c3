"""The frontend's view of the workers: a ZeroMQ ROUTER socket, routing, and per-request streams.

Workers announce themselves with ``status`` messages (heartbeats). A request goes to the ready worker of
its model with the most free capacity (see :meth:`WorkerPool.pick`); its messages come back into a
:class:`Stream`. A worker that goes silent, whose
process is gone, or that restarts under the same id fails every stream it held with an error — a request
always ends, never hangs.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import zmq
import zmq.asyncio

from vtts import protocol as P

from . import heap

log = logging.getLogger("vtts.frontend.pool")

MONITOR_INTERVAL_S = 0.5
#: how often the monitor gives freed audio buffers back to the system (:mod:`.heap`)
TRIM_INTERVAL_S = 2.0
#: a gap this long between the monitor's ticks means this process was stopped or its loop stalled
STALL_S = 1.0
#: the state ``on_status`` listeners receive for a worker the pool has forgotten (not a protocol state)
GONE = "gone"


class NoWorker(Exception):
    """No ready worker serves the model."""


class Overloaded(Exception):
    """Every ready worker of the model has a full queue."""


@dataclass
class WorkerInfo:
    """What the frontend knows about one worker."""

    status: P.Status
    last_seen: float = field(default_factory=time.monotonic)
    #: request ids sent to it and not finished
    streams: set[str] = field(default_factory=set)
    #: of those, the ones that have not produced audio yet
    waiting: set[str] = field(default_factory=set)
    #: of those, the ones sent after ``status`` arrived: its ``capacity`` does not count them yet
    fresh: set[str] = field(default_factory=set)
    #: the largest ``capacity`` it reported: its whole budget, as reported when idle
    peak_capacity: int = 0
    #: False from a send that found no such peer (its process died) until its next heartbeat: a dead worker
    #: keeps its last capacity until the monitor forgets it, and must not draw every request meanwhile
    reachable: bool = True

    def __post_init__(self) -> None:
        self.peak_capacity = max(self.peak_capacity, self.status.capacity)

    @property
    def id(self) -> str:
        return self.status.worker_id

    @property
    def ready(self) -> bool:
        return self.status.state == "ready"

    @property
    def load(self) -> int:
        return len(self.streams)


class Unencodable(ValueError):
    """The request cannot be put on the wire (validation should have refused it first)."""


#: the error a stream ends with when its client reads too slowly (see ``Stream.push``)
TOO_SLOW = "client_too_slow"


class Stream:
    """The messages of one request, in order, ending with ``done`` or ``error``.

    The queue fills while the HTTP handler waits on a slow client, so the audio it holds is counted: past
    ``max_buffered_bytes`` the stream ends with a ``client_too_slow`` error and its audio is dropped — if
    nothing was read from it for ``OVERFLOW_GRACE_S`` after the bound was passed, or at once past twice the
    bound with nothing read. The grace is for a frontend that was itself paused (a stopped process, a
    frozen VM): what the worker made meanwhile arrives at once on resume, the pool lets the handler read
    between those messages, and a client that reads is never cut.
    """

    #: how long a stream may stay over its bound with nothing read before it is cut
    OVERFLOW_GRACE_S = 1.0

    def __init__(self, request_id: str, worker: WorkerInfo, max_buffered_bytes: int = 0) -> None:
        self.id = request_id
        self.worker_id = worker.id
        self.sample_rate = worker.status.sample_rate
        self.queue: asyncio.Queue[P.Message] = asyncio.Queue()
        self.finished = False
        self.max_buffered_bytes = max_buffered_bytes
        self.buffered = 0
        self.overflowed = False
        #: called once when the stream is cut for a slow client (the pool cancels the worker's request)
        self.on_overflow: Callable[[Stream], None] | None = None
        self._reads = 0
        #: reads counted when the bound was last found passed (None: not over it)
        self._over_reads: int | None = None
        self._check: asyncio.TimerHandle | None = None

    def push(self, msg: P.Message, lenient: bool = False) -> bool:
        """Queue a message; False once the stream was cut for a slow client (the message is dropped)."""
        if self.overflowed:
            return False
        if isinstance(msg, P.Audio):
            self.buffered += len(msg.pcm)
            # one chunk alone never trips it: only audio piling up behind an unread chunk
            over = self.max_buffered_bytes and self.buffered > self.max_buffered_bytes and not self.queue.empty()
            if over:
                if self._over_reads != self._reads:  # over the bound anew, or the client read since
                    self._over_reads = self._reads
                    if self._check is not None:
                        self._check.cancel()
                    self._check = asyncio.get_running_loop().call_later(
                        self.OVERFLOW_GRACE_S, self._check_overflow, self._reads)
                elif self.buffered > 2 * self.max_buffered_bytes and not lenient:  # twice, nothing read: now
                    self._check_overflow(self._reads)
                    return False
        self.queue.put_nowait(msg)
        return True

    @property
    def over_bound(self) -> bool:
        """More audio waits than the bound allows (the pool then lets the reader run before the next)."""
        return bool(self.max_buffered_bytes) and self.buffered > self.max_buffered_bytes

    def _check_overflow(self, reads: int) -> None:
        """Cut the stream if it is still over its bound and nothing was read since the bound was passed."""
        self._check = None
        if self.finished and self.queue.empty() or self.overflowed:
            return
        if self._reads != reads or self.buffered <= self.max_buffered_bytes:
            return
        self.overflowed = True
        while not self.queue.empty():  # free the audio now, not when the client catches up
            self.queue.get_nowait()
        self.buffered = 0
        self.queue.put_nowait(P.Error(self.id, TOO_SLOW, "the client did not read the audio in time", status=408))
        heap.trim()  # the dropped audio goes back to the system now, not at the next periodic trim
        if self.on_overflow is not None:
            self.on_overflow(self)

    async def next(self, timeout: float | None = None) -> P.Message:
        msg = await asyncio.wait_for(self.queue.get(), timeout)
        self._reads += 1
        if isinstance(msg, P.Audio):
            self.buffered -= len(msg.pcm)
        return msg


class WorkerPool:
    """Owns the ROUTER socket; the only frontend code that talks to workers."""

    def __init__(
        self,
        endpoint: str,
        heartbeat_timeout_s: float = 10.0,
        on_status: Callable[[P.Status], None] | None = None,
        max_buffered_bytes: int = 0,
        on_done: Callable[[str, P.Done], None] | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.heartbeat_timeout_s = heartbeat_timeout_s
        self.max_buffered_bytes = max_buffered_bytes
        self.on_status = on_status
        #: hears every finished request with the worker that served it (admission learns speeds)
        self.on_done = on_done
        self.workers: dict[str, WorkerInfo] = {}
        self.streams: dict[str, Stream] = {}
        #: (model id, engine) -> capacity units one running request holds, learned from heartbeats
        self._unit_cost: dict[tuple[str, str], float] = {}
        self.ctx = zmq.asyncio.Context()
        self.sock = self.ctx.socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.ROUTER_MANDATORY, 1)  # a send to a gone worker raises instead of vanishing
        self.sock.setsockopt(zmq.ROUTER_HANDOVER, 1)  # a restarted worker takes its identity back
        self.sock.setsockopt(zmq.SNDHWM, 100_000)
        self.sock.setsockopt(zmq.RCVHWM, 100_000)
        self._tasks: list[asyncio.Task] = []
        #: the monitor's last tick, and when it last found that this process had been stalled
        self._last_tick = time.monotonic()
        self._resumed_at = 0.0
        #: cancellations started from callbacks (kept referenced until done)
        self._background: set[asyncio.Task] = set()

    async def start(self) -> None:
        if self.endpoint.startswith("ipc://"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.endpoint[len("ipc://") :])
        self.sock.bind(self.endpoint)
        self._tasks = [asyncio.create_task(self._recv_loop()), asyncio.create_task(self._monitor_loop())]

    async def close(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self.sock.close(linger=0)
        self.ctx.term()

    # -- routing -------------------------------------------------------------------------------------
    def workers_of(self, model: str) -> list[WorkerInfo]:
        return [w for w in self.workers.values() if w.status.model == model]

    def ready_workers(self, model: str) -> list[WorkerInfo]:
        return [w for w in self.workers_of(model) if w.ready]

    def unit_cost(self, status: P.Status) -> float:
        """Capacity units one request holds on workers of ``status``'s model and engine, as their
        heartbeats show it (1 until seen)."""
        return self._unit_cost.get((status.model, status.engine), 1.0)

    def free_slots(self, worker: WorkerInfo) -> float:
        """Requests ``worker`` could still start at once: its last reported capacity, less what the
        requests sent since that heartbeat take, in requests (so replicas within one request's worth of
        budget count as equal)."""
        unit = self.unit_cost(worker.status)
        return (worker.status.capacity - len(worker.fresh) * unit) // unit

    def pick(self, model: str) -> WorkerInfo:
        """The ready worker of ``model`` with room in its queue that can start the request soonest.

        Ranked by the free capacity its last heartbeat reported (engine units, e.g. free KV tokens; free
        batch slots for engines without a budget), corrected for the requests sent to it since that
        heartbeat, which is up to a second old; a worker whose capacity is used up and that has requests
        waiting comes last. Equal capacity falls back to the least-loaded worker (requests in flight
        here), then the worker id. A worker a send could not reach is skipped until it is heard again."""
        ready = [w for w in self.ready_workers(model) if w.reachable]
        if not ready:
            raise NoWorker(model)
        room = [w for w in ready if len(w.waiting) < max(1, w.status.max_queue)]
        if not room:
            raise Overloaded(model)

        def rank(w: WorkerInfo) -> tuple[bool, float, int, str]:
            slots = self.free_slots(w)
            full = slots <= 0 and (w.status.queued > 0 or bool(w.fresh))
            return full, -slots, w.load, w.id

        return min(room, key=rank)

    async def submit(self, model: str, msg: P.Synthesize) -> Stream:
        """Send a request to a worker of ``model``; raises :class:`NoWorker`, :class:`Overloaded` or
        :class:`Unencodable`. Encoded before it is recorded, so a message that cannot be sent holds no slot."""
        worker = self.pick(model)
        msg.sent_at = time.time()
        try:
            frame = P.encode(msg)
        except (ValueError, TypeError, OverflowError, RecursionError) as exc:  # UnicodeEncodeError: a ValueError
            raise Unencodable(str(exc)) from exc
        stream = Stream(msg.id, worker, self.max_buffered_bytes)
        stream.on_overflow = self._overflowed
        self.streams[msg.id] = stream
        worker.streams.add(msg.id)
        worker.waiting.add(msg.id)
        worker.fresh.add(msg.id)
        try:
            await self.sock.send_multipart([worker.id.encode(), frame])
        except zmq.ZMQError as exc:
            self._forget(msg.id)
            worker.reachable = False
            raise NoWorker(model) from exc
        return stream

    async def control(self, worker: WorkerInfo, op: str, timeout: float = 10.0,
                      args: dict | None = None) -> P.Message:
        """Run a control operation on one worker and return its reply (an Error if it is lost)."""
        msg = P.Control(uuid.uuid4().hex, op, args or {})
        stream = Stream(msg.id, worker)
        self.streams[msg.id] = stream
        worker.streams.add(msg.id)
        try:
            await self.sock.send_multipart([worker.id.encode(), P.encode(msg)])
            return await stream.next(timeout)
        except (zmq.ZMQError, asyncio.TimeoutError):
            return P.Error(msg.id, "worker_lost", f"worker {worker.id} did not answer", status=503)
        finally:
            self._forget(msg.id)

    async def cancel(self, stream: Stream) -> None:
        """Tell the worker to drop the rest of a request the client no longer wants."""
        if stream.finished:
            return
        self._forget(stream.id)
        with contextlib.suppress(zmq.ZMQError):
            await self.sock.send_multipart([stream.worker_id.encode(), P.encode(P.Cancel(stream.id))])

    def _overflowed(self, stream: Stream) -> None:
        log.warning("request %s: client too slow, over %d buffered bytes; cancelling", stream.id,
                    stream.max_buffered_bytes)
        task = asyncio.get_running_loop().create_task(self.cancel(stream))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _forget(self, request_id: str) -> None:
        stream = self.streams.pop(request_id, None)
        if stream is None:
            return
        stream.finished = True
        worker = self.workers.get(stream.worker_id)
        if worker:
            worker.streams.discard(request_id)
            worker.waiting.discard(request_id)
            worker.fresh.discard(request_id)

    # -- incoming ------------------------------------------------------------------------------------
    async def _recv_loop(self) -> None:
        while True:
            try:
                ident, frame = await self.sock.recv_multipart()
            except ValueError:
                continue
            msg = P.decode_or_log(frame, log, ident)
            if msg is None:
                continue
            if isinstance(msg, P.Status):
                self._on_status(msg)
                continue
            stream = self.streams.get(getattr(msg, "id", ""))
            if stream is None:
                continue  # cancelled or unknown: drop
            worker = self.workers.get(stream.worker_id)
            if worker:
                worker.last_seen = time.monotonic()
                worker.waiting.discard(stream.id)
            if isinstance(msg, P.Done) and self.on_done:
                self.on_done(stream.worker_id, msg)
            if isinstance(msg, (P.Done, P.Error, P.ControlReply)):
                self._forget(stream.id)
            now = time.monotonic()
            # this process was stopped or its loop stalled: the worker's audio of that time arrives at once,
            # so no stream is cut before its handler had the grace to read it
            stalled = now - self._last_tick > STALL_S or now - self._resumed_at < Stream.OVERFLOW_GRACE_S * 2
            stream.push(msg, lenient=stalled)
            if stream.over_bound:
                await asyncio.sleep(0)  # let its handler take what waits before the next message lands

    def _on_status(self, st: P.Status) -> None:
        old = self.workers.get(st.worker_id)
        if old is not None and (old.status.pid != st.pid or old.status.started_at != st.started_at):
            self._fail_worker(old, "the worker restarted")
            old = None
        if old is not None and st.seq and st.seq < old.status.seq:
            return  # an older status overtaken on the other socket (see Status.seq)
        if old is None:
            log.info("worker %s (%s, pid %s) is %s", st.worker_id, st.model, st.pid, st.state)
            self.workers[st.worker_id] = WorkerInfo(st)
        else:
            if old.status.state != st.state:
                log.info("worker %s is %s", st.worker_id, st.state)
            old.status = st
            old.last_seen = time.monotonic()
            old.fresh.clear()  # this heartbeat's capacity counts them (up to the few in transit)
            old.reachable = True
            old.peak_capacity = max(old.peak_capacity, st.capacity)
        self._learn_cost(self.workers[st.worker_id])
        if self.on_status:
            self.on_status(st)

    def _learn_cost(self, worker: WorkerInfo) -> None:
        """A busy worker's heartbeat tells what its running requests hold: (budget - free) / running. For an
        engine without a budget that is one batch slot; for an LM, the KV tokens of a typical request."""
        st = worker.status
        if st.active > 0 and worker.peak_capacity > st.capacity:
            self._unit_cost[(st.model, st.engine)] = max(1.0, (worker.peak_capacity - st.capacity) / st.active)

    async def _monitor_loop(self) -> None:
        """Forget workers whose process is gone or that fell silent, failing their streams.

        Silence is measured on this process's clock, so a pause of the frontend itself (SIGSTOP, a frozen
        VM, a long stall of the event loop) would look like every worker's silence: when this loop wakes
        more than half a heartbeat timeout late, every worker gets a fresh grace period instead. A worker
        that died meanwhile is still caught by its pid, and a hung one is killed by the supervisor's
        watchdog (then its pid is gone too)."""
        last_tick = last_trim = time.monotonic()
        while True:
            await asyncio.sleep(MONITOR_INTERVAL_S)
            now = time.monotonic()
            if now - self._last_tick > STALL_S:
                self._resumed_at = now
            self._last_tick = now
            if now - last_trim > TRIM_INTERVAL_S:
                last_trim = now
                heap.trim()
            paused = now - last_tick > self.heartbeat_timeout_s / 2
            last_tick = now
            for worker in list(self.workers.values()):
                if paused:
                    worker.last_seen = max(worker.last_seen, now)
                gone = not _pid_alive(worker.status.pid)
                silent = now - worker.last_seen > self.heartbeat_timeout_s
                if gone or silent:
                    log.warning("worker %s %s", worker.id, "exited" if gone else "stopped sending heartbeats")
                    self._fail_worker(worker, "the worker exited" if gone else "the worker stopped responding")
                    del self.workers[worker.id]
                    if self.on_status:  # listeners (metrics) drop what they keep for this worker
                        self.on_status(dataclasses.replace(worker.status, state=GONE))

    def _fail_worker(self, worker: WorkerInfo, why: str) -> None:
        for rid in list(worker.streams):
            stream = self.streams.get(rid)
            self._forget(rid)
            if stream is not None:
                stream.queue.put_nowait(P.Error(rid, "worker_lost", f"{why} while serving this request", status=503))


def _pid_alive(pid: int) -> bool:
    """True while the process exists (a zombie counts as gone once the supervisor reaps it)."""
    if pid <= 0:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
