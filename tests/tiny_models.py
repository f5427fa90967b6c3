"""The tiny generated models of ``scripts/make_tiny_*.py`` for tests: one loader instead of a copy per test.

``scripts/`` is not a package (each script also runs on its own, ``python scripts/make_tiny_kokoro.py DIR``),
so a script is loaded from its path, once per test session. The scripts need the ``onnx`` package (the
``dev`` extra); nothing is imported until a model is made.
"""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path
from types import ModuleType

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


@cache
def script(name: str) -> ModuleType:
    """``scripts/<name>.py`` as a module."""
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    assert spec and spec.loader, f"no script scripts/{name}.py"
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_tiny_piper_voice(out_dir: Path, multi_speaker: bool = False) -> Path:
    """A Piper voice (``.onnx`` + ``.onnx.json``) in ``out_dir``; returns the ``.onnx`` path."""
    return script("make_tiny_piper_voice").make_tiny_voice(out_dir, multi_speaker=multi_speaker)


def make_tiny_kokoro(out_dir: Path, per_voice: bool = False, duration_output: bool = False) -> Path:
    """A Kokoro model folder; returns it."""
    return script("make_tiny_kokoro").make_tiny_kokoro(out_dir, per_voice=per_voice, duration_output=duration_output)


def make_tiny_supertonic(out_dir: Path, version: int = 2, seed: int = 0) -> Path:
    """A Supertonic model folder of layout ``version`` (1, 2 or 3); returns it."""
    return script("make_tiny_supertonic").make_tiny_supertonic(out_dir, version, seed)
