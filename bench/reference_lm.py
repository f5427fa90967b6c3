"""Decode throughput of the reference autoregressive engine at batch 16 against batch 1, on CPU.

The runtime's claim for LM engines is that a ragged batch of requests decodes in one forward pass, so
throughput grows with the batch while each request's audio stays what it would be alone. This measures the
first half (the second is tests/unit/test_reference_lm.py) and prints the ratio; the target is >= 4x.

    python bench/reference_lm.py [--requests 16] [--tokens 128] [--threads 1] [--repeat 3]
"""

from __future__ import annotations

import argparse
import time

from vtts.workers.engine import SynthesisParams
from vtts.workers.offline import generate
from vtts.workers.registry import engine_class


def tokens_per_second(engine, requests, max_batch: int) -> float:
    t = time.perf_counter()
    tokens = sum(out.tokens for _, out in generate(engine, requests, max_batch=max_batch))
    return tokens / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=16)
    ap.add_argument("--tokens", type=int, default=128, help="speech tokens per request (max_new_tokens)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3, help="best of this many runs per batch size")
    args = ap.parse_args()
    engine = engine_class("reference-lm").load("tiny", "cpu", {"max_new_tokens": args.tokens,
                                                               "threads": args.threads})
    requests = []
    for i in range(args.requests):
        # a seed per request: both batch sizes decode exactly the same tokens
        p = SynthesisParams(voice="tone", extra={"seed": i})
        requests.append((p, engine.prepare(f"Request number {i} says hello.", p)[:1]))
    tokens_per_second(engine, requests[:2], 2)  # warm-up
    single = max(tokens_per_second(engine, requests, 1) for _ in range(args.repeat))
    batched = max(tokens_per_second(engine, requests, args.requests) for _ in range(args.repeat))
    print(f"batch 1: {single:8.0f} tokens/s")
    print(f"batch {args.requests}: {batched:8.0f} tokens/s")
    print(f"ratio: {batched / single:.1f}x (target >= 4x)")


if __name__ == "__main__":
    main()
