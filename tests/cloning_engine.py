"""A cloning test engine (a plugin engine: ``engine = "tests.cloning_engine:CloningEngine"``): tones, not
speech. Its "features" of a custom voice are the sample's dominant frequency, so the audio it makes proves
that the reference reached it; ``computed`` counts feature computations (the worker reports its cache's
misses, which must equal them)."""

from __future__ import annotations

from typing import Any

import numpy as np

from vtts.workers.engine import EngineError, Segment, SinglePassEngine, SynthesisParams, VoiceInfo

SAMPLE_RATE = 16000
BASE_HZ = 200.0
#: seconds of tone per character of text, at least one 0.3 s chunk
SECONDS_PER_CHAR = 0.02


class CloningEngine(SinglePassEngine):
    """Speaks a tone at the reference sample's dominant pitch (its built-in voice: 200 Hz)."""

    name = "cloning-test"
    clones = True
    needs_transcript = False

    def __init__(self) -> None:
        self.computed = 0

    @classmethod
    def load(cls, model_ref: str, device: str = "cpu", options: dict[str, Any] | None = None) -> CloningEngine:
        return cls()

    @property
    def sample_rate(self) -> int:
        return SAMPLE_RATE

    def voices(self) -> list[VoiceInfo]:
        return [VoiceInfo("base", "en-US", SAMPLE_RATE, "cloning test engine: tones")]

    def voice_features(self, reference: dict[str, Any]) -> Any:
        audio, rate = reference["audio"], reference["sample_rate"]
        if audio.size < rate:
            raise EngineError("the reference sample is too short for this engine", "voice")
        spectrum = np.abs(np.fft.rfft(audio.astype(np.float64)))
        self.computed += 1
        return {"pitch_hz": float(np.argmax(spectrum) * rate / audio.size), "computed": self.computed}

    def prepare(self, text: str, params: SynthesisParams) -> list[Segment]:
        if params.reference is None and params.voice != "base":
            raise EngineError(f"unknown voice {params.voice!r}", "voice", "voice_not_found")
        return [Segment(text, None, len(text))]

    def synthesize(self, segments: list[Segment], params: list[SynthesisParams]) -> list[np.ndarray]:
        out = []
        for seg, p in zip(segments, params, strict=True):
            hz = p.reference["features"]["pitch_hz"] if p.reference else BASE_HZ
            n = int(SAMPLE_RATE * max(0.3, SECONDS_PER_CHAR * len(seg.text)))
            out.append((0.3 * np.sin(2 * np.pi * hz * np.arange(n) / SAMPLE_RATE)).astype(np.float32))
        return out
