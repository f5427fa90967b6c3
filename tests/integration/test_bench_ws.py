"""``vtts bench --ws``'s measurement against the shared real server: every clause of its texts is timed."""

from __future__ import annotations

import asyncio

from vtts.bench_ws import paragraphs, run
from vtts.frontend.ws import Segmenter


def test_every_clause_is_timed_against_its_own_synthesis(server) -> None:
    result = asyncio.run(run(server.url, 1))
    seg = Segmenter("en")
    clauses = seg.feed(paragraphs(1)[0]) + seg.flush()
    assert result["clauses"] == len(clauses) >= 4
    assert 0 < result["own_synthesis_ms"]["p50"] < 30_000
    assert result["ws_latency_ms"]["max"] >= result["ws_latency_ms"]["p50"] > 0
    assert 0 <= result["within_50ms"] <= result["clauses"]
