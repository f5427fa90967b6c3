"""``vtts bench``'s pure parts, and its closed-loop client against a tiny streaming server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import math
import struct
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest
from aiohttp import web

from vtts import bench
from vtts.bench import (
    LevelStats,
    OpenAIShape,
    PiperHTTPShape,
    RequestRecord,
    RequestShape,
    aggregate,
    cores_used,
    percentile,
    render_report,
    render_table,
    run_level,
    wav_seconds,
)
from vtts.bench_texts import SENTENCES, TextSource

# --------------------------------------------------------------------------- percentiles


def test_percentile_matches_numpy_linear_interpolation() -> None:
    rng = np.random.default_rng(1)
    for n in (1, 2, 7, 100):
        values = list(rng.exponential(size=n))
        for q in (0, 1, 50, 90, 99, 100):
            assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))


def test_percentile_edges() -> None:
    assert math.isnan(percentile([], 50))
    assert percentile([3.0], 99) == 3.0
    assert percentile([4.0, 1.0, 2.0, 3.0], 50) == 2.5  # order of input does not matter
    with pytest.raises(ValueError):
        percentile([1.0], 101)


# --------------------------------------------------------------------------- aggregation


def rec(index: int, start: float, end: float, ttfb: float | None = 0.1, audio: float = 2.0,
        error: str = "", window_bytes: int = 0, size: int = 1000, spb: float | None = None) -> RequestRecord:
    return RequestRecord(index, start, end, ttfb, audio, 200 if not error else 500, error, size=size,
                         window_bytes=window_bytes, seconds_per_byte=spb)


def test_aggregate_drops_warmup_and_opening_burst_and_counts_window_throughput() -> None:
    records = [
        rec(0, 0.0, 1.5, ttfb=9.0, window_bytes=250),   # opening burst: out of the percentiles
        rec(1, 0.0, 0.8, ttfb=9.0),                     # opening burst, ended during warm-up
        rec(2, 0.8, 2.0, ttfb=9.0, window_bytes=500),   # started in warm-up
        rec(3, 1.5, 3.0, ttfb=0.2, window_bytes=1000),  # measured
        rec(4, 2.0, 4.0, ttfb=0.4, window_bytes=1000, spb=0.001),  # measured; PCM knows its seconds per byte
        rec(5, 3.0, 12.0, ttfb=0.6, window_bytes=500),  # measured, ended after the window
        rec(6, 4.0, 4.5, error="HTTP 500: boom"),
        rec(7, 4.5, 5.0, error="short read: cut", window_bytes=1000),  # cut: seconds per byte learnt
        rec(8, 5.0, 11.0, error="unfinished: still running", window_bytes=250, size=250),
        rec(9, 11.0, 12.0),                              # started after the window: ignored
    ]
    row = aggregate(records, server="vtts", concurrency=2, window=(1.0, 11.0), ceiling=0.5)
    assert row.requests == 6 and row.errors == 2 and row.unfinished == 1
    assert row.error_kinds == {"HTTP 500": 1, "short read": 1}
    assert row.error_examples == ["HTTP 500: boom", "short read: cut"]
    assert row.dropped == 3
    # whole answers carry 2 s per 1000 bytes (learnt), record 4 its own exact 1 s per 1000 bytes
    assert row.audio_s == pytest.approx((250 + 500 + 1000 + 500 + 1000 + 250) * 0.002 + 1000 * 0.001)
    assert row.throughput == pytest.approx(row.audio_s / 10)
    assert row.ceiling == 0.5 and row.ratio == pytest.approx(row.throughput / 0.5)
    assert row.ttfb_p50 == pytest.approx(0.4)
    assert row.ttfb_p99 == pytest.approx(percentile([0.2, 0.4, 0.6], 99))
    assert row.latency_p50 == pytest.approx(2.0)  # the unfinished request is left out
    assert row.window_s == 10.0


def test_refusals_are_counted_apart_and_left_out_of_the_admitted_streams_figures() -> None:
    """With admission on, a 429 is the server keeping its admitted streams smooth, not an error: refusals
    and their response times are reported apart, TTFB, stall and latency percentiles cover admitted ones."""
    def refused(index: int, start: float, took: float) -> RequestRecord:
        r = RequestRecord(index, start, start + took, status=429, error='HTTP 429: {"error": "busy"}',
                          retry_after=1.0)
        assert r.refused and not r.ok
        return r

    admitted = [rec(2, 1.0, 3.0, ttfb=0.2), rec(3, 1.5, 3.5, ttfb=0.4)]
    admitted[0].max_stall, admitted[0].stalls = 0.0, 0
    admitted[1].max_stall, admitted[1].stalls = 0.3, 1
    records = [*admitted, refused(4, 2.0, 0.010), refused(5, 2.5, 0.020), refused(6, 3.0, 0.030),
               rec(7, 4.0, 4.5, error="HTTP 503: no worker")]
    records[-1].status = 503
    row = aggregate(records, server="vtts", concurrency=2, window=(1.0, 11.0), ceiling=None)
    assert row.requests == 6 and row.refused == 3 and row.errors == 1
    assert row.error_kinds == {"HTTP 503": 1}
    assert row.refused_p50 == pytest.approx(0.020)
    assert row.refused_p99 == pytest.approx(percentile([0.01, 0.02, 0.03], 99))
    assert row.ttfb_p50 == pytest.approx(0.3) and row.latency_p99 == pytest.approx(2.0)  # admitted only
    assert (row.stall_measured, row.stalled, row.stall_max) == (2, 1, 0.3)
    none = aggregate(admitted, server="vtts", concurrency=2, window=(1.0, 11.0), ceiling=None)
    assert none.refused == 0 and math.isnan(none.refused_p99)
    # the table gains two columns only when a row has refusals
    assert "refused" not in render_table([none])
    table = render_table([row, none]).splitlines()
    assert table[0].endswith("| errors | refused | refused in p50 / p99 |")
    assert table[2].endswith("| 6 | 1 | 3 | 20 ms / 30 ms |") and table[3].endswith("| 0 | – |")
    text = render_report(result_for([row]))
    assert "Refused: measured requests answered 429" in text and "under 50 ms" in text


def test_aggregate_without_ceiling_or_requests() -> None:
    row = aggregate([], server="peer", concurrency=1, window=(0.0, 5.0), ceiling=None)
    assert row.ratio is None and row.requests == 0 and row.throughput == 0.0
    assert math.isnan(row.ttfb_p50)
    with pytest.raises(ValueError):
        aggregate([], server="x", concurrency=1, window=(5.0, 5.0), ceiling=None)


def test_cpu_probe_and_wait_idle_on_this_process() -> None:
    import os

    sample = bench.cpu_probe(os.getpid(), role="peer")()
    assert sample["peer"] > 0 and sample["client"] > 0 and sample["machine"] > 0
    assert bench.wait_idle(None, least=0.0, most=1.0) < 1.0
    assert bench.wait_idle(os.getpid(), least=0.0, most=0.0) < 0.5  # gives up at once


def test_cores_used_attributes_the_rest_of_the_machine_to_other() -> None:
    start = {"worker": 10.0, "frontend": 1.0, "client": 2.0, "machine": 100.0}
    end = {"worker": 25.0, "frontend": 4.0, "client": 3.0, "machine": 120.0}
    cores = cores_used(start, end, 10.0)
    assert cores["worker"] == pytest.approx(1.5)
    assert cores["frontend"] == pytest.approx(0.3)
    assert cores["client"] == pytest.approx(0.1)
    assert cores["total"] == pytest.approx(2.0)
    assert cores["other"] == pytest.approx(0.1)
    assert cores_used({}, end, 10.0) == {}


# --------------------------------------------------------------------------- the report


def result_for(rows: list[LevelStats]) -> dict[str, Any]:
    return {
        "machine": {"cpu": "Test CPU", "usable_cores": 2, "memory_gib": 4.0, "python": "3.11.0",
                    "onnxruntime": "1.0"},
        "ceiling": {"rtx": 28.0, "runs": [{"rtx": 27.0}, {"rtx": 29.0}], "first_segment_p50": 0.05,
                    "first_segment_p90": 0.08, "prepare_p50": 0.004},
        "levels": [bench.asdict(r) for r in rows],
    }


def rows_for_report() -> list[LevelStats]:
    return [
        LevelStats("vtts", 1, 30.0, 100, 0, 840.0, 28.0, 28.0, 1.0, 0.08, 0.25, 0.3, 0.9, cores={"worker": 1.9},
                   stall_measured=100, stalled=2, stall_max=0.35, stall_p99=0.1),
        LevelStats("vtts", 32, 30.0, 400, 3, 780.0, 26.0, 28.0, 26 / 28, 0.6, 1.5, 6.0, 11.0,
                   cores={"worker": 1.7, "frontend": 0.2}),
        LevelStats("peer (piper-http)", 32, 30.0, 300, 0, 750.0, 25.0, None, None, 5.1, math.nan, 5.2, 9.5),
    ]


def test_render_table_rows_and_units() -> None:
    lines = render_table(rows_for_report()).splitlines()
    assert lines[0].startswith("| server | concurrency | throughput")
    assert len(lines) == 2 + 3
    assert lines[2] == ("| vtts | 1 | 28.0× | 28.0× | 1.00 | 80 ms | 250 ms | 2/100 | 350 ms | 300 ms | 900 ms | "
                        "100 | 0 |")
    assert "| 0.93 | 600 ms | 1.50 s | – | – | 6.00 s | 11.00 s | 400 | 3 |" in lines[3]  # stalls not measured
    assert "| 25.0× | – | – | 5.10 s | – |" in lines[4]  # no ceiling, no ratio, NaN percentile


def test_render_report_has_machine_ceiling_table_and_cores() -> None:
    text = render_report(result_for(rows_for_report()))
    assert "Test CPU, 2 cores" in text
    assert "R = 28.0× real time on average (runs in order: 27.0×, 29.0×;" in text
    assert "first segment alone: 50 ms p50" in text
    assert "One client (what the server adds to the engine's first segment): vtts: TTFB p50 80 ms, +30 ms" in text
    assert "| vtts | 32 | 26.0× |" in text
    assert "Stalled: measured requests whose player, starting 0.2 s after the first byte" in text
    assert "| server | concurrency | worker | frontend |" in text
    assert "| vtts | 32 | 1.70 | 0.20 |" in text
    json.dumps(result_for(rows_for_report()))  # the JSON file holds the same structure


def test_repeated_rounds_get_a_round_column_and_a_summary() -> None:
    rows = rows_for_report()[:2]
    again = [dataclasses.replace(r, round=1, throughput=r.throughput * 0.9, ratio=r.ratio * 0.9) for r in rows]
    lines = render_table(rows + again).splitlines()
    assert lines[0].startswith("| server | concurrency | round | throughput")
    assert lines[2].startswith("| vtts | 1 | 1 | 28.0× |") and lines[4].startswith("| vtts | 1 | 2 | 25.2× |")
    text = render_report(result_for(rows + again))
    assert "Over 2 rounds" in text
    assert "| vtts | 1 | 2 | 26.6× | 0.95 | 0.90–1.00 |" in text
    assert "vtts (round 1): TTFB p50 80 ms, +30 ms" in text and "vtts (round 2): TTFB p50 80 ms" in text
    assert "Over" not in render_report(result_for(rows))  # one round: no summary


def test_plot_writes_a_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    path = tmp_path / "bench.png"
    assert bench.plot(result_for(rows_for_report()), path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_without_stall_figures(tmp_path: Path) -> None:
    """A run that measured no stalls (formats other than pcm) leaves the stall panel empty: its log-scaled
    axis once had no data to place ticks on and the bench exited 1 after writing its JSON."""
    pytest.importorskip("matplotlib")
    rows = [dataclasses.replace(r, stall_measured=0, stalled=0) for r in rows_for_report()[:2]]
    path = tmp_path / "bench.png"
    assert bench.plot(result_for(rows), path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --------------------------------------------------------------------------- audio durations and shapes


def wav_bytes(seconds: float, rate: int = 22050, data_size: int | None = None) -> bytes:
    pcm = b"\0\0" * round(seconds * rate)
    size = len(pcm) if data_size is None else data_size
    header = b"RIFF" + struct.pack("<I", 36 + len(pcm)) + b"WAVE"
    header += b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
    return header + b"data" + struct.pack("<I", size) + pcm


def test_wav_seconds_whole_and_streamed() -> None:
    assert wav_seconds(wav_bytes(1.5)) == pytest.approx(1.5)
    assert wav_seconds(wav_bytes(0.5, data_size=0xFFFFFFFF)) == pytest.approx(0.5)  # streamed placeholder
    assert wav_seconds(wav_bytes(0.5, data_size=0)) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        wav_seconds(b"not a wav file at all")


def test_decoded_seconds_of_a_compressed_file() -> None:
    sf = pytest.importorskip("soundfile")
    buf = io.BytesIO()
    sf.write(buf, np.zeros(24000, dtype=np.int16), 24000, format="FLAC")
    assert bench.decoded_seconds(buf.getvalue()) == pytest.approx(1.0, abs=0.01)


def test_openai_shape_request_and_pcm_duration() -> None:
    shape = OpenAIShape("piper-joe", "alloy", "pcm")
    path, body = shape.request("Hello.")
    assert path == "/v1/audio/speech"
    assert body == {"model": "piper-joe", "input": "Hello.", "voice": "alloy", "response_format": "pcm"}
    assert not shape.keeps_body
    assert shape.audio_seconds({}, 48000, b"") == pytest.approx(1.0)
    assert shape.audio_seconds({"X-Sample-Rate": "16000"}, 32000, b"") == pytest.approx(1.0)
    with pytest.raises(ValueError):
        shape.audio_seconds({}, 3, b"")
    assert OpenAIShape(fmt="wav").audio_seconds({}, 0, wav_bytes(0.25)) == pytest.approx(0.25, abs=1e-3)


def test_piper_http_shape() -> None:
    assert PiperHTTPShape().request("Hi.") == ("/synthesize", {"text": "Hi."})
    shape = PiperHTTPShape("/")
    assert shape.request("Hi.") == ("/", {"text": "Hi."})
    assert shape.audio_seconds({}, 0, wav_bytes(2.0)) == pytest.approx(2.0)


# --------------------------------------------------------------------------- texts and CLI


def test_text_source_is_deterministic_and_mixes_one_to_four_sentences() -> None:
    assert 35 <= len(SENTENCES) <= 50 and len(set(SENTENCES)) == len(SENTENCES)
    a, b = TextSource(7), TextSource(7)
    texts = [a.next() for _ in range(200)]
    assert texts == [b.next() for _ in range(200)]
    assert texts != [TextSource(8).next() for _ in range(200)]
    counts = {sum(text.count(s) for s in SENTENCES) for text in texts}
    assert counts == {1, 2, 3, 4}


def test_cli_registers_bench() -> None:
    from vtts.cli import build_parser

    args = build_parser().parse_args(["bench", "--concurrency", "1,4", "--duration", "3",
                                      "--peer-url", "http://x", "--peer-kind", "piper-http"])
    assert args.concurrency == [1, 4] and args.duration == 3.0 and args.peer_kind == "piper-http"
    assert args.format == ["pcm"] and args.out == bench.DEFAULT_OUT and args.soak is None
    assert build_parser().parse_args(["bench", "--format", "wav,mp3,wav"]).format == ["wav", "mp3"]
    extra = build_parser().parse_args(["bench", "--extra", '{"first_segment": "sentence"}']).extra
    assert OpenAIShape("m", "v", "wav", extra).request("Hi.")[1]["extra"] == {"first_segment": "sentence"}
    assert "extra" not in OpenAIShape("m", "v", "wav").request("Hi.")[1]
    soak = build_parser().parse_args(["bench", "--soak", "3000", "--concurrency", "32"])
    assert soak.soak == 3000 and soak.soak_baseline == 300 and soak.soak_every == 100
    for bad in (["--concurrency", "0"], ["--format", "mp4"], ["--format", ","], ["--extra", "[1]"], ["--extra", "{"]):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["bench", *bad])


# --------------------------------------------------------------------------- the closed-loop client


CALLS = web.AppKey("calls", int)
CHUNK = 4800  # 0.1 s of 24 kHz 16-bit PCM
CHUNKS = 5


async def speech(request: web.Request) -> web.StreamResponse:
    body = await request.json()
    assert body["response_format"] == "pcm" and body["input"]
    resp = web.StreamResponse(headers={"Content-Type": "audio/pcm", "X-Sample-Rate": "24000"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    for _ in range(CHUNKS):
        await asyncio.sleep(0.005)
        await resp.write(b"\1\0" * (CHUNK // 2))
    await resp.write_eof()
    return resp


async def gappy(request: web.Request) -> web.StreamResponse:
    """0.1 s of audio, then nothing for 1 s, then 0.1 s more: a player with a 0.2 s buffer runs dry."""
    resp = web.StreamResponse(headers={"Content-Type": "audio/pcm", "X-Sample-Rate": "24000"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    await resp.write(b"\1\0" * (CHUNK // 2))
    await asyncio.sleep(1.0)
    await resp.write(b"\1\0" * (CHUNK // 2))
    await resp.write_eof()
    return resp


async def failing(request: web.Request) -> web.Response:
    return web.json_response({"error": {"message": "boom"}}, status=429, headers={"Retry-After": "0.05"})


async def truncated(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": "audio/pcm"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    await resp.write(b"\0" * 1000)
    assert request.transport is not None
    request.transport.close()
    return resp


async def slow(request: web.Request) -> web.Response:
    """Quick for the first request (the opening burst), then slower than the drain timeout below."""
    request.app[CALLS] += 1
    if request.app[CALLS] > 1:
        await asyncio.sleep(0.6)
    return web.Response(body=b"\0\0")


async def piper(request: web.Request) -> web.Response:
    body = await request.json()
    assert set(body) == {"text"}
    return web.Response(body=wav_bytes(0.3), content_type="audio/wav")


@asynccontextmanager
async def tiny_server() -> AsyncIterator[str]:
    app = web.Application()
    app[CALLS] = 0
    app.router.add_post("/v1/audio/speech", speech)
    app.router.add_post("/fail", failing)
    app.router.add_post("/gappy", gappy)
    app.router.add_post("/truncated", truncated)
    app.router.add_post("/slow", slow)
    app.router.add_post("/", piper)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    sockets = site._server.sockets if site._server else []  # type: ignore[union-attr]
    port = sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


class PathShape(OpenAIShape):
    """OpenAI's body, posted to another path of the test server."""

    def __init__(self, path: str) -> None:
        super().__init__("m", "v", "pcm")
        self.path = path

    def request(self, text: str) -> tuple[str, dict[str, Any]]:
        return self.path, super().request(text)[1]


