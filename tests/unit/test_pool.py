"""WorkerPool's request bookkeeping: a request that cannot be encoded takes no queue slot, and a stream's
unread audio is bounded (issue 12 #2 and #8)."""

from __future__ import annotations

import asyncio

import pytest

from vtts import protocol as P
from vtts.frontend.pool import TOO_SLOW, Stream, Unencodable, WorkerInfo, WorkerPool


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


def test_stream_audio_is_bounded() -> None:
    """Past max_buffered_bytes of unread audio the stream drops it and ends with client_too_slow."""

    async def run() -> None:
        stream = Stream("r", _worker(), max_buffered_bytes=1000)
        assert stream.push(_audio(600, 0)) and stream.push(_audio(300, 1))
        assert not stream.push(_audio(300, 2))
        assert stream.overflowed and stream.queue.qsize() == 1
        msg = await stream.next(1)
        assert isinstance(msg, P.Error) and msg.code == TOO_SLOW
        assert not stream.push(_audio(10, 3)) and stream.queue.empty()

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
