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

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...engine import ModelLoadError
from ...hub import HubModel, repo_cache_dir, snapshots

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


HUB = HubModel("CosyVoice3", KNOWN[0], REQUIRED, missing_files, DOWNLOAD_PATTERNS, aliases=ALIASES)


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
    repo_id, revision = HUB.parse(model_ref)
    revision = revision or str(options.get("revision") or "") or None
    candidates = snapshots(repo_cache_dir(repo_id), revision)
    found = HUB.cached(candidates)
    if found is not None:
        return ModelFiles(found, f"{repo_id} ({found})")
    if not options.get("allow_download"):
        raise HUB.refuse(repo_id, revision, candidates)
    return ModelFiles(HUB.download(repo_id, revision, candidates), repo_id)


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
