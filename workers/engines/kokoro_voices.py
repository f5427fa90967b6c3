"""Kokoro's voices: style packs (one 256-d row per token count) read from a pack or a folder, and blends.

A blend is a weighted mix of packs, row by row. Two spellings are read: vTTS's ``"a:0.7+b:0.3"`` and
Kokoro-FastAPI's ``"a(7)+b(3)"``; weights are normalized to sum 1. The frontend passes a blend through
untouched, so this module is the only place that knows the syntax.
"""

from __future__ import annotations

import math
import re
import zipfile
from pathlib import Path

import numpy as np

from ..engine import EngineError, ModelLoadError

STYLE_DIM = 256
#: blends kept computed per engine (blends are client input, so the cache is bounded)
MAX_CACHED_BLENDS = 64


def _as_pack(name: str, array: np.ndarray, where: Path) -> np.ndarray:
    """A voice as [rows, dim] float32 (packs are stored [510, 1, 256])."""
    arr = np.asarray(array, dtype=np.float32)
    if arr.ndim == 3 and arr.shape[1] == 1:
        arr = arr[:, 0, :]
    if arr.ndim != 2 or arr.shape[0] < 1:
        raise ModelLoadError(f"voice {name!r} in {where} has shape {array.shape}; expected [rows, 1, 256]")
    return arr


def _read_voice_file(file: Path, style_dim: int) -> dict[str, np.ndarray]:
    """NAME.npy, an npz pack (whatever its suffix), or a raw float32 NAME.bin (onnx-community's layout)."""
    try:
        if file.suffix == ".bin" and not zipfile.is_zipfile(file):
            raw = np.fromfile(file, dtype="<f4")
            if raw.size == 0 or raw.size % style_dim:
                raise ModelLoadError(f"{file} is not a voice: {raw.size} floats, not rows of {style_dim}")
            return {file.stem: raw.reshape(-1, style_dim)}
        loaded = np.load(file, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot read Kokoro voices {file}: {exc}") from exc
    if isinstance(loaded, np.ndarray):
        return {file.stem: _as_pack(file.stem, loaded, file)}
    with loaded:
        return {name: _as_pack(name, loaded[name], file) for name in loaded.files}


def load_voices(path: Path, style_dim: int = STYLE_DIM) -> dict[str, np.ndarray]:
    """Voices from a pack (``voices-v1.0.bin`` is an npz archive) or a folder of per-voice arrays
    (NAME.npy, or NAME.bin raw float32). hexgrad's NAME.pt files need torch: convert them to .npy."""
    files = sorted(p for p in path.iterdir() if p.suffix in (".npy", ".bin")) if path.is_dir() else [path]
    voices: dict[str, np.ndarray] = {}
    for file in files:
        voices.update(_read_voice_file(file, style_dim))
    if not voices:
        raise ModelLoadError(f"no voices in {path}")
    dims = {v.shape[1] for v in voices.values()}
    if len(dims) != 1:
        raise ModelLoadError(f"voices in {path} disagree on the style size: {sorted(dims)}")
    return dict(sorted(voices.items()))


def _blend_weight(name: str, raw: str | None) -> float:
    if raw is None:
        return 1.0
    try:
        weight = float(raw)
    except ValueError:
        raise EngineError(f"voice blend weight {raw.strip()!r} of {name!r} is not a number", param="voice") from None
    if not (math.isfinite(weight) and weight > 0):
        raise EngineError(f"voice blend weight of {name!r} must be a positive number, got {raw.strip()}", "voice")
    return weight


#: one part of a blend: ``name``, ``name:weight`` (vTTS) or ``name(weight)`` (Kokoro-FastAPI)
_BLEND_PART = re.compile(r"\s*(?P<name>[^:()+]*?)\s*(?::(?P<colon>[^()]*)|\((?P<paren>[^()]*)\))?\s*")


def parse_blend(spec: str) -> list[tuple[str, float]]:
    """A voice or a blend of voices -> [(name, weight)], weights normalized to sum 1; a part without a weight
    counts 1. Both ``"jf_alpha:0.7+jf_nezumi:0.3"`` (vTTS) and ``"jf_alpha(7)+jf_nezumi(3)"`` (Kokoro-FastAPI)
    are read. EngineError(param="voice") for empty parts, repeated names or weights that are not positive
    finite numbers."""
    parts: list[tuple[str, float]] = []
    for part in spec.split("+"):
        match = _BLEND_PART.fullmatch(part)
        name = match["name"] if match else ""
        if not name:
            raise EngineError(f"voice blend {spec!r} has an empty or malformed part {part.strip()!r}; write "
                              "name:weight+name:weight or name(weight)+name(weight)", param="voice")
        if any(name == known for known, _ in parts):
            raise EngineError(f"voice {name!r} appears twice in the blend {spec!r}", param="voice")
        raw = match["colon"] if match["colon"] is not None else match["paren"]
        parts.append((name, _blend_weight(name, raw)))
    total = sum(w for _, w in parts)
    return [(name, w / total) for name, w in parts]


def blend(packs: dict[str, np.ndarray], spec: str) -> tuple[np.ndarray, str]:
    """(the mixed pack, its first voice) for a blend ``spec``; EngineError ``voice_not_found`` naming the first
    unknown voice (with the known ones), or ``invalid_request`` for a malformed spec."""
    parts = parse_blend(spec)
    unknown = [name for name, _ in parts if name not in packs]
    if unknown:
        raise EngineError(f"unknown voice {unknown[0]!r}; this model has: {', '.join(packs)}", param="voice",
                          code="voice_not_found")
    rows = min(len(packs[name]) for name, _ in parts)
    mixed = sum(weight * packs[name][:rows] for name, weight in parts)
    return np.asarray(mixed, dtype=np.float32), parts[0][0]
