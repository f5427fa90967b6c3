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
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..engine import ModelLoadError

log = logging.getLogger(__name__)

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
_HUB_ID = re.compile(r"^(?P<repo>[A-Za-z0-9][\w.-]*/[\w.-]+)(?:@(?P<rev>[\w./-]+))?$")


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


def hub_cache_dir() -> Path:
    """huggingface_hub's cache directory, by its own environment rules."""
    if os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE"):
        return Path(os.environ.get("HF_HUB_CACHE") or os.environ["HUGGINGFACE_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "huggingface")
    return Path(home).expanduser() / "hub"


def package_cache_dir(known: KnownRepo) -> Path:
    """Where ``supertonic.TTS`` keeps this model (``$SUPERTONIC_CACHE_DIR`` overrides, for every model)."""
    env = os.environ.get("SUPERTONIC_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / known.package_cache


def offline() -> bool:
    return any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on")
               for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def _snapshots(repo_dir: Path, revision: str | None, pinned: str | None) -> list[Path]:
    """Snapshot folders to try, best first: the asked revision (a commit or a ref name), else the pinned one,
    then what ``refs/main`` points at, then any other snapshot."""
    def by_ref(name: str) -> Path:
        ref = repo_dir / "refs" / name
        commit = ref.read_text(encoding="utf-8").strip() if ref.is_file() else name
        return repo_dir / "snapshots" / commit

    if revision:
        return [by_ref(revision)]
    found = [by_ref(pinned)] if pinned else []
    if (repo_dir / "refs" / "main").is_file():
        found.append(by_ref("main"))
    snapshots = repo_dir / "snapshots"
    if snapshots.is_dir():
        found += sorted((p for p in snapshots.iterdir() if p.is_dir()), key=lambda p: -p.stat().st_mtime)
    return list(dict.fromkeys(found))


def resolve(model_ref: str, options: dict[str, Any]) -> ModelFiles:
    """A complete model directory for ``model_ref`` (see the module docstring); ModelLoadError otherwise.
    ``options``: ``revision`` (when the reference names none) and ``allow_download``."""
    path = Path(model_ref).expanduser()
    if path.is_dir():
        return _local(path)
    repo_id, revision = _parse_hub_id(model_ref)
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
    repo_dir = hub_cache_dir() / f"models--{repo_id.replace('/', '--')}"
    candidates = _snapshots(repo_dir, revision, known.revision if known else None)
    if known and not revision:
        candidates.append(package_cache_dir(known))
    for candidate in candidates:
        if candidate.is_dir() and not missing_files(candidate):
            return ModelFiles(candidate, version, f"{repo_id} ({candidate})")
    if allow_download:
        root = _download(repo_id, revision or (known.revision if known else None), candidates)
        return ModelFiles(root, version, repo_id)
    why = "downloads are off: options.allow_download is false"
    raise ModelLoadError(_not_found(repo_id, revision, candidates, why))


def _parse_hub_id(model_ref: str) -> tuple[str, str | None]:
    ref = model_ref.strip()
    name, _, rev = ref.partition("@")
    if name in ALIASES:
        return ALIASES[name], rev or None
    match = _HUB_ID.match(ref)
    if not match or ref.startswith((".", "/", "~")):
        raise ModelLoadError(
            f"no Supertonic model at {model_ref!r}: not a directory, and not a Hugging Face id such as "
            "'Supertone/supertonic-2' or 'Supertone/supertonic-2@REVISION'"
        )
    return match["repo"], match["rev"]


def _not_found(repo_id: str, revision: str | None, candidates: list[Path], why: str) -> str:
    lines = [f"Supertonic model {repo_id}{'@' + revision if revision else ''} is not on this machine ({why})."]
    for c in candidates:
        state = "absent" if not c.is_dir() else "missing " + ", ".join(missing_files(c))
        lines.append(f"  looked in {c}: {state}")
    lines.append(f"  needs: {', '.join(REQUIRED)}, {VOICES_GLOB}")
    pinned = revision or (KNOWN[repo_id].revision if repo_id in KNOWN else "")
    lines.append(f"  fetch it with: hf download {repo_id}{' --revision ' + pinned if pinned else ''} "
                 "(pip install huggingface_hub), or set options.allow_download = true")
    return "\n".join(lines)


def _download(repo_id: str, revision: str | None, candidates: list[Path]) -> Path:
    """huggingface_hub's snapshot_download into its cache; ModelLoadError (with what was searched) when
    offline, not installed, or the network refuses."""
    if offline():
        raise ModelLoadError(_not_found(repo_id, revision, candidates, "HF_HUB_OFFLINE is set"))
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise ModelLoadError(_not_found(repo_id, revision, candidates,
                                        "downloading needs huggingface_hub: pip install 'vtts[supertonic]'")) from None
    log.info("downloading %s@%s from the Hugging Face Hub", repo_id, revision or "main")
    try:
        root = Path(snapshot_download(repo_id, revision=revision, allow_patterns=["onnx/*", "voice_styles/*"]))
    except Exception as exc:  # network errors, unknown repo or revision: all end the load the same way
        raise ModelLoadError(_not_found(repo_id, revision, candidates, f"download failed: {exc}")) from exc
    missing = missing_files(root)
    if missing:
        raise ModelLoadError(f"downloaded {repo_id} to {root} but it lacks {', '.join(missing)}")
    return root


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
