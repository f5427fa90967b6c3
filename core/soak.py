"""``vtts bench --soak N``: N requests through closed-loop clients, then every server process's memory.

A server that leaks shows it only after thousands of requests, so the soak counts requests rather than
seconds. The resident set size (RSS) of every process of the server is sampled after the first
``baseline`` requests (allocators, arenas and caches have reached their working size by then), every
``sample_every`` requests, and after the last one; the verdict compares the end with the baseline. A
process that was replaced mid-run (a worker restarted after a crash) would start small again and hide a
leak, so the process ids are compared too.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from vtts.bench import (
    MAX_BACKOFF_S,
    RequestRecord,
    RequestShape,
    error_summary,
    fetch,
    percentile,
    process_role,
)
from vtts.bench_texts import TextSource
from vtts.local_server import descendants

#: the largest growth of a process's RSS from the baseline to the end that passes (issue 3: 10 %)
MAX_GROWTH = 0.10


def process_rss(pid: int) -> int | None:
    """Resident set size of one process in bytes (None when it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def rss_probe(server_pid: int | None) -> Callable[[], dict[int, tuple[str, int]]]:
    """A probe of ``{pid: (role, rss bytes)}`` over the server's process tree (empty without a pid)."""

    def probe() -> dict[int, tuple[str, int]]:
        if server_pid is None:
            return {}
        out: dict[int, tuple[str, int]] = {}
        for pid in sorted({server_pid} | descendants(server_pid)):
            rss = process_rss(pid)
            if rss is not None:
                out[pid] = (process_role(pid), rss)
        return out

    return probe


@dataclass
class RssSample:
    """The server's processes after ``completed`` requests."""

    completed: int
    processes: dict[int, tuple[str, int]]


@dataclass
class ProcessVerdict:
    """One process's memory across the soak."""

    pid: int
    role: str
    baseline: int
    end: int
    peak: int

    @property
    def growth(self) -> float:
        """(end − baseline) / baseline."""
        return (self.end - self.baseline) / self.baseline if self.baseline else 0.0

    @property
    def ok(self) -> bool:
        return self.growth <= MAX_GROWTH


@dataclass
class SoakResult:
    requests: int
    concurrency: int
    baseline_after: int
    wall_s: float
    audio_s: float
    errors: int
    error_kinds: dict[str, int]
    error_examples: list[str]
    ttfb_p50: float
    ttfb_p99: float
    samples: list[RssSample]
    processes: list[ProcessVerdict] = field(default_factory=list)
    #: processes present at the baseline but gone at the end, or new at the end (restarts)
    replaced: list[str] = field(default_factory=list)

    @property
    def throughput(self) -> float:
        return self.audio_s / self.wall_s if self.wall_s else 0.0

    @property
    def ok(self) -> bool:
        return not self.errors and not self.replaced and all(p.ok for p in self.processes)


def verdicts(samples: list[RssSample], baseline_after: int) -> tuple[list[ProcessVerdict], list[str]]:
    """Each process's baseline (the first sample at or after ``baseline_after`` requests), end and peak;
    plus the processes that came or went between the baseline and the end."""
    if not samples:
        return [], []
    base = next((s for s in samples if s.completed >= baseline_after), samples[-1])
    end = samples[-1]
    out = []
    for pid, (role, rss) in base.processes.items():
        if pid not in end.processes:
            continue
        peak = max(s.processes[pid][1] for s in samples if s.completed >= base.completed and pid in s.processes)
        out.append(ProcessVerdict(pid, role, rss, end.processes[pid][1], peak))
    gone = [f"{role} {pid} exited" for pid, (role, _) in base.processes.items() if pid not in end.processes]
    new = [f"{role} {pid} appeared" for pid, (role, _) in end.processes.items() if pid not in base.processes]
    return out, gone + new


async def run_soak(url: str, shape: RequestShape, concurrency: int, total: int, *, texts: TextSource,
                   probe: Callable[[], dict[int, tuple[str, int]]], baseline_after: int = 300,
                   sample_every: int = 100, request_timeout: float = 300.0,
                   headers: Mapping[str, str] | None = None,
                   progress: Callable[[int, int], None] | None = None) -> SoakResult:
    """Send ``total`` requests from ``concurrency`` closed-loop clients; sample ``probe`` after the
    ``baseline_after``-th completed request, every ``sample_every`` and at the end."""
    import aiohttp

    if not 0 < baseline_after < total or concurrency < 1 or sample_every < 1:
        raise ValueError("need 0 < baseline_after < total, concurrency >= 1, sample_every >= 1")
    loop = asyncio.get_running_loop()
    t0 = loop.time()

    def clock() -> float:
        return loop.time() - t0

    issued = itertools.count()
    records: list[RequestRecord] = []
    samples: list[RssSample] = []

    async def client(session: Any) -> None:
        while (index := next(issued)) < total:
            record = RequestRecord(index)
            await fetch(session, url, shape, texts.next(), clock, record, headers)
            records.append(record)
            done = len(records)
            if done == baseline_after or done % sample_every == 0:
                samples.append(RssSample(done, probe()))
            if progress and done % sample_every == 0:
                progress(done, sum(1 for r in records if not r.ok))
            if record.retry_after is not None:
                await asyncio.sleep(min(record.retry_after, MAX_BACKOFF_S))

    timeout = aiohttp.ClientTimeout(total=request_timeout)
    connector = aiohttp.TCPConnector(limit=max(100, concurrency * 2))
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        await asyncio.gather(*(client(session) for _ in range(concurrency)))
    wall = clock()
    if not samples or samples[-1].completed != len(records):
        samples.append(RssSample(len(records), probe()))
    samples.sort(key=lambda s: s.completed)
    bad = [r for r in records if not r.ok]
    ttfbs = [r.ttfb for r in records if r.ok and r.ttfb is not None]
    processes, replaced = verdicts(samples, baseline_after)
    kinds, examples = error_summary(bad)
    return SoakResult(
        requests=len(records), concurrency=concurrency, baseline_after=baseline_after, wall_s=wall,
        audio_s=sum(r.audio_s for r in records if r.ok), errors=len(bad),
        error_kinds=kinds, error_examples=examples,
        ttfb_p50=percentile(ttfbs, 50), ttfb_p99=percentile(ttfbs, 99),
        samples=samples, processes=processes, replaced=replaced,
    )


def render_soak(result: SoakResult, ceiling: float | None = None) -> str:
    """The soak's Markdown: totals, then one row per server process."""
    mib = 2**20
    ratio = f" ({result.throughput / ceiling:.2f} R, R = {ceiling:.1f}×)" if ceiling else ""
    lines = [
        f"Soak: {result.requests} requests from {result.concurrency} closed-loop clients in {result.wall_s:.0f} s, "
        f"{result.errors} errors{' ' + str(result.error_kinds) if result.errors else ''}; "
        f"{result.throughput:.1f}× real time{ratio}; TTFB p50 {result.ttfb_p50 * 1000:.0f} ms, "
        f"p99 {result.ttfb_p99 * 1000:.0f} ms",
        "",
        f"| process | pid | RSS after {result.baseline_after} | RSS at the end | peak | growth | within "
        f"{MAX_GROWTH:.0%} |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for p in sorted(result.processes, key=lambda p: (p.role, p.pid)):
        lines.append(f"| {p.role} | {p.pid} | {p.baseline / mib:.1f} MiB | {p.end / mib:.1f} MiB | "
                     f"{p.peak / mib:.1f} MiB | {p.growth:+.1%} | {'yes' if p.ok else 'NO'} |")
    if result.replaced:
        lines += ["", "Processes replaced during the soak (a restart hides growth): " + ", ".join(result.replaced)]
    lines += ["", f"Verdict: {'pass' if result.ok else 'FAIL'}"]
    return "\n".join(lines)


def as_json(result: SoakResult) -> dict[str, Any]:
    """The soak for the bench's JSON file (sample pids as strings: JSON keys)."""
    return {
        "requests": result.requests, "concurrency": result.concurrency, "baseline_after": result.baseline_after,
        "wall_s": result.wall_s, "audio_s": result.audio_s, "throughput": result.throughput,
        "errors": result.errors, "error_kinds": result.error_kinds, "error_examples": result.error_examples,
        "ttfb_p50": result.ttfb_p50, "ttfb_p99": result.ttfb_p99, "ok": result.ok, "replaced": result.replaced,
        "processes": [{"pid": p.pid, "role": p.role, "baseline": p.baseline, "end": p.end, "peak": p.peak,
                       "growth": p.growth, "ok": p.ok} for p in result.processes],
        "samples": [{"completed": s.completed, "rss": {str(pid): [role, rss] for pid, (role, rss) in
                                                        s.processes.items()}} for s in result.samples],
    }

