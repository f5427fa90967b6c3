"""Stalls and first audio of closed-loop streaming clients against the worker's scheduler on a synthetic
engine, with the old policy ("first segments first, then round robin") beside playback deadlines, and
playback deadlines with segment sizing (``--cuts``: later segments cut at a clause for waiting streams).

No model, no server, no wall clock: a single-pass engine that makes audio ``--speed`` × faster than real
time (one item per step, as the bundled Piper voice runs on a 2-core CPU), texts of a short first clause
(0.6–1.2 s of audio) and one to four sentences (2–4.5 s each), and clients that send their next request
as soon as the previous answer has arrived. Each listener's player starts ``--jitter`` s after its first
audio (vtts.playback, as the worker and ``vtts bench`` measure). It shows what the policy alone does,
apart from the noise of a shared machine; ``vtts bench`` measures the real thing.

With ``--cuts`` each later sentence is one to three clauses, a segment is ``IDS_PER_S`` tokens a second of
audio, a step costs ``--overhead`` seconds besides its audio / speed (Piper's fixed cost of a call, which
a cut pays twice), and a third row per client count runs the scheduler with ``max_cuts`` 1 (the worker's
default) and a minimum of ``MIN_CUT_TOKENS`` tokens, the rate measured from the steps as the worker does;
``--short-steps`` adds a fourth with the newcomer's reserve (``short_steps``) on as well.

    python bench/scheduler_sim.py [--clients 5,10,20] [--speed 20] [--seconds 300] [--jitter 0.2]
    python bench/scheduler_sim.py --clients 10,15,20 --cuts --overhead 0.02
    python bench/scheduler_sim.py --clients 5,10,15 --cuts --overhead 0.02 --short-steps
"""

from __future__ import annotations

import argparse
import itertools
import random

import numpy as np

from vtts.playback import PlaybackMeter
from vtts.workers.engine import Segment, StepOutput, SynthesisParams
from vtts.workers.scheduler import Request, Scheduler, StepRate

#: requests that start in the first seconds are left out (the opening burst)
WARMUP_S = 20.0
#: tokens a second of audio (the bundled Piper voice says about 40 phoneme ids a second) and the least a
#: part of a cut segment keeps (Piper's MIN_CUT_IDS)
IDS_PER_S, MIN_CUT_TOKENS = 40, 40


def clause_split(segment: Segment, max_tokens: int) -> tuple[Segment, Segment] | None:
    """Cut a synthetic segment (``tokens``: its clauses' token counts) after the last clause that keeps the
    head within ``max_tokens``, else after the first; None for one clause."""
    clauses = segment.tokens
    if len(clauses) < 2:
        return None
    heads = [sum(clauses[:k]) for k in range(1, len(clauses))]
    fits = [k for k, h in enumerate(heads, 1) if h <= max_tokens]
    k = fits[-1] if fits else 1
    return (Segment("", clauses[:k], sum(clauses[:k])), Segment("", clauses[k:], sum(clauses[k:])))


def sentence(rng: random.Random, seconds: float, clauses: int) -> Segment:
    """A segment of ``seconds`` of audio in ``clauses`` clauses of random lengths."""
    marks = sorted(rng.uniform(0.2, 0.8) for _ in range(clauses - 1))
    bounds = [0.0, *marks, 1.0]
    counts = [max(1, round((b - a) * seconds * IDS_PER_S)) for a, b in zip(bounds, bounds[1:], strict=False)]
    return Segment("", counts, sum(counts))


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def first_segments_first(sched: Scheduler) -> None:
    """Make ``sched`` order waiting work as the scheduler did before playback deadlines: requests that have
    not started by arrival, ahead of running ones least recently served."""
    tick = itertools.count()
    schedule = sched.schedule

    def order(r: Request) -> tuple[bool, float, float]:
        return (r.started, getattr(r, "_served", -1) if r.started else r.arrival, r.arrival)

    def scheduled():
        items = schedule()
        for item in items:
            item.context._served = next(tick)  # type: ignore[union-attr]
        return items

    sched._orderer = lambda waiting: order  # type: ignore[method-assign]
    sched.schedule = scheduled  # type: ignore[method-assign]