def test_closed_loop_clients_stream_and_measure() -> None:
    probes: list[int] = []

    def probe() -> dict[str, float]:
        probes.append(1)
        return {"client": float(len(probes))}

    async def main() -> bench.LevelRun:
        async with tiny_server() as url:
            return await run_level(url, OpenAIShape("m", "v", "pcm"), 3, duration=0.4, warmup=0.1,
                                   texts=TextSource(0), probe=probe)

    run = asyncio.run(main())
    w0, w1 = run.window
    assert 0.1 <= w0 < w1 and len(probes) == 2
    assert [r.index for r in run.records] == sorted({r.index for r in run.records})
    # every request that started before the window closed finished; later ones were cut when the level ended
    done = [r for r in run.records if r.start < w1]
    assert done and all(r.ok for r in done)
    assert all(r.error.startswith("cancelled") for r in run.records if not r.ok)
    for r in done:
        assert r.audio_s == pytest.approx(CHUNK * CHUNKS / 2 / 24000)
        assert r.ttfb is not None and 0 <= r.ttfb <= r.latency
        assert r.seconds_per_byte == pytest.approx(1 / 48000)
    assert sum(r.window_bytes for r in run.records) > 0
    row = aggregate(run.records, server="t", concurrency=3, window=run.window, ceiling=1.0)
    assert row.errors == 0 and row.unfinished == 0 and row.requests > 0 and row.throughput > 0


