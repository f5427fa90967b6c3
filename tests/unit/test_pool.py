"""WorkerPool's request bookkeeping: a request that cannot be encoded takes no queue slot, and a stream's
unread audio is bounded (issue 12 #2 and #8)."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
import zmq

from vtts import protocol as P
from vtts.frontend.pool import TOO_SLOW, NoWorker, Stream, Unencodable, WorkerInfo, WorkerPool


def _worker(max_queue: int = 2) -> WorkerInfo:
    return WorkerInfo(P.Status(worker_id="w0", model="m", pid=0, state="ready", sample_rate=16000,
                               max_queue=max_queue))


def _nested(depth: int) -> list:
    value: list = []
    for _ in range(depth - 1):
        value = [value]
    return value


@pytest.mark.parametrize("extra", [{"a": 2**64}, {"a": "hi \ud800"}, {"a": _nested(600)}])
def test_an_unencodable_request_takes_no_slot(extra: dict) -> None:
    """It used to be recorded as waiting before encoding failed: 128 of them filled the queue for good."""

    async def run() -> None:
        pool = WorkerPool("inproc://test-pool")
        try:
            pool.workers["w0"] = worker = _worker(max_queue=2)
            for i in range(5):  # more than max_queue: every one would be a 429 if slots leaked
                with pytest.raises(Unencodable):
                    await pool.submit("m", P.Synthesize(id=f"r{i}", text="hi", voice="v", extra=extra))
            assert not pool.streams and not worker.streams and not worker.waiting
            assert pool.pick("m") is worker
        finally:
            pool.sock.close(linger=0)
            pool.ctx.term()

    asyncio.run(run())


def _audio(n: int, seq: int = 0) -> P.Audio:
    return P.Audio(id="r", seq=seq, sample_rate=16000, pcm=b"\0" * n)


def test_stream_audio_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past max_buffered_bytes of unread audio, once the grace passes with nothing read, the stream drops its
    audio, ends with client_too_slow and asks the pool to cancel."""
    monkeypatch.setattr(Stream, "OVERFLOW_GRACE_S", 0.05)

    async def run() -> None:
        stream = Stream("r", _worker(), max_buffered_bytes=1000)
        cut: list[Stream] = []
        stream.on_overflow = cut.append
        assert stream.push(_audio(600, 0)) and stream.push(_audio(300, 1)) and stream.push(_audio(300, 2))
        assert not stream.overflowed  # not yet: the grace
        await asyncio.sleep(0.1)
        assert stream.overflowed and stream.queue.qsize() == 1 and cut == [stream]
        msg = await stream.next(1)
        assert isinstance(msg, P.Error) and msg.code == TOO_SLOW
        assert not stream.push(_audio(10, 3)) and stream.queue.empty()

    asyncio.run(run())


