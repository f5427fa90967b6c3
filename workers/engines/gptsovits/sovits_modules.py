"""Building blocks of the SoVITS v2 decoder, written for padded batches.

Every block takes ``mask`` tensors ([B, 1, T], 1 on real frames, 0 on padding) and zeroes the padding before each
convolution, so an item decoded in a padded batch sees exactly the zero borders it would see alone. Parameter names
follow the checkpoint's state-dict keys (weight norm already folded into plain ``weight`` by the loader), so a
checkpoint loads with ``load_state_dict(strict=True)``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

LRELU_SLOPE = 0.1


class ChannelNorm(nn.Module):
    """Layer norm over the channel axis of a [B, C, T] tensor (keys ``gamma``/``beta``)."""

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.layer_norm(x.transpose(1, -1), (x.shape[1],), self.gamma, self.beta, self.eps)
        return y.transpose(1, -1)


class ConvAttention(nn.Module):
    """Multi-head attention with 1x1 conv projections; optional windowed relative positions (self-attention only).

    The relative terms follow VITS: a learned key and value embedding per offset in [-window, window], shared by the
    heads; offsets outside the window contribute nothing.
    """

    def __init__(self, channels: int, out_channels: int, n_heads: int, window_size: int | None = None) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.k_channels = channels // n_heads
        self.window_size = window_size
        self.conv_q = nn.Conv1d(channels, channels, 1)
        self.conv_k = nn.Conv1d(channels, channels, 1)
        self.conv_v = nn.Conv1d(channels, channels, 1)
        self.conv_o = nn.Conv1d(channels, out_channels, 1)
        if window_size is not None:
            self.emb_rel_k = nn.Parameter(torch.zeros(1, 2 * window_size + 1, self.k_channels))
            self.emb_rel_v = nn.Parameter(torch.zeros(1, 2 * window_size + 1, self.k_channels))

    def forward(self, x: torch.Tensor, c: torch.Tensor, attn_mask: torch.Tensor) -> torch.Tensor:
        """x [B, C, Tq] queries, c [B, C, Tk] keys/values, attn_mask [B, 1, Tq, Tk] (0 = masked)."""
        b, _, tq = x.shape
        tk = c.shape[2]
        h, d = self.n_heads, self.k_channels
        q = self.conv_q(x).view(b, h, d, tq).transpose(2, 3) / math.sqrt(d)
        k = self.conv_k(c).view(b, h, d, tk).transpose(2, 3)
        v = self.conv_v(c).view(b, h, d, tk).transpose(2, 3)
        scores = torch.matmul(q, k.transpose(-2, -1))
        if self.window_size is not None:
            w = self.window_size
            pos = torch.arange(tq, device=x.device)
            offset = pos[None, :] - pos[:, None] + w  # [Tq, Tk]: key j relative to query i, shifted to >= 0
            inside = ((offset >= 0) & (offset <= 2 * w)).to(scores.dtype)
            rel_logits = torch.matmul(q, self.emb_rel_k.unsqueeze(0).transpose(-2, -1))  # [B, H, Tq, 2w+1]
            gathered = torch.gather(rel_logits, -1, offset.clamp(0, 2 * w).expand(b, h, tq, tk))
            scores = scores + gathered * inside
        scores = scores.masked_fill(attn_mask == 0, -1e4)
        p = F.softmax(scores, dim=-1)
        out = torch.matmul(p, v)
        if self.window_size is not None:
            # weight of offset r for query i is p[i, i + r - w] (zero past the sequence's ends)
            idx = pos[:, None] + torch.arange(2 * w + 1, device=x.device)[None, :]
            rel_w = torch.gather(F.pad(p, (w, w)), -1, idx.expand(b, h, tq, 2 * w + 1))
            out = out + torch.matmul(rel_w, self.emb_rel_v.unsqueeze(0))
        out = out.transpose(2, 3).reshape(b, h * d, tq)
        return self.conv_o(out)


class ConvFFN(nn.Module):
    """Two same-padded convolutions with a ReLU, masked before each."""

    def __init__(self, channels: int, filter_channels: int, kernel_size: int) -> None:
        super().__init__()
        self.conv_1 = nn.Conv1d(channels, filter_channels, kernel_size)
        self.conv_2 = nn.Conv1d(filter_channels, channels, kernel_size)
        self.pad = ((kernel_size - 1) // 2, kernel_size // 2)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv_1(F.pad(x * mask, self.pad)))
        return self.conv_2(F.pad(x * mask, self.pad)) * mask


class RelEncoder(nn.Module):
    """Post-norm transformer encoder with relative-position self-attention (VITS' ``attentions.Encoder``)."""

    def __init__(self, channels: int, filter_channels: int, n_heads: int, n_layers: int, kernel_size: int,
                 window_size: int = 4) -> None:
        super().__init__()
        self.attn_layers = nn.ModuleList(
            ConvAttention(channels, channels, n_heads, window_size) for _ in range(n_layers))
        self.norm_layers_1 = nn.ModuleList(ChannelNorm(channels) for _ in range(n_layers))
        self.ffn_layers = nn.ModuleList(
            ConvFFN(channels, filter_channels, kernel_size) for _ in range(n_layers))
        self.norm_layers_2 = nn.ModuleList(ChannelNorm(channels) for _ in range(n_layers))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        attn_mask = mask.unsqueeze(2) * mask.unsqueeze(-1)
        x = x * mask
        for attn, norm1, ffn, norm2 in zip(self.attn_layers, self.norm_layers_1, self.ffn_layers,
                                           self.norm_layers_2, strict=True):
            x = norm1(x + attn(x, x, attn_mask))
            x = norm2(x + ffn(x, mask))
        return x * mask


class MRTE(nn.Module):
    """Multi-reference timbre encoder: semantic frames attend to the phones, plus the reference style vector."""

    def __init__(self, content_channels: int = 192, hidden: int = 512, n_heads: int = 4) -> None:
        super().__init__()
        self.cross_attention = ConvAttention(hidden, hidden, n_heads)
        self.c_pre = nn.Conv1d(content_channels, hidden, 1)
        self.text_pre = nn.Conv1d(content_channels, hidden, 1)
        self.c_post = nn.Conv1d(hidden, content_channels, 1)

    def forward(self, ssl: torch.Tensor, ssl_mask: torch.Tensor, text: torch.Tensor, text_mask: torch.Tensor,
                ge: torch.Tensor) -> torch.Tensor:
        attn_mask = text_mask.unsqueeze(2) * ssl_mask.unsqueeze(-1)
        ssl = self.c_pre(ssl * ssl_mask)
        text = self.text_pre(text * text_mask)
        x = self.cross_attention(ssl * ssl_mask, text * text_mask, attn_mask) + ssl + ge
        return self.c_post(x * ssl_mask)


class TextEncoderV2(nn.Module):
    """``enc_p``: semantic features + phones + style → prior mean and log-scale per frame (speed applied here)."""

    def __init__(self, out_channels: int, hidden: int, filter_channels: int, n_heads: int, n_layers: int,
                 kernel_size: int, n_symbols: int, ssl_dim: int = 768) -> None:
        super().__init__()
        self.out_channels = out_channels
        self.ssl_proj = nn.Conv1d(ssl_dim, hidden, 1)
        self.encoder_ssl = RelEncoder(hidden, filter_channels, n_heads, n_layers // 2, kernel_size)
        self.encoder_text = RelEncoder(hidden, filter_channels, n_heads, n_layers, kernel_size)
        self.text_embedding = nn.Embedding(n_symbols, hidden)
        self.mrte = MRTE(hidden)
        self.encoder2 = RelEncoder(hidden, filter_channels, n_heads, n_layers // 2, kernel_size)
        self.proj = nn.Conv1d(hidden, out_channels * 2, 1)

    def hidden(self, y: torch.Tensor, y_mask: torch.Tensor, text: torch.Tensor, text_mask: torch.Tensor,
               ge: torch.Tensor) -> torch.Tensor:
        """Frame features before the speed change: y [B, 768, T] quantized semantics, text [B, Tt] ids."""
        y = self.ssl_proj(y * y_mask) * y_mask
        y = self.encoder_ssl(y, y_mask)
        t = self.text_embedding(text).transpose(1, 2)
        t = self.encoder_text(t * text_mask, text_mask)
        y = self.mrte(y, y_mask, t, text_mask, ge)
        return self.encoder2(y * y_mask, y_mask)

    def stats(self, y: torch.Tensor, y_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        m, logs = torch.split(self.proj(y) * y_mask, self.out_channels, dim=1)
        return m, logs


class _Linear(nn.Module):
    """A linear layer stored under ``fc`` (the checkpoint's LinearNorm)."""

    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.fc = nn.Linear(n_in, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


class _Mish(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.tanh(F.softplus(x))


class _GLUConv(nn.Module):
    """Residual gated convolution (keys ``conv1.conv``)."""

    def __init__(self, channels: int, kernel_size: int) -> None:
        super().__init__()
        self.conv1 = nn.Module()
        self.conv1.conv = nn.Conv1d(channels, 2 * channels, kernel_size, padding=(kernel_size - 1) // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.conv1.conv(x).chunk(2, dim=1)
        return x + a * torch.sigmoid(b)


class _StyleAttention(nn.Module):
    """Self-attention with a residual, scaled by sqrt(model dim) as the style encoder was trained."""

    def __init__(self, dim: int, n_heads: int) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.scale = dim ** 0.5
        self.w_qs = nn.Linear(dim, dim)
        self.w_ks = nn.Linear(dim, dim)
        self.w_vs = nn.Linear(dim, dim)
        self.fc = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        """x [B, T, D]; pad [B, T] True on padding."""
        b, t, dim = x.shape
        h = self.n_heads

        def heads(z: torch.Tensor) -> torch.Tensor:
            return z.view(b, t, h, dim // h).transpose(1, 2)

        q, k, v = heads(self.w_qs(x)), heads(self.w_ks(x)), heads(self.w_vs(x))
        scores = torch.matmul(q, k.transpose(-2, -1)) / self.scale
        scores = scores.masked_fill(pad[:, None, None, :], float("-inf"))
        out = torch.matmul(F.softmax(scores, dim=-1), v).transpose(1, 2).reshape(b, t, dim)
        return self.fc(out) + x


class StyleEncoder(nn.Module):
    """``ref_enc``: a reference linear spectrogram (first ``n_bins`` bins) → one style vector [B, gin, 1]."""

    def __init__(self, n_bins: int, out_dim: int, hidden: int = 128, kernel_size: int = 5, n_heads: int = 2) -> None:
        super().__init__()
        self.n_bins = n_bins
        self.spectral = nn.Sequential(_Linear(n_bins, hidden), _Mish(), nn.Identity(), _Linear(hidden, hidden),
                                      _Mish(), nn.Identity())
        self.temporal = nn.Sequential(_GLUConv(hidden, kernel_size), _GLUConv(hidden, kernel_size))
        self.slf_attn = _StyleAttention(hidden, n_heads)
        self.fc = _Linear(hidden, out_dim)

    def forward(self, spec: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """spec [B, F, T] (F >= n_bins), mask [B, 1, T]."""
        x = (spec[:, : self.n_bins] * mask).transpose(1, 2)
        pad = mask[:, 0] == 0
        x = self.spectral(x)
        x = self.temporal(x.transpose(1, 2)).transpose(1, 2)
        x = x.masked_fill(pad.unsqueeze(-1), 0)
        x = self.fc(self.slf_attn(x, pad))
        count = (~pad).sum(dim=1)[:, None, None]
        x = x.masked_fill(pad.unsqueeze(-1), 0) / count
        return x.sum(dim=1).unsqueeze(-1)


def _gated(x: torch.Tensor, g: torch.Tensor, channels: int) -> torch.Tensor:
    a = x + g
    return torch.tanh(a[:, :channels]) * torch.sigmoid(a[:, channels:])


class WaveNet(nn.Module):
    """Non-causal WaveNet with a global condition (``WN``), dilation rate ``d**i``."""

    def __init__(self, hidden: int, kernel_size: int, dilation_rate: int, n_layers: int, gin: int) -> None:
        super().__init__()
        self.hidden = hidden
        self.in_layers = nn.ModuleList()
        self.res_skip_layers = nn.ModuleList()
        self.cond_layer = nn.Conv1d(gin, 2 * hidden * n_layers, 1)
        for i in range(n_layers):
            dilation = dilation_rate ** i
            pad = (kernel_size * dilation - dilation) // 2
            self.in_layers.append(nn.Conv1d(hidden, 2 * hidden, kernel_size, dilation=dilation, padding=pad))
            self.res_skip_layers.append(nn.Conv1d(hidden, 2 * hidden if i < n_layers - 1 else hidden, 1))

    def forward(self, x: torch.Tensor, mask: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        out = torch.zeros_like(x)
        g = self.cond_layer(g)
        n = len(self.in_layers)
        for i, (conv, res_skip) in enumerate(zip(self.in_layers, self.res_skip_layers, strict=True)):
            acts = _gated(conv(x), g[:, 2 * self.hidden * i: 2 * self.hidden * (i + 1)], self.hidden)
            rs = res_skip(acts)
            if i < n - 1:
                x = (x + rs[:, : self.hidden]) * mask
                out = out + rs[:, self.hidden:]
            else:
                out = out + rs
        return out * mask


class MeanCoupling(nn.Module):
    """Mean-only affine coupling: the second half of the channels is shifted by a WaveNet of the first."""

    def __init__(self, channels: int, hidden: int, kernel_size: int, dilation_rate: int, n_layers: int,
                 gin: int) -> None:
        super().__init__()
        self.half = channels // 2
        self.pre = nn.Conv1d(self.half, hidden, 1)
        self.enc = WaveNet(hidden, kernel_size, dilation_rate, n_layers, gin)
        self.post = nn.Conv1d(hidden, self.half, 1)

    def reverse(self, x: torch.Tensor, mask: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        x0, x1 = x[:, : self.half], x[:, self.half:]
        h = self.enc(self.pre(x0) * mask, mask, g)
        m = self.post(h) * mask
        return torch.cat([x0, (x1 - m) * mask], dim=1)


class _Flip(nn.Module):
    """Placeholder for the channel flip between couplings (no parameters; keeps the checkpoint's indices)."""


class Flow(nn.Module):
    """``flow``: couplings interleaved with channel flips; only the reverse (prior → latent) direction is needed."""

    def __init__(self, channels: int, hidden: int, kernel_size: int, dilation_rate: int, n_layers: int, gin: int,
                 n_flows: int = 4) -> None:
        super().__init__()
        self.flows = nn.ModuleList()
        for _ in range(n_flows):
            self.flows.append(MeanCoupling(channels, hidden, kernel_size, dilation_rate, n_layers, gin))
            self.flows.append(_Flip())

    def reverse(self, x: torch.Tensor, mask: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        for flow in reversed(self.flows):
            x = torch.flip(x, [1]) if isinstance(flow, _Flip) else flow.reverse(x, mask, g)
        return x


class ResBlock1(nn.Module):
    """HiFi-GAN residual block type 1: dilated conv then plain conv, three times."""

    def __init__(self, channels: int, kernel_size: int, dilations: list[int]) -> None:
        super().__init__()
        self.convs1 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel_size, dilation=d, padding=(kernel_size * d - d) // 2)
            for d in dilations)
        self.convs2 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel_size, padding=(kernel_size - 1) // 2) for _ in dilations)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        for c1, c2 in zip(self.convs1, self.convs2, strict=True):
            xt = c1(F.leaky_relu(x, LRELU_SLOPE) * mask)
            xt = c2(F.leaky_relu(xt, LRELU_SLOPE) * mask)
            x = xt + x
        return x * mask


class ResBlock2(nn.Module):
    """HiFi-GAN residual block type 2: one dilated conv per dilation."""

    def __init__(self, channels: int, kernel_size: int, dilations: list[int]) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel_size, dilation=d, padding=(kernel_size * d - d) // 2)
            for d in dilations)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        for c in self.convs:
            x = c(F.leaky_relu(x, LRELU_SLOPE) * mask) + x
        return x * mask


class Generator(nn.Module):
    """``dec``: HiFi-GAN generator conditioned on the style; masks every stage so padded items decode as alone."""

    def __init__(self, in_channels: int, resblock: str, kernel_sizes: list[int], dilations: list[list[int]],
                 upsample_rates: list[int], initial_channels: int, upsample_kernel_sizes: list[int],
                 gin: int) -> None:
        super().__init__()
        self.rates = list(upsample_rates)
        self.n_kernels = len(kernel_sizes)
        self.conv_pre = nn.Conv1d(in_channels, initial_channels, 7, padding=3)
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        block = ResBlock1 if str(resblock) == "1" else ResBlock2
        ch = initial_channels
        for i, (u, k) in enumerate(zip(upsample_rates, upsample_kernel_sizes, strict=True)):
            ch = initial_channels // (2 ** (i + 1))
            self.ups.append(nn.ConvTranspose1d(2 * ch, ch, k, u, padding=(k - u) // 2))
            for ks, ds in zip(kernel_sizes, dilations, strict=True):
                self.resblocks.append(block(ch, ks, list(ds)))
        self.conv_post = nn.Conv1d(ch, 1, 7, padding=3, bias=False)
        self.cond = nn.Conv1d(gin, initial_channels, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        """x [B, C, T] masked latent, mask [B, 1, T] → waveform [B, 1, T * prod(rates)]."""
        x = (self.conv_pre(x) + self.cond(g)) * mask
        for i, u in enumerate(self.rates):
            x = self.ups[i](F.leaky_relu(x, LRELU_SLOPE))
            mask = mask.repeat_interleave(u, dim=2)
            x = x * mask
            xs = None
            for j in range(self.n_kernels):
                r = self.resblocks[i * self.n_kernels + j](x, mask)
                xs = r if xs is None else xs + r
            x = xs / self.n_kernels
        x = self.conv_post(F.leaky_relu(x) * mask)
        return torch.tanh(x)
