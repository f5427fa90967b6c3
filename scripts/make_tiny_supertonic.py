"""Write a tiny random-weight Supertonic model (v1, v2 or v3) with the real file layout and graph interfaces.

The layout is the one the Hugging Face repositories ``Supertone/supertonic{,-2,-3}`` ship::

    onnx/duration_predictor.onnx   text_ids i64 [B,T], style_dp f32 [B,8,16], text_mask f32 [B,1,T] -> [B]
    onnx/text_encoder.onnx         text_ids, style_ttl f32 [B,50,256], text_mask -> text_emb f32 [B,256,T]
    onnx/vector_estimator.onnx     noisy_latent f32 [B,144,L], text_emb, style_ttl, text_mask,
                                   latent_mask f32 [B,1,L], current_step f32 [B], total_step f32 [B]
                                   -> denoised_latent f32 [B,144,L]   (one Euler step, per item)
    onnx/vocoder.onnx              latent f32 [B,144,L] -> wav_tts f32 [B, L*3072]
    onnx/tts.json                  ae.sample_rate 44100, ae.base_chunk_size 512, ttl.latent_dim 24,
                                   ttl.chunk_compress_factor 6 (+ tts_version / split)
    onnx/unicode_indexer.json      a list indexed by code point: model id, or -1 for unsupported
    voice_styles/*.json            {"style_ttl": {"dims", "data"}, "style_dp": {"dims", "data"}}

The graphs behave like the real ones where it matters to a server: the text encoder, duration predictor and
vector estimator honour their masks (convolutions see zeros past an item's end, attention ignores padded
text), the vector estimator reads each item's own ``current_step``/``total_step``, and the vocoder does NOT
take a mask (two biased convolutions, so a shorter item padded next to a longer one hears the padding near
its end, as a real convolutional decoder would). Durations grow with the text (about 55 ms per character).

Usage: python scripts/make_tiny_supertonic.py OUT_DIR [--version 1|2|3]
       python scripts/make_tiny_supertonic.py HUB_DIR --hf-cache [--version N] [--revision SHA]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

SAMPLE_RATE = 44100
BASE_CHUNK_SIZE = 512
LATENT_DIM = 24
COMPRESS = 6
LATENT_CHANNELS = LATENT_DIM * COMPRESS  # 144
TEXT_DIM = 256
STYLE_TTL_DIMS = (1, 50, 256)
STYLE_DP_DIMS = (1, 8, 16)
VOCAB = 512
ATTN_DIM = 16
OPSET = 17

#: code point ranges each variant's indexer covers (after NFKD, which splits Hangul syllables into jamo and
#: accented letters into base + combining mark)
_ASCII = [(0x20, 0x7E), (0x0300, 0x036F)]
_V2 = [(0xA0, 0xFF), (0x1100, 0x11FF), (0x2018, 0x201D)]
_V3 = [(0x0100, 0x017F), (0x0370, 0x03FF), (0x0400, 0x04FF), (0x0600, 0x06FF), (0x0900, 0x097F),
       (0x3000, 0x30FF), (0x4E00, 0x9FFF)]
VARIANTS = {
    1: {"repo": "Supertone/supertonic", "ranges": _ASCII, "voices": ["F1", "F2", "M1", "M2"],
        "tts": {"tts_version": "v1.5.0", "split": "opensource-en"}},
    2: {"repo": "Supertone/supertonic-2", "ranges": _ASCII + _V2,
        "voices": [f"{g}{i}" for g in "FM" for i in range(1, 6)],
        "tts": {"tts_version": "v1.7.3", "split": "opensource-multilingual"}},
    3: {"repo": "Supertone/supertonic-3", "ranges": _ASCII + _V2 + _V3,
        "voices": [f"{g}{i}" for g in "FM" for i in range(1, 6)],
        "tts": {"tts_version": "tiny-3", "split": "opensource-multilingual"}},
}
#: the revisions the ``supertonic`` package pins (used by --hf-cache when no --revision is given)
PINNED = {
    1: "b6856d033f622c63ea29441795be266a1133e227",
    2: "75e6727618a02f323c720cba9478152d4bc16ca4",
    3: "724fb5abbf5502583fb520898d45929e62f02c0b",
}


class _Graph:
    """A small builder around onnx.helper: named constants, nodes, and a final model."""

    def __init__(self, name: str, seed: int) -> None:
        self.name = name
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []

    def const(self, name: str, value: np.ndarray | float | list[int]) -> str:
        arr = np.asarray(value, dtype=np.int64 if isinstance(value, list) else np.float32)
        self.inits.append(numpy_helper.from_array(arr, name))
        return name

    def weight(self, name: str, shape: tuple[int, ...], scale: float) -> str:
        return self.const(name, (self.rng.standard_normal(shape) * scale).astype(np.float32))

    def op(self, op_type: str, inputs: list[str], output: str, **attrs: object) -> str:
        self.nodes.append(helper.make_node(op_type, inputs, [output], **attrs))
        return output

    def model(self, inputs: list[onnx.ValueInfoProto], outputs: list[onnx.ValueInfoProto]) -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, self.name, inputs, outputs, initializer=self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="vtts-tiny")
        model.ir_version = 8
        onnx.checker.check_model(model)
        return model


def _f32(name: str, shape: list[str | int]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def _i64(name: str, shape: list[str | int]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.INT64, shape)


def _style_mean(g: _Graph, style: str, out: str) -> str:
    """[B, N, D] -> [B, D]: the style tokens' mean."""
    return g.op("ReduceMean", [style], out, axes=[1], keepdims=0)