def test_client_measures_the_gaps_a_player_hears() -> None:
    """A steady stream stalls no player; one that pauses 1 s after 0.1 s of audio stalls a player with a
    0.2 s buffer (by about 0.7 s), not one with a 2 s buffer."""

    async def main(path: str, jitter: float) -> RequestRecord:
        async with tiny_server() as url, aiohttp.ClientSession() as session:
            return await bench.fetch(session, url, PathShape(path), "Hi.", time.monotonic, RequestRecord(0),
                                     jitter=jitter)

    steady = asyncio.run(main("/v1/audio/speech", 0.2))
    assert steady.ok and steady.max_stall == 0.0 and steady.stalls == 0
    gap = asyncio.run(main("/gappy", 0.2))
    assert gap.ok and gap.stalls == 1 and 0.4 < (gap.max_stall or 0) < 1.0
    buffered = asyncio.run(main("/gappy", 2.0))
    assert buffered.stalls == 0
    row = aggregate([RequestRecord(i, start=1.0, end=2.0, max_stall=s, stalls=int(s > 0)) for i, s in
                     enumerate([0.9, 0.5, 0.0, 0.2])], server="t", concurrency=1, window=(0.0, 5.0), ceiling=None)
    assert (row.stall_measured, row.stalled, row.stall_max) == (3, 2, 0.5)  # the burst's request left out


