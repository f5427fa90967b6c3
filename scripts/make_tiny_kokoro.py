"""Write a tiny deterministic Kokoro-shaped model folder (about 100 kB) for tests.

The graph honours the Kokoro v1.0 ONNX contract — inputs ``tokens`` int64 [1, T] (0-padded at both ends),
``style`` float32 [1, 256], ``speed`` float32 [1]; output ``audio`` float32 [samples] — and computes its
per-token durations the way Kokoro does (``Clip(Round(sigmoid(x) * k / speed), min=1)``), so the engine's
loading, durations tensor discovery, feeding and timestamps run for real without the 92–310 MB model. The
audio is a sine 600 samples per duration frame long, whose pitch follows the style row (so voices and
blends differ).

Files: ``kokoro-v1.0.onnx`` and ``voices-v1.0.bin`` (an npz pack of NAME -> [ROWS, 1, 256]), or with
``--per-voice`` a ``voices/`` folder of NAME.npy. ``--duration-output`` also exposes the durations as a
``duration`` output, as newer exports do.

Usage: python scripts/make_tiny_kokoro.py OUT_DIR [--per-voice] [--duration-output]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HOP = 600  # samples per duration frame, as in Kokoro (24 kHz, 40 frames a second)
VOCAB_SIZE = 178  # Kokoro v1.0's embedding rows (ids 0..177)
STYLE_DIM = 256
ROWS = 64  # a real pack has 510 rows (one per token count); fewer exercise the engine's clamp
VOICES = ("af_tiny", "bm_tiny", "jf_tiny", "jm_tiny")
MAX_FRAMES_PER_TOKEN = 8.0


def _const(name: str, value: np.ndarray | float) -> onnx.NodeProto:
    array = np.asarray(value, dtype=np.float32) if not isinstance(value, np.ndarray) else value
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(array, name))


def _nodes(duration_output: bool) -> list[onnx.NodeProto]:
    emb = np.random.default_rng(7).normal(0.0, 1.5, VOCAB_SIZE).astype(np.float32)
    nodes = [
        _const("emb", emb),
        _const("k", MAX_FRAMES_PER_TOKEN),
        _const("one", 1.0),
        _const("zero", 0.0),
        _const("hop", float(HOP)),
        _const("base", 0.03),
        _const("span", 0.04),
        _const("amp", 0.3),
        # durations [1, T]: Kokoro's round(sigmoid(...).sum() / speed).clamp(min=1)
        helper.make_node("Gather", ["emb", "tokens"], ["logits"], axis=0),
        helper.make_node("Sigmoid", ["logits"], ["probs"]),
        helper.make_node("Mul", ["probs", "k"], ["raw_dur"]),
        helper.make_node("Div", ["raw_dur", "speed"], ["scaled_dur"]),
        helper.make_node("Round", ["scaled_dur"], ["rounded"]),
        helper.make_node("Clip", ["rounded", "one", ""], ["dur"]),
        # samples = sum(dur) * HOP
        helper.make_node("ReduceSum", ["dur"], ["frames"], keepdims=0),
        helper.make_node("Mul", ["frames", "hop"], ["samples"]),
        helper.make_node("Range", ["zero", "samples", "one"], ["t"]),
        # pitch from the style: base + span * sigmoid(mean(style))
        helper.make_node("ReduceMean", ["style"], ["style_mean"], keepdims=0),
        helper.make_node("Sigmoid", ["style_mean"], ["style_gate"]),
        helper.make_node("Mul", ["style_gate", "span"], ["pitch_shift"]),
        helper.make_node("Add", ["pitch_shift", "base"], ["pitch"]),
        helper.make_node("Mul", ["t", "pitch"], ["phase"]),
        helper.make_node("Sin", ["phase"], ["wave"]),
        helper.make_node("Mul", ["wave", "amp"], ["audio"]),
    ]
    if duration_output:
        nodes.append(helper.make_node("Cast", ["dur"], ["duration"], to=TensorProto.INT64))
    return nodes


def make_graph(duration_output: bool = False) -> onnx.ModelProto:
    inputs = [
        helper.make_tensor_value_info("tokens", TensorProto.INT64, [1, "sequence_length"]),
        helper.make_tensor_value_info("style", TensorProto.FLOAT, [1, STYLE_DIM]),
        helper.make_tensor_value_info("speed", TensorProto.FLOAT, [1]),
    ]
    outputs = [helper.make_tensor_value_info("audio", TensorProto.FLOAT, ["audio_length"])]
    if duration_output:
        outputs.append(helper.make_tensor_value_info("duration", TensorProto.INT64, [1, "sequence_length"]))
    graph = helper.make_graph(_nodes(duration_output), "tiny_kokoro", inputs, outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="vtts-tiny-kokoro")
    model.ir_version = 8  # readable by every ONNX Runtime the project supports
    onnx.checker.check_model(model)
    return model


def make_voices(rows: int = ROWS) -> dict[str, np.ndarray]:
    """One pack per voice; each voice's rows share an offset so its pitch is its own."""
    rng = np.random.default_rng(11)
    return {
        name: (rng.normal(0.0, 0.1, (rows, 1, STYLE_DIM)) + (i - 1.5)).astype(np.float32)
        for i, name in enumerate(VOICES)
    }


def make_tiny_kokoro(out_dir: Path, per_voice: bool = False, duration_output: bool = False) -> Path:
    """Write the folder and return it."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx.save(make_graph(duration_output), str(out_dir / "kokoro-v1.0.onnx"))
    voices = make_voices()
    if per_voice:
        (out_dir / "voices").mkdir(exist_ok=True)
        for name, pack in voices.items():
            np.save(out_dir / "voices" / f"{name}.npy", pack)
    else:
        with open(out_dir / "voices-v1.0.bin", "wb") as f:  # a file object: np.savez would append .npz
            np.savez(f, **voices)
    return out_dir


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--per-voice", action="store_true", help="write voices/NAME.npy instead of voices-v1.0.bin")
    ap.add_argument("--duration-output", action="store_true", help="also output the durations as 'duration'")
    args = ap.parse_args()
    print(make_tiny_kokoro(args.out_dir, args.per_voice, args.duration_output))


if __name__ == "__main__":
    main()
