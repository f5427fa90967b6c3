"""GPT-SoVITS v2 SoVITS decoder: semantic codes + phones + reference style → 32 kHz waveform, batched across requests.

Public API (everything torch; the engine converts at its edges)::

    dec = SoVITSDecoder.load("s2G.pth", device="cpu", dtype=torch.float32)   # or .from_checkpoint(load_sovits(p))
    style = dec.reference_style(spec)          # [1025, T] linear spectrogram (reference.linear_spectrogram) → [gin, 1]
                                               # (v2Pro: reference_style(spec, speaker_embedding [20480]))
    codes = dec.extract_latent(ssl)            # [B, 768, T] HuBERT features (50 Hz) → [B, 1, T // 2] semantic codes
    wavs = dec.decode([DecodeItem(codes, phones, style, speed=1.0), ...])   # list of float32 np arrays, 32 kHz
    stream = dec.stream(phones, style)         # streaming by semantic-token chunks: a ChunkStream

``decode`` runs any number of requests in one forward: their code sequences (1-D LongTensors of any length), phone
sequences, styles (one per voice, computed once and cached), speeds and noise settings may all differ. Padding is
masked at every convolution and attention, so each item equals its decode alone (within float rounding, ~1e-6).
With ``noise_scale`` 0 (the default) the flow's prior sample is its mean and the output is deterministic; with
noise, each item draws from its own ``seed``, so an item's audio does not depend on its batch.

The model is SynthesizerTrn v2's inference path (text encoder with MRTE, style encoder on the first 704 spectrogram
bins, residual VQ decode, reverse flow, HiFi-GAN generator); the posterior encoder is not needed and not loaded.
v2Pro/v2ProPlus (a speaker-verification embedding joins the style: pass it to ``reference_style``) load too, and
so would v1 (322 phone symbols, style on all 1025 bins); v3/v4 (CFM + vocoder) are refused with a clear message.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vtts.workers.engines.gptsovits.checkpoints import CheckpointError, SoVITSCheckpoint, load_sovits
from vtts.workers.engines.gptsovits.sovits_modules import Flow, Generator, StyleEncoder, TextEncoderV2

SAMPLE_RATE = 32000
SSL_DIM = 768

_UNUSED_KEYS = ("inited", "cluster_size", "embed_avg")


@dataclass
class DecodeItem:
    """One request's chunk: ``codes`` [T] semantic ids, ``phones`` [Tt] phone ids, ``style`` [gin, 1]."""

    codes: torch.Tensor
    phones: torch.Tensor
    style: torch.Tensor
    speed: float = 1.0
    noise_scale: float = 0.0
    seed: int | None = None
    #: streaming windows: the global index of the window's first frame. The speed change then samples one grid
    #: shared by all windows of the request (output frame k reads frame (k + 0.5) * speed - 0.5), and the noise
    #: is drawn per global output frame, so consecutive windows render their overlap alike
    frame_offset: int | None = None


def speed_grid(frame_offset: int, frames: int, speed: float) -> tuple[int, int]:
    """Output frames [first, last] (inclusive) of a streaming window of ``frames`` frames starting at global frame
    ``frame_offset``: those whose source position (k + 0.5) * speed - 0.5 (clamped at 0) lies inside it."""
    first = 0 if frame_offset == 0 else math.ceil((frame_offset + 0.5) / speed - 0.5)
    last = math.floor((frame_offset + frames - 0.5) / speed - 0.5)
    return first, max(first, last)


def _grid_interpolate(h: torch.Tensor, frame_offset: int, speed: float) -> torch.Tensor:
    """Linear interpolation of h [1, C, L] on the request's global speed grid (see :func:`speed_grid`)."""
    first, last = speed_grid(frame_offset, h.shape[2], speed)
    k = torch.arange(first, last + 1, dtype=torch.float64, device=h.device)
    pos = ((k + 0.5) * speed - 0.5).clamp(min=0) - frame_offset
    pos = pos.clamp(0, h.shape[2] - 1)
    i0 = pos.floor().long()
    i1 = (i0 + 1).clamp(max=h.shape[2] - 1)
    w = (pos - i0).to(h.dtype)
    return h[:, :, i0] * (1 - w) + h[:, :, i1] * w


