"""Write a tiny GPT-SoVITS model directory (v2, v2Pro or v2ProPlus) that ``vtts serve OUT`` loads with no download.

Layout (what the engine reads; docs/gptsovits.md)::

    gpt.ckpt                        {"config": s1 config, "weight": GPT state dict with "model." prefixes}
    sovits.pth                      {"weight": fp16 SoVITS state dict, "config": {"model", "data"}, "info"};
                                    v2Pro / v2ProPlus: the version tag b"05" / b"06" over the zip's "PK"
    sv/pretrained_eres2netv2w24s4ep4.ckpt   v2Pro / v2ProPlus: the ERes2NetV2 speaker model (a plain state dict,
                                    upstream's keys including the unused seg_1 head), tiny
    chinese-hubert-base/            a transformers HubertModel (768-d output, 320x downsampling), tiny
    chinese-roberta-wwm-ext-large/  with --bert: a transformers BertModel (1024-d hidden, fp16) and its vocab, tiny
    voices/default.wav + .txt       a built-in reference voice (a synthetic 4 s voiced sound) and its transcript

For v2, gpt.ckpt and sovits.pth are the parity fixture's files (upstream's own formats, tiny random weights) when
``../shared/fixtures/gptsovits-v2-tiny`` is there; otherwise (and for v2Pro / v2ProPlus, which have no fixture)
they are generated at the same tiny dimensions with random weights, in the same formats. The tiny v2Pro's style
has 128 channels (the real one 1024, v2 512), so the 512-wide copy the text encoder takes (``ge_to512``) is a real
projection; the tiny v2ProPlus widens the generator as the real one does (a wider first stage, a first upsampling
kernel of 20). The audio is noise-like speech-shaped sound, not speech.

Usage: python scripts/make_tiny_gptsovits.py OUT_DIR [--seed N] [--bert] [--version v2|v2Pro|v2ProPlus]
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import Any

import numpy as np

FIXTURE = Path(__file__).resolve().parents[1] / ".." / "shared" / "fixtures" / "gptsovits-v2-tiny"
SOVITS_MODEL = {"inter_channels": 192, "hidden_channels": 192, "filter_channels": 64, "n_heads": 2, "n_layers": 1,
                "kernel_size": 3, "p_dropout": 0.0, "resblock": "1", "resblock_kernel_sizes": [3, 7, 11],
                "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]], "upsample_rates": [10, 8, 2, 2, 2],
                "upsample_initial_channel": 64, "upsample_kernel_sizes": [16, 16, 8, 2, 2], "n_speakers": 300,
                "gin_channels": 512, "semantic_frame_rate": "25hz", "freeze_quantizer": True, "version": "v2"}
#: what v2Pro / v2ProPlus change in the tiny SoVITS model (upstream's s2v2Pro / s2v2ProPlus configs change the same
#: fields: gin_channels 1024; v2ProPlus also upsample_initial_channel 768 and upsample_kernel_sizes [20, 16, 8, 2, 2])
PRO_MODEL = {"v2Pro": {"gin_channels": 128},
             "v2ProPlus": {"gin_channels": 128, "upsample_initial_channel": 96,
                           "upsample_kernel_sizes": [20, 16, 8, 2, 2]}}
VERSION_TAG = {"v2Pro": b"05", "v2ProPlus": b"06"}
#: the tiny speaker model: 8 channels, group widths 4/8/16/32, scale 2, expansion 2 (real: 64, 24-192, 4, 4); blocks
#: per stage as the real one, so its keys are the real file's
SPEAKER = {"channels": 8, "blocks": (3, 4, 6, 3), "widths": (4, 8, 16, 32), "scale": 2, "expansion": 2}
SPEAKER_HEAD = 32
TRANSCRIPT = "This is a tiny reference voice."


def _gpt(path: Path, seed: int) -> None:
    import torch

    from vtts.workers.engines.gptsovits.t2s import T2SConfig, T2SModel, upstream_names

    torch.manual_seed(seed)
    cfg = T2SConfig(dim=64, heads=4, layers=2, ffn=256)
    model = T2SModel(cfg)
    for p in model.parameters():
        p.normal_(0, 0.3)
    own = dict(model.named_parameters())
    weight = {"model." + key: own[name].detach().clone() for key, name in upstream_names(cfg.layers).items()}
    config = {"model": {"vocab_size": 1025, "phoneme_vocab_size": 732, "embedding_dim": 64, "hidden_dim": 64,
                        "head": 4, "linear_units": 128, "n_layer": 2, "dropout": 0, "EOS": 1024, "random_bert": 0},
              "data": {"max_sec": 54, "pad_val": 1024}, "inference": {"top_k": 15}}
    torch.save({"config": config, "weight": weight}, path)


def _sovits(path: Path, seed: int, version: str = "v2", sv_dim: int = 0) -> None:
    import dataclasses
    import io

    import torch

    from vtts.workers.engines.gptsovits.sovits import SoVITSConfig, SynthesizerV2

    torch.manual_seed(seed)
    model_cfg = {**SOVITS_MODEL, **PRO_MODEL.get(version, {}), "version": version}
    cfg = SoVITSConfig.from_checkpoint(model_cfg, {})
    if sv_dim:
        cfg = dataclasses.replace(cfg, sv_dim=sv_dim)
    model = SynthesizerV2(cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(0.5)
    weight = {k: v.detach().half() for k, v in model.state_dict().items()}
    buf = io.BytesIO()
    torch.save({"weight": weight, "info": "tiny random",
                "config": {"model": model_cfg, "data": {"sampling_rate": 32000, "filter_length": 2048,
                                                        "hop_length": 640, "win_length": 2048}}}, buf)
    data = buf.getvalue()
    path.write_bytes(VERSION_TAG[version] + data[2:] if version in VERSION_TAG else data)  # upstream's tagging


def randomize_speaker(model: Any, seed: int = 0) -> None:
    """Random ERes2NetV2 weights that keep a signal alive through its 16 blocks (convolutions scaled by
    fan-in), so different voices give different embeddings; batch-norm statistics near identity."""
    import torch

    torch.manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() > 1:
                p.normal_(0.0, p[0].numel() ** -0.5)
            elif name.endswith("weight"):  # batch-norm scales
                p.uniform_(0.8, 1.2)
            else:
                p.normal_(0.0, 0.05)
        for name, b in model.named_buffers():
            if name.endswith("running_mean"):
                b.normal_(0.0, 0.1)
            elif name.endswith("running_var"):
                b.uniform_(0.5, 1.5)


def _speaker(path: Path, seed: int) -> int:
    """A tiny ERes2NetV2 state dict in the real file's layout; returns its embedding size."""
    import torch

    from vtts.workers.engines.gptsovits.speaker import MEL_BINS, ERes2NetV2

    model = ERes2NetV2(**SPEAKER)
    randomize_speaker(model, seed)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    top = SPEAKER["channels"] * 8 * SPEAKER["expansion"]
    # the pooled head upstream's file carries (statistics pooling: mean and std of the fused map), unused here
    state["seg_1.weight"] = torch.randn(SPEAKER_HEAD, 2 * top * (MEL_BINS // 8)) * 0.01
    state["seg_1.bias"] = torch.zeros(SPEAKER_HEAD)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return top * (MEL_BINS // 8)


def _hubert(out: Path, seed: int) -> None:
    import torch
    import transformers

    torch.manual_seed(seed)
    cfg = transformers.HubertConfig(hidden_size=768, num_hidden_layers=1, num_attention_heads=12, intermediate_size=64,
                                    conv_dim=(16,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=16)
    transformers.HubertModel(cfg).save_pretrained(out)


def _bert(out: Path, seed: int) -> None:
    import torch
    import transformers

    torch.manual_seed(seed)
    out.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "，", "。", "！", "？",
             *"的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过家学对可她里后小么心多天而能好都然没日于起还发成事只作当想看文无开手十用主行方又如前所本见经头面公同三已老从动两长知民样现分将外但身些与高意进把法此实回二理美点月明其种声全工己话儿者向情部正名定女问力机给等几很业最间新什打便位因重被走电四第门相次东政海口使教西再平真听世气信北少关并内加化由却代军产入先山五太水万市眼体别处总才场师书比住员九笑性通目华报立马命张活难神数件安表原车白应路期叫死常提感金何更反合放做系计或司利受光王果亲界及今京务制解各任至清物台象记边共风战干接它许八特觉望直服毛林题建南度统色字请交爱让认算论百吃义科怎元社术结六功指思非流每青管夫连远资队跟带花快条院变联言权往展该领传近留红治决周保达办运武半候七必城父强步完革深区即求品士转量空甚众技轻程告江语英基派满式李息写呢识极令黄德收脸钱党倒未持取设始版双历越史商千片容研像找友孩站广改议形委早房音火际则首单据导影失拿网香似斯专石若兵弟谁校读志飞观争究包组造落视济喜离虽坐集编宝谈府拉黑且随格尽剑讲布杀微怕母调局根曾准团段终乐切级克精哪官示冷域读界世你好"]
    (out / "vocab.txt").write_text("\n".join(dict.fromkeys(vocab)) + "\n", encoding="utf-8")
    cfg = transformers.BertConfig(vocab_size=len(dict.fromkeys(vocab)), hidden_size=1024, num_hidden_layers=2,
                                  num_attention_heads=16, intermediate_size=16, max_position_embeddings=128)
    transformers.BertModel(cfg).half().save_pretrained(out)
    transformers.BertTokenizerFast(vocab_file=str(out / "vocab.txt")).save_pretrained(out)


def _voice(out: Path, seed: int) -> None:
    import soundfile

    rng = np.random.default_rng(seed)
    rate, seconds = 32000, 4.0
    t = np.arange(int(rate * seconds)) / rate
    pitch = 140 + 20 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / rate
    voiced = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 3.0 * t) ** 2
    audio = 0.2 * voiced * envelope + 0.01 * rng.standard_normal(t.size)
    out.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(out / "default.wav"), (audio / np.abs(audio).max() * 0.5).astype(np.float32), rate)
    (out / "default.txt").write_text(TRANSCRIPT + "\n", encoding="utf-8")
    (out / "default.lang").write_text("en\n", encoding="utf-8")


def make_tiny_gptsovits(out: Path, seed: int = 0, bert: bool = False, version: str = "v2") -> Path:
    """Write the model directory ``out`` (see the module docstring); returns it."""
    if version not in ("v2", *VERSION_TAG):
        raise ValueError(f"version must be v2, v2Pro or v2ProPlus, not {version!r}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if version == "v2" and (FIXTURE / "gpt.ckpt").is_file() and (FIXTURE / "sovits.pth").is_file():
        shutil.copyfile(FIXTURE / "gpt.ckpt", out / "gpt.ckpt")
        shutil.copyfile(FIXTURE / "sovits.pth", out / "sovits.pth")
    elif version == "v2":
        _gpt(out / "gpt.ckpt", seed)
        _sovits(out / "sovits.pth", seed + 1)
    else:
        from vtts.workers.engines.gptsovits.speaker import CHECKPOINT

        _gpt(out / "gpt.ckpt", seed)
        sv_dim = _speaker(out / CHECKPOINT, seed + 5)
        _sovits(out / "sovits.pth", seed + 1, version, sv_dim)
    _hubert(out / "chinese-hubert-base", seed + 2)
    if bert:
        _bert(out / "chinese-roberta-wwm-ext-large", seed + 3)
    _voice(out / "voices", seed + 4)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bert", action="store_true", help="also write a tiny Chinese BERT (16 MB)")
    parser.add_argument("--version", choices=("v2", *VERSION_TAG), default="v2",
                        help="SoVITS version: v2Pro / v2ProPlus add the speaker model (sv/)")
    args = parser.parse_args()
    print(make_tiny_gptsovits(args.out, args.seed, args.bert, args.version))


if __name__ == "__main__":
    main()
