"""``vtts bench --soak``: the RSS verdict, and the request-counting client against a tiny server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from aiohttp import web

from vtts.bench import OpenAIShape
from vtts.bench_texts import TextSource
from vtts.soak import (
    MAX_GROWTH,
    RssSample,
    SoakResult,
    as_json,
    process_rss,
    render_soak,
    rss_probe,
    run_soak,
    verdicts,
)

MIB = 2**20


def test_process_rss_of_this_process_and_of_a_gone_one() -> None:
    rss = process_rss(os.getpid())
    assert rss is not None and 10 * MIB < rss < 10_000 * MIB
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert process_rss(child.pid) is None


def test_rss_probe_covers_the_process_tree() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        sample = rss_probe(os.getpid())()
        assert {os.getpid(), child.pid} <= set(sample)
        assert all(rss > 0 for _, rss in sample.values())
    finally:
        child.kill()
        child.wait()
    assert rss_probe(None)() == {}


def samples(*points: tuple[int, dict[int, int]]) -> list[RssSample]:
    return [RssSample(n, {pid: ("worker", rss) for pid, rss in procs.items()}) for n, procs in points]


def test_verdict_compares_the_end_with_the_baseline() -> None:
    run = samples((100, {1: 50 * MIB, 2: 80 * MIB}), (300, {1: 100 * MIB, 2: 100 * MIB}),
                  (600, {1: 130 * MIB, 2: 104 * MIB}), (900, {1: 105 * MIB, 2: 111 * MIB}))
    procs, replaced = verdicts(run, 300)
    by_pid = {p.pid: p for p in procs}
    assert not replaced
    # pid 1 peaked at +30% mid-run but ended at +5%: within bounds (the peak is reported, not judged)
    assert by_pid[1].growth == pytest.approx(0.05) and by_pid[1].peak == 130 * MIB and by_pid[1].ok
    assert by_pid[2].growth == pytest.approx(0.11) and not by_pid[2].ok  # past MAX_GROWTH
    assert MAX_GROWTH == 0.10


def test_verdict_flags_a_replaced_process() -> None:
    procs, replaced = verdicts(samples((300, {1: MIB, 2: MIB}), (900, {1: MIB, 3: MIB})), 300)
    assert [p.pid for p in procs] == [1]
    assert replaced == ["worker 2 exited", "worker 3 appeared"]


def result(errors: int = 0, end: int = 100 * MIB) -> SoakResult:
    run = samples((300, {7: 100 * MIB}), (3000, {7: end}))
    procs, replaced = verdicts(run, 300)
    return SoakResult(3000, 32, 300, 300.0, 2400.0, errors, {"HTTP 500": errors} if errors else {}, [], 0.5, 0.9,
                      run, procs, replaced)


def test_result_passes_only_without_errors_or_growth() -> None:
    assert result().ok and result().throughput == 8.0
    assert not result(errors=1).ok
    assert not result(end=111 * MIB).ok


def test_render_and_json() -> None:
    text = render_soak(result(end=104 * MIB), ceiling=8.0)
    assert "3000 requests from 32 closed-loop clients" in text and "(1.00 R" in text
    assert "| worker | 7 | 100.0 MiB | 104.0 MiB | 104.0 MiB | +4.0% | yes |" in text
    assert text.endswith("Verdict: pass")
    assert render_soak(result(errors=2)).endswith("Verdict: FAIL")
    data = as_json(result())
    assert data["ok"] and data["samples"][0]["rss"] == {"7": ["worker", 100 * MIB]}


# --------------------------------------------------------------------------- the client


@asynccontextmanager
async def tiny_server(fail_every: int = 0) -> AsyncIterator[str]:
    calls = 0

    async def speech(request: web.Request) -> web.StreamResponse:
        nonlocal calls
        calls += 1
        await request.json()
        if fail_every and calls % fail_every == 0:
            return web.json_response({"error": {"message": "boom"}}, status=500)
        resp = web.StreamResponse(headers={"Content-Type": "audio/pcm"})
        await resp.prepare(request)
        await asyncio.sleep(0.002)
        await resp.write(b"\0\0" * 2400)  # 0.1 s at 24 kHz
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_post("/v1/audio/speech", speech)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def test_run_soak_counts_requests_and_samples_memory() -> None:
    probes: list[int] = []

    def probe() -> dict[int, tuple[str, int]]:
        probes.append(1)
        return {1: ("frontend", MIB * (100 + len(probes)))}  # grows 1 MiB a sample

    async def main() -> SoakResult:
        async with tiny_server() as url:
            return await run_soak(url, OpenAIShape("m", "v", "pcm"), 4, 50, texts=TextSource(0), probe=probe,
                                  baseline_after=10, sample_every=20)

    out = asyncio.run(main())
    assert out.requests == 50 and out.errors == 0 and out.audio_s == pytest.approx(5.0)
    assert [s.completed for s in out.samples] == [10, 20, 40, 50]
    [proc] = out.processes
    assert proc.baseline == 101 * MIB and proc.end == 104 * MIB and out.ok


def test_run_soak_reports_errors_and_rejects_bad_settings() -> None:
    async def main() -> SoakResult:
        async with tiny_server(fail_every=5) as url:
            return await run_soak(url, OpenAIShape("m", "v", "pcm"), 3, 20, texts=TextSource(0),
                                  probe=dict, baseline_after=5, sample_every=5)

    out = asyncio.run(main())
    assert out.requests == 20 and out.errors == 4 and out.error_kinds == {"HTTP 500": 4} and not out.ok
    with pytest.raises(ValueError):
        asyncio.run(run_soak("http://127.0.0.1:9", OpenAIShape(), 1, 10, texts=TextSource(0), probe=dict,
                             baseline_after=10))
