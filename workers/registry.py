"""Engine ids mapped to lazily imported modules, so a worker imports only its own engine's dependencies."""

from __future__ import annotations

import importlib

from .engine import Engine

#: engine id -> "module:ClassName" (relative to this package)
ENGINES: dict[str, str] = {
    "piper": "vtts.workers.engines.piper:PiperEngine",
}


def engine_class(name: str) -> type[Engine]:
    """Import and return the engine class registered as ``name``."""
    try:
        target = ENGINES[name]
    except KeyError:
        raise KeyError(f"unknown engine {name!r}; known: {', '.join(sorted(ENGINES))}") from None
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def detect_engine(model_ref: str) -> str | None:
    """The first registered engine whose files match ``model_ref``, or None."""
    for name in ENGINES:
        try:
            if engine_class(name).detect(model_ref):
                return name
        except ImportError:
            continue
    return None
