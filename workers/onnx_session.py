"""ONNX Runtime sessions for the ONNX engines: providers per device and uniform load errors.

On "cpu" only the CPU provider is asked for (with ``onnxruntime-gpu`` installed, asking for CUDA on a
machine without it logs an error and falls back); on "cuda"/"cuda:N" CUDA first, then the CPU for the
operators CUDA lacks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .engine import ModelLoadError


def providers(device: str) -> list[Any]:
    """ONNX Runtime providers for "cpu", "cuda" or "cuda:N"; ModelLoadError when the device is unusable."""
    import onnxruntime as ort

    if device == "cpu":
        return ["CPUExecutionProvider"]
    kind, _, index = device.partition(":")
    if kind != "cuda" or (index and not index.isdigit()):
        raise ModelLoadError(f"unsupported device {device!r} (cpu, cuda, cuda:N)")
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        raise ModelLoadError(f"device {device!r} needs onnxruntime-gpu (CUDAExecutionProvider is unavailable)")
    # HEURISTIC: the default exhaustive cuDNN search would run again for every new input length
    cuda = {"device_id": int(index or 0), "cudnn_conv_algo_search": "HEURISTIC"}
    return [("CUDAExecutionProvider", cuda), "CPUExecutionProvider"]


def open_session(model: str | Path | bytes, device: str, *, intra_op_threads: int | None = None,
                 inter_op_threads: int | None = None, name: str | Path | None = None) -> Any:
    """An InferenceSession on ``device``; thread counts of None or 0 keep ONNX Runtime's defaults.
    ``model`` is a path or a serialized graph; ``name`` is what errors call it."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if intra_op_threads:
        options.intra_op_num_threads = int(intra_op_threads)
    if inter_op_threads:
        options.inter_op_num_threads = int(inter_op_threads)
    chosen = providers(device)
    source = model if isinstance(model, bytes) else str(model)
    try:
        return ort.InferenceSession(source, sess_options=options, providers=chosen)
    except Exception as exc:  # onnxruntime raises its own exception types for bad files
        raise ModelLoadError(f"ONNX Runtime could not load {name or model}: {exc}") from exc


def shrinking_run_options(session: Any) -> Any:
    """RunOptions that hand the memory arenas' unused extensions back at the end of the run.

    ONNX Runtime's arena keeps the peak of every run for good. A run far larger than the warm-up's (Piper at
    speed 0.25 makes four times the audio per phoneme) would otherwise leave the worker ~100 MB over its
    warm size for the rest of its life. Shrinking after every run costs about 10 % of a Piper step on one
    thread (its next run re-extends the arena), so engines pass these only for such oversized runs."""
    import onnxruntime as ort

    devices = ["cpu:0"]
    if "CUDAExecutionProvider" in session.get_providers():
        provider_options = session.get_provider_options().get("CUDAExecutionProvider", {})
        devices.append(f"gpu:{provider_options.get('device_id', 0)}")
    options = ort.RunOptions()
    options.add_run_config_entry("memory.enable_memory_arena_shrinkage", ";".join(devices))
    return options


def expose_output(model: Any, tensor: str) -> None:
    """Make an intermediate ``tensor`` of an ``onnx.ModelProto`` a graph output, keeping its declared type
    (exports record it in ``value_info``: float16 in fp16 graphs), else float32: how Piper and Kokoro get
    the per-phoneme durations their graphs compute but do not return, for word timestamps."""
    import onnx  # only engines that rewrite their graph need it

    typed = {v.name: v for v in model.graph.value_info}
    output = onnx.ValueInfoProto()
    if tensor in typed:
        output.CopyFrom(typed[tensor])
    else:
        output = onnx.helper.make_tensor_value_info(tensor, onnx.TensorProto.FLOAT, None)
    model.graph.output.append(output)
