"""Text-to-semantic decode throughput of GPT-SoVITS at 16 concurrent requests against 1, on CPU.

GPT-SoVITS's own server decodes one request at a time; vTTS decodes every running request's next token in
one forward call over a ragged batch of KV caches, each row sampled with its own generator. This measures
the T2S loop as the engine runs it (KVPool.decode + per-row sampling, EOS masked so every request decodes
``--tokens`` tokens) on the tiny model of scripts/make_tiny_gptsovits.py (or any ``gpt.ckpt``), and
prints semantic tokens per second at 1 and at N concurrent; the target is >= 4x. ``--engine DIR`` also
times the whole engine (T2S + SoVITS chunks) through the scheduler.

    python bench/gptsovits_t2s.py [--gpt ../shared/fixtures/gptsovits-v2-tiny/gpt.ckpt] [--requests 16]
                                  [--tokens 128] [--threads 1] [--repeat 3] [--engine MODEL_DIR]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from vtts.workers.engines.gptsovits.checkpoints import load_gpt
from vtts.workers.engines.gptsovits.t2s import KVPool, RowSampling, T2SConfig, T2SModel, sample

DEFAULT_GPT = Path(__file__).resolve().parents[1] / ".." / "shared" / "fixtures" / "gptsovits-v2-tiny" / "gpt.ckpt"


def model(path: Path) -> T2SModel:
    if path.is_file():
        ck = load_gpt(path)
        m = T2SModel(T2SConfig.from_checkpoint(ck.config, ck.weights))
        m.load_upstream(ck.weights)
        return m
    torch.manual_seed(0)
    m = T2SModel(T2SConfig(dim=64, heads=4, layers=2, ffn=256))  # the tiny dimensions, random weights
    for p in m.parameters():
        p.normal_(0, 0.3)
    return m


def tokens_per_second(m: T2SModel, n: int, tokens: int) -> float:
    """``n`` requests (30 phonemes, a 100-token prompt each) decoding ``tokens`` tokens together."""
    pool = KVPool(m)
    g = torch.Generator().manual_seed(0)
    rids = [f"r{i}" for i in range(n)]
    gens = [torch.Generator().manual_seed(i) for i in range(n)]
    knobs = [RowSampling()] * n
    hist = [torch.randint(0, 1024, (100,), generator=g) for _ in range(n)]
    t = time.perf_counter()
    logits = torch.stack([pool.prefill(r, torch.randint(0, 732, (30,), generator=g), torch.zeros(1024, 30), h)
                          for r, h in zip(rids, hist, strict=True)])
    for step in range(tokens):
        picks, _ = sample(logits, hist, knobs, gens, m.cfg.eos, [False] * n)
        hist = [torch.cat([h, torch.tensor([p])]) for h, p in zip(hist, picks, strict=True)]
        if step + 1 < tokens:
            logits = pool.decode(rids, picks, [h.numel() - 1 for h in hist])
    return n * tokens / (time.perf_counter() - t)


def engine_tokens_per_second(model_dir: str, n: int, tokens: int) -> float:
    from vtts.workers.engine import SynthesisParams
    from vtts.workers.offline import generate
    from vtts.workers.registry import engine_class

    engine = engine_class("gpt-sovits").load(model_dir, "cpu", {"max_new_tokens": tokens})
    reqs = []
    for i in range(n):
        p = SynthesisParams(voice=engine.voices()[0].id, extra={"seed": i})
        reqs.append((p, engine.prepare(f"Request number {i} says hello to everyone here.", p)[:1]))
    t = time.perf_counter()
    count = sum(out.tokens for _, out in generate(engine, reqs, max_batch=n))
    return count / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gpt", type=Path, default=DEFAULT_GPT)
    ap.add_argument("--requests", type=int, default=16)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3, help="best of this many runs per batch size")
    ap.add_argument("--engine", help="also time the whole engine on this model directory")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    m = model(args.gpt)
    tokens_per_second(m, 2, 8)  # warm-up
    one = max(tokens_per_second(m, 1, args.tokens) for _ in range(args.repeat))
    many = max(tokens_per_second(m, args.requests, args.tokens) for _ in range(args.repeat))
    print(f"T2S decode, {args.threads} thread(s): 1 request {one:.0f} tokens/s; {args.requests} concurrent "
          f"{many:.0f} tokens/s ({many / one:.1f}x)")
    if args.engine:
        one = engine_tokens_per_second(args.engine, 1, args.tokens)
        many = engine_tokens_per_second(args.engine, args.requests, args.tokens)
        print(f"whole engine (T2S + SoVITS): 1 request {one:.0f} tokens/s; {args.requests} concurrent "
              f"{many:.0f} tokens/s ({many / one:.1f}x)")


if __name__ == "__main__":
    main()
