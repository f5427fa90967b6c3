"""Stalls and first audio of closed-loop streaming clients against the worker's scheduler on a synthetic
engine, with the old policy ("first segments first, then round robin") beside playback deadlines.

No model, no server, no wall clock: a single-pass engine that makes audio ``--speed`` × faster than real
time (one item per step, as the bundled Piper voice runs on a 2-core CPU), texts of a short first clause
(0.6–1.2 s of audio) and one to four sentences (2–4.5 s each), and clients that send their next request
as soon as the previous answer has arrived. Each listener's player starts ``--jitter`` s after its first
audio (vtts.playback, as the worker and ``vtts bench`` measure). It shows what the policy alone does,
apart from the noise of a shared machine; ``vtts bench`` measures the real thing.

    python bench/scheduler_sim.py [--clients 5,10,20] [--speed 20] [--seconds 300] [--jitter 0.2]
"""

from __future__ import annotations

import argparse
import itertools
import random

import numpy as np

from vtts.playback import PlaybackMeter
from vtts.workers.engine import Segment, StepOutput, SynthesisParams
from vtts.workers.scheduler import Request, Scheduler

#: requests that start in the first seconds are left out (the opening burst)
WARMUP_S = 20.0


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


def run(clients: int, *, old: bool, speed: float, seconds: float, jitter: float, seed: int) -> dict[str, float]:
    rng = random.Random(seed)
    clock = Clock()
    sched = Scheduler(max_batch=1, clock=clock)
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
        sched.add(Request(rid, SynthesisParams(voice="v"), [Segment("", s, 1) for s in seconds_of],
                          arrival=clock.t))
        owner[rid] = client

    for c in range(clients):
        send(c)
    while clock.t < seconds:
        items = sched.schedule()
        (item,) = items
        made = item.segment.tokens
        clock.t += made / speed
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
            "first_p99": float(np.percentile(firsts, 99)), "throughput": audio / clock.t}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", default="5,10,20")
    ap.add_argument("--speed", type=float, default=20.0, help="the engine's × real time (20)")
    ap.add_argument("--seconds", type=float, default=300.0)
    ap.add_argument("--jitter", type=float, default=0.2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    print("| clients | policy | stalled | worst stall | first audio p50 | p99 | throughput |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for clients in (int(c) for c in args.clients.split(",")):
        for old in (True, False):
            r = run(clients, old=old, speed=args.speed, seconds=args.seconds, jitter=args.jitter, seed=args.seed)
            print(f"| {clients} | {'first segments first' if old else 'playback deadlines'} | "
                  f"{r['stalled']}/{r['requests']} | {r['worst']:.2f} s | {r['first_p50'] * 1000:.0f} ms | "
                  f"{r['first_p99'] * 1000:.0f} ms | {r['throughput']:.1f}× |")


if __name__ == "__main__":
    main()
