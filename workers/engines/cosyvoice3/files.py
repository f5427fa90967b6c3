"""Where a CosyVoice3 model directory comes from, and what it must hold.

A model reference is a local directory laid out as upstream's release (``cosyvoice3.yaml``, ``llm.pt``,
``flow.pt``, ``hift.pt``, ``campplus.onnx``, ``speech_tokenizer_v3.onnx``, ``CosyVoice-BlankEN/`` with the Qwen2
``config.json`` and ``model.safetensors``; optional ``spk2info.pt``), or a Hugging Face id
(``FunAudioLLM/Fun-CosyVoice3-0.5B-2512``, optionally ``@REVISION``). An id is looked up in the local Hugging
Face cache first, never the network; only a model entry with ``allow_download = true`` asks
``huggingface_hub`` to fetch it. Failing that, :class:`ModelLoadError` says what is missing and where it looked.

Nothing here imports torch: ``detect`` runs in the supervisor (``vtts serve PATH``).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...engine import ModelLoadError
from ..supertonic_files import hub_cache_dir, offline

log = logging.getLogger(__name__)

CONFIG = "cosyvoice3.yaml"
QWEN_DIR = "CosyVoice-BlankEN"
REQUIRED = (CONFIG, "llm.pt", "flow.pt", "hift.pt", "campplus.onnx", "speech_tokenizer_v3.onnx",
            f"{QWEN_DIR}/config.json", f"{QWEN_DIR}/model.safetensors")
SPEAKERS = "spk2info.pt"
#: the released repositories this engine knows; a plain id of another repository is tried the same way
KNOWN = ("FunAudioLLM/Fun-CosyVoice3-0.5B-2512",)
ALIASES = {"cosyvoice3": KNOWN[0], "fun-cosyvoice3": KNOWN[0], "Fun-CosyVoice3-0.5B": KNOWN[0]}
#: what a download fetches: the files above, nothing else of the repository (TensorRT plans, batch graphs)
DOWNLOAD_PATTERNS = [*REQUIRED, SPEAKERS, f"{QWEN_DIR}/*"]
_HUB_ID = re.compile(r"^(?P<repo>[A-Za-z0-9][\w.-]*/[\w.-]+)(?:@(?P<rev>[\w./-]+))?$")


@dataclass(frozen=True)
class ModelFiles:
    """A complete model directory and where it came from (for logs and errors)."""

    root: Path
    origin: str

    @property
    def config(self) -> Path:
        return self.root / CONFIG

    @property
    def qwen(self) -> Path:
        return self.root / QWEN_DIR

    @property
    def speakers(self) -> Path | None:
        """``spk2info.pt`` when the model ships built-in speakers."""
        path = self.root / SPEAKERS
        return path if path.is_file() else None

    def path(self, name: str) -> Path:
        return self.root / name


def missing_files(root: Path) -> list[str]:
    """The required files absent from ``root``, relative names."""
    return [rel for rel in REQUIRED if not (root / rel).is_file()]


def looks_like_model(path: Path) -> bool:
    """Cheap check for ``detect``: the directory has the CosyVoice3 config and the LM checkpoint."""
    return (path / CONFIG).is_file() and (path / "llm.pt").is_file()


def is_hub_id(model_ref: str) -> bool:
    """True for a reference this engine claims without a directory: a known repository or alias."""
    name = model_ref.strip().partition("@")[0]
    return name in KNOWN or name in ALIASES


def resolve(model_ref: str, options: dict[str, Any]) -> ModelFiles:
    """A complete model directory for ``model_ref`` (see the module docstring); ModelLoadError otherwise.
    ``options``: ``revision`` (when the reference names none) and ``allow_download``."""
    path = Path(model_ref).expanduser()
    if path.is_dir():
        missing = missing_files(path)
        if missing:
            raise ModelLoadError(f"CosyVoice3 model directory {path} is incomplete: missing {', '.join(missing)}")
        return ModelFiles(path, str(path))
    repo_id, revision = parse_hub_id(model_ref)
    revision = revision or str(options.get("revision") or "") or None
    candidates = snapshots(hub_cache_dir() / f"models--{repo_id.replace('/', '--')}", revision)
    for candidate in candidates:
        if candidate.is_dir() and not missing_files(candidate):
            return ModelFiles(candidate, f"{repo_id} ({candidate})")
    if not options.get("allow_download"):
        raise ModelLoadError(_not_found(repo_id, revision, candidates, "downloads are off: options.allow_download "
                                                                        "is false"))
    return ModelFiles(_download(repo_id, revision, candidates), repo_id)


def parse_hub_id(model_ref: str) -> tuple[str, str | None]:
    """(repository, revision or None) of a hub reference; ModelLoadError for anything else."""
    ref = model_ref.strip()
    name, _, rev = ref.partition("@")
    if name in ALIASES:
        return ALIASES[name], rev or None
    match = _HUB_ID.match(ref)
    if not match or ref.startswith((".", "/", "~")):
        raise ModelLoadError(f"no CosyVoice3 model at {model_ref!r}: not a directory, and not a Hugging Face id "
                             f"such as '{KNOWN[0]}' or '{KNOWN[0]}@REVISION'")
    return match["repo"], match["rev"]


def snapshots(repo_dir: Path, revision: str | None) -> list[Path]:
    """Snapshot folders of a cached repository to try, best first: the asked revision (a commit or a ref name);
    without one, what ``refs/main`` points at, then the others, newest first."""
    def by_ref(name: str) -> Path:
        ref = repo_dir / "refs" / name
        return repo_dir / "snapshots" / (ref.read_text(encoding="utf-8").strip() if ref.is_file() else name)

    if revision:
        return [by_ref(revision)]
    found = [by_ref("main")] if (repo_dir / "refs" / "main").is_file() else []
    if (repo_dir / "snapshots").is_dir():
        found += sorted((p for p in (repo_dir / "snapshots").iterdir() if p.is_dir()), key=lambda p: -p.stat().st_mtime)
    return list(dict.fromkeys(found))


def _not_found(repo_id: str, revision: str | None, candidates: list[Path], why: str) -> str:
    lines = [f"CosyVoice3 model {repo_id}{'@' + revision if revision else ''} is not on this machine ({why})."]
    for c in candidates:
        lines.append(f"  looked in {c}: {'absent' if not c.is_dir() else 'missing ' + ', '.join(missing_files(c))}")
    if not candidates:
        lines.append(f"  looked in {hub_cache_dir()}: no snapshot of {repo_id}")
    lines.append(f"  needs: {', '.join(REQUIRED)}")
    lines.append(f"  fetch it with: hf download {repo_id}{' --revision ' + revision if revision else ''} "
                 "(pip install huggingface_hub), or set options.allow_download = true")
    return "\n".join(lines)


def _download(repo_id: str, revision: str | None, candidates: list[Path]) -> Path:
    """huggingface_hub's snapshot_download into its cache; ModelLoadError when offline, not installed, or the
    network refuses."""
    if offline():
        raise ModelLoadError(_not_found(repo_id, revision, candidates, "HF_HUB_OFFLINE is set"))
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise ModelLoadError(_not_found(repo_id, revision, candidates,
                                        "downloading needs huggingface_hub: pip install huggingface_hub")) from None
    log.info("downloading %s@%s from the Hugging Face Hub", repo_id, revision or "main")
    try:
        root = Path(snapshot_download(repo_id, revision=revision, allow_patterns=DOWNLOAD_PATTERNS))
    except Exception as exc:  # network errors, unknown repository or revision: all end the load the same way
        raise ModelLoadError(_not_found(repo_id, revision, candidates, f"download failed: {exc}")) from exc
    missing = missing_files(root)
    if missing:
        raise ModelLoadError(f"downloaded {repo_id} to {root} but it lacks {', '.join(missing)}")
    return root


def read_config(files: ModelFiles) -> dict[str, Any]:
    """The parts of ``cosyvoice3.yaml`` the engine reads, as plain values (the file is HyperPyYAML: its
    ``!new:``/``!name:``/``!ref`` tags are read as mappings and strings, never executed)."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def tagged(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
        if isinstance(node, yaml.MappingNode):
            return {"_target": suffix, **loader.construct_mapping(node, deep=True)}
        if isinstance(node, yaml.SequenceNode):
            return loader.construct_sequence(node, deep=True)
        return loader.construct_scalar(node)

    Loader.add_multi_constructor("!", tagged)
    try:
        raw = yaml.load(files.config.read_text(encoding="utf-8"), Loader=Loader)  # noqa: S506 - SafeLoader subclass
    except (OSError, yaml.YAMLError) as exc:
        raise ModelLoadError(f"cannot read {files.config}: {exc}") from exc
    if not isinstance(raw, dict):
        raise ModelLoadError(f"{files.config} is not a mapping")
    return raw
