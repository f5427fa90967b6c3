"""Rows of repeated ``vtts bench`` rounds reduced to one line per server and concurrency.

Why: on a shared VM the engine's own speed moves by ±10 % between raw-engine runs a minute apart, so one
round's ratio can land anywhere in 0.90–1.07 for the same server. Repeating the whole matrix and reading
the mean (with its spread) is what makes a 5 % target decidable. Formats are compared *paired*: each
round's ratio against the first format's ratio in the same round and level, which cancels the drift that
round shares.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vtts.bench import LevelStats


@dataclass
class RowSummary:
    """One server at one concurrency over every round."""

    server: str
    concurrency: int
    rounds: int
    throughput: float
    #: mean of the rows' engine ceilings (None without raw-engine runs)
    ceiling: float | None
    #: mean, lowest and highest per-round ratio to R (None without raw-engine runs)
    ratio: float | None
    ratio_min: float | None
    ratio_max: float | None
    #: median of the rounds' TTFB p50, and the worst round's TTFB p99
    ttfb_p50: float
    ttfb_p99: float
    requests: int
    errors: int
    #: mean over rounds of this row's ratio divided by the first server's (format's) ratio in the same round
    #: and level; None for the first server itself or without ratios
    paired: float | None = None
    #: requests whose stalls were measured, how many stalled, and the longest stall of any round
    stall_measured: int = 0
    stalled: int = 0
    stall_max: float = math.nan
    #: requests refused with 429 (admission) over every round, and the slowest round's refusal p99
    refused: int = 0
    refused_p99: float = math.nan


def _mean(values: Sequence[float]) -> float | None:
    return statistics.fmean(values) if values else None


def summarize(rows: Sequence[LevelStats]) -> list[RowSummary]:
    """One :class:`RowSummary` per (server, concurrency), in the order the rows first appear."""
    keys = list(dict.fromkeys((r.server, r.concurrency) for r in rows))
    first_server = rows[0].server if rows else ""
    reference = {(r.concurrency, r.round): r.ratio for r in rows if r.server == first_server}
    out = []
    for server, concurrency in keys:
        mine = [r for r in rows if r.server == server and r.concurrency == concurrency]
        ratios = [r.ratio for r in mine if r.ratio is not None]
        pairs = [r.ratio / ref for r in mine
                 if r.ratio is not None and (ref := reference.get((concurrency, r.round)))]
        p50s = [r.ttfb_p50 for r in mine if not math.isnan(r.ttfb_p50)]
        p99s = [r.ttfb_p99 for r in mine if not math.isnan(r.ttfb_p99)]
        out.append(RowSummary(
            server=server,
            concurrency=concurrency,
            rounds=len(mine),
            throughput=statistics.fmean(r.throughput for r in mine),
            ceiling=_mean([r.ceiling for r in mine if r.ceiling is not None]),
            ratio=_mean(ratios),
            ratio_min=min(ratios) if ratios else None,
            ratio_max=max(ratios) if ratios else None,
            ttfb_p50=statistics.median(p50s) if p50s else math.nan,
            ttfb_p99=max(p99s) if p99s else math.nan,
            requests=sum(r.requests for r in mine),
            errors=sum(r.errors for r in mine),
            paired=_mean(pairs) if server != first_server else None,
            stall_measured=sum(r.stall_measured for r in mine),
            stalled=sum(r.stalled for r in mine),
            stall_max=max((r.stall_max for r in mine if not math.isnan(r.stall_max)), default=math.nan),
            refused=sum(r.refused for r in mine),
            refused_p99=max((r.refused_p99 for r in mine if not math.isnan(r.refused_p99)), default=math.nan),
        ))
    return out


def render_summary(rows: Sequence[LevelStats], fmt_s: Callable[[float], str]) -> str:
    """The Markdown table of :func:`summarize`; ``fmt_s`` formats seconds as the main table does."""
    summaries = summarize(rows)
    first = summaries[0].server if summaries else ""
    refusals = any(s.refused for s in summaries)
    lines = [
        f"| server | concurrency | rounds | throughput (mean) | / R mean | / R range | / {first} (paired) "
        "| TTFB p50 (median) | TTFB p99 (worst) | stalled | stall max | requests | errors |"
        + (" refused | refused in p99 (worst) |" if refusals else ""),
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|" + ("---:|---:|" if refusals else ""),
    ]
    for s in summaries:
        ratio = f"{s.ratio:.2f}" if s.ratio is not None else "–"
        spread = f"{s.ratio_min:.2f}–{s.ratio_max:.2f}" if s.ratio_min is not None else "–"
        paired = f"{s.paired:.3f}" if s.paired is not None else "–"
        lines.append(f"| {s.server} | {s.concurrency} | {s.rounds} | {s.throughput:.1f}× | {ratio} | {spread} | "
                     f"{paired} | {fmt_s(s.ttfb_p50)} | {fmt_s(s.ttfb_p99)} | "
                     f"{f'{s.stalled}/{s.stall_measured}' if s.stall_measured else '–'} | {fmt_s(s.stall_max)} | "
                     f"{s.requests} | {s.errors} |"
                     + (f" {s.refused} | {fmt_s(s.refused_p99) if s.refused else '–'} |" if refusals else ""))
    return "\n".join(lines)
