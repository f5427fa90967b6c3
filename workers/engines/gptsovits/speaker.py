"""GPT-SoVITS v2Pro / v2ProPlus speaker side: a voice sample at 16 kHz → its speaker-verification embedding.

Public API::

    speaker = SpeakerEncoder.load("sv/pretrained_eres2netv2w24s4ep4.ckpt", device="cpu")   # restricted unpickler
    emb = speaker.embedding(wav16k)      # float32 numpy [N] at 16 kHz → FloatTensor [dim] (20480 for the real model)
    feats = kaldi_fbank(torch.from_numpy(wav16k))    # [frames, 80] log mel filterbank, Kaldi's defaults

The speaker model is 3D-Speaker's ERes2NetV2 (Apache-2.0) as upstream ships it for v2Pro
(``pretrained_eres2netv2w24s4ep4.ckpt``: a plain state dict, base width 24, scale 4, expansion 4, 64 channels,
[3, 4, 6, 3] blocks). Upstream does not use its pooled 192-dim output: it takes the fused last feature map
[B, C, F', T'] (the stage-4 output fused with a stride-2 downsampling of stage 3), flattens channels and
frequency and averages over time, giving C * F' values (2048 * 10 = 20480). That is what
:meth:`SpeakerEncoder.embedding` returns, and what the SoVITS decoder's ``sv_emb`` projection reads. The
pooling and ``seg_1`` weights in the file are therefore not loaded.

The network's dimensions are read from the file's tensors (channels, blocks per stage, split width and scale),
so the real checkpoint and the tiny one of ``scripts/make_tiny_gptsovits.py`` load through the same code; a file
that is not this layout is refused with :class:`CheckpointError` naming what is missing or unexpected.

The input features are Kaldi's 80-bin log mel filterbank as upstream computes them (torchaudio's Kaldi-compatible
``fbank`` with its defaults: 25 ms povey windows every 10 ms, pre-emphasis 0.97, DC offset removed, power
spectrum on a 512-point FFT, mel bins from 20 Hz to Nyquist, no dither, no mean subtraction), written here in
torch so the engine needs no torchaudio.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...engine import ModelLoadError
from ...hub import HubModel, repo_cache_dir, snapshots
from .checkpoints import CheckpointError, _read_bytes, safe_load

RATE = 16000
MEL_BINS = 80
#: the real model's file, as named in upstream's pretrained models (``lj1995/GPT-SoVITS``: ``sv/<this>``)
CHECKPOINT = "sv/pretrained_eres2netv2w24s4ep4.ckpt"
#: where upstream publishes it (a Hugging Face id the ``sv`` option may name instead of a path)
HUB_REPO = "lj1995/GPT-SoVITS"
#: weights of the pooled embedding head, present in the file and unused by GPT-SoVITS
_HEAD = ("seg_1.", "seg_2.", "seg_bn_1.")


# -- features ---------------------------------------------------------------------------------------------------
def _mel(freq: torch.Tensor | float) -> torch.Tensor | float:
    if isinstance(freq, torch.Tensor):
        return 1127.0 * torch.log(1.0 + freq / 700.0)
    return 1127.0 * math.log(1.0 + freq / 700.0)


def mel_banks(n_bins: int = MEL_BINS, n_fft: int = 512, rate: int = RATE, low: float = 20.0) -> torch.Tensor:
    """Kaldi's triangular mel filters [n_bins, n_fft // 2 + 1] (the Nyquist column is zero, as in Kaldi)."""
    half = n_fft // 2
    mel_low, mel_high = _mel(low), _mel(rate / 2)
    delta = (mel_high - mel_low) / (n_bins + 1)
    index = torch.arange(n_bins).unsqueeze(1)
    left = mel_low + index * delta
    center = mel_low + (index + 1.0) * delta
    right = mel_low + (index + 2.0) * delta
    mel = _mel(rate / n_fft * torch.arange(half)).unsqueeze(0)
    up = (mel - left) / (center - left)
    down = (right - mel) / (right - center)
    banks = torch.clamp(torch.minimum(up, down), min=0.0)
    return F.pad(banks, (0, 1))


def kaldi_fbank(wav: torch.Tensor, n_bins: int = MEL_BINS, rate: int = RATE) -> torch.Tensor:
    """Mono samples [N] (float, ±1 scale) → log mel filterbank [frames, n_bins]; frames = 1 + (N - 400) // 160."""
    wav = wav.reshape(-1).float()
    size, shift = rate * 25 // 1000, rate * 10 // 1000
    if wav.numel() < size:
        raise ValueError(f"speaker embedding needs at least {size} samples at {rate} Hz, got {wav.numel()}")
    frames = wav.unfold(0, size, shift)  # [m, size], Kaldi's snip_edges framing
    frames = frames - frames.mean(dim=1, keepdim=True)
    previous = torch.cat([frames[:, :1], frames[:, :-1]], dim=1)
    frames = frames - 0.97 * previous
    frames = frames * torch.hann_window(size, periodic=False, dtype=frames.dtype).pow(0.85)
    n_fft = 1 << (size - 1).bit_length()
    power = torch.fft.rfft(F.pad(frames, (0, n_fft - size))).abs().pow(2.0)
    energies = power @ mel_banks(n_bins, n_fft, rate).to(power.dtype).t()
    return torch.clamp(energies, min=torch.finfo(torch.float32).eps).log()