def run(clients: int, *, old: bool, speed: float, seconds: float, jitter: float, seed: int, cuts: int = 0,
        clauses: bool = False, overhead: float = 0.0, short_steps: bool = False) -> dict[str, float]:
    rng = random.Random(seed)
    clock = Clock()
    rate = StepRate()
    sched = Scheduler(max_batch=1, clock=clock, split=clause_split if cuts else None, seconds_per_token=rate,
                      max_cuts=cuts, min_cut_tokens=MIN_CUT_TOKENS, short_steps=short_steps)
    if old:
        first_segments_first(sched)
    meters: dict[str, PlaybackMeter] = {}
    first_audio: dict[str, float] = {}
    owner: dict[str, int] = {}
    measured: list[str] = []
    audio = 0.0
    ids = itertools.count()

    def send(client: int) -> None:
        rid = f"r{next(ids)}"
        seconds_of = [rng.uniform(0.6, 1.2)] + [rng.uniform(2.0, 4.5) for _ in range(rng.randint(1, 4))]
        if clauses:
            segments = [sentence(rng, s, 1 if i == 0 else rng.randint(1, 3)) for i, s in enumerate(seconds_of)]
        else:
            segments = [Segment("", [s * IDS_PER_S], s * IDS_PER_S) for s in seconds_of]  # type: ignore[arg-type]
        sched.add(Request(rid, SynthesisParams(voice="v"), segments, arrival=clock.t))
        owner[rid] = client

    for c in range(clients):
        send(c)
    while clock.t < seconds:
        items = sched.schedule()
        (item,) = items
        made = item.segment.num_tokens / IDS_PER_S
        clock.t += made / speed + overhead
        rate.observe(item.segment.num_tokens, made / speed + overhead)
        sched.sent(item.request_id, made)
        meters.setdefault(item.request_id, PlaybackMeter(jitter)).add(clock.t, made)
        assert item.context is not None
        first_audio.setdefault(item.request_id, clock.t - item.context.arrival)
        audio += made
        for done in sched.update([StepOutput(item, np.zeros(1, np.float32), True)]):
            if done.arrival >= WARMUP_S:
                measured.append(done.id)
            send(owner[done.id])
    stalls = [meters[r] for r in measured]
    firsts = [first_audio[r] for r in measured]
    return {"requests": len(measured), "stalled": sum(1 for m in stalls if m.stalls),
            "worst": max(m.longest for m in stalls), "first_p50": float(np.percentile(firsts, 50)),
            "first_p99": float(np.percentile(firsts, 99)), "throughput": audio / clock.t, "cuts": sched.cuts}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", default="5,10,20")
    ap.add_argument("--speed", type=float, default=20.0, help="the engine's × real time (20)")
    ap.add_argument("--seconds", type=float, default=300.0)
    ap.add_argument("--jitter", type=float, default=0.2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cuts", action="store_true", help="sentences of 1-3 clauses, and a row with segment sizing")
    ap.add_argument("--overhead", type=float, default=0.0, help="fixed seconds of each step (0)")
    ap.add_argument("--short-steps", action="store_true",
                    help="with --cuts, a fourth row with the scheduler's short_steps (the newcomer's reserve)")
    args = ap.parse_args()
    print("| clients | policy | stalled | worst stall | first audio p50 | p99 | throughput | cuts |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|")
    policies = [("first segments first", True, 0), ("playback deadlines", False, 0)]
    if args.cuts:
        policies.append(("deadlines + cuts", False, 1))
        if args.short_steps:
            policies.append(("+ short steps", False, 1))
    for clients in (int(c) for c in args.clients.split(",")):
        for name, old, cuts in policies:
            r = run(clients, old=old, speed=args.speed, seconds=args.seconds, jitter=args.jitter, seed=args.seed,
                    cuts=cuts, clauses=args.cuts, overhead=args.overhead,
                    short_steps=name == "+ short steps")
            print(f"| {clients} | {name} | {r['stalled']}/{r['requests']} | {r['worst']:.2f} s | "
                  f"{r['first_p50'] * 1000:.0f} ms | {r['first_p99'] * 1000:.0f} ms | {r['throughput']:.1f}× | "
                  f"{r['cuts']} |")


if __name__ == "__main__":
    main()
