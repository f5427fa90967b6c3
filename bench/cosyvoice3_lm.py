"""Decode throughput of the CosyVoice3 speech-token LM at 16 concurrent requests against 1, on CPU.

Issue 15's target: LM decoding steps per second, all requests together, >= 4x from 1 to 16 concurrent on the
tiny model. Each request is prefilled (a prompt like a zero-shot voice's: prompt text, text and 75 prompt
speech tokens), then decoded ``--tokens`` tokens with stop ids masked (random weights would otherwise stop
at random points); only the decoding steps are timed, the two settings interleaved, best of ``--repeat``.
The same seeded requests run in both settings, so they decode the same tokens. ``--real`` builds the real
Fun-CosyVoice3-0.5B dimensions with random weights (no checkpoint needed) on ``--device``.

    python bench/cosyvoice3_lm.py [--model-dir DIR] [--requests 16] [--tokens 100] [--threads 1] [--repeat 3]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from vtts.workers.engines.cosyvoice3.lm import END_OF_PROMPT, CosyVoice3LM, LMRequest, LMSampling, real_size_config

TINY = Path(__file__).resolve().parents[1] / "../shared/fixtures/cosyvoice3-tiny/model"


def make_requests(lm: CosyVoice3LM, n: int, tokens: int) -> list[LMRequest]:
    g = torch.Generator().manual_seed(0)
    out = []
    for i in range(n):
        prompt = [*torch.randint(0, 150000, (8,), generator=g).tolist(), END_OF_PROMPT]
        text = torch.randint(0, 150000, (10 + i % 7,), generator=g).tolist()
        speech = torch.randint(0, 6561, (75,), generator=g).tolist()
        sampling = LMSampling(min_token_text_ratio=20, max_tokens=tokens)
        out.append(lm.start(prompt, text, speech, sampling, seed=i))
    return out


def decode_rate(lm: CosyVoice3LM, requests: list[LMRequest], concurrent: int,
                device: torch.device) -> tuple[float, float]:
    """Tokens per second over the decoding steps, ``concurrent`` requests at a time (a new one joins as soon
    as one finishes, prefilled in a step of its own, not timed): by the wall clock, and by this process's CPU
    time (what a shared, busy machine distorts least)."""
    waiting, live, tokens, wall, cpu = list(requests), [], 0, 0.0, 0.0
    while waiting or live:
        while waiting and len(live) < concurrent:
            fresh = waiting.pop(0)
            lm.step([fresh])
            live.append(fresh)
        if device.type == "cuda":
            torch.cuda.synchronize()
        t, c = time.perf_counter(), time.process_time()
        out = lm.step(live)
        if device.type == "cuda":
            torch.cuda.synchronize()
        wall += time.perf_counter() - t
        cpu += time.process_time() - c
        tokens += sum(tok is not None for tok in out)
        live = [r for r in live if not r.finished]
    return tokens / wall, tokens / cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model-dir", type=Path, default=TINY, help="a CosyVoice3 model directory (llm.pt, ...)")
    ap.add_argument("--real", action="store_true", help="real dimensions, random weights (ignores --model-dir)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64", "bfloat16", "float16"])
    ap.add_argument("--requests", type=int, default=16)
    ap.add_argument("--tokens", type=int, default=100, help="speech tokens per request")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3, help="best of this many runs per setting")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    if args.real:
        torch.manual_seed(0)
        with torch.device(device):
            lm = CosyVoice3LM(real_size_config()).to(dtype).eval()
    else:
        lm = CosyVoice3LM.load(args.model_dir / "llm.pt", args.model_dir / "CosyVoice-BlankEN", device, dtype)
    decode_rate(lm, make_requests(lm, 2, 8), 2, device)  # warm-up
    settings = (1, args.requests)
    best = {n: (0.0, 0.0) for n in settings}
    for _ in range(args.repeat):  # interleaved, so both settings see the same machine load
        for n in settings:
            rate = decode_rate(lm, make_requests(lm, args.requests, args.tokens), n, device)
            best[n] = (max(best[n][0], rate[0]), max(best[n][1], rate[1]))
    for n in settings:
        print(f"{n:3d} concurrent: {best[n][0]:8.0f} tokens/s wall clock, {best[n][1]:8.0f} tokens/s of CPU time")
    wall, cpu = (best[args.requests][i] / best[1][i] for i in (0, 1))
    print(f"ratio: {wall:.1f}x wall clock, {cpu:.1f}x CPU time (target >= 4x)")

if __name__ == "__main__":
    main()