def test_window_opens_after_the_opening_burst() -> None:
    async def main() -> bench.LevelRun:
        async with tiny_server() as url:
            return await run_level(url, OpenAIShape("m", "v", "pcm"), 4, duration=0.1, warmup=0.0,
                                   max_warmup=30.0, texts=TextSource(0))

    run = asyncio.run(main())
    burst = [r for r in run.records if r.index < 4]
    assert len(burst) == 4 and all(r.ok and r.end <= run.window[0] for r in burst)


@pytest.mark.parametrize(("path", "kind"), [("/fail", "HTTP 429"), ("/truncated", "short read")])
def test_client_counts_errors(path: str, kind: str) -> None:
    async def main() -> list[RequestRecord]:
        async with tiny_server() as url:
            run = await run_level(url, PathShape(path), 1, duration=0.2, warmup=0.0, texts=TextSource(0))
            return run.records

    records = [r for r in asyncio.run(main()) if not r.error.startswith("cancelled")]
    assert records and all(r.error.startswith(kind) for r in records)
    if kind == "HTTP 429":  # the client honoured Retry-After, so it did not spin
        assert all(r.retry_after == 0.05 for r in records) and len(records) <= 5
        row = aggregate(records, server="t", concurrency=0, window=(0.0, 0.2), ceiling=None)
        # refusals by admission are not errors of admitted streams: counted apart, with their response time
        assert row.errors == 0 and row.error_examples == [] and row.refused == len(records)
        assert 0 < row.refused_p50 <= row.refused_p99 < 1.0


