"""Overload, deadlines and cancellation through a real server (ordering and fairness are unit-tested in
tests/unit/test_scheduler.py with synthetic requests)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import aiohttp
import pytest

from tests.integration.conftest import Server, start_server

#: Piper's warm-up at load (about 1 s of each start on 2 cores) is off: these tests count requests, deadlines
#: and produced audio, never memory
NO_WARMUP = "options = { warmup = false }\n"
LONG = " ".join(f"Sentence number {i} is part of a long answer that takes a while." for i in range(12))


def metric(srv: Server, name: str, **labels: str) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    total = 0.0
    for line in srv.get("/metrics")[1].decode().splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
        elif want == "" and line.startswith(name + " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def post(session: aiohttp.ClientSession, srv: Server, text: str) -> tuple[int, dict[str, str], bytes, float]:
    start = time.monotonic()
    async with session.post(srv.url + "/v1/audio/speech",
                            json={"model": "tts-1", "voice": "alloy", "input": text, "response_format": "pcm"}) as r:
        body = await r.read()
        return r.status, dict(r.headers), body, time.monotonic() - start


@pytest.fixture(scope="module")
def small_queue(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("load")
    (tmp / "vtts.toml").write_text(
        '[server]\nrequest_timeout_s = 20.0\n'
        '[[models]]\nid = "joe"\nengine = "piper"\nmodel = "en_US-joe-medium"\nmax_queue = 2\n' + NO_WARMUP
    )
    srv = start_server(["--config", str(tmp / "vtts.toml")], tmp)
    yield srv
    _, left = srv.stop()
    assert not left


def test_past_the_queue_limit_requests_get_429_immediately(small_queue: Server) -> None:
    async def run():
        async with aiohttp.ClientSession() as s:
            return await asyncio.gather(*[post(s, small_queue, LONG) for _ in range(12)])

    results = asyncio.run(run())
    statuses = [r[0] for r in results]
    assert statuses.count(200) >= 2 and statuses.count(429) >= 1, statuses
    assert set(statuses) <= {200, 429}
    for status, headers, body, took in results:
        if status == 429:
            assert int(headers["Retry-After"]) >= 1
            assert json.loads(body)["error"]["type"] == "rate_limit_error"
            assert took < 2.0  # refused at once, not after queueing
    assert metric(small_queue, "vtts_rejected_total", reason="queue_full") >= statuses.count(429)


def test_a_request_that_cannot_start_in_time_gets_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "vtts.toml").write_text(
        '[server]\nrequest_timeout_s = 1.0\n'
        '[[models]]\nid = "joe"\nengine = "piper"\nmodel = "en_US-joe-medium"\nmax_batch = 1\n' + NO_WARMUP
    )
    srv = start_server(["--config", str(tmp_path / "vtts.toml")], tmp_path)
    huge = " ".join(["This first sentence is long enough to keep the worker busy for quite some time now."] * 40)

    async def run() -> list[tuple[int, bytes, float]]:
        answered = 0
        everyone_answered = asyncio.Event()

        async def one(s: aiohttp.ClientSession) -> tuple[int, bytes, float]:
            """The status; a refusal's body; a stream is held (the worker stays busy) until every request has
            its answer, then dropped: its 200 s of audio would only slow the test down."""
            nonlocal answered
            start = time.monotonic()
            async with s.post(srv.url + "/v1/audio/speech", json={"model": "tts-1", "voice": "alloy", "input": huge,
                                                                  "response_format": "pcm"}) as r:
                took = time.monotonic() - start
                body = await r.read() if r.status != 200 else b""
                answered += 1
                if answered == 12:
                    everyone_answered.set()
                if r.status == 200:
                    while not everyone_answered.is_set() and await r.content.readany():
                        pass
                    r.close()
                return r.status, body, took

        async with aiohttp.ClientSession() as s:
            return await asyncio.gather(*[one(s) for _ in range(12)])

    try:
        results = asyncio.run(run())
    finally:
        srv.stop()
    timeouts = [r for r in results if r[0] == 503]
    assert timeouts, [r[0] for r in results]
    for _, body, took in timeouts:
        err = json.loads(body)["error"]
        assert err["code"] == "timeout" and "deadline" in err["message"]
        assert took < 15
    assert {r[0] for r in results} <= {200, 503}


def test_100_clients_dropping_after_the_first_chunk_leave_no_work(tmp_path: Path) -> None:
    (tmp_path / "vtts.toml").write_text(
        '[server]\nrequest_timeout_s = 300.0\n'
        '[[models]]\nid = "piper-joe"\nengine = "piper"\nmodel = "en_US-joe-medium"\n' + NO_WARMUP
    )
    srv = start_server(["--config", str(tmp_path / "vtts.toml")], tmp_path)
    text = "Hi. " + " ".join(["A sentence that the client will never hear in full."] * 30)

    async def drop_after_first_chunk(s: aiohttp.ClientSession) -> int:
        async with s.post(srv.url + "/v1/audio/speech",
                          json={"model": "tts-1", "voice": "alloy", "input": text, "response_format": "wav"}) as r:
            if r.status == 200:
                await r.content.readany()
            r.close()  # drop the connection mid-stream
            return r.status

    async def run() -> list[int]:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200)) as s:
            return await asyncio.gather(*[drop_after_first_chunk(s) for _ in range(100)])

    try:
        statuses = asyncio.run(run())
        assert set(statuses) == {200}, statuses
        deadline = time.monotonic() + 60
        while True:
            cancelled = metric(srv, "vtts_cancelled_total", model="piper-joe")
            active = metric(srv, "vtts_worker_active_requests") + metric(srv, "vtts_worker_queue_depth")
            streams = metric(srv, "vtts_active_streams", model="piper-joe")
            if cancelled >= 100 and active == 0 and streams == 0:
                break
            assert time.monotonic() < deadline, (cancelled, active, streams)
            time.sleep(0.2)
        produced = metric(srv, "vtts_audio_seconds_total", model="piper-joe")
        # 100 requests of ~60 s of audio each: cancelled work produced only a small part of it
        assert produced < 100 * 60 * 0.25
    finally:
        _, left = srv.stop()
    assert not left
