"""Repeated rounds reduced to one row per server and level: means, ranges, paired format ratios."""

from __future__ import annotations

import math

import pytest

from vtts.bench import LevelStats, _fmt_s
from vtts.bench_summary import render_summary, summarize


def row(server: str, concurrency: int, rnd: int, throughput: float, ceiling: float | None,
        p50: float = 0.3, p99: float = 0.5, errors: int = 0, stalled: int = 0, stall_max: float = 0.0) -> LevelStats:
    ratio = throughput / ceiling if ceiling else None
    return LevelStats(server, concurrency, 60.0, 100, errors, throughput * 60, throughput, ceiling, ratio,
                      p50, p99, 10.0, 20.0, round=rnd, stall_measured=100, stalled=stalled, stall_max=stall_max)


def rounds() -> list[LevelStats]:
    # round 0 on a fast machine, round 1 on a slow one: the drift is shared by both formats of a round
    return [
        row("vtts wav", 32, 0, 16.0, 16.0, p50=0.25, p99=0.40),
        row("vtts mp3", 32, 0, 15.2, 16.0, p50=0.27, p99=0.45),
        row("vtts wav", 32, 1, 13.0, 14.0, p50=0.29, p99=0.60, errors=1),
        row("vtts mp3", 32, 1, 12.35, 14.0, p50=math.nan, p99=math.nan),
    ]


def test_means_ranges_and_pooled_counts() -> None:
    wav, mp3 = summarize(rounds())
    assert (wav.server, wav.concurrency, wav.rounds) == ("vtts wav", 32, 2)
    assert wav.throughput == pytest.approx(14.5)
    assert wav.ceiling == pytest.approx(15.0)
    assert wav.ratio == pytest.approx((1.0 + 13 / 14) / 2)
    assert (wav.ratio_min, wav.ratio_max) == (pytest.approx(13 / 14), pytest.approx(1.0))
    assert wav.ttfb_p50 == pytest.approx(0.27)  # median of the rounds' p50
    assert wav.ttfb_p99 == pytest.approx(0.60)  # the worst round's p99
    assert (wav.requests, wav.errors) == (200, 1)
    assert mp3.ttfb_p50 == pytest.approx(0.27) and mp3.ttfb_p99 == pytest.approx(0.45)  # NaN rounds left out


def test_formats_are_paired_within_a_round() -> None:
    wav, mp3 = summarize(rounds())
    assert wav.paired is None
    # mp3 is 0.95 of wav in each round, while the per-round ratios swing from 0.88 to 1.00 with the machine
    assert mp3.paired == pytest.approx(0.95)
    assert mp3.ratio / wav.ratio == pytest.approx(0.95)


def test_pairing_uses_the_same_round_and_level_only() -> None:
    rows = [row("a", 1, 0, 10.0, 10.0), row("b", 1, 0, 9.0, 10.0), row("b", 32, 0, 9.0, 10.0),
            row("a", 32, 1, 5.0, 10.0)]
    summaries = {(s.server, s.concurrency): s for s in summarize(rows)}
    assert summaries[("b", 1)].paired == pytest.approx(0.9)
    assert summaries[("b", 32)].paired is None  # "a" at 32 ran only in another round


def test_without_ceilings_there_are_no_ratios() -> None:
    (only,) = summarize([row("peer", 8, 0, 9.0, None), row("peer", 8, 1, 11.0, None)])
    assert only.ratio is None and only.ceiling is None and only.paired is None
    assert only.throughput == pytest.approx(10.0)


def test_stalls_are_pooled_over_rounds() -> None:
    (only,) = summarize([row("vtts", 8, 0, 9.0, None, stalled=3, stall_max=0.4),
                         row("vtts", 8, 1, 9.0, None, stalled=1, stall_max=1.2)])
    assert (only.stall_measured, only.stalled, only.stall_max) == (200, 4, 1.2)


def test_render_summary_table() -> None:
    lines = render_summary(rounds(), _fmt_s).splitlines()
    assert lines[0].startswith("| server | concurrency | rounds |") and "/ vtts wav (paired)" in lines[0]
    assert lines[2] == ("| vtts wav | 32 | 2 | 14.5× | 0.96 | 0.93–1.00 | – | 270 ms | 600 ms | 0/200 | 0 ms | 200 "
                        "| 1 |")
    assert lines[3].startswith("| vtts mp3 | 32 | 2 | 13.8× | 0.92 | 0.88–0.95 | 0.950 | 270 ms | 450 ms |")


def test_refusals_are_pooled_and_shown_only_when_there_are_some() -> None:
    rows = rounds()
    rows[0].refused, rows[0].refused_p99 = 5, 0.020
    rows[2].refused, rows[2].refused_p99 = 3, 0.045
    wav, mp3 = summarize(rows)
    assert (wav.refused, wav.refused_p99) == (8, 0.045) and mp3.refused == 0 and math.isnan(mp3.refused_p99)
    lines = render_summary(rows, _fmt_s).splitlines()
    assert lines[0].endswith("| errors | refused | refused in p99 (worst) |")
    assert lines[2].endswith("| 8 | 45 ms |") and lines[3].endswith("| 0 | – |")
    assert "refused" not in render_summary(rounds(), _fmt_s)