def test_client_records_requests_unfinished_at_the_drain_timeout() -> None:
    async def main() -> list[RequestRecord]:
        async with tiny_server() as url:
            run = await run_level(url, PathShape("/slow"), 1, duration=0.1, warmup=0.0, texts=TextSource(0),
                                  drain_timeout=0.1)
            return run.records

    records = asyncio.run(main())
    assert records[0].ok  # the opening burst
    assert [r.error.split(":")[0] for r in records[1:]] == ["unfinished"]
    row = aggregate(records, server="t", concurrency=1, window=(0.0, 0.1), ceiling=None)
    assert row.unfinished == 1 and row.errors == 0


def test_client_drives_a_piper_http_peer() -> None:
    async def main() -> list[RequestRecord]:
        async with tiny_server() as url:
            return (await run_level(url, PiperHTTPShape("/"), 2, duration=0.2, warmup=0.0,
                                    texts=TextSource(0))).records

    records = [r for r in asyncio.run(main()) if not r.error.startswith("cancelled")]
    assert records and all(r.ok and r.audio_s == pytest.approx(0.3) for r in records)


class BrokenShape(RequestShape):
    def request(self, text: str) -> tuple[str, dict[str, Any]]:
        return "/", {"text": text}

    def audio_seconds(self, headers: Mapping[str, str], size: int, body: bytes) -> float:
        raise ValueError("not audio")


def test_client_reports_invalid_audio() -> None:
    async def main() -> list[RequestRecord]:
        async with tiny_server() as url:
            return (await run_level(url, BrokenShape(), 1, duration=0.1, warmup=0.0, texts=TextSource(0))).records

    records = [r for r in asyncio.run(main()) if not r.error.startswith("cancelled")]
    assert records and all(r.error.startswith("bad audio") for r in records)