class _Codebook(nn.Module):
    def __init__(self, bins: int, dim: int) -> None:
        super().__init__()
        self.register_buffer("embed", torch.zeros(bins, dim))


class _VQLayer(nn.Module):
    def __init__(self, bins: int, dim: int) -> None:
        super().__init__()
        self._codebook = _Codebook(bins, dim)


class ResidualVQ(nn.Module):
    """The semantic quantizer (``quantizer.vq.layers.N._codebook.embed``): nearest-codeword encode, sum decode."""

    def __init__(self, n_q: int = 1, bins: int = 1024, dim: int = SSL_DIM) -> None:
        super().__init__()
        self.vq = nn.Module()
        self.vq.layers = nn.ModuleList(_VQLayer(bins, dim) for _ in range(n_q))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, D, T] → codes [n_q, B, T]."""
        residual = x
        out = []
        for layer in self.vq.layers:
            embed = layer._codebook.embed
            flat = residual.transpose(1, 2).reshape(-1, embed.shape[1])
            # negative squared distance, in the trained model's association order (ties resolve the same way)
            neg = -(flat.pow(2).sum(1, keepdim=True) - 2 * flat @ embed.t() + embed.t().pow(2).sum(0, keepdim=True))
            idx = neg.max(dim=-1).indices.view(x.shape[0], x.shape[2])
            residual = residual - F.embedding(idx, embed).transpose(1, 2)
            out.append(idx)
        return torch.stack(out)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [n_q, B, T] → quantized [B, D, T]."""
        total = None
        for i, idx in enumerate(codes):
            q = F.embedding(idx, self.vq.layers[i]._codebook.embed).transpose(1, 2)
            total = q if total is None else total + q
        return total