def text_encoder(seed: int) -> onnx.ModelProto:
    """Embedding, a masked grouped convolution, plus a style shift; zero past each item's text."""
    g = _Graph("tiny_text_encoder", seed)
    g.op("Gather", [g.weight("emb", (VOCAB, TEXT_DIM), 0.5), "text_ids"], "e_btd")
    g.op("Transpose", ["e_btd"], "e_bdt", perm=[0, 2, 1])
    g.op("Mul", ["e_bdt", "text_mask"], "e")
    g.op("Conv", ["e", g.weight("conv_w", (TEXT_DIM, 16, 3), 0.2), g.weight("conv_b", (TEXT_DIM,), 0.1)], "c",
         pads=[1, 1], group=TEXT_DIM // 16)
    g.op("Tanh", ["c"], "c_t")
    g.op("Mul", ["c_t", "text_mask"], "h")
    _style_mean(g, "style_ttl", "s")
    g.op("Mul", ["s", g.weight("style_scale", (TEXT_DIM,), 1.0)], "s_scaled")
    g.op("Unsqueeze", ["s_scaled", g.const("ax2", [2])], "s_col")
    g.op("Add", ["h", "e"], "he")
    g.op("Add", ["he", "s_col"], "hes")
    g.op("Mul", ["hes", "text_mask"], "text_emb")
    inputs = [_i64("text_ids", ["batch", "text"]), _f32("style_ttl", ["batch", 50, 256]),
              _f32("text_mask", ["batch", 1, "text"])]
    return g.model(inputs, [_f32("text_emb", ["batch", TEXT_DIM, "text"])])


def duration_predictor(seed: int) -> onnx.ModelProto:
    """Seconds = sum over the real characters of (55 ms + a per-character wobble), scaled by the style."""
    g = _Graph("tiny_duration_predictor", seed)
    g.op("Gather", [g.weight("emb", (VOCAB,), 1.0), "text_ids"], "e")  # [B, T]
    g.op("Tanh", ["e"], "e_t")
    g.op("Mul", ["e_t", g.const("wobble", 0.012)], "w")
    g.op("Add", ["w", g.const("per_char", 0.055)], "per_char_s")
    g.op("Squeeze", ["text_mask", g.const("ax1", [1])], "mask_bt")
    g.op("Mul", ["per_char_s", "mask_bt"], "masked")
    g.op("ReduceSum", ["masked", g.const("axT", [1])], "total", keepdims=0)
    g.op("ReduceMean", ["style_dp"], "sd", axes=[1, 2], keepdims=0)
    g.op("Tanh", ["sd"], "sd_t")
    g.op("Mul", ["sd_t", g.const("style_gain", 0.3)], "sd_g")
    g.op("Exp", ["sd_g"], "factor")
    g.op("Mul", ["total", "factor"], "duration")
    inputs = [_i64("text_ids", ["batch", "text"]), _f32("style_dp", ["batch", 8, 16]),
              _f32("text_mask", ["batch", 1, "text"])]
    return g.model(inputs, [_f32("duration", ["batch"])])


def _cross_attention(g: _Graph) -> str:
    """[B,144,L] queries over [B,256,T] text, padded text masked out -> [B,144,L]."""
    g.op("Transpose", ["x_m"], "x_blc", perm=[0, 2, 1])
    g.op("MatMul", ["x_blc", g.weight("wq", (LATENT_CHANNELS, ATTN_DIM), 0.1)], "q")
    g.op("Transpose", ["text_emb"], "t_btd", perm=[0, 2, 1])
    g.op("MatMul", ["t_btd", g.weight("wk", (TEXT_DIM, ATTN_DIM), 0.1)], "k")
    g.op("MatMul", ["t_btd", g.weight("wv", (TEXT_DIM, LATENT_CHANNELS), 0.05)], "v")
    g.op("Transpose", ["k"], "k_t", perm=[0, 2, 1])
    g.op("MatMul", ["q", "k_t"], "scores")  # [B, L, T]
    g.op("Sub", [g.const("one", 1.0), "text_mask"], "pad")  # [B, 1, T]
    g.op("Mul", ["pad", g.const("neg", -1e9)], "bias")
    g.op("Add", ["scores", "bias"], "scores_m")
    g.op("Softmax", ["scores_m"], "attn", axis=-1)
    g.op("MatMul", ["attn", "v"], "ctx_blc")
    return g.op("Transpose", ["ctx_blc"], "attn_out", perm=[0, 2, 1])


def vector_estimator(seed: int) -> onnx.ModelProto:
    """x + v(x, t, text, style) / total_step, masked; t = current_step / total_step per item."""
    g = _Graph("tiny_vector_estimator", seed)
    g.op("Mul", ["noisy_latent", "latent_mask"], "x_m")
    g.op("Conv", ["x_m", g.weight("conv_w", (LATENT_CHANNELS, 12, 3), 0.15)], "conv", pads=[1, 1], group=12)
    # time: sin(t * f + phase), per item
    g.op("Div", ["current_step", "total_step"], "t")
    g.op("Unsqueeze", ["t", g.const("ax1", [1])], "t_col")
    g.op("Mul", ["t_col", g.weight("freq", (LATENT_CHANNELS,), 3.0)], "tf")
    g.op("Add", ["tf", g.weight("phase", (LATENT_CHANNELS,), 1.0)], "tfp")
    g.op("Sin", ["tfp"], "temb")
    g.op("Unsqueeze", ["temb", g.const("ax2", [2])], "temb_c")
    # style
    _style_mean(g, "style_ttl", "s")
    g.op("MatMul", ["s", g.weight("ws", (TEXT_DIM, LATENT_CHANNELS), 0.1)], "s_p")
    g.op("Unsqueeze", ["s_p", "ax2"], "s_c")
    attn = _cross_attention(g)
    g.op("Add", ["conv", "temb_c"], "a1")
    g.op("Add", ["a1", "s_c"], "a2")
    g.op("Add", ["a2", attn], "a3")
    g.op("Tanh", ["a3"], "velocity")
    g.op("Reciprocal", ["total_step"], "dt")
    g.op("Unsqueeze", ["dt", g.const("ax12", [1, 2])], "dt_c")
    g.op("Mul", ["velocity", "dt_c"], "delta")
    g.op("Add", ["noisy_latent", "delta"], "x_next")
    g.op("Mul", ["x_next", "latent_mask"], "denoised_latent")
    inputs = [
        _f32("noisy_latent", ["batch", LATENT_CHANNELS, "latent"]), _f32("text_emb", ["batch", TEXT_DIM, "text"]),
        _f32("style_ttl", ["batch", 50, 256]), _f32("text_mask", ["batch", 1, "text"]),
        _f32("latent_mask", ["batch", 1, "latent"]), _f32("current_step", ["batch"]), _f32("total_step", ["batch"]),
    ]
    return g.model(inputs, [_f32("denoised_latent", ["batch", LATENT_CHANNELS, "latent"])])


def vocoder(seed: int) -> onnx.ModelProto:
    """Decompress [B,144,L] to [B,24,6L], two biased convolutions (no mask), 512 samples per frame."""
    g = _Graph("tiny_vocoder", seed)
    g.op("Reshape", ["latent", g.const("shape4", [0, LATENT_DIM, COMPRESS, -1])], "z4")
    g.op("Transpose", ["z4"], "z4t", perm=[0, 1, 3, 2])
    g.op("Reshape", ["z4t", g.const("shape3", [0, LATENT_DIM, -1])], "z")
    g.op("Conv", ["z", g.weight("w1", (32, LATENT_DIM, 5), 0.3), g.weight("b1", (32,), 0.5)], "h1", pads=[2, 2])
    g.op("Tanh", ["h1"], "h1t")
    g.op("Conv", ["h1t", g.weight("w2", (BASE_CHUNK_SIZE, 32, 3), 0.3), g.weight("b2", (BASE_CHUNK_SIZE,), 0.1)],
         "h2", pads=[1, 1])
    g.op("Tanh", ["h2"], "h2t")
    g.op("Mul", ["h2t", g.const("gain", 0.4)], "frames")  # [B, 512, 6L]
    g.op("Transpose", ["frames"], "frames_t", perm=[0, 2, 1])
    g.op("Reshape", ["frames_t", g.const("shape2", [0, -1])], "wav_tts")
    return g.model([_f32("latent", ["batch", LATENT_CHANNELS, "latent"])], [_f32("wav_tts", ["batch", "samples"])])


def unicode_indexer(ranges: list[tuple[int, int]]) -> list[int]:
    """Code point -> id in [1, VOCAB) (hashed: the tiny embedding is small), -1 where unsupported."""
    top = max(hi for _, hi in ranges)
    table = [-1] * (top + 1)
    for lo, hi in ranges:
        for cp in range(lo, hi + 1):
            table[cp] = 1 + (cp * 7919) % (VOCAB - 1)
    return table


def voice_style(rng: np.random.Generator) -> dict:
    """One voice: random style tokens in the real dims, nested lists as the real files have them."""
    ttl = np.round(rng.standard_normal(STYLE_TTL_DIMS) * 0.5, 5)
    dp = np.round(rng.standard_normal(STYLE_DP_DIMS), 5)
    return {"style_ttl": {"dims": list(STYLE_TTL_DIMS), "data": ttl.tolist(), "type": "float32"},
            "style_dp": {"dims": list(STYLE_DP_DIMS), "data": dp.tolist(), "type": "float32"}}


def make_tiny_supertonic(out_dir: Path, version: int = 2, seed: int = 0) -> Path:
    """Write the whole model directory for Supertonic ``version`` (1, 2 or 3) into ``out_dir``."""
    spec = VARIANTS[version]
    out_dir = Path(out_dir)
    (out_dir / "onnx").mkdir(parents=True, exist_ok=True)
    (out_dir / "voice_styles").mkdir(exist_ok=True)
    graphs = {"duration_predictor": duration_predictor, "text_encoder": text_encoder,
              "vector_estimator": vector_estimator, "vocoder": vocoder}
    for i, (name, build) in enumerate(graphs.items()):
        onnx.save(build(seed * 10 + i), str(out_dir / "onnx" / f"{name}.onnx"))
    tts = {**spec["tts"], "ae": {"sample_rate": SAMPLE_RATE, "base_chunk_size": BASE_CHUNK_SIZE},
           "ttl": {"latent_dim": LATENT_DIM, "chunk_compress_factor": COMPRESS}}
    (out_dir / "onnx" / "tts.json").write_text(json.dumps(tts, indent=2), encoding="utf-8")
    (out_dir / "onnx" / "unicode_indexer.json").write_text(json.dumps(unicode_indexer(spec["ranges"])), "utf-8")
    rng = np.random.default_rng(seed + 100)
    for name in spec["voices"]:
        (out_dir / "voice_styles" / f"{name}.json").write_text(json.dumps(voice_style(rng)), encoding="utf-8")
    return out_dir


def make_hf_cache(hub_dir: Path, version: int = 2, revision: str | None = None, seed: int = 0) -> Path:
    """Lay the model out as huggingface_hub caches it: ``models--ORG--NAME/{blobs,refs,snapshots/REV}``,
    snapshot files being symlinks to content-addressed blobs. Returns the snapshot directory."""
    revision = revision or PINNED[version]
    org, name = VARIANTS[version]["repo"].split("/")
    repo_dir = Path(hub_dir) / f"models--{org}--{name}"
    staging = make_tiny_supertonic(repo_dir / ".staging", version, seed)
    snapshot = repo_dir / "snapshots" / revision
    (repo_dir / "blobs").mkdir(parents=True, exist_ok=True)
    for src in sorted(p for p in staging.rglob("*") if p.is_file()):
        data = src.read_bytes()
        blob = repo_dir / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        dst = snapshot / src.relative_to(staging)
        dst.parent.mkdir(parents=True, exist_ok=True)
        if dst.is_symlink() or dst.exists():
            dst.unlink()
        dst.symlink_to(os.path.relpath(blob, dst.parent))
        src.unlink()
    for d in sorted((p for p in staging.rglob("*") if p.is_dir()), reverse=True):
        d.rmdir()
    staging.rmdir()
    (repo_dir / "refs").mkdir(exist_ok=True)
    (repo_dir / "refs" / "main").write_text(revision, encoding="utf-8")
    return snapshot


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--version", type=int, choices=sorted(VARIANTS), default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hf-cache", action="store_true", help="OUT_DIR is a hub cache: write the HF layout")
    parser.add_argument("--revision", default=None, help="snapshot name with --hf-cache (default: the pinned one)")
    args = parser.parse_args(argv)
    if args.hf_cache:
        print(make_hf_cache(args.out_dir, args.version, args.revision, args.seed))
    else:
        print(make_tiny_supertonic(args.out_dir, args.version, args.seed))


if __name__ == "__main__":
    main()
