"""Where a Supertonic model's files come from, and reading them.

A model reference is a local directory (``MODEL/onnx/...`` and ``MODEL/voice_styles/*.json``; pointing at
the ``onnx`` folder itself works too) or a Hugging Face id, ``Supertone/supertonic-2`` or
``Supertone/supertonic-2@REVISION`` (the package names ``supertonic``, ``supertonic-2``, ``supertonic-3``
mean the same repositories). An id is looked up, without any network, in the Hugging Face cache
(``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else ``~/.cache/huggingface/hub``) at the pinned revision, and in
the ``supertonic`` package's own cache (``$SUPERTONIC_CACHE_DIR`` or ``~/.cache/supertonic{,2,3}``). Only
when the model's options say ``allow_download = true`` is ``huggingface_hub`` asked to fetch it. Failing all
that, :class:`ModelLoadError` lists the missing files and every place searched.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..engine import ModelLoadError
from ..hub import HubModel, repo_cache_dir, snapshots

GRAPHS = ("duration_predictor", "text_encoder", "vector_estimator", "vocoder")
REQUIRED = tuple(f"onnx/{g}.onnx" for g in GRAPHS) + ("onnx/tts.json", "onnx/unicode_indexer.json")
VOICES_GLOB = "voice_styles/*.json"


@dataclass(frozen=True)
class KnownRepo:
    """A released Supertonic repository: its version, the revision the ``supertonic`` package pins (so a
    given vTTS install loads the weights it was tested with) and that package's cache folder name."""

    version: int
    revision: str
    package_cache: str


KNOWN: dict[str, KnownRepo] = {
    "Supertone/supertonic": KnownRepo(1, "b6856d033f622c63ea29441795be266a1133e227", "supertonic"),
    "Supertone/supertonic-2": KnownRepo(2, "75e6727618a02f323c720cba9478152d4bc16ca4", "supertonic2"),
    "Supertone/supertonic-3": KnownRepo(3, "724fb5abbf5502583fb520898d45929e62f02c0b", "supertonic3"),
}
ALIASES = {"supertonic": "Supertone/supertonic", "supertonic-1": "Supertone/supertonic",
           "supertonic-2": "Supertone/supertonic-2", "supertonic-3": "Supertone/supertonic-3"}


@dataclass(frozen=True)
class ModelFiles:
    """A complete model directory, and the version its origin implies (None for a bare directory)."""

    root: Path
    version: int | None = None
    origin: str = ""


def missing_files(root: Path) -> list[str]:
    """The required files absent from ``root`` (relative names; voices as ``voice_styles/*.json``)."""
    missing = [rel for rel in REQUIRED if not (root / rel).is_file()]
    if not any((root / "voice_styles").glob("*.json")):
        missing.append(VOICES_GLOB)
    return missing


HUB = HubModel("Supertonic", "Supertone/supertonic-2", (*REQUIRED, VOICES_GLOB), missing_files,
               ("onnx/*", "voice_styles/*"), "pip install 'vtts[supertonic]'", ALIASES)


