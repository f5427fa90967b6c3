"""A Qwen2 decoder whose forward runs a ragged batch: many sequences, each with its own KV cache, in one call.

CosyVoice3's speech-token LM is a Qwen2 (Qwen2.5-0.5B at real size) fed with embeddings instead of ids. A
serving engine decodes many requests at once while others join with a whole prompt, so :meth:`Qwen2.forward`
takes the new tokens of every sequence packed one after another (a prefill of many tokens, or a decode of one),
plus one :class:`KVCache` per sequence. Each sequence attends causally to its own cache and its own new
tokens, never to another's: the caches are laid side by side in a padded batch with a mask, so the projections,
MLPs and attention of the whole step are a handful of batched tensor operations. The math is the Qwen2 of
transformers (RMSNorm computed in float32, rotary embeddings with ``rope_theta`` from the config, grouped-query
attention with biased q/k/v projections, SwiGLU MLP); no transformers objects are involved.

Weights load from a Hugging Face directory (``config.json`` + ``model.safetensors``) with the ``safetensors``
package, or from any state dict with the same key names (``embed_tokens.weight``, ``layers.N....``,
``norm.weight``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class Qwen2Config:
    """The dimensions a Qwen2 decoder needs, read from a Hugging Face ``config.json``."""

    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    vocab_size: int
    rms_norm_eps: float = 1e-6
    rope_theta: float = 1e6
    head_dim: int = 0  # 0: hidden_size // num_attention_heads
    max_position_embeddings: int = 32768

    def __post_init__(self) -> None:
        if not self.head_dim:
            object.__setattr__(self, "head_dim", self.hidden_size // self.num_attention_heads)
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError("num_attention_heads must be a multiple of num_key_value_heads")

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Qwen2Config:
        """Validate the fields this decoder does not implement (a different model would load silently wrong)."""
        if raw.get("model_type", "qwen2") != "qwen2":
            raise ValueError(f"not a Qwen2 config: model_type {raw.get('model_type')!r}")
        if raw.get("rope_scaling"):
            raise ValueError("rope_scaling is not supported (CosyVoice3's Qwen2 has none)")
        if raw.get("use_sliding_window"):
            raise ValueError("sliding-window attention is not supported (CosyVoice3's Qwen2 does not use it)")
        if raw.get("hidden_act", "silu") != "silu":
            raise ValueError(f"hidden_act {raw.get('hidden_act')!r} is not supported, only silu")
        fields = {k: raw[k] for k in cls.__dataclass_fields__ if raw.get(k) is not None}
        return cls(**fields)

    @classmethod
    def from_json(cls, path: str | Path) -> Qwen2Config:
        return cls.from_dict(json.loads(Path(path).read_text()))


class KVCache:
    """One sequence's keys and values for every layer: a ``[layers, 2, kv_heads, capacity, head_dim]`` buffer
    that grows by doubling, so appending a decoded token does not copy the whole cache."""

    def __init__(self, layers: int, kv_heads: int, head_dim: int, dtype: torch.dtype, device: torch.device) -> None:
        self.buf = torch.empty(layers, 2, kv_heads, 0, head_dim, dtype=dtype, device=device)
        self.length = 0

    def keys_values(self) -> torch.Tensor:
        """The used part, ``[layers, 2, kv_heads, length, head_dim]``."""
        return self.buf[:, :, :, : self.length]

    def append(self, rows: torch.Tensor) -> None:
        """Add ``rows`` (``[layers, 2, kv_heads, n, head_dim]``) after the cached tokens."""
        n = rows.shape[3]
        if self.length + n > self.buf.shape[3]:
            cap = max(2 * self.buf.shape[3], self.length + n, 16)
            grown = self.buf.new_empty((*self.buf.shape[:3], cap, self.buf.shape[4]))
            grown[:, :, :, : self.length] = self.buf[:, :, :, : self.length]
            self.buf = grown
        self.buf[:, :, :, self.length : self.length + n] = rows
        self.length += n

    @property
    def nbytes(self) -> int:
        """Memory held, spare capacity included."""
        return self.buf.numel() * self.buf.element_size()


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.float()
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * h.to(x.dtype)


class Attention(nn.Module):
    def __init__(self, cfg: Qwen2Config) -> None:
        super().__init__()
        self.heads, self.kv_heads, self.head_dim = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
        self.q_proj = nn.Linear(cfg.hidden_size, self.heads * self.head_dim, bias=True)
        self.k_proj = nn.Linear(cfg.hidden_size, self.kv_heads * self.head_dim, bias=True)
        self.v_proj = nn.Linear(cfg.hidden_size, self.kv_heads * self.head_dim, bias=True)
        self.o_proj = nn.Linear(self.heads * self.head_dim, cfg.hidden_size, bias=False)


class MLP(nn.Module):
    def __init__(self, cfg: Qwen2Config) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.up_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.down_proj = nn.Linear(cfg.intermediate_size, cfg.hidden_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    def __init__(self, cfg: Qwen2Config) -> None:
        super().__init__()
        self.self_attn = Attention(cfg)
        self.mlp = MLP(cfg)
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


@dataclass
class _Layout:
    """Where each packed token sits in the padded batch of one forward call."""

    row: torch.Tensor  # [T] the sequence each packed token belongs to
    query: torch.Tensor  # [T] its index among its sequence's new tokens
    position: torch.Tensor  # [T] its absolute position (cached tokens before it)
    mask: torch.Tensor  # [B, 1, N, S] which padded keys each padded query may attend to
    cached: list[int]
    new: list[int]
    width: int  # S: the longest cache + new tokens
    queries: int  # N: the most new tokens of a sequence


class Qwen2(nn.Module):
    """The Qwen2 decoder stack (``Qwen2Model`` in transformers' naming: no LM head)."""

    def __init__(self, cfg: Qwen2Config) -> None:
        super().__init__()
        self.config = cfg
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.layers = nn.ModuleList(DecoderLayer(cfg) for _ in range(cfg.num_hidden_layers))
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str | torch.device = "cpu",
                        dtype: torch.dtype = torch.float32) -> Qwen2:
        """Load ``config.json`` and ``model.safetensors`` of a Hugging Face Qwen2 directory."""
        from safetensors.torch import load_file

        path = Path(path)
        with torch.device("meta"):  # no random init of weights about to be replaced
            model = cls(Qwen2Config.from_json(path / "config.json"))
        weights = load_file(str(path / "model.safetensors"), device="cpu")
        state = {k.removeprefix("model."): v for k, v in weights.items() if k != "lm_head.weight"}
        model.load_state_dict(state, strict=True, assign=True)
        return model.to(device=device, dtype=dtype).eval()

    def new_cache(self) -> KVCache:
        cfg = self.config
        return KVCache(cfg.num_hidden_layers, cfg.num_key_value_heads, cfg.head_dim, self.embed_tokens.weight.dtype,
                       self.embed_tokens.weight.device)

    def _layout(self, new: list[int], caches: list[KVCache]) -> _Layout:
        device = self.embed_tokens.weight.device
        cached = [c.length for c in caches]
        counts = torch.tensor(new, device=device)
        starts = torch.tensor(cached, device=device)
        row = torch.repeat_interleave(torch.arange(len(new), device=device), counts)
        offsets = torch.cumsum(counts, 0) - counts
        query = torch.arange(int(counts.sum()), device=device) - offsets[row]
        width, queries = max(c + n for c, n in zip(cached, new, strict=True)), max(new)
        # a query at position p sees keys 0..p of its own row; padded query rows see keys too (never a row of
        # -inf only, which would give NaN), and are dropped
        limit = starts[:, None] + torch.arange(queries, device=device)[None]  # [B, N]
        mask = torch.arange(width, device=device)[None, None] <= limit[:, :, None]
        return _Layout(row, query, starts[row] + query, mask[:, None], cached, new, width, queries)

    def _rope(self, position: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """cos and sin of each position's angles (computed here, not a buffer: a model built on the meta device
        and loaded with ``assign=True`` has no buffers to fill)."""
        cfg = self.config
        exponents = torch.arange(0, cfg.head_dim, 2, dtype=torch.int64, device=position.device).float() / cfg.head_dim
        freqs = position.float()[:, None] * (1.0 / cfg.rope_theta**exponents)[None]
        emb = torch.cat((freqs, freqs), dim=-1)[:, None]  # [T, 1, head_dim]
        return emb.cos().to(dtype), emb.sin().to(dtype)

    def forward(self, embeds: torch.Tensor, new: list[int], caches: list[KVCache]) -> torch.Tensor:
        """Run ``embeds`` (``[T, hidden]``: sequence 0's ``new[0]`` tokens, then sequence 1's, ...) after each
        sequence's cache; append their keys and values to the caches; return the final-norm hidden states
        ``[T, hidden]``."""
        if len(new) != len(caches) or not new or min(new) < 1 or sum(new) != embeds.shape[0]:
            raise ValueError("new must give a positive token count per cache, summing to the packed length")
        cfg = self.config
        lay = self._layout(new, caches)
        b, layers, kvh, hd = len(caches), cfg.num_hidden_layers, cfg.num_key_value_heads, cfg.head_dim
        # every sequence's keys and values side by side: [layers, 2, B, kv_heads, S, head_dim], zeros past a
        # row's end (finite, so masked-out positions weigh exactly 0)
        kv = embeds.new_zeros(layers, 2, b, kvh, lay.width, hd)
        for k, cache in enumerate(caches):
            if cache.length:
                kv[:, :, k, :, : cache.length] = cache.keys_values()
        cos, sin = self._rope(lay.position, embeds.dtype)
        x = embeds
        for index, layer in enumerate(self.layers):
            att = layer.self_attn
            h = layer.input_layernorm(x)
            q = att.q_proj(h).view(-1, cfg.num_attention_heads, hd)
            k = att.k_proj(h).view(-1, kvh, hd)
            v = att.v_proj(h).view(-1, kvh, hd)
            q = q * cos + _rotate_half(q) * sin
            k = k * cos + _rotate_half(k) * sin
            kv[index, 0, lay.row, :, lay.position] = k
            kv[index, 1, lay.row, :, lay.position] = v
            qp = q.new_zeros(b, cfg.num_attention_heads, lay.queries, hd)
            qp[lay.row, :, lay.query] = q
            out = F.scaled_dot_product_attention(qp, kv[index, 0], kv[index, 1], attn_mask=lay.mask, enable_gqa=True)
            x = x + att.o_proj(out[lay.row, :, lay.query].reshape(x.shape[0], -1))
            x = x + layer.mlp(layer.post_attention_layernorm(x))
        for k, cache in enumerate(caches):
            cache.append(kv[:, :, k, :, lay.cached[k] : lay.cached[k] + lay.new[k]])
        return self.norm(x)
