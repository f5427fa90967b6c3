"""GPT-SoVITS's text-to-semantic GPT, decoded as one ragged batch across requests.

The model (upstream's ``Text2SemanticDecoder`` at inference) reads a sentence's phonemes and their BERT
features, then the reference clip's semantic tokens (the prompt), and continues the semantic sequence until
it emits EOS (id 1024). It is a post-norm transformer: each layer adds attention, then LayerNorm, then adds
a ReLU feed-forward, then LayerNorm. Phonemes and semantic tokens have their own embeddings and sine
positional encodings (positions from 0 in each stream) scaled by a learned ``alpha``; the phonemes also get
``bert_proj`` of their 1024-d BERT features. In the prompt pass the phonemes attend to each other
bidirectionally (not to the semantic tokens) and each semantic token attends to every phoneme and to the
semantic tokens up to itself.

:class:`T2SModel` holds the weights under its own names (:func:`upstream_names` maps the checkpoint's);
:class:`KVPool` keeps one cache per request and decodes any set of requests in one forward call (caches of
different lengths padded, with a mask), so requests join and leave between steps; :func:`sample` picks one
token per row with upstream's filters in upstream's order (repetition penalty over the prompt and the tokens
so far, top-p, temperature, top-k; then one inverse-CDF draw where upstream races exponentials: the same
distribution) with each row's own ``torch.Generator``, so a request's tokens do not
depend on its batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

BERT_DIM = 1024
#: upstream's positional tables cover 4000 positions; longer inputs are refused before they get here
MAX_POSITIONS = 4000


@dataclass(frozen=True)
class T2SConfig:
    """Dimensions of a text-to-semantic GPT (the real v2 model: 512 wide, 16 heads, 24 layers)."""

    dim: int = 512
    heads: int = 16
    layers: int = 24
    ffn: int = 2048
    phonemes: int = 732
    vocab: int = 1025

    @property
    def eos(self) -> int:
        return self.vocab - 1

    @classmethod
    def from_checkpoint(cls, config: dict[str, Any], weights: dict[str, torch.Tensor]) -> T2SConfig:
        """Dimensions from an s1 config (``model.hidden_dim``, ``head``, ``n_layer``...) and the weights
        (the feed-forward width is the weights', not ``linear_units``: upstream builds 4 × hidden)."""
        model = config.get("model", config)
        ffn = weights.get("h.layers.0.linear1.weight")
        return cls(dim=int(model["hidden_dim"]), heads=int(model["head"]), layers=int(model["n_layer"]),
                   ffn=int(ffn.shape[0]) if ffn is not None else 4 * int(model["hidden_dim"]),
                   phonemes=int(model["phoneme_vocab_size"]), vocab=int(model["vocab_size"]))


def upstream_names(layers: int) -> dict[str, str]:
    """Upstream state-dict key (without "model.") -> this module's parameter name."""
    names = {"bert_proj.weight": "bert_proj.weight", "bert_proj.bias": "bert_proj.bias",
             "ar_text_embedding.word_embeddings.weight": "phone_emb.weight",
             "ar_text_position.alpha": "phone_alpha",
             "ar_audio_embedding.word_embeddings.weight": "semantic_emb.weight",
             "ar_audio_position.alpha": "semantic_alpha",
             "ar_predict_layer.weight": "head.weight"}
    parts = {"self_attn.in_proj_weight": "qkv.weight", "self_attn.in_proj_bias": "qkv.bias",
             "self_attn.out_proj.weight": "out.weight", "self_attn.out_proj.bias": "out.bias",
             "linear1.weight": "ff_in.weight", "linear1.bias": "ff_in.bias",
             "linear2.weight": "ff_out.weight", "linear2.bias": "ff_out.bias",
             "norm1.weight": "norm_attn.weight", "norm1.bias": "norm_attn.bias",
             "norm2.weight": "norm_ff.weight", "norm2.bias": "norm_ff.bias"}
    for i in range(layers):
        names.update({f"h.layers.{i}.{a}": f"blocks.{i}.{b}" for a, b in parts.items()})
    return names


def sine_table(positions: int, dim: int) -> torch.Tensor:
    """[positions, dim]: sin at even channels, cos at odd ones, wavelengths from 2π to 10000·2π (float32,
    as upstream computes it)."""
    pos = torch.arange(positions, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * -(math.log(10000.0) / dim))
    table = torch.zeros(positions, dim)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq)
    return table