def package_cache_dir(known: KnownRepo) -> Path:
    """Where ``supertonic.TTS`` keeps this model (``$SUPERTONIC_CACHE_DIR`` overrides, for every model)."""
    env = os.environ.get("SUPERTONIC_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / known.package_cache


def resolve(model_ref: str, options: dict[str, Any]) -> ModelFiles:
    """A complete model directory for ``model_ref`` (see the module docstring); ModelLoadError otherwise.
    ``options``: ``revision`` (when the reference names none) and ``allow_download``."""
    path = Path(model_ref).expanduser()
    if path.is_dir():
        return _local(path)
    repo_id, revision = HUB.parse(model_ref)
    return _from_hub(repo_id, revision or str(options.get("revision") or "") or None,
                     bool(options.get("allow_download")))


def _local(path: Path) -> ModelFiles:
    root = path.parent if path.name == "onnx" and (path / "tts.json").is_file() else path
    missing = missing_files(root)
    if missing:
        raise ModelLoadError(f"Supertonic model directory {root} is incomplete: missing {', '.join(missing)}")
    return ModelFiles(root, None, str(root))


def _from_hub(repo_id: str, revision: str | None, allow_download: bool) -> ModelFiles:
    """The caches first (never the network), then huggingface_hub if allowed."""
    known = KNOWN.get(repo_id)
    version = known.version if known else None
    pinned = revision or (known.revision if known else None)
    candidates = snapshots(repo_cache_dir(repo_id), revision, pinned)
    if known and not revision:
        candidates.append(package_cache_dir(known))
    found = HUB.cached(candidates)
    if found is not None:
        return ModelFiles(found, version, f"{repo_id} ({found})")
    if allow_download:
        return ModelFiles(HUB.download(repo_id, pinned, candidates), version, repo_id)
    raise HUB.refuse(repo_id, pinned, candidates)


# --------------------------------------------------------------------------- reading the files


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot read {path}: {exc}") from exc


@dataclass(frozen=True)
class Geometry:
    """The latent layout from ``tts.json``: one latent frame is ``base_chunk_size * chunk_compress_factor``
    samples and has ``latent_dim * chunk_compress_factor`` channels."""

    sample_rate: int
    base_chunk_size: int
    chunk_compress_factor: int
    latent_dim: int

    @property
    def frame_samples(self) -> int:
        return self.base_chunk_size * self.chunk_compress_factor

    @property
    def channels(self) -> int:
        return self.latent_dim * self.chunk_compress_factor

    @classmethod
    def from_config(cls, cfg: dict[str, Any], path: Path) -> Geometry:
        try:
            return cls(int(cfg["ae"]["sample_rate"]), int(cfg["ae"]["base_chunk_size"]),
                       int(cfg["ttl"]["chunk_compress_factor"]), int(cfg["ttl"]["latent_dim"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelLoadError(f"{path} lacks ae.sample_rate, ae.base_chunk_size, ttl.latent_dim or "
                                 f"ttl.chunk_compress_factor: {exc!r}") from exc


def load_style(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A voice style file -> (style_ttl [N, D], style_dp [M, K]) for one voice."""
    raw = read_json(path)
    try:
        ttl = np.asarray(raw["style_ttl"]["data"], dtype=np.float32).reshape(raw["style_ttl"]["dims"])
        dp = np.asarray(raw["style_dp"]["data"], dtype=np.float32).reshape(raw["style_dp"]["dims"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelLoadError(f"bad voice style {path}: expected style_ttl and style_dp with dims and data "
                             f"({exc!r})") from exc
    if ttl.shape[0] != 1 or dp.shape[0] != 1 or ttl.ndim != 3 or dp.ndim != 3:
        raise ModelLoadError(f"bad voice style {path}: dims {ttl.shape} / {dp.shape}, expected [1, N, D] each")
    return ttl[0], dp[0]


def load_styles(directory: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Every ``*.json`` voice in ``directory`` by name; all must share their dims (they batch together)."""
    styles = {p.stem: load_style(p) for p in sorted(directory.glob("*.json"))}
    shapes = {(ttl.shape, dp.shape) for ttl, dp in styles.values()}
    if len(shapes) > 1:
        raise ModelLoadError(f"the voice styles in {directory} disagree on their dims: {sorted(shapes)}")
    return styles


def detect_version(files: ModelFiles, cfg: dict[str, Any], indexer: list[int], option: Any) -> int:
    """Supertonic 1, 2 or 3: the options' ``version``, else what the repository id says, else the files:
    ``split: opensource-en`` is 1; an indexer that reads kana or Cyrillic is 3; other multilingual ones 2."""
    if option not in (None, ""):
        if str(option) not in ("1", "2", "3"):
            raise ModelLoadError(f"options.version must be 1, 2 or 3, got {option!r}")
        return int(option)
    if files.version:
        return files.version
    if str(cfg.get("split", "")).endswith("-en"):
        return 1

    def reads(char: str) -> bool:
        return ord(char) < len(indexer) and indexer[ord(char)] >= 0

    if reads("\u3042") or reads("\u0434"):  # あ, д
        return 3
    return 2 if reads("\u1100") or "multilingual" in str(cfg.get("split", "")) else 1
