"""What streaming costs in the CosyVoice3 engine: token → waveform compute for one long utterance, streamed
with the engine's hop schedule against decoding it once, on the tiny model (CPU, one thread).

Issue 15's target: a 60 s utterance's streamed compute ≤ 1.2× the offline compute. Three ways to turn 1500
speech tokens (60 s) into audio after a 3 s voice prompt:

* ``offline``: the flow decoder once over every token (full attention), then the vocoder once;
* ``streamed``: the engine's path: the flow decoder's chunk-causal streaming with each request's cache (25 +
  3 look-ahead tokens first, then hops of 50, then 100), the vocoder's streaming convolutions per chunk;
* ``recomputed``: upstream's streaming: every chunk re-runs the flow decoder over all tokens so far (no cache),
  and the vocoder over all mel so far — cost growing with the square of the length.

Prints process CPU seconds and floating-point operations (torch's counter: matmuls, convolutions, attention)
for each, and their ratios to offline.

    python bench/cosyvoice3_stream.py [--seconds 60] [--model-dir DIR]
"""

from __future__ import annotations

import argparse
import importlib.util
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT.parent / "shared" / "fixtures" / "cosyvoice3-tiny"


def hops(tokens: int, first: int = 25, max_hop: int = 100, scale: int = 2, lookahead: int = 3) -> list[int]:
    """Tokens fed per flow call by the engine's schedule; the last call finalizes what is left."""
    out, fed, hop = [], 0, first
    while True:
        need = hop + (lookahead if not out else 0)
        if tokens - fed < need:
            return [*out, tokens - fed]
        out.append(need)
        fed += need
        hop = min(max_hop, hop * scale)


def measure(fn: Any) -> tuple[float, float]:
    counter = FlopCounterMode(display=False)
    t0 = time.process_time()
    with counter:
        fn()
    return time.process_time() - t0, float(counter.get_total_flops())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--model-dir", type=Path)
    parser.add_argument("--skip-recomputed", action="store_true", help="leave out upstream's quadratic way")
    args = parser.parse_args()
    torch.set_num_threads(1)
    from vtts.workers.engines.cosyvoice3.flow import CosyVoice3Flow
    from vtts.workers.engines.cosyvoice3.hift import CosyVoice3Vocoder
    from vtts.workers.engines.cosyvoice3.reference import ReferenceEncoder

    model = args.model_dir
    if model is None:
        spec = importlib.util.spec_from_file_location("make_tiny", ROOT / "scripts" / "make_tiny_cosyvoice3.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        model = module.make(Path(tempfile.mkdtemp()) / "model", FIXTURE, speakers=False)
    flow = CosyVoice3Flow.load(model / "flow.pt")
    voc = CosyVoice3Vocoder.load(model / "hift.pt")
    rate = 24000
    t = np.arange(3 * rate) / rate
    sample = (0.3 * np.sin(2 * np.pi * 150 * t)).astype(np.float32)
    voice = ReferenceEncoder(model / "campplus.onnx", model / "speech_tokenizer_v3.onnx").encode(sample, rate)
    prompt = flow.prompt(torch.from_numpy(voice.tokens), torch.from_numpy(voice.mel), torch.from_numpy(voice.embedding))
    n = int(args.seconds * 25)
    tokens = torch.randint(0, 6561, (n,), generator=torch.Generator().manual_seed(0))
    plan = hops(n)
    results: dict[str, tuple[float, float]] = {}
    audio: dict[str, np.ndarray] = {}

    def offline() -> None:
        audio["offline"] = voc.vocode_offline(flow.offline([(prompt, tokens)])[0])

    def streamed() -> None:
        fs, vs, parts, pos = flow.start(prompt), voc.new_stream(), [], 0
        for i, k in enumerate(plan):
            last = i == len(plan) - 1
            mel = flow.stream([(fs, tokens[pos:pos + k], last)])[0]
            parts.append(voc.vocode([(vs, mel, last)])[0])
            pos += k
        audio["streamed"] = np.concatenate(parts)

    def recomputed() -> None:
        pos, parts = 0, []
        for i, k in enumerate(plan):
            pos += k
            last = i == len(plan) - 1
            mel = flow.stream([(flow.start(prompt), tokens[:pos], True)])[0]
            if not last:
                mel = mel[:, :2 * (pos - 3)]
            parts.append(voc.vocode_offline(mel))
        audio["recomputed"] = parts[-1]

    results["offline"] = measure(offline)
    results["streamed"] = measure(streamed)
    if not args.skip_recomputed:
        results["recomputed"] = measure(recomputed)
    base_s, base_f = results["offline"]
    print(f"{args.seconds:g} s utterance ({n} tokens, {len(plan)} flow calls: {plan[:4]}...), tiny model, CPU, "
          "1 thread")
    for name, (sec, flops) in results.items():
        print(f"  {name:<10} {sec:7.2f} s CPU ({sec / base_s:5.2f}x offline)   {flops / 1e9:8.2f} GFLOP "
              f"({flops / base_f:5.2f}x offline)")
    print(f"  streamed audio {audio['streamed'].size / rate:.2f} s, offline {audio['offline'].size / rate:.2f} s")


if __name__ == "__main__":
    main()
