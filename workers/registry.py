"""Engine ids mapped to lazily imported modules, so a worker imports only its own engine's dependencies."""

from __future__ import annotations

import importlib
from pathlib import Path

from .engine import Engine

#: engine id -> "module:ClassName" (relative to this package)
ENGINES: dict[str, str] = {
    "piper": "vtts.workers.engines.piper:PiperEngine",
    "kokoro": "vtts.workers.engines.kokoro:KokoroEngine",
    "supertonic": "vtts.workers.engines.supertonic:SupertonicEngine",
    "gpt-sovits": "vtts.workers.engines.gptsovits.engine:GPTSoVITSEngine",
    # CosyVoice3 (torch, the `cosyvoice3` extra): detect() reads only file names, so detecting it imports no torch
    "cosyvoice3": "vtts.workers.engines.cosyvoice3.engine:CosyVoice3Engine",
    # a test and reference engine (tones, not speech): the runtime's autoregressive contract, with torch
    "reference-lm": "vtts.workers.engines.reference_lm:ReferenceLM",
}


def engine_class(name: str) -> type[Engine]:
    """Import and return the engine registered as ``name``, or a plugin engine named "module:ClassName"
    (importable in the worker's interpreter only: it may live in the model's own virtual environment)."""
    target = ENGINES.get(name) or (name if ":" in name else None)
    if target is None:
        raise KeyError(f"unknown engine {name!r}; known: {', '.join(sorted(ENGINES))}, or 'module:Class'")
    module, _, attr = target.partition(":")
    cls = getattr(importlib.import_module(module), attr, None)
    if not (isinstance(cls, type) and issubclass(cls, Engine)):
        raise TypeError(f"{target!r} is not an Engine subclass")
    return cls


#: engines ``vtts serve PATH`` never guesses (importing them to ask would load torch into the supervisor)
NOT_DETECTED = frozenset({"reference-lm", "gpt-sovits"})
#: torch engines recognised by the files of their model directory instead (no import, so no torch here)
FILE_DETECTED: dict[str, tuple[str, ...]] = {"gpt-sovits": ("gpt.ckpt", "sovits.pth")}


def detect_engine(model_ref: str) -> str | None:
    """The first registered engine whose files match ``model_ref``, or None."""
    for name in [n for n in ENGINES if n not in NOT_DETECTED]:
        try:
            if engine_class(name).detect(model_ref):
                return name
        except ImportError:
            continue
    for name, files in FILE_DETECTED.items():
        if all((Path(model_ref) / f).is_file() for f in files):
            return name
    return None
