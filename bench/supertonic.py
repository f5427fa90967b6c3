"""Measure the Supertonic engine: what each phase costs, and how a batch scales.

On the tiny generated model (the default) the graphs do almost no arithmetic, so the figures show the
engine's own overhead per call and per item (ONNX Runtime dispatch, padding, copies) — the floor under any
real model. Point ``--model`` at a real model directory to measure real weights the same way.

    python bench/supertonic.py [--model DIR] [--device cpu] [--steps 8] [--batches 1,2,4,8,16] [--repeat 5]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from vtts.workers.engine import SynthesisParams, WorkItem
from vtts.workers.engines.supertonic import SupertonicEngine

ROOT = Path(__file__).resolve().parents[1]
SENTENCES = [
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "Supertonic turns text into speech in a handful of denoising steps.",
    "Every request in this batch has its own voice and its own length.",
    "A server that batches well keeps the first audio fast for everyone.",
]
SHORT, LONG = "Short one.", "A much longer sentence, with several clauses, that keeps going for a good while longer."


def median_s(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm-up: first calls allocate
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def items_for(engine: SupertonicEngine, texts: list[str], steps: int) -> list[WorkItem]:
    out = []
    for i, text in enumerate(texts):
        voice = engine.voice_ids[i % len(engine.voice_ids)]
        params = SynthesisParams(voice=voice, extra={"total_steps": steps, "seed": i})
        out.append(WorkItem(str(i), 0, engine.prepare(text, params)[0], params))
    return out


def synthesize(engine: SupertonicEngine, items: list[WorkItem]) -> tuple[float, int, int]:
    """Step fresh copies of ``items`` to the end: (seconds, audio samples, step calls)."""
    live = [WorkItem(i.request_id, i.index, i.segment, i.params) for i in items]
    samples = calls = 0
    t0 = time.perf_counter()
    while live:
        calls += 1
        for out in engine.step(live):
            if out.finished:
                samples += out.audio.size
                live.remove(out.item)
    return time.perf_counter() - t0, samples, calls


def phases(engine: SupertonicEngine, steps: int, repeat: int) -> None:
    (item,) = items_for(engine, SENTENCES[:1], steps)
    dur, (emb,) = engine.encode([item.segment.tokens], [0])
    frames = max(1, int(dur[0] / 1.05 * engine.sample_rate) // engine.geometry.frame_samples + 1)
    latent = np.random.default_rng(0).standard_normal((engine.geometry.channels, frames)).astype(np.float32)
    enc = median_s(lambda: engine.encode([item.segment.tokens], [0]), repeat)
    den = median_s(lambda: engine.denoise([latent], [emb], [0], [0], [steps]), repeat)
    voc = median_s(lambda: engine.vocode([latent]), repeat)
    total = enc + steps * den + voc
    audio_s = frames * engine.geometry.frame_samples / engine.sample_rate
    print(f"\n## One item ({len(SENTENCES[0])} characters, {frames} latent frames, {audio_s:.1f} s of audio)\n")
    print("| phase | ms per call | share of one item |\n|---|---|---|")
    for name, t, n in (("encode (duration + text encoder)", enc, 1), ("one denoising step", den, steps),
                       ("vocoder", voc, 1)):
        print(f"| {name} | {t * 1e3:.2f} | {n * t / total:.0%}{f' ({n} steps)' if n > 1 else ''} |")


def scaling(engine: SupertonicEngine, steps: int, batches: list[int], repeat: int) -> None:
    print(f"\n## Batch scaling ({steps} steps, equal-length sentences, voices differ)\n")
    print("| batch | ms per step call | ms per item-step | × real time | speed-up vs batch 1 |\n|---|---|---|---|---|")
    base = None
    for b in batches:
        items = items_for(engine, [SENTENCES[i % len(SENTENCES)] for i in range(b)], steps)
        runs = [synthesize(engine, items) for _ in range(repeat)]
        seconds = statistics.median(r[0] for r in runs)
        samples, calls = runs[0][1], runs[0][2]
        rtf = samples / engine.sample_rate / seconds
        base = base or rtf
        print(f"| {b} | {seconds / calls * 1e3:.2f} | {seconds / calls / b * 1e3:.2f} | {rtf:.0f}× | "
              f"{rtf / base:.2f} |")


def staggered(engine: SupertonicEngine, steps: int) -> tuple[float, int, int]:
    """One new request joins every step (8 in all, short and long texts alternating), as a steady stream
    arrives: (seconds, audio samples, vector-estimator calls)."""
    pending = [WorkItem(i.request_id, i.index, i.segment, i.params)
               for i in items_for(engine, [SHORT, LONG] * 4, steps)]
    calls = 0
    denoise = engine.denoise

    def counted(*args: object) -> list[np.ndarray]:
        nonlocal calls
        calls += 1
        return denoise(*args)

    engine.denoise = counted
    live: list[WorkItem] = []
    samples = 0
    t0 = time.perf_counter()
    try:
        while pending or live:
            if pending:
                live.append(pending.pop(0))
            for out in engine.step(list(live)):
                if out.finished:
                    samples += out.audio.size
                    live.remove(out.item)
    finally:
        del engine.denoise
    return time.perf_counter() - t0, samples, calls


def policies(engine_factory: Callable[[str], SupertonicEngine], steps: int, repeat: int) -> None:
    print("\n## Staggered arrivals (a new request every step, 8 in all, short and long), by batch policy\n")
    print("| policy | vector-estimator calls | seconds | × real time |\n|---|---|---|---|")
    for policy in ("probe", "safe"):
        engine = engine_factory(policy)
        runs = [staggered(engine, steps) for _ in range(repeat)]
        seconds = statistics.median(r[0] for r in runs)
        print(f"| {policy} | {runs[0][2]} | {seconds:.3f} | {runs[0][1] / engine.sample_rate / seconds:.0f}× |")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", help="model directory (default: a tiny Supertonic 2 generated for the run)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--batches", default="1,2,4,8,16")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0, help="ONNX Runtime intra-op threads (0 = its default)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or str(_tiny(Path(tmp) / "tiny"))

        def load(policy: str = "probe") -> SupertonicEngine:
            options = {"batch_policy": policy, "intra_op_threads": args.threads}
            return SupertonicEngine.load(model, args.device, options)

        engine = load()
        print(f"# Supertonic {engine.version} on {args.device} ({'tiny model' if not args.model else model})")
        print(f"probe: {engine.policy}")
        phases(engine, args.steps, args.repeat * 4)
        scaling(engine, args.steps, [int(b) for b in args.batches.split(",")], args.repeat)
        policies(load, args.steps, args.repeat)


def _tiny(out: Path) -> Path:
    spec = importlib.util.spec_from_file_location("make_tiny_supertonic", ROOT / "scripts/make_tiny_supertonic.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.make_tiny_supertonic(out, 2)


if __name__ == "__main__":
    main()
