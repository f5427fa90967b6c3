"""CosyVoice3's DiT estimator: the velocity network of the flow-matching decoder (mel frames in, velocity out).

Written from the facts of upstream's ``cosyvoice/flow/DiT`` (FunAudioLLM/CosyVoice ace7c47), in this module's
own structure:

* time: a 256-wide sinusoidal embedding of ``t`` (scale 1000) through Linear-SiLU-Linear; every layer turns
  it into adaptive-LayerNorm shifts, scales and gates. The solver's ten times are fixed, so the flow module
  precomputes them once (:meth:`DiTEstimator.modulation`);
* input: ``Linear([x, cond, mu, spk])`` plus a causal convolutional position term (two grouped convolutions,
  kernel 31, Mish, each padded on the left only) — a frame sees only earlier frames there;
* layers: AdaLN-zero pre-norm attention and a tanh-GELU feed-forward. Rotary position is applied to the
  *first head only*: upstream rotates ``q``/``k`` before splitting heads with a table one head wide
  (x-transformers' interleaved-pair rotation), so the other heads carry no position;
* out: final AdaLN (scale before shift in its projection) and ``Linear(dim, 80)``.

For serving, :meth:`DiTEstimator.forward` runs a padded batch of rows, each with its own absolute frame
positions and attention mask, optionally after cached keys/values (``cache``) and causal-conv tails
(``tails``) of frames computed in an earlier call: that is what lets the flow module stream chunk by chunk
without recomputing what came before (see ``flow.py``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

_LN_EPS = 1e-6


@dataclass(frozen=True)
class DiTDims:
    """Estimator sizes. Defaults are Fun-CosyVoice3-0.5B's (dim 1024, depth 22, 16 heads of 64)."""

    dim: int = 1024
    depth: int = 22
    heads: int = 16
    dim_head: int = 64
    ff_mult: int = 2
    mel_dim: int = 80
    mu_dim: int = 80
    spk_dim: int = 80
    freq_dim: int = 256
    conv_kernel: int = 31
    conv_groups: int = 16

    @classmethod
    def from_shapes(cls, shapes: dict[str, tuple[int, ...]], prefix: str = "decoder.estimator.") -> DiTDims:
        """Sizes read off an upstream state dict's key → shape map (keys under ``prefix``)."""
        dim, freq_dim = shapes[prefix + "time_embed.time_mlp.0.weight"]
        block = re.compile(re.escape(prefix) + r"transformer_blocks\.(\d+)\.")
        depth = 1 + max(int(m.group(1)) for k in shapes if (m := block.match(k)))
        dim_head = 2 * shapes[prefix + "rotary_embed.inv_freq"][0]
        inner = shapes[prefix + "transformer_blocks.0.attn.to_q.weight"][0]
        hidden = shapes[prefix + "transformer_blocks.0.ff.ff.0.0.weight"][0]
        conv = shapes[prefix + "input_embed.conv_pos_embed.conv1.0.weight"]
        mel_dim = shapes[prefix + "proj_out.weight"][0]
        proj_in = shapes[prefix + "input_embed.proj.weight"][1]
        if hidden % dim or inner % dim_head or dim % conv[1]:
            raise ValueError(f"inconsistent DiT shapes: dim {dim}, ff {hidden}, attention {inner}, head {dim_head}")
        # the input projection reads [x, cond, mu, spk]; mu and spk are mel-wide in every CosyVoice3 config
        if proj_in != 4 * mel_dim:
            raise ValueError(f"DiT input projection reads {proj_in} channels, expected 4 x {mel_dim}")
        return cls(dim=dim, depth=depth, heads=inner // dim_head, dim_head=dim_head, ff_mult=hidden // dim,
                   mel_dim=mel_dim, mu_dim=mel_dim, spk_dim=mel_dim, freq_dim=freq_dim, conv_kernel=conv[2],
                   conv_groups=dim // conv[1])


# upstream estimator key (after "decoder.estimator.") → this module's key
_RENAMES = [
    (r"time_embed\.time_mlp\.0\.", "time_in."),
    (r"time_embed\.time_mlp\.2\.", "time_out."),
    (r"input_embed\.proj\.", "proj_in."),
    (r"input_embed\.conv_pos_embed\.conv1\.0\.", "pos_conv1."),
    (r"input_embed\.conv_pos_embed\.conv2\.0\.", "pos_conv2."),
    (r"rotary_embed\.inv_freq$", "inv_freq"),
    (r"transformer_blocks\.(\d+)\.attn_norm\.linear\.", r"layers.\1.modulation."),
    (r"transformer_blocks\.(\d+)\.attn\.to_(q|k|v)\.", r"layers.\1.to_\2."),
    (r"transformer_blocks\.(\d+)\.attn\.to_out\.0\.", r"layers.\1.to_out."),
    (r"transformer_blocks\.(\d+)\.ff\.ff\.0\.0\.", r"layers.\1.ff_in."),
    (r"transformer_blocks\.(\d+)\.ff\.ff\.2\.", r"layers.\1.ff_out."),
    (r"norm_out\.linear\.", "final_modulation."),
    (r"proj_out\.", "proj_out."),
]


def estimator_key(upstream: str) -> str:
    """This module's name for an upstream estimator key (the part after ``decoder.estimator.``)."""
    for pattern, repl in _RENAMES:
        new, n = re.subn("^" + pattern, repl, upstream)
        if n:
            return new
    raise KeyError(f"unknown DiT key {upstream!r}")


@dataclass
class DiTOutput:
    """One estimator call: velocity ``out`` [R, T, mel] and the two causal-conv inputs with their left
    tails ([R, dim, K-1+T]), so the caller can keep the tails at any frame."""

    out: Tensor
    conv_in: tuple[Tensor, Tensor]


def _layer_norm(x: Tensor) -> Tensor:
    return F.layer_norm(x, (x.shape[-1],), eps=_LN_EPS)


def _rotate_first_head(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Interleaved-pair rotation of the first ``cos.shape[-1]`` channels of x [R, T, H*Dh] (see module doc)."""
    width = cos.shape[-1]
    head, rest = x[..., :width], x[..., width:]
    pairs = head.float().unflatten(-1, (-1, 2))
    turned = torch.stack((-pairs[..., 1], pairs[..., 0]), dim=-1).flatten(-2)
    rotated = head.float() * cos + turned * sin
    return torch.cat((rotated.to(x.dtype), rest), dim=-1)


class DiTLayer(nn.Module):
    """One AdaLN-zero transformer layer."""

    def __init__(self, dims: DiTDims) -> None:
        super().__init__()
        inner = dims.heads * dims.dim_head
        self.heads, self.dim_head = dims.heads, dims.dim_head
        self.modulation = nn.Linear(dims.dim, 6 * dims.dim)
        self.to_q = nn.Linear(dims.dim, inner)
        self.to_k = nn.Linear(dims.dim, inner)
        self.to_v = nn.Linear(dims.dim, inner)
        self.to_out = nn.Linear(inner, dims.dim)
        self.ff_in = nn.Linear(dims.dim, dims.dim * dims.ff_mult)
        self.ff_out = nn.Linear(dims.dim * dims.ff_mult, dims.dim)

    def forward(self, h: Tensor, mod: Tensor, cos: Tensor, sin: Tensor, mask: Tensor | None,
                cache: tuple[Tensor, Tensor] | None, offset: int) -> Tensor:
        """h [R, T, dim]; mod [R or 1, 6, dim]; mask [R, 1, T, keys] additive (None: every key). Without a
        cache the keys are these frames; with one ([R, H, >= offset+T, Dh] key and value buffers holding
        earlier frames before ``offset``) this call's keys/values are written at ``offset`` and the keys are
        the first offset+T frames."""
        shift_a, scale_a, gate_a, shift_f, scale_f, gate_f = mod.unbind(1)
        x = _layer_norm(h) * (1 + scale_a[:, None]) + shift_a[:, None]
        q = _rotate_first_head(self.to_q(x), cos, sin)
        k = _rotate_first_head(self.to_k(x), cos, sin)
        v = self.to_v(x)
        rows, frames = h.shape[0], h.shape[1]
        q, k, v = (t.view(rows, frames, self.heads, self.dim_head).transpose(1, 2) for t in (q, k, v))
        if cache is not None:
            end = offset + frames
            cache[0][:, :, offset:end] = k
            cache[1][:, :, offset:end] = v
            k, v = cache[0][:, :, :end], cache[1][:, :, :end]
        att = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        att = self.to_out(att.transpose(1, 2).reshape(rows, frames, -1))
        h = h + gate_a[:, None] * att
        x = _layer_norm(h) * (1 + scale_f[:, None]) + shift_f[:, None]
        return h + gate_f[:, None] * self.ff_out(F.gelu(self.ff_in(x), approximate="tanh"))


class DiTEstimator(nn.Module):
    """The velocity network v(x, t | mu, cond, spk); see the module docstring."""

    def __init__(self, dims: DiTDims) -> None:
        super().__init__()
        self.dims = dims
        self.time_in = nn.Linear(dims.freq_dim, dims.dim)
        self.time_out = nn.Linear(dims.dim, dims.dim)
        self.proj_in = nn.Linear(2 * dims.mel_dim + dims.mu_dim + dims.spk_dim, dims.dim)
        self.pos_conv1 = nn.Conv1d(dims.dim, dims.dim, dims.conv_kernel, groups=dims.conv_groups)
        self.pos_conv2 = nn.Conv1d(dims.dim, dims.dim, dims.conv_kernel, groups=dims.conv_groups)
        self.register_buffer("inv_freq", torch.zeros(dims.dim_head // 2))
        self.layers = nn.ModuleList(DiTLayer(dims) for _ in range(dims.depth))
        self.final_modulation = nn.Linear(dims.dim, 2 * dims.dim)
        self.proj_out = nn.Linear(dims.dim, dims.mel_dim)

    @property
    def tail(self) -> int:
        """Frames of left context each causal position convolution needs."""
        return self.dims.conv_kernel - 1

    def time_embedding(self, t: Tensor) -> Tensor:
        """t [N] (float32) → [N, dim]: sinusoids at scale 1000 (sin half, then cos half) through the MLP."""
        half = self.dims.freq_dim // 2
        freqs = torch.exp(torch.arange(half, device=t.device).float() * -(math.log(10000) / (half - 1)))
        angles = 1000 * t.float()[:, None] * freqs[None]
        sinus = torch.cat((angles.sin(), angles.cos()), dim=-1).to(self.time_in.weight.dtype)
        return self.time_out(F.silu(self.time_in(sinus)))

    def modulation(self, t: Tensor) -> tuple[Tensor, Tensor]:
        """Per-layer AdaLN vectors [N, depth, 6, dim] and final (scale, shift) [N, 2, dim] for times t [N]."""
        emb = F.silu(self.time_embedding(t))
        layers = torch.stack([layer.modulation(emb).unflatten(-1, (6, -1)) for layer in self.layers], dim=1)
        return layers, self.final_modulation(emb).unflatten(-1, (2, -1))

    def rope(self, positions: Tensor) -> tuple[Tensor, Tensor]:
        """cos/sin tables [R, T, Dh] (float32) for absolute frame positions [R, T]."""
        angles = positions.float()[..., None] * self.inv_freq.float()
        angles = angles.repeat_interleave(2, dim=-1)
        return angles.cos(), angles.sin()

    def forward(self, x: Tensor, cond: Tensor, mu: Tensor, spk: Tensor, mod: tuple[Tensor, Tensor],
                rope: tuple[Tensor, Tensor], mask: Tensor | None, cache: Tensor | None = None, offset: int = 0,
                tails: tuple[Tensor, Tensor] | None = None) -> DiTOutput:
        """Velocity for rows of frames.

        x, cond, mu [R, T, mel]; spk [R, spk_dim]; mod = :meth:`modulation` of one time ([1 or R, ...]);
        rope = :meth:`rope` of the frames' absolute positions (the same at every solver step); mask
        [R, 1, T, keys] additive float (None: all keys); cache [layers, 2 (k, v), R, H, >= offset+T, Dh]:
        earlier frames' keys/values before ``offset``, this call's are written after them (see
        :meth:`DiTLayer.forward`); tails: the causal convolutions' left inputs [R, dim, K-1] (zeros at the
        start of an utterance, the default).
        """
        rows, frames = x.shape[0], x.shape[1]
        h = self.proj_in(torch.cat((x, cond, mu, spk[:, None].expand(rows, frames, -1)), dim=-1)).transpose(1, 2)
        if tails is None:
            zeros = h.new_zeros(rows, h.shape[1], self.tail)
            tails = (zeros, zeros)
        in1 = torch.cat((tails[0], h), dim=-1)
        c1 = F.mish(self.pos_conv1(in1))
        in2 = torch.cat((tails[1], c1), dim=-1)
        h = (h + F.mish(self.pos_conv2(in2))).transpose(1, 2)
        cos, sin = rope
        layer_mod, final_mod = mod
        for i, layer in enumerate(self.layers):
            h = layer(h, layer_mod[:, i], cos, sin, mask, None if cache is None else (cache[i, 0], cache[i, 1]), offset)
        scale, shift = final_mod.unbind(1)
        h = _layer_norm(h) * (1 + scale[:, None]) + shift[:, None]
        return DiTOutput(self.proj_out(h), (in1, in2))
