"""Reading GPT-SoVITS checkpoint files without running their code.

Both formats are torch pickles: the GPT's ``.ckpt`` (``{"config": s1 config, "weight": state dict with
"model." prefixes}``) and SoVITS's ``.pth`` (``{"weight": fp16 state dict, "config": {"model", "data", ...},
"info"}``). Unpickling an untrusted file can run arbitrary code, so this module reads them with torch's
restricted unpickler (``weights_only=True``: tensors, storages, dicts, lists, tuples, plain values), widened
by exactly one name: upstream's training script saves its hyper-parameters as ``utils.HParams`` objects,
which are read back as plain attribute bags (:class:`_Attributes`) and turned into dicts. Any other global
in the pickle is refused with :class:`CheckpointError`.

The engine only passes files from the model directory the operator configured (``model`` of a model
entry), never a path that came with a request.

SoVITS files of v2Pro and later carry their version in the zip's first two bytes (where "PK" belongs):
``b"05"`` v2Pro, ``b"06"`` v2ProPlus, ``b"02"``-``b"04"`` v3/v4 and their LoRA variants. The tag is read,
"PK" restored in memory, and the file loaded from there. v3/v4 (a CFM + vocoder decoder) are refused.
"""

from __future__ import annotations

import io
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ...engine import ModelLoadError

#: a SoVITS file's first two bytes -> model version (upstream's tags; "PK" is an untagged zip)
VERSION_TAGS = {b"00": "v1", b"01": "v2", b"02": "v3", b"03": "v3", b"04": "v4", b"05": "v2Pro",
                b"06": "v2ProPlus"}
SUPPORTED = ("v2", "v2Pro", "v2ProPlus")
#: files larger than this are refused before reading (the largest real GPT-SoVITS file is ~750 MB)
MAX_BYTES = 4 << 30


class CheckpointError(ModelLoadError):
    """A checkpoint that cannot be read safely or is not a GPT-SoVITS file this engine serves."""


class _Attributes:
    """Stand-in for upstream's ``utils.HParams``: the unpickler fills ``__dict__`` and nothing else."""


def _plain(value: Any) -> Any:
    """``value`` with every :class:`_Attributes` turned into a dict, recursively."""
    if isinstance(value, _Attributes):
        return {k: _plain(v) for k, v in vars(value).items()}
    if isinstance(value, dict) and not isinstance(value, torch.Tensor):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    return value


def _read_bytes(path: str | Path) -> bytes:
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"checkpoint not found: {p}")
    size = p.stat().st_size
    if size > MAX_BYTES:
        raise CheckpointError(f"{p} is {size} bytes, over the {MAX_BYTES}-byte limit for a checkpoint")
    return p.read_bytes()


def safe_load(data: bytes, what: str = "checkpoint") -> Any:
    """Unpickle a torch checkpoint with the restricted loader (tensors, containers, plain values and
    ``utils.HParams`` as a dict); CheckpointError naming the refused global otherwise."""
    try:
        with torch.serialization.safe_globals([(_Attributes, "utils.HParams")]):
            obj = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True, mmap=False)
    except (pickle.UnpicklingError, RuntimeError, ValueError, EOFError, TypeError, AttributeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"refusing to load {what}: it is not a plain torch checkpoint ({first})") from exc
    return _plain(obj)


@dataclass
class GPTCheckpoint:
    """The text-to-semantic GPT: its s1 ``config`` and its state dict without the "model." prefix."""

    config: dict[str, Any]
    weights: dict[str, torch.Tensor]


@dataclass
class SoVITSCheckpoint:
    """The SoVITS decoder: ``version`` (v2, v2Pro, v2ProPlus), ``config`` (``model`` / ``data``) and its
    weights (fp16 in the file; cast by the caller)."""

    version: str
    config: dict[str, Any]
    weights: dict[str, torch.Tensor]


def load_gpt(path: str | Path) -> GPTCheckpoint:
    """Read a GPT ``.ckpt``: CheckpointError unless it holds ``config`` and ``weight``."""
    obj = safe_load(_read_bytes(path), f"GPT checkpoint {path}")
    if not isinstance(obj, dict) or not isinstance(obj.get("weight"), dict) or not isinstance(obj.get("config"), dict):
        raise CheckpointError(f"{path} is not a GPT-SoVITS GPT checkpoint (expected 'config' and 'weight')")
    weights = {k.removeprefix("model."): v for k, v in obj["weight"].items() if isinstance(v, torch.Tensor)}
    if "ar_predict_layer.weight" not in weights:
        raise CheckpointError(f"{path} has no text-to-semantic weights (no ar_predict_layer.weight)")
    return GPTCheckpoint(obj["config"], weights)


def sovits_version(data: bytes, config: dict[str, Any] | None = None,
                   weights: dict[str, torch.Tensor] | None = None) -> str:
    """The SoVITS version: the file's tag when it has one, else the config's ``model.version``, else what
    the weights show (v2Pro's speaker-embedding projection ``sv_emb``), else v2."""
    tag = VERSION_TAGS.get(data[:2]) if data[:2] != b"PK" else None
    if tag:
        return tag
    version = ((config or {}).get("model") or {}).get("version")
    if isinstance(version, str) and version:
        return version
    if weights and any(k.startswith("sv_emb.") for k in weights):
        return "v2Pro"
    if weights and any(k.startswith(("cfm.", "bigvgan.")) for k in weights):
        return "v3"
    return "v2"


def load_sovits(path: str | Path) -> SoVITSCheckpoint:
    """Read a SoVITS ``.pth`` (tagged or not); CheckpointError for v1, v3/v4 or a file that is not one."""
    data = _read_bytes(path)
    tagged = data[:2] != b"PK"
    if tagged and data[:2] not in VERSION_TAGS:
        raise CheckpointError(f"{path} is not a SoVITS checkpoint (neither a zip nor a known version tag)")
    if tagged and VERSION_TAGS[data[:2]] in ("v3", "v4"):
        raise CheckpointError(f"{path} is a GPT-SoVITS {VERSION_TAGS[data[:2]]} model (CFM decoder + vocoder); "
                              f"this engine serves {', '.join(SUPPORTED)} only")
    obj = safe_load(b"PK" + data[2:] if tagged else data, f"SoVITS checkpoint {path}")
    if not isinstance(obj, dict) or not isinstance(obj.get("weight"), dict):
        raise CheckpointError(f"{path} is not a SoVITS checkpoint (expected 'weight' and 'config')")
    config = obj.get("config") if isinstance(obj.get("config"), dict) else {}
    weights = {k: v for k, v in obj["weight"].items() if isinstance(v, torch.Tensor)}
    version = sovits_version(data, config, weights)
    if version not in SUPPORTED:
        raise CheckpointError(f"{path} is a GPT-SoVITS {version} model; this engine serves "
                              f"{', '.join(SUPPORTED)} only (v3/v4 use a CFM decoder and a vocoder)")
    has_sv = "sv_emb.weight" in weights
    if version in ("v2Pro", "v2ProPlus") and not has_sv:
        raise CheckpointError(f"{path} says it is a GPT-SoVITS {version} model but has no speaker-embedding "
                              "projection (sv_emb.weight): a mis-tagged or truncated file")
    if version == "v2" and has_sv:
        raise CheckpointError(f"{path} says it is a GPT-SoVITS v2 model but has v2Pro weights (sv_emb.weight): "
                              "its version tag or config is wrong")
    return SoVITSCheckpoint(version, config, weights)