@dataclass(frozen=True)
class SoVITSConfig:
    """Dimensions of a SoVITS v2 model (the checkpoint's ``config["model"]`` plus what its weights imply)."""

    inter_channels: int = 192
    hidden_channels: int = 192
    filter_channels: int = 768
    n_heads: int = 2
    n_layers: int = 6
    kernel_size: int = 3
    resblock: str = "1"
    resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11)
    resblock_dilation_sizes: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    upsample_rates: tuple[int, ...] = (10, 8, 2, 2, 2)
    upsample_initial_channel: int = 512
    upsample_kernel_sizes: tuple[int, ...] = (16, 16, 8, 2, 2)
    gin_channels: int = 512
    semantic_frame_rate: str = "25hz"
    n_symbols: int = 732
    style_bins: int = 704
    n_codebooks: int = 1
    codebook_size: int = 1024
    #: v2Pro/v2ProPlus: size of the speaker-verification embedding added to the style (0: plain v2)
    sv_dim: int = 0

    @property
    def hop(self) -> int:
        return int(np.prod(self.upsample_rates))

    @classmethod
    def from_checkpoint(cls, model_cfg: Mapping[str, Any], weights: Mapping[str, torch.Tensor]) -> SoVITSConfig:
        """Read the fields this decoder uses; the phone vocabulary, style bins and frame rate come from the weights."""
        kw: dict[str, Any] = {}
        for name in ("inter_channels", "hidden_channels", "filter_channels", "n_heads", "n_layers", "kernel_size",
                     "upsample_initial_channel", "gin_channels"):
            if name in model_cfg:
                kw[name] = int(model_cfg[name])
        if "resblock" in model_cfg:
            kw["resblock"] = str(model_cfg["resblock"])
        for name in ("resblock_kernel_sizes", "upsample_rates", "upsample_kernel_sizes"):
            if name in model_cfg:
                kw[name] = tuple(int(v) for v in model_cfg[name])
        if "resblock_dilation_sizes" in model_cfg:
            dil = model_cfg["resblock_dilation_sizes"]
            kw["resblock_dilation_sizes"] = tuple(tuple(int(v) for v in d) for d in dil)
        # the decoder's widths as the weights show them (v2ProPlus widens the generator: 768 channels, a first
        # upsampling kernel of 20), so a config that disagrees with its weights cannot mis-build the model
        if "dec.conv_pre.weight" in weights:
            kw["upsample_initial_channel"] = int(weights["dec.conv_pre.weight"].shape[0])
        if "dec.cond.weight" in weights:
            kw["gin_channels"] = int(weights["dec.cond.weight"].shape[1])
        ups = []
        while f"dec.ups.{len(ups)}.weight_v" in weights or f"dec.ups.{len(ups)}.weight" in weights:
            key = f"dec.ups.{len(ups)}.weight_v"
            ups.append(int(weights[key if key in weights else key[:-2]].shape[-1]))
        if ups and len(ups) == len(kw.get("upsample_rates", cls.upsample_rates)):
            kw["upsample_kernel_sizes"] = tuple(ups)
        if "enc_p.text_embedding.weight" in weights:
            kw["n_symbols"] = int(weights["enc_p.text_embedding.weight"].shape[0])
        if "ref_enc.spectral.0.fc.weight" in weights:
            kw["style_bins"] = int(weights["ref_enc.spectral.0.fc.weight"].shape[1])
        if "ssl_proj.weight" in weights:
            kw["semantic_frame_rate"] = "25hz" if weights["ssl_proj.weight"].shape[-1] == 2 else "50hz"
        n_q = sum(1 for k in weights if k.startswith("quantizer.vq.layers.") and k.endswith("._codebook.embed"))
        if "sv_emb.weight" in weights:
            kw["sv_dim"] = int(weights["sv_emb.weight"].shape[1])
        if n_q:
            kw["n_codebooks"] = n_q
            kw["codebook_size"] = int(weights["quantizer.vq.layers.0._codebook.embed"].shape[0])
        return cls(**kw)