# -- the network ------------------------------------------------------------------------------------------------
class _ClippedReLU(nn.Hardtanh):
    """ERes2Net's activation: ReLU capped at 20."""

    def __init__(self) -> None:
        super().__init__(0.0, 20.0)


class AttentionalFusion(nn.Module):
    """AFF: a 1x1-conv attention over both inputs mixes them (keys ``local_att.{0,1,3,4}``)."""

    def __init__(self, channels: int, inner: int) -> None:
        super().__init__()
        self.local_att = nn.Sequential(nn.Conv2d(2 * channels, inner, 1), nn.BatchNorm2d(inner), nn.SiLU(),
                                       nn.Conv2d(inner, channels, 1), nn.BatchNorm2d(channels))

    def forward(self, x: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        weight = 1.0 + torch.tanh(self.local_att(torch.cat([x, other], dim=1)))
        return x * weight + other * (2.0 - weight)


class SplitBlock(nn.Module):
    """One ERes2NetV2 block: 1x1 conv, ``scale`` groups of ``width`` channels each refined by a 3x3 conv after
    adding (stages 1-2) or attention-fusing (stages 3-4) the previous group's output, 1x1 conv back out, plus
    the shortcut."""

    def __init__(self, in_planes: int, width: int, scale: int, out_planes: int, stride: int, fuse: bool) -> None:
        super().__init__()
        self.width, self.scale = width, scale
        self.conv1 = nn.Conv2d(in_planes, width * scale, 1, stride=stride, bias=False)
        self.bn1 = nn.BatchNorm2d(width * scale)
        self.convs = nn.ModuleList(nn.Conv2d(width, width, 3, padding=1, bias=False) for _ in range(scale))
        self.bns = nn.ModuleList(nn.BatchNorm2d(width) for _ in range(scale))
        if fuse:
            self.fuse_models = nn.ModuleList(AttentionalFusion(width, width // 4) for _ in range(scale - 1))
        self.conv3 = nn.Conv2d(width * scale, out_planes, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != out_planes:
            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, out_planes, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(out_planes))
        self.act = _ClippedReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        groups = torch.split(self.act(self.bn1(self.conv1(x))), self.width, dim=1)
        outs: list[torch.Tensor] = []
        for i in range(self.scale):
            if i == 0:
                part = groups[0]
            elif hasattr(self, "fuse_models"):
                part = self.fuse_models[i - 1](outs[-1], groups[i])
            else:
                part = outs[-1] + groups[i]
            outs.append(self.act(self.bns[i](self.convs[i](part))))
        out = self.bn3(self.conv3(torch.cat(outs, dim=1)))
        return self.act(out + self.shortcut(x))


class ERes2NetV2(nn.Module):
    """The speaker network up to its fused stage-3/4 feature map, under the checkpoint's key names.

    ``widths[s]`` is stage s's group width (floor(planes * base_width / 64) upstream), ``blocks[s]`` its block count.
    """

    def __init__(self, channels: int = 64, blocks: tuple[int, ...] = (3, 4, 6, 3),
                 widths: tuple[int, ...] = (24, 48, 96, 192), scale: int = 4, expansion: int = 4) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        in_planes = channels
        for stage, (count, width) in enumerate(zip(blocks, widths, strict=True)):
            out_planes = channels * (2 ** stage) * expansion
            layer = []
            for k in range(count):
                stride = 2 if stage and k == 0 else 1
                layer.append(SplitBlock(in_planes, width, scale, out_planes, stride, fuse=stage >= 2))
                in_planes = out_planes
            setattr(self, f"layer{stage + 1}", nn.Sequential(*layer))
        top = channels * 8 * expansion
        self.layer3_ds = nn.Conv2d(channels * 4 * expansion, top, 3, stride=2, padding=1, bias=False)
        self.fuse34 = AttentionalFusion(top, top // 4)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        """fbank [B, frames, 80] → embedding [B, C * 10] (fused map averaged over time)."""
        x = F.relu(self.bn1(self.conv1(feats.transpose(1, 2).unsqueeze(1))))
        x = self.layer2(self.layer1(x))
        x3 = self.layer3(x)
        fused = self.fuse34(self.layer4(x3), self.layer3_ds(x3))
        return fused.flatten(1, 2).mean(dim=-1)

    @staticmethod
    def dims(weights: Mapping[str, torch.Tensor]) -> dict[str, object]:
        """This network's constructor arguments as the state dict's shapes show them; CheckpointError if not one."""
        try:
            channels = int(weights["conv1.weight"].shape[0])
            blocks = []
            for stage in range(1, 5):
                ids = {int(m[1]) for k in weights if (m := re.match(rf"layer{stage}\.(\d+)\.conv1\.weight$", k))}
                if not ids or ids != set(range(len(ids))):
                    raise KeyError(f"layer{stage}.N.conv1.weight")
                blocks.append(len(ids))
            scale = sum(1 for k in weights if re.match(r"layer1\.0\.convs\.\d+\.weight$", k))
            widths = tuple(int(weights[f"layer{s}.0.convs.0.weight"].shape[0]) for s in range(1, 5))
            expansion = int(weights["layer1.0.conv3.weight"].shape[0]) // channels
        except KeyError as exc:
            raise CheckpointError(f"not an ERes2NetV2 speaker model: no {exc.args[0]} weights") from None
        if scale < 1 or expansion < 1:
            raise CheckpointError("not an ERes2NetV2 speaker model: no split convolutions in layer1.0")
        return {"channels": channels, "blocks": tuple(blocks), "widths": widths, "scale": scale,
                "expansion": expansion}


class SpeakerEncoder:
    """A loaded ERes2NetV2: 16 kHz sample → speaker embedding (computed once per voice; see the module docstring)."""

    def __init__(self, model: ERes2NetV2, device: torch.device | str = "cpu") -> None:
        # float32 always: it runs once per voice, and upstream's embedding feeds a projection trained in float32
        self.model = model.eval().to(device=device, dtype=torch.float32)
        self.device = torch.device(device)

    @property
    def dim(self) -> int:
        """The embedding's size: channels of the fused map times its 10 frequency rows."""
        return int(self.model.fuse34.local_att[3].out_channels) * (MEL_BINS // 8)

    @classmethod
    def from_state_dict(cls, weights: Mapping[str, torch.Tensor], device: torch.device | str = "cpu",
                        what: str = "speaker model") -> SpeakerEncoder:
        if not isinstance(weights, Mapping) or not all(isinstance(v, torch.Tensor) for v in weights.values()):
            raise CheckpointError(f"{what} is not a state dict of tensors (expected ERes2NetV2 weights)")
        state = {k: v.float() for k, v in weights.items() if not k.startswith(_HEAD)}
        with torch.device("meta"):
            model = ERes2NetV2(**ERes2NetV2.dims(state))
        try:
            model.load_state_dict(state, strict=True, assign=True)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()
            raise CheckpointError(f"{what} does not match the ERes2NetV2 layout: {' '.join(first[:3])}") from exc
        return cls(model, device)

    @classmethod
    def load(cls, path: str | Path, device: torch.device | str = "cpu") -> SpeakerEncoder:
        """Read the speaker model's ``.ckpt`` (a state dict) with the restricted unpickler of ``checkpoints``."""
        obj = safe_load(_read_bytes(path), f"speaker model {path}")
        return cls.from_state_dict(obj, device, f"speaker model {path}")

    @torch.inference_mode()
    def embedding(self, wav16k: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Mono samples at 16 kHz → the embedding [dim] (float32, on the CPU)."""
        wav = torch.as_tensor(np.asarray(wav16k, dtype=np.float32)).reshape(-1)
        feats = kaldi_fbank(wav).to(self.device)
        return self.model(feats.unsqueeze(0))[0].float().cpu()


HUB = HubModel("GPT-SoVITS speaker model", HUB_REPO, (CHECKPOINT,),
               lambda root: [] if (root / CHECKPOINT).is_file() else [CHECKPOINT], (CHECKPOINT,))


def resolve(root: Path, ref: str) -> Path:
    """The speaker model file the ``sv`` option names: a path (relative to the model directory, or absolute), or
    a Hugging Face id (``lj1995/GPT-SoVITS[@REVISION]``) read from the local cache only, as HuBERT and BERT are:
    nothing is downloaded at load. ModelLoadError saying where it looked otherwise."""
    path = Path(ref).expanduser()
    path = path if path.is_absolute() else root / path
    if path.is_file():
        return path
    if path.is_dir() and (path / CHECKPOINT).is_file():
        return path / CHECKPOINT
    try:
        if Path(ref).suffix in (".ckpt", ".pth", ".pt", ".bin"):  # a file name, not a repository id
            raise ModelLoadError(ref)
        repo, revision = HUB.parse(ref)
    except ModelLoadError:
        raise ModelLoadError(f"GPT-SoVITS speaker model not found: {path} (v2Pro/v2ProPlus need upstream's "
                             f"ERes2NetV2, {HUB_REPO}'s {CHECKPOINT}; option sv names it)") from None
    candidates = snapshots(repo_cache_dir(repo), revision)
    found = HUB.cached(candidates)
    if found is not None:
        return found / CHECKPOINT
    looked = "; ".join(str(c) for c in candidates) or str(repo_cache_dir(repo))
    raise ModelLoadError(f"GPT-SoVITS speaker model {ref}: {CHECKPOINT} is neither at {path} nor in the local "
                         f"Hugging Face cache (looked in {looked}); the engine downloads nothing at load: fetch it "
                         f"with `hf download {repo} {CHECKPOINT}`{' --revision ' + revision if revision else ''}")
