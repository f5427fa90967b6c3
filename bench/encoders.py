"""Measure the streaming encoders: × real time per format on a long input fed in small chunks.

The figure that matters for capacity is how much CPU one second of audio costs to encode (the frontend pays
it per stream, on top of synthesis), and for latency how much audio must be fed before the first bytes
leave. The input is a synthetic speech-like signal (voiced harmonics under moving formants, syllable-rate
envelope, noise bursts, pauses) so codecs do speech-like work without needing a voice installed.

    python bench/encoders.py [--seconds 60] [--rate 22050] [--chunk-ms 100] [--repeat 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from vtts.frontend.encoders import FORMATS, make_encoder


def speech_like(seconds: float, rate: int, seed: int = 0) -> np.ndarray:
    """Deterministic int16 signal with speech's rough structure (not intelligible, but not a pure tone)."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * rate)) / rate
    pitch = 120 + 30 * np.sin(2 * np.pi * 0.3 * t) + 10 * np.sin(2 * np.pi * 2.1 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / rate
    formants = (500 + 200 * np.sin(2 * np.pi * 1.7 * t), 1500 + 400 * np.sin(2 * np.pi * 1.1 * t))
    voiced = np.zeros_like(t)
    for k in range(1, int(rate / 2 / 180)):
        freq = k * pitch
        gain = sum(np.exp(-(((freq - f) / 150) ** 2)) for f in formants) + 0.05
        voiced += gain * np.sin(k * phase) / k**0.5
    syllables = np.clip(np.sin(2 * np.pi * 4 * t), 0, None) ** 0.5
    pauses = (np.sin(2 * np.pi * 0.25 * t) > -0.8).astype(float)  # ~20 % silence
    noise = rng.standard_normal(len(t)) * (np.sin(2 * np.pi * 2.7 * t) > 0.85)
    signal = (voiced * syllables + 0.3 * noise) * pauses
    return (signal / np.max(np.abs(signal)) * 0.5 * 32767).astype(np.int16)


def run_once(fmt: str, pcm: np.ndarray, rate: int, chunk: int) -> tuple[float, float | None, int]:
    """Encode ``pcm`` chunk by chunk: (CPU-side wall seconds, seconds fed before first bytes, bytes out)."""
    enc = make_encoder(fmt, rate)
    first_at: float | None = None
    size = 0
    start = time.perf_counter()
    for i in range(0, len(pcm), chunk):
        out = enc.encode(pcm[i : i + chunk])
        if out and first_at is None:
            first_at = min(i + chunk, len(pcm)) / rate
        size += len(out)
    size += len(enc.finish())
    return time.perf_counter() - start, first_at, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--rate", type=int, default=22050)
    parser.add_argument("--chunk-ms", type=float, default=100.0)
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs is reported")
    parser.add_argument("--formats", nargs="*", default=list(FORMATS), choices=FORMATS)
    args = parser.parse_args()

    pcm = speech_like(args.seconds, args.rate)
    chunk = max(1, round(args.rate * args.chunk_ms / 1000))
    setup = f"{args.rate} Hz, {args.chunk_ms:g} ms chunks, best of {args.repeat}"
    print(f"{args.seconds:g} s of speech-like audio at {setup}")
    print(f"{'format':<6} {'x real time':>12} {'ms/s audio':>11} {'first bytes after':>18} {'kbit/s':>8}")
    for fmt in args.formats:
        runs = [run_once(fmt, pcm, args.rate, chunk) for _ in range(args.repeat)]
        elapsed, first_at, size = min(runs)
        first = "-" if first_at is None else f"{first_at * 1000:.0f} ms"
        print(
            f"{fmt:<6} {args.seconds / elapsed:>11.0f}x {elapsed / args.seconds * 1000:>11.2f}"
            f" {first:>18} {size * 8 / args.seconds / 1000:>8.1f}"
        )


if __name__ == "__main__":
    main()