class SynthesizerV2(nn.Module):
    """SynthesizerTrn v2's inference modules, under the checkpoint's names (``enc_p``, ``dec``, ``flow``, ...)."""

    def __init__(self, cfg: SoVITSConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.enc_p = TextEncoderV2(cfg.inter_channels, cfg.hidden_channels, cfg.filter_channels, cfg.n_heads,
                                   cfg.n_layers, cfg.kernel_size, cfg.n_symbols)
        self.dec = Generator(cfg.inter_channels, cfg.resblock, list(cfg.resblock_kernel_sizes),
                             [list(d) for d in cfg.resblock_dilation_sizes], list(cfg.upsample_rates),
                             cfg.upsample_initial_channel, list(cfg.upsample_kernel_sizes), cfg.gin_channels)
        self.flow = Flow(cfg.inter_channels, cfg.hidden_channels, 5, 1, 4, cfg.gin_channels)
        self.ref_enc = StyleEncoder(cfg.style_bins, cfg.gin_channels)
        stride = 2 if cfg.semantic_frame_rate == "25hz" else 1
        self.ssl_proj = nn.Conv1d(SSL_DIM, SSL_DIM, stride, stride=stride)
        self.quantizer = ResidualVQ(cfg.n_codebooks, cfg.codebook_size, SSL_DIM)
        if cfg.sv_dim:  # v2Pro: the speaker embedding joins the style; the text encoder gets a 512-dim copy
            self.sv_emb = nn.Linear(cfg.sv_dim, cfg.gin_channels)
            self.ge_to512 = nn.Linear(cfg.gin_channels, 512)
            self.prelu = nn.PReLU(num_parameters=cfg.gin_channels)

    @property
    def frames_per_code(self) -> int:
        return 2 if self.cfg.semantic_frame_rate == "25hz" else 1


def fold_weight_norm(weights: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Replace each ``X.weight_g``/``X.weight_v`` pair by ``X.weight = g * v / ||v||`` (norm over all but dim 0)."""
    out: dict[str, torch.Tensor] = {}
    for key, value in weights.items():
        if key.endswith(".weight_g"):
            continue
        if key.endswith(".weight_v"):
            base = key[: -len("_v")]
            g = weights[base + "_g"]
            v = value
            norm = v.flatten(1).norm(dim=1).view(-1, *([1] * (v.dim() - 1))) if v.dim() > 1 else v.norm()
            out[base] = v * (g / norm) if not v.is_meta else torch.empty_like(v)
            continue
        out[key] = value
    return out


def inference_state_dict(weights: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The checkpoint's weights as this decoder's state dict: weight norm folded, training-only entries dropped."""
    keep = {k: v for k, v in weights.items()
            if not k.startswith("enc_q.") and k.rsplit(".", 1)[-1] not in _UNUSED_KEYS}
    return fold_weight_norm(keep)


def _check_version(weights: Mapping[str, torch.Tensor]) -> None:
    if any(k.startswith(("cfm.", "bridge.")) for k in weights):
        raise CheckpointError("SoVITS v3/v4 checkpoints (CFM + vocoder) are not supported yet; use a v2 checkpoint")
    if "enc_p.text_embedding.weight" not in weights or "dec.conv_pre.weight" not in weights:
        raise CheckpointError("not a SoVITS checkpoint: no enc_p.text_embedding / dec.conv_pre weights")


class SoVITSDecoder:
    """A loaded SoVITS v2 model with batched decode, style and latent extraction (see the module docstring)."""

    #: longest code sequence one item may decode (1500 codes = 60 s at 25 Hz); an option of the engine
    max_codes: int = 1500

    def __init__(self, model: SynthesizerV2, device: torch.device | str = "cpu",
                 dtype: torch.dtype = torch.float32) -> None:
        self.model = model.eval().to(device=device, dtype=dtype)
        self.device = torch.device(device)
        self.dtype = dtype
        self.cfg = model.cfg

    @classmethod
    def from_checkpoint(cls, checkpoint: SoVITSCheckpoint | Mapping[str, Any], device: torch.device | str = "cpu",
                        dtype: torch.dtype = torch.float32) -> SoVITSDecoder:
        """Build from :func:`checkpoints.load_sovits`' result or a loaded ``{"weight", "config"}`` dict (fp16
        weights are cast to fp32 before weight norm is folded, then to ``dtype``)."""
        if isinstance(checkpoint, SoVITSCheckpoint):
            checkpoint = {"weight": checkpoint.weights, "config": checkpoint.config}
        if not isinstance(checkpoint, Mapping) or "weight" not in checkpoint:
            raise CheckpointError("not a SoVITS checkpoint: no 'weight' entry")
        weights = checkpoint["weight"]
        _check_version(weights)
        config = checkpoint.get("config") or {}
        model_cfg = config.get("model", {}) if isinstance(config, Mapping) else {}
        cfg = SoVITSConfig.from_checkpoint(model_cfg, weights)
        with torch.device("meta"):
            model = SynthesizerV2(cfg)
        # cast before folding the weight norm: folding in fp16 loses ~1e-4 of precision
        state = inference_state_dict({k: v.float() for k, v in weights.items()})
        try:
            model.load_state_dict(state, strict=True, assign=True)
        except RuntimeError as exc:
            raise CheckpointError(f"SoVITS weights do not match the v2 layout: {exc}") from exc
        return cls(model, device, dtype)

    @classmethod
    def load(cls, path: str, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> SoVITSDecoder:
        """Load a ``.pth`` (v2, v2Pro, v2ProPlus; tagged or not) with the restricted loader of ``checkpoints``."""
        return cls.from_checkpoint(load_sovits(path), device, dtype)

    @property
    def sample_rate(self) -> int:
        return SAMPLE_RATE

    @property
    def samples_per_code(self) -> int:
        """Output samples per semantic code at speed 1 (1280 for v2: 2 frames of 640)."""
        return self.model.frames_per_code * self.cfg.hop

    @property
    def needs_speaker_embedding(self) -> bool:
        """v2Pro/v2ProPlus: :meth:`reference_style` also takes the sample's speaker-verification embedding."""
        return bool(self.cfg.sv_dim)

    @torch.inference_mode()
    def reference_style(self, spec: torch.Tensor, speaker_embedding: torch.Tensor | None = None) -> torch.Tensor:
        """Reference linear spectrogram [F, T] or [1, F, T] → style vector [gin, 1] (compute once per voice).

        v2Pro/v2ProPlus also need ``speaker_embedding`` [sv_dim] (upstream's ERes2NetV2 embedding of the sample at
        16 kHz); plain v2 ignores it."""
        if spec.dim() == 2:
            spec = spec.unsqueeze(0)
        if spec.dim() != 3 or spec.shape[0] != 1 or spec.shape[1] < self.cfg.style_bins or spec.shape[2] < 1:
            raise ValueError(f"reference spectrogram must be [F >= {self.cfg.style_bins}, T >= 1], got "
                             f"{tuple(spec.shape)}")
        spec = spec.to(self.device, self.dtype)
        mask = torch.ones(1, 1, spec.shape[2], device=self.device, dtype=self.dtype)
        ge = self.model.ref_enc(spec, mask)
        if self.cfg.sv_dim:
            if speaker_embedding is None or speaker_embedding.numel() != self.cfg.sv_dim:
                raise ValueError(f"this SoVITS model (v2Pro) needs a speaker embedding of {self.cfg.sv_dim} values")
            sv = self.model.sv_emb(speaker_embedding.to(self.device, self.dtype).reshape(1, -1))
            ge = self.model.prelu(ge + sv.unsqueeze(-1))
        return ge[0]

    def stream(self, phones: torch.Tensor, style: torch.Tensor, **options: Any) -> ChunkStream:
        """A :class:`ChunkStream` for one request on this model (options: speed, noise_scale, seed, context,
        holdback, overlap)."""
        return ChunkStream(phones, style, frames_per_code=self.model.frames_per_code, hop=self.cfg.hop, **options)

    @torch.inference_mode()
    def extract_latent(self, ssl: torch.Tensor) -> torch.Tensor:
        """HuBERT features [B, 768, T] → semantic codes [B, n_q, T'] (T' = T // 2 at 25 Hz)."""
        x = self.model.ssl_proj(ssl.to(self.device, self.dtype))
        return self.model.quantizer.encode(x).transpose(0, 1)

    @torch.inference_mode()
    def decode(self, items: Sequence[DecodeItem | tuple]) -> list[np.ndarray]:
        """Decode several requests in one forward; returns one float32 waveform per item (32 kHz, mono)."""
        reqs = [it if isinstance(it, DecodeItem) else DecodeItem(*it) for it in items]
        if not reqs:
            return []
        dev, dt = self.device, self.dtype
        fpc = self.model.frames_per_code
        codes = [torch.as_tensor(r.codes, dtype=torch.long).reshape(-1) for r in reqs]
        phones = [torch.as_tensor(r.phones, dtype=torch.long).reshape(-1) for r in reqs]
        for c, p, r in zip(codes, phones, reqs, strict=True):
            if c.numel() == 0 or p.numel() == 0:
                raise ValueError("decode needs at least one semantic code and one phone")
            if c.numel() > self.max_codes:
                raise ValueError(f"{c.numel()} semantic codes exceed the decoder's bound of {self.max_codes}")
            if r.speed <= 0:
                raise ValueError(f"speed must be positive, got {r.speed}")
            if int(c.min()) < 0 or int(c.max()) >= self.cfg.codebook_size:
                raise ValueError(f"semantic codes must be in [0, {self.cfg.codebook_size})")
            if int(p.min()) < 0 or int(p.max()) >= self.cfg.n_symbols:
                raise ValueError(f"phone ids must be in [0, {self.cfg.n_symbols})")
        b = len(reqs)
        code_lens = [c.numel() for c in codes]
        text_lens = [p.numel() for p in phones]
        code_pad = torch.zeros(b, max(code_lens), dtype=torch.long)
        text_pad = torch.zeros(b, max(text_lens), dtype=torch.long)
        for i, (c, p) in enumerate(zip(codes, phones, strict=True)):
            code_pad[i, : c.numel()] = c
            text_pad[i, : p.numel()] = p
        code_pad, text_pad = code_pad.to(dev), text_pad.to(dev)
        ge = torch.stack([r.style.to(dev, dt).reshape(-1, 1) for r in reqs])
        m = self.model

        quantized = m.quantizer.decode(code_pad.unsqueeze(0)).to(dt)
        if fpc > 1:
            quantized = quantized.repeat_interleave(fpc, dim=2)
        frames = [n * fpc for n in code_lens]
        y_mask = _length_mask(frames, quantized.shape[2], dev, dt)
        text_mask = _length_mask(text_lens, text_pad.shape[1], dev, dt)
        ge_text = m.ge_to512(ge.transpose(1, 2)).transpose(1, 2) if self.cfg.sv_dim else ge
        h = m.enc_p.hidden(quantized, y_mask, text_pad, text_mask, ge_text)

        if any(r.speed != 1 for r in reqs):
            parts = []
            for i, r in enumerate(reqs):
                part = h[i: i + 1, :, : frames[i]]
                if r.speed != 1 and r.frame_offset is not None:
                    part = _grid_interpolate(part, r.frame_offset, r.speed)
                elif r.speed != 1:  # upstream's resize of the whole utterance
                    part = F.interpolate(part, size=int(frames[i] / r.speed) + 1, mode="linear")
                parts.append(part)
            frames = [p.shape[2] for p in parts]
            h = torch.cat([F.pad(p, (0, max(frames) - p.shape[2])) for p in parts])
            y_mask = _length_mask(frames, h.shape[2], dev, dt)

        mean, logs = m.enc_p.stats(h, y_mask)
        z_p = mean
        if any(r.noise_scale for r in reqs):
            noise = torch.zeros_like(mean)
            for i, r in enumerate(reqs):
                if r.noise_scale:
                    gen = torch.Generator(device="cpu")
                    gen.manual_seed(int(r.seed) if r.seed is not None else int(torch.seed()) % (2 ** 63))
                    # drawn frame by frame from the utterance's start, so a streaming window sees the same noise
                    first = 0
                    if r.frame_offset is not None:
                        first = speed_grid(r.frame_offset, code_lens[i] * fpc, r.speed)[0] if r.speed != 1 \
                            else r.frame_offset
                    eps = torch.randn(first + frames[i], mean.shape[1], generator=gen)[first:].t()
                    noise[i, :, : frames[i]] = eps.to(dev, dt) * r.noise_scale
            z_p = mean + noise * torch.exp(logs)
        z = m.flow.reverse(z_p, y_mask, ge)
        wav = m.dec(z * y_mask, y_mask, ge)
        hop = self.cfg.hop
        return [wav[i, 0, : frames[i] * hop].float().cpu().numpy() for i in range(b)]


def _length_mask(lengths: Sequence[int], total: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    idx = torch.arange(total, device=device)
    return (idx[None, :] < torch.tensor(list(lengths), device=device)[:, None]).to(dtype).unsqueeze(1)


class ChunkStream:
    """Streaming decode of one request by semantic-token chunks, with left context and a crossfade.

    Each chunk is decoded as the codes ``[done - context, end)`` (all phones, same style): the ``context`` codes
    before the new ones give the encoders and the generator their left receptive field, and their audio is dropped.
    Until the last chunk, the audio of the final ``holdback`` codes is not emitted (it lacks right context); the
    next chunk renders it again, and the first ``overlap`` samples where the two renders meet are crossfaded
    (sine-squared fade-in, cosine-squared fade-out: the gains sum to one). Windows carry their global frame offset,
    so a speed change samples one grid across windows and seeded noise is drawn per global frame.

    Call :meth:`item` for the next window to decode (batch it with other requests' items in
    :meth:`SoVITSDecoder.decode`), then :meth:`accept` with its waveform to get the audio to emit. Each window
    decodes at most ``context + holdback + new`` codes, so a chunk's cost does not grow with the utterance.
    """

    def __init__(self, phones: torch.Tensor, style: torch.Tensor, *, speed: float = 1.0, noise_scale: float = 0.0,
                 seed: int | None = None, frames_per_code: int = 2, hop: int = 640, context: int = 24,
                 holdback: int = 2, overlap: int = 640) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be positive, got {speed}")
        if holdback * frames_per_code * hop / speed < overlap + hop:
            raise ValueError("the held-back codes must cover the crossfade overlap")
        if context < holdback:
            raise ValueError("context must be at least holdback")
        self.phones, self.style, self.speed = phones, style, speed
        self.noise_scale, self.seed = noise_scale, seed
        self.fpc, self.hop = frames_per_code, hop
        self.context, self.holdback, self.overlap = context, holdback, overlap
        self.done = 0  # codes whose audio has been emitted (up to the crossfade tail)
        self.out_done = 0  # the same boundary in output frames
        self.tail: np.ndarray | None = None  # the previous render of the first `overlap` samples after it
        self._window: tuple[int, int, bool] | None = None

    def _out_frame(self, frame: int) -> int:
        """The first output frame whose source lies at or after input frame ``frame``."""
        return frame if self.speed == 1 else speed_grid(frame, 1, self.speed)[0]

    def item(self, codes: torch.Tensor, final: bool) -> DecodeItem | None:
        """The window to decode for all codes generated so far (1-D), or None if nothing new can be emitted."""
        codes = torch.as_tensor(codes).reshape(-1)
        end = codes.numel()
        if end <= self.done or (not final and end - self.holdback <= self.done):
            self._window = None
            return None
        start = max(0, self.done - self.context)
        self._window = (start, end, final)
        return DecodeItem(codes[start:end], self.phones, self.style, self.speed, self.noise_scale, self.seed,
                          frame_offset=start * self.fpc)

    def accept(self, wav: np.ndarray) -> np.ndarray:
        """The audio to emit from the waveform of the last :meth:`item`'s window."""
        if self._window is None:
            raise RuntimeError("accept() without a pending item()")
        start, end, final = self._window
        self._window = None
        first = self._out_frame(start * self.fpc)
        out = wav[(self.out_done - first) * self.hop:]
        if self.tail is not None:
            n = min(len(self.tail), len(out))
            ramp = np.sin(np.arange(n, dtype=np.float32) * (np.pi / (2 * n))) ** 2
            out = out.copy()
            out[:n] = self.tail[:n] * (1 - ramp) + out[:n] * ramp
        if final:
            self.done, self.tail = end, None
            self.out_done += len(out) // self.hop
            return out.astype(np.float32, copy=False)
        new_done = end - self.holdback
        boundary = self._out_frame(new_done * self.fpc)
        cut = (boundary - self.out_done) * self.hop
        self.tail = out[cut: cut + self.overlap].copy()
        self.done, self.out_done = new_done, boundary
        return out[:cut].astype(np.float32, copy=False)
