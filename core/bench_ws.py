"""Latency of WebSocket text-in streaming (issue 18): text arrives one LLM token every 30 ms; for every clause,
how long after its last token does its first audio frame arrive, compared with the clause's own synthesis time?

Own synthesis time = time to the first byte of ``POST /v1/audio/speech`` for the same text as one segment
(``extra.first_segment = "sentence"``, pcm), the median of three, measured on the same idle server right after.
The target: ``ws_latency - own_time <= 50 ms``. When the engine is slower than the tokens (a loaded machine),
a clause also waits for the one before it to be synthesized (one request's segments run one after another), so
the script reports that too: ``overhead = first_audio - max(last_token, previous clause's audio.done) - own_time``
is what the streaming path adds beyond synthesis and that wait.

    vtts bench --ws 6                                  # starts `vtts serve` (bundled voice) on a free port
    vtts bench --ws 8 --url http://127.0.0.1:8000 [--api-key KEY]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp

from vtts.bench_texts import SENTENCES
from vtts.frontend.ws import Segmenter
from vtts.local_server import LocalServer

TOKEN_INTERVAL_S = 0.03


def paragraphs(n: int, per: int = 4) -> list[str]:
    """``n`` texts of ``per`` sentences from the bench corpus."""
    return [" ".join(SENTENCES[(i * per + j) % len(SENTENCES)] for j in range(per)) for i in range(n)]


async def session(http: aiohttp.ClientSession, url: str, text: str) -> list[tuple[str, float, float]]:
    """(clause text, seconds from its last token to its first audio frame, seconds from the later of its last
    token and the previous clause's audio.done to its first audio frame) for every clause of ``text``."""
    tokens = re.findall(r" ?\S+", text)
    local = Segmenter("en")  # the server's own segmenter tells which token completes which clause
    completes: list[int] = []
    for i, tok in enumerate(tokens):
        completes += [i] * len(local.feed(tok))
    completes += [len(tokens) - 1] * len(local.flush())
    sent_at: list[float] = [0.0] * len(tokens)
    out: list[tuple[str, float, float]] = []
    previous_done = 0.0
    async with http.ws_connect(url + "/v1/audio/speech/stream") as ws:
        await ws.send_json({"type": "session.config", "voice": "alloy", "response_format": "pcm"})

        async def feed() -> None:
            for i, tok in enumerate(tokens):
                await ws.send_json({"type": "input.text", "text": tok})
                sent_at[i] = time.monotonic()
                await asyncio.sleep(TOKEN_INTERVAL_S)
            await ws.send_json({"type": "input.done"})

        feeder = asyncio.create_task(feed())
        current: dict | None = None
        first_seen = False
        async for msg in ws:
            now = time.monotonic()
            if msg.type == aiohttp.WSMsgType.BINARY:
                if current is not None and not first_seen:
                    first_seen = True
                    last = sent_at[completes[current["sentence_index"]]]
                    out.append((current["sentence_text"], now - last, now - max(last, previous_done)))
                continue
            event = json.loads(msg.data)
            if event["type"] == "audio.start":
                current, first_seen = event, False
            elif event["type"] == "audio.done":
                previous_done = now
            elif event["type"] in ("session.done", "error"):
                if event["type"] == "error":
                    raise RuntimeError(event)
                break
        await feeder
    return out


async def own_time(http: aiohttp.ClientSession, url: str, text: str) -> float:
    times = []
    for _ in range(3):
        start = time.monotonic()
        async with http.post(url + "/v1/audio/speech", json={
                "model": "tts-1", "voice": "alloy", "input": text, "response_format": "pcm",
                "extra": {"first_segment": "sentence"}}) as r:
            r.raise_for_status()
            await r.content.readany()
            times.append(time.monotonic() - start)
            await r.read()
    return statistics.median(times)


async def run(url: str, sessions: int, api_key: str | None = None) -> dict:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else None
    async with aiohttp.ClientSession(headers=headers) as http:
        await own_time(http, url, "Warm up.")
        clauses: list[tuple[str, float, float]] = []
        for text in paragraphs(sessions):
            clauses += await session(http, url, text)
        rows = [(text, ws, free, await own_time(http, url, text)) for text, ws, free in clauses]
    over = sorted(ws - own for _, ws, _, own in rows)
    overhead = sorted(free - own for _, _, free, own in rows)
    wss = sorted(ws for _, ws, _, _ in rows)
    owns = sorted(own for *_, own in rows)
    pick = lambda xs, q: xs[min(len(xs) - 1, int(q * len(xs)))]  # noqa: E731
    return {
        "clauses": len(rows),
        "ws_latency_ms": {"p50": 1000 * pick(wss, 0.5), "p90": 1000 * pick(wss, 0.9), "max": 1000 * wss[-1]},
        "over_own_synthesis_ms": {"p50": 1000 * pick(over, 0.5), "p90": 1000 * pick(over, 0.9),
                                  "max": 1000 * over[-1]},
        "own_synthesis_ms": {"p50": 1000 * pick(owns, 0.5), "p90": 1000 * pick(owns, 0.9)},
        "within_50ms": sum(o <= 0.05 for o in over),
        "overhead_beyond_synthesis_and_backlog_ms": {"p50": 1000 * pick(overhead, 0.5),
                                                     "p90": 1000 * pick(overhead, 0.9), "max": 1000 * overhead[-1]},
        "overhead_within_50ms": sum(o <= 0.05 for o in overhead),
    }


def cmd_ws(args: argparse.Namespace) -> int:
    """``vtts bench --ws N``: N sessions against ``--url`` or a started ``vtts serve`` (``--config``); prints the
    figures as JSON; exit status 1 when a clause missed the target."""
    server = None
    url = args.url
    if url is None:
        server = LocalServer(["--config", args.config] if args.config else [],
                             Path(tempfile.mkdtemp(prefix="vtts-bench-ws-")) / "server.log")
        server.wait_ready()
        url = server.url
    try:
        result = asyncio.run(run(url.rstrip("/"), args.ws, args.api_key))
    finally:
        if server is not None:
            server.stop()
    print(json.dumps(result, indent=2))
    return 0 if result["within_50ms"] == result["clauses"] else 1