def test_twice_the_bound_unread_is_cut_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The grace does not let a non-reading client hold more than twice the bound (pauses are made instantly)."""
    monkeypatch.setattr(Stream, "OVERFLOW_GRACE_S", 60.0)

    async def run() -> None:
        stream = Stream("r", _worker(), max_buffered_bytes=1000)
        assert stream.push(_audio(600, 0)) and stream.push(_audio(600, 1))  # over the bound: the grace starts
        assert not stream.overflowed
        assert not stream.push(_audio(900, 2))  # 2100 > 2 x 1000, nothing read
        assert stream.overflowed and stream.queue.qsize() == 1

    asyncio.run(run())


def test_a_burst_that_the_client_reads_within_the_grace_is_not_cut(monkeypatch: pytest.MonkeyPatch) -> None:
    """A frontend that was paused gets what the worker made meanwhile at once: a reading client drains it."""
    monkeypatch.setattr(Stream, "OVERFLOW_GRACE_S", 0.2)

    async def run() -> None:
        stream = Stream("r", _worker(), max_buffered_bytes=1000)
        for i in range(10):  # 9000 bytes at once, nine times the bound, as the pool pushes after a stall
            stream.push(_audio(900, i), lenient=True)
        for _ in range(10):
            await stream.next(1)
        await asyncio.sleep(0.3)
        assert not stream.overflowed and stream.buffered == 0

    asyncio.run(run())


def test_reading_frees_the_budget_and_one_big_chunk_passes() -> None:
    async def run() -> None:
        stream = Stream("r", _worker(), max_buffered_bytes=1000)
        assert stream.push(_audio(5000, 0))  # alone in the queue: a long sentence is not a slow client
        await stream.next(1)
        for i in range(10):
            assert stream.push(_audio(900, i))
            await stream.next(1)
        assert stream.buffered == 0 and not stream.overflowed

    asyncio.run(run())


# -- routing by capacity (issue 13) --------------------------------------------------------------------------


def _status(wid: str, capacity: int, active: int = 0, queued: int = 0, engine: str = "e") -> P.Status:
    return P.Status(worker_id=wid, model="m", pid=0, state="ready", engine=engine, sample_rate=16000,
                    max_queue=64, capacity=capacity, active=active, queued=queued)


def _pool(*statuses: P.Status) -> WorkerPool:
    """A pool that has heard ``statuses``; its socket is never bound (nothing is sent)."""
    pool = WorkerPool("inproc://test-routing")
    for st in statuses:
        pool._on_status(st)
    return pool


def _close(pool: WorkerPool) -> None:
    pool.sock.close(linger=0)
    pool.ctx.term()


def _send(pool: WorkerPool, worker: WorkerInfo, rid: str) -> None:
    """What ``submit`` records for a request sent to ``worker``."""
    pool.streams[rid] = Stream(rid, worker)
    worker.streams.add(rid)
    worker.waiting.add(rid)
    worker.fresh.add(rid)


def test_pick_prefers_the_most_free_capacity_over_the_least_load() -> None:
    pool = _pool(_status("w0", capacity=1), _status("w1", capacity=5))
    try:
        _send(pool, pool.workers["w0"], "a")
        pool._on_status(_status("w0", capacity=1, active=1))  # w0 is now less loaded here: 0 vs 2
        for rid in ("b", "c"):
            _send(pool, pool.workers["w1"], rid)
        pool._forget("a")
        pool._on_status(_status("w1", capacity=5, active=2))
        assert pool.workers["w0"].load < pool.workers["w1"].load
        assert pool.pick("m").id == "w1"
    finally:
        _close(pool)


def test_requests_sent_since_the_heartbeat_count_against_its_capacity() -> None:
    """A heartbeat is up to a second old: a burst must spread, not all go to the replica that had most room."""
    pool = _pool(_status("w0", capacity=4), _status("w1", capacity=2))
    try:
        picks = []
        for i in range(6):
            w = pool.pick("m")
            picks.append(w.id)
            _send(pool, w, f"r{i}")
        assert picks.count("w0") == 4 and picks.count("w1") == 2
        assert picks[:2] == ["w0", "w0"]  # 4 > 2 free, then 3 > 2, then 2 = 2: the less loaded one
        # the next heartbeat counts those requests itself: the correction starts again from zero
        pool._on_status(_status("w0", capacity=0, active=4))
        pool._on_status(_status("w1", capacity=0, active=2))
        assert not pool.workers["w0"].fresh and pool.free_slots(pool.workers["w1"]) == 0
    finally:
        _close(pool)


def test_a_finished_request_gives_its_capacity_back_before_the_next_heartbeat() -> None:
    pool = _pool(_status("w0", capacity=1), _status("w1", capacity=1))
    try:
        _send(pool, pool.workers["w0"], "a")
        assert pool.pick("m").id == "w1"
        pool._forget("a")
        assert pool.free_slots(pool.workers["w0"]) == 1 and pool.pick("m").id == "w0"
    finally:
        _close(pool)


def test_a_full_replica_with_requests_waiting_is_picked_last() -> None:
    pool = _pool(_status("w0", capacity=0, active=4, queued=3), _status("w1", capacity=0, active=4))
    try:
        for rid in ("a", "b", "c"):  # w1 is far more loaded here, but w0 has a queue behind a full batch
            _send(pool, pool.workers["w1"], rid)
        pool._on_status(_status("w1", capacity=0, active=4))  # those are running now: nothing waits on w1
        assert pool.pick("m").id == "w1"
        _send(pool, pool.workers["w1"], "d")  # now one waits on w1 too: both full, the least loaded wins
        assert pool.pick("m").id == "w0"
    finally:
        _close(pool)


def test_equal_capacity_keeps_least_loaded_then_id() -> None:
    pool = _pool(_status("w1", capacity=3), _status("w0", capacity=3), _status("w2", capacity=3))
    try:
        assert pool.pick("m").id == "w0"
        _send(pool, pool.workers["w0"], "a")
        pool._on_status(_status("w0", capacity=3))  # a heartbeat that does not reflect it yet either
        assert pool.pick("m").id == "w1"
    finally:
        _close(pool)


def test_workers_reporting_no_capacity_route_by_load_as_before() -> None:
    """Capacity 0 everywhere (a worker still loading its figures, an older worker): least loaded, then id."""
    pool = _pool(_status("w0", capacity=0), _status("w1", capacity=0))
    try:
        picks = []
        for i in range(4):
            w = pool.pick("m")
            picks.append(w.id)
            _send(pool, w, f"r{i}")
        assert picks == ["w0", "w1", "w0", "w1"]
    finally:
        _close(pool)


def test_budget_units_are_converted_to_requests_from_the_heartbeats() -> None:
    """An LM reports free KV tokens: the pool learns what one running request holds (budget - free) / active
    and corrects by that, so tokens and requests are not mixed up."""
    pool = _pool(_status("w0", capacity=4096, engine="lm"), _status("w1", capacity=4096, engine="lm"))
    try:
        pool._on_status(_status("w1", capacity=2048, active=2, engine="lm"))  # 1024 tokens a request
        assert pool.unit_cost(pool.workers["w0"].status) == 1024
        assert pool.free_slots(pool.workers["w0"]) == 4 and pool.free_slots(pool.workers["w1"]) == 2
        picks = []
        for i in range(3):
            w = pool.pick("m")
            picks.append(w.id)
            _send(pool, w, f"r{i}")
        assert picks == ["w0", "w0", "w1"]  # 4, 3 free (> 2); then 2 = 2 and w1 holds none here: w1
        assert pool.pick("m").id == "w0"  # 2 free against 1
        # within one request's worth of tokens the replicas are equal: the least loaded wins
        pool._on_status(_status("w0", capacity=2100, active=2, engine="lm"))
        pool._on_status(_status("w1", capacity=2060, active=2, engine="lm"))
        pool._forget("r0"), pool._forget("r1"), pool._forget("r2")
        assert pool.pick("m").id == "w0"
        _send(pool, pool.workers["w0"], "x")
        assert pool.pick("m").id == "w1"
    finally:
        _close(pool)


def test_a_worker_a_send_cannot_reach_is_skipped_until_heard_again() -> None:
    """A killed worker keeps its last heartbeat's capacity until the monitor forgets it (up to half a
    second): ranked first, it drew every retry of every request and each ended in a 503."""

    async def run() -> None:
        pool = WorkerPool("inproc://test-unreachable")
        peer = pool.ctx.socket(zmq.DEALER)
        try:
            pool.sock.bind(pool.endpoint)
            peer.setsockopt(zmq.IDENTITY, b"w1")
            peer.connect(pool.endpoint)
            await peer.send(b"hello")  # the pool's ROUTER now knows w1; w0 has no socket (its process died)
            await pool.sock.recv_multipart()
            pool._on_status(_status("w0", capacity=4))
            pool._on_status(_status("w1", capacity=1))
            with pytest.raises(NoWorker):
                await pool.submit("m", P.Synthesize(id="r1", text="hi", voice="v"))
            assert not pool.workers["w0"].reachable and not pool.streams
            stream = await pool.submit("m", P.Synthesize(id="r2", text="hi", voice="v"))
            assert stream.worker_id == "w1" and isinstance(P.decode(await peer.recv()), P.Synthesize)
            pool._on_status(_status("w0", capacity=4))  # heard again (a reconnect, not a death)
            assert pool.pick("m").id == "w0"
        finally:
            peer.close(linger=0)
            _close(pool)

    asyncio.run(run())


def test_an_older_status_from_the_other_socket_does_not_overwrite_a_newer_one() -> None:
    """A worker's first "loading" status (its loop's socket) can arrive after its "ready" (the heartbeat
    thread's socket): the pool keeps the newer one, voices and all."""
    pool = WorkerPool("inproc://unused-seq")
    try:
        ready = dataclasses.replace(_status("w", 1), seq=2, voices=[{"id": "alice"}])
        pool._on_status(ready)
        pool._on_status(dataclasses.replace(_status("w", 1), seq=1, state="loading"))
        assert pool.workers["w"].status.state == "ready" and pool.workers["w"].status.voices
        pool._on_status(dataclasses.replace(_status("w", 1), seq=3, state="draining"))
        assert pool.workers["w"].status.state == "draining"
    finally:
        pool.sock.close(linger=0)
        pool.ctx.term()