class Block(nn.Module):
    """One post-norm transformer layer."""

    def __init__(self, cfg: T2SConfig) -> None:
        super().__init__()
        self.heads = cfg.heads
        self.qkv = nn.Linear(cfg.dim, 3 * cfg.dim)
        self.out = nn.Linear(cfg.dim, cfg.dim)
        self.ff_in = nn.Linear(cfg.dim, cfg.ffn)
        self.ff_out = nn.Linear(cfg.ffn, cfg.dim)
        self.norm_attn = nn.LayerNorm(cfg.dim)
        self.norm_ff = nn.LayerNorm(cfg.dim)

    def finish(self, x: torch.Tensor, attended: torch.Tensor) -> torch.Tensor:
        """The rest of the layer once attention ran: output projection, residuals, norms, feed-forward."""
        x = self.norm_attn(x + self.out(attended))
        return self.norm_ff(x + self.ff_out(F.relu(self.ff_in(x))))


class T2SModel(nn.Module):
    """The weights and the two passes: :meth:`prefill` (one sequence, returns its cache) and
    :meth:`decode` (one new token per row over padded caches)."""

    def __init__(self, cfg: T2SConfig, device: str | torch.device | None = None,
                 dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.cfg = cfg
        kw = {"device": device, "dtype": dtype}
        with torch.device(device or "cpu"):
            self.bert_proj = nn.Linear(BERT_DIM, cfg.dim, **kw)
            self.phone_emb = nn.Embedding(cfg.phonemes, cfg.dim, **kw)
            self.phone_alpha = nn.Parameter(torch.ones(1, **kw))
            self.semantic_emb = nn.Embedding(cfg.vocab, cfg.dim, **kw)
            self.semantic_alpha = nn.Parameter(torch.ones(1, **kw))
            self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.layers))
            self.head = nn.Linear(cfg.dim, cfg.vocab, bias=False, **kw)
        self.blocks.to(**kw)
        pe_device = "cpu" if str(device) == "meta" or device is None else device
        self.register_buffer("pe", sine_table(MAX_POSITIONS, cfg.dim).to(pe_device, dtype), persistent=False)
        self.requires_grad_(False)

    @property
    def dtype(self) -> torch.dtype:
        return self.head.weight.dtype

    @property
    def device(self) -> torch.device:
        return self.head.weight.device

    def load_upstream(self, weights: dict[str, torch.Tensor]) -> None:
        """Copy an upstream state dict (keys without "model.") in; ValueError naming a missing, unexpected
        or wrongly shaped key."""
        names = upstream_names(self.cfg.layers)
        missing = sorted(set(names) - set(weights))
        extra = sorted(set(weights) - set(names))
        if missing or extra:
            raise ValueError(f"GPT weights do not match a {self.cfg.layers}-layer text-to-semantic model: "
                             f"missing {missing[:3]}, unexpected {extra[:3]}")
        own = dict(self.named_parameters())
        for key, name in names.items():
            if tuple(weights[key].shape) != tuple(own[name].shape):
                raise ValueError(f"GPT weight {key} has shape {tuple(weights[key].shape)}, "
                                 f"expected {tuple(own[name].shape)}")
            if own[name].device.type != "meta":
                own[name].copy_(weights[key].to(own[name].dtype))

    # -- embeddings --------------------------------------------------------------------------------
    def embed_phones(self, phones: torch.Tensor, bert: torch.Tensor) -> torch.Tensor:
        """[n] phoneme ids and [1024, n] BERT features -> [n, dim]."""
        x = self.phone_emb(phones) + self.bert_proj(bert.t().to(self.dtype))
        return x + self.phone_alpha * self.pe[: phones.shape[0]]

    def embed_semantic(self, tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Semantic ids at their positions in the semantic stream -> [..., dim]."""
        return self.semantic_emb(tokens) + self.semantic_alpha * self.pe[positions]

    # -- passes ------------------------------------------------------------------------------------
    def prefill(self, phones: torch.Tensor, bert: torch.Tensor, semantic: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """One sequence (phonemes, then semantic tokens) in full: its cache
        ``[layers, 2, heads, n + m, head_dim]`` and the logits after its last position."""
        n, m = phones.shape[0], semantic.shape[0]
        x = torch.cat([self.embed_phones(phones, bert),
                       self.embed_semantic(semantic, torch.arange(m, device=semantic.device))])
        t = n + m
        rows = torch.arange(t, device=x.device)
        # phonemes see phonemes; a semantic token sees every phoneme and the semantic tokens up to itself
        allowed = torch.where(rows[:, None] < n, rows[None] < n, rows[None] <= rows[:, None])
        heads = self.cfg.heads
        cache = []
        for block in self.blocks:
            q, k, v = block.qkv(x).view(t, 3, heads, -1).permute(1, 2, 0, 3)  # each [heads, t, head_dim]
            cache.append(torch.stack([k, v]))
            attended = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
            x = block.finish(x, attended.transpose(0, 1).reshape(t, -1))
        return torch.stack(cache), self.head(x[-1])

    def decode(self, tokens: torch.Tensor, positions: torch.Tensor, padded: torch.Tensor, lengths: torch.Tensor
               ) -> torch.Tensor:
        """One token per row. ``padded`` ``[layers, 2, batch, heads, t_max + 1, head_dim]`` holds each
        row's cache in its first ``lengths[row]`` slots; this step's keys and values are written at slot
        ``lengths[row]``. Returns the logits ``[batch, vocab]``."""
        b = tokens.shape[0]
        heads = self.cfg.heads
        x = self.embed_semantic(tokens, positions)  # [batch, dim]
        rows = torch.arange(b, device=x.device)
        allowed = (torch.arange(padded.shape[4], device=x.device)[None] <= lengths[:, None])[:, None, None, :]
        for index, block in enumerate(self.blocks):
            q, k, v = block.qkv(x).view(b, 3, heads, 1, -1).unbind(1)  # each [batch, heads, 1, head_dim]
            padded[index, 0, rows, :, lengths] = k[:, :, 0]
            padded[index, 1, rows, :, lengths] = v[:, :, 0]
            attended = F.scaled_dot_product_attention(q, padded[index, 0], padded[index, 1], attn_mask=allowed)
            x = block.finish(x, attended.reshape(b, -1))
        return self.head(x)


class KVPool:
    """Per-request KV caches of one :class:`T2SModel`, keyed by request id. A cache grows by doubling, so
    a decode step appends in place; :meth:`decode` runs every given request in one forward call."""

    def __init__(self, model: T2SModel) -> None:
        self.model = model
        #: request id -> (buffer [layers, 2, heads, capacity, head_dim], tokens used)
        self._caches: dict[str, tuple[torch.Tensor, int]] = {}
        #: request id -> generation of its cache (a new one at each prefill)
        self._generation: dict[str, int] = {}
        self._next_generation = 0
        #: the padded batch a decode step attends over, kept across steps: a row that already holds its
        #: request's cache (same generation, same length) is not copied again (always finite, so masked-out
        #: positions weigh 0)
        self._scratch = torch.zeros(0)
        self._rows: list[tuple[int, int]] = []
        #: forward passes run (tests check that a batch decodes in one)
        self.decode_calls = 0
        self.prefill_calls = 0

    def __contains__(self, rid: str) -> bool:
        return rid in self._caches

    def __len__(self) -> int:
        return len(self._caches)

    @property
    def tokens(self) -> int:
        """Cached positions over every request: what the engine's budget counts."""
        return sum(used for _, used in self._caches.values())

    @property
    def bytes(self) -> int:
        return sum(buf.numel() * buf.element_size() for buf, _ in self._caches.values())

    def length(self, rid: str) -> int:
        return self._caches[rid][1]

    def drop(self, rid: str) -> None:
        self._caches.pop(rid, None)
        self._generation.pop(rid, None)

    def _append(self, rid: str, rows: torch.Tensor) -> None:
        n = rows.shape[3]
        buf, used = self._caches.get(rid) or (rows[:, :, :, :0], 0)
        if used + n > buf.shape[3]:
            grown = rows.new_zeros((*rows.shape[:3], max(2 * buf.shape[3], used + n, 32), rows.shape[4]))
            grown[:, :, :, :used] = buf[:, :, :, :used]
            buf = grown
        buf[:, :, :, used:used + n] = rows
        self._caches[rid] = (buf, used + n)

    @torch.inference_mode()
    def prefill(self, rid: str, phones: torch.Tensor, bert: torch.Tensor, semantic: torch.Tensor) -> torch.Tensor:
        """Build ``rid``'s cache from its phonemes and semantic tokens (prompt, then any generated ones):
        the logits that follow."""
        self.prefill_calls += 1
        self._caches.pop(rid, None)
        cache, logits = self.model.prefill(phones, bert, semantic)
        self._append(rid, cache)
        self._generation[rid] = self._next_generation
        self._next_generation += 1
        return logits

    @torch.inference_mode()
    def decode(self, rids: list[str], tokens: list[int], positions: list[int]) -> torch.Tensor:
        """Feed each request its last token (at its semantic position); logits ``[len(rids), vocab]``."""
        self.decode_calls += 1
        model = self.model
        caches = [self._caches[r] for r in rids]
        gens = [self._generation[r] for r in rids]
        lengths = torch.tensor([used for _, used in caches], device=model.device)
        b, t_max = len(rids), max(used for _, used in caches)
        layers, _, heads, _, head_dim = caches[0][0].shape
        sc = self._scratch
        if sc.dim() < 6 or sc.shape[2] < b or sc.shape[4] <= t_max:
            shape = (layers, 2, max(b, 16, sc.shape[2] if sc.dim() == 6 else 0), heads, max(2 * t_max, 64), head_dim)
            self._scratch = torch.zeros(shape, dtype=model.dtype, device=model.device)
            self._rows = []
        self._rows += [(-1, -1)] * (self._scratch.shape[2] - len(self._rows))
        padded = self._scratch[:, :, :b, :, : t_max + 1]
        for k, (buf, used) in enumerate(caches):
            if self._rows[k] != (gens[k], used):
                padded[:, :, k, :, :used] = buf[:, :, :, :used]
        dev = model.device
        logits = model.decode(torch.tensor(tokens, device=dev), torch.tensor(positions, device=dev), padded, lengths)
        for k, rid in enumerate(rids):
            used = caches[k][1]
            self._append(rid, padded[:, :, k, :, used:used + 1])
            self._rows[k] = (gens[k], used + 1)
        return logits


@dataclass(frozen=True)
class RowSampling:
    """One row's knobs: ``top_k`` 0 and ``top_p`` 1 turn those filters off; temperature 0 is greedy."""

    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 15
    repetition_penalty: float = 1.35


def sample(logits: torch.Tensor, history: list[torch.Tensor], knobs: list[RowSampling],
           generators: list[torch.Generator], eos: int, allow_eos: list[bool]) -> tuple[list[int], list[bool]]:
    """One token per row, and whether the row stops (EOS sampled, or EOS the best token after the
    penalty, as upstream stops). ``history[row]``: the prompt's and generated tokens the repetition penalty
    counts; ``allow_eos[row]`` False masks EOS (upstream's first 11 steps). The filters run on the whole
    batch (row-wise operations: a row's result does not depend on the others); each row draws one number
    from its own generator per step, whatever the batch (greedy rows too)."""
    x = logits.detach().to("cpu", torch.float32 if logits.dtype in (torch.float16, torch.bfloat16) else None)
    x = x.clone()
    b, vocab = x.shape
    inf = float("-inf")
    x[[k for k in range(b) if not allow_eos[k]], eos] = inf
    penalty = torch.tensor([k.repetition_penalty for k in knobs], dtype=x.dtype)[:, None]
    if (penalty != 1.0).any():
        seen = torch.zeros_like(x, dtype=torch.bool)
        rows = torch.cat([torch.full((h.numel(),), k, dtype=torch.long) for k, h in enumerate(history)])
        seen[rows, torch.cat([h.long().cpu() for h in history])] = True
        seen &= penalty != 1.0
        x = torch.where(seen, torch.where(x < 0, x * penalty, x / penalty), x)
    best_is_eos = (x.argmax(-1) == eos).tolist()
    top_p = torch.tensor([k.top_p for k in knobs], dtype=x.dtype)[:, None]
    if (top_p < 1.0).any():
        ordered, order = torch.sort(x, dim=-1, descending=True)
        drop = (torch.softmax(ordered, -1).cumsum(-1) > top_p) & (top_p < 1.0)
        drop[:, 0] = False
        x = x.masked_fill(torch.zeros_like(drop).scatter(1, order, drop), inf)
    greedy = [k.temperature <= 0 for k in knobs]
    temperature = torch.tensor([max(k.temperature, 1e-5) for k in knobs], dtype=x.dtype)[:, None]
    scaled = x / temperature
    top_k = torch.tensor([k.top_k if 0 < k.top_k < vocab else vocab for k in knobs])[:, None]
    pivot = torch.topk(scaled, int(top_k.max()), dim=-1).values.gather(1, top_k - 1)
    probs = torch.softmax(torch.where(scaled < pivot, inf, scaled), -1).double()
    # inverse-CDF draw: one uniform number per row from the row's own generator
    cdf = probs.cumsum(-1)
    draws = torch.tensor([[torch.rand((), generator=g, dtype=torch.float64).item()] for g in generators],
                         dtype=torch.float64)
    drawn = torch.searchsorted(cdf, draws * cdf[:, -1:], right=True).clamp(max=vocab - 1)[:, 0].tolist()
    best = x.argmax(-1).tolist()
    picks = [best[k] if greedy[k] else drawn[k] for k in range(b)]
    return picks, [picks[k] == eos or best_is_eos[k] for k in range(b)]
