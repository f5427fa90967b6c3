"""In-process synthesis for ``vtts speak``: the engine and an encoder, no server (the engine is driven by
:func:`vtts.workers.offline.generate`, as ``vtts bench`` and ``vtts eval`` drive it)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from vtts.config import ModelConfig
from vtts.frontend.encoders import make_encoder
from vtts.workers.engine import Engine, SynthesisParams
from vtts.workers.offline import generate
from vtts.workers.registry import engine_class
from vtts.workers.worker import to_pcm16


def load_once(model: ModelConfig, device: str | None = None) -> Engine:
    """The engine for a command that synthesizes once and exits: its one-shot options (no warm-up) under the
    model entry's own."""
    cls = engine_class(model.engine)
    return cls.load(model.model, device or model.device, {**cls.one_shot_options, **model.options})


def synthesize_to_file(model: ModelConfig, text: str, output: str, *, fmt: str = "wav", voice: str | None = None,
                       speed: float = 1.0, progress: bool = True) -> float:
    """Synthesize ``text`` with ``model`` into ``output`` ("-" = stdout); return the audio seconds."""
    engine = load_once(model)
    voice = model.voice_aliases.get(voice, voice) if voice else engine.voices()[0].id
    params = SynthesisParams(voice=voice, speed=speed)
    segments = engine.prepare(text, params)
    encoder = make_encoder(fmt, engine.sample_rate)
    bar = None
    if progress and len(segments) > 1:
        from tqdm import tqdm

        bar = tqdm(total=len(segments), unit="segment", file=sys.stderr)
    samples = 0
    out = sys.stdout.buffer if output == "-" else Path(output).open("wb")
    try:
        for _, o in generate(engine, [(params, segments)]):
            if o.audio.size:
                samples += o.audio.size
                out.write(encoder.encode(np.frombuffer(to_pcm16(o.audio), dtype="<i2")))
            if bar and o.finished:
                bar.update(1)
        out.write(encoder.finish())
    finally:
        if bar:
            bar.close()
        if out is not sys.stdout.buffer:
            out.close()
        engine.close()
    return samples / engine.sample_rate
