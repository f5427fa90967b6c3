"""A reference autoregressive engine for tests and engine authors — not a TTS voice.

A tiny decoder-only transformer (random weights from a fixed seed, float64) reads a segment's UTF-8 bytes
and samples "speech tokens"; each token becomes 20 ms of a tone (a fixed token → waveform mapping), sent in
chunks of ``chunk_tokens``. It has what an LM engine such as CosyVoice3 needs from the runtime, in ~300
lines a new engine author can read:

* a per-request KV cache in ``ctx.state``, decoded as one ragged batch (padded caches and a mask), so
  requests join and leave between steps;
* seeded sampling with a generator per request (``extra``: ``seed``, ``temperature``, ``top_p``,
  ``top_k``, ``repetition_penalty``), so a request's audio does not depend on what else is in its batch;
* a KV-token budget (``kv_budget_tokens``) reported as :meth:`capacity`; :meth:`preempt` drops a cache and
  the next step recomputes it from the request's tokens, same sampler, same output;
* :meth:`release` frees everything, whatever the exit; :attr:`live_requests` / :attr:`kv_tokens` /
  :attr:`kv_bytes` show that nothing is left.

float64 keeps batched and unbatched arithmetic (and a recomputed cache) close enough that the sampled
tokens are the same. Load it with ``engine = "reference-lm"`` and any ``model`` (e.g. ``"tiny"``).
Options: ``layers``, ``dim``, ``heads``, ``max_new_tokens``, ``kv_budget_tokens``, ``chunk_tokens``,
``max_batch``, ``threads`` (1 by default: the model is too small for more to pay). The test-only
``extra.fail_after`` fails a request after that many tokens.
"""

from __future__ import annotations

import itertools
import math
import re
import secrets
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from vtts.protocol import FinishReason

from ..engine import (
    SAMPLING_KNOBS,
    Engine,
    EngineError,
    ModelLoadError,
    RequestContext,
    Sampling,
    Segment,
    StepOutput,
    SynthesisParams,
    VoiceInfo,
    WorkItem,
    check_option_names,
    sampling_from_extra,
)

VOCAB = 256
EOS = 0
SAMPLE_RATE = 16000
TOKEN_SAMPLES = 320  # 20 ms
MAX_POSITIONS = 1024
MAX_SEGMENT_BYTES = 200
MAX_INSTRUCTION_BYTES = 64
DEFAULT_SAMPLING = Sampling(temperature=0.8, top_p=0.95, top_k=50, repetition_penalty=1.1)
OPTIONS = {"layers": 2, "dim": 64, "heads": 4, "max_new_tokens": 48, "kv_budget_tokens": 8192,
           "chunk_tokens": 4, "max_batch": 16, "threads": 1}
EXTRA = (*SAMPLING_KNOBS, "fail_after")
VOICE = "tone"


class ReferenceLM(Engine):
    """See the module docstring."""

    name = "reference-lm"
    prepare_threads = 2  # prepare is pure Python

    def __init__(self, options: dict[str, int]) -> None:
        self.opt = options
        self.max_batch = options["max_batch"]
        d, layers = options["dim"], options["layers"]
        if d % options["heads"]:
            raise ValueError("dim must be a multiple of heads")
        g = torch.Generator().manual_seed(1234)

        def w(*shape: int, std: float) -> torch.Tensor:
            return torch.randn(*shape, generator=g, dtype=torch.float64) * std

        self.emb = w(VOCAB, d, std=1.0)
        self.pos = w(MAX_POSITIONS, d, std=0.1)
        self.head = w(d, VOCAB, std=2 * d**-0.5)  # untied: a tied head would only echo the last token
        self.layers = [{"qkv": w(d, 3 * d, std=d**-0.5), "out": w(d, d, std=d**-0.5),
                        "up": w(d, 4 * d, std=d**-0.5), "down": w(4 * d, d, std=(4 * d) ** -0.5)}
                       for _ in range(layers)]
        #: request id -> (cache buffer [layers, 2, heads, capacity, head_dim], tokens used): a buffer grows by
        #: doubling, so a step appends in place instead of copying the whole cache
        self._kv: dict[str, tuple[torch.Tensor, int, int]] = {}  # ... and a generation number per cache
        self._generation = itertools.count()
        #: the padded batch of caches a decode step attends over, kept across steps: a row whose request
        #: and cache are unchanged is not copied again (always finite, so masked-out positions weigh 0)
        self._scratch = torch.zeros(0)
        self._rows: list[tuple[int, int]] = []  # per scratch row: (cache generation, tokens) it holds
        self._live: set[str] = set()
        #: forward passes run (tests check that a batch decodes in one)
        self.decode_calls = 0
        self.prefill_calls = 0

    @classmethod
    def load(cls, model_ref: str, device: str = "cpu", options: dict[str, Any] | None = None) -> ReferenceLM:
        options = dict(options or {})
        check_option_names("reference-lm", options, OPTIONS)
        if device != "cpu":
            raise ModelLoadError(f"the reference engine runs on cpu only, not {device!r}")
        merged = {k: int(options.get(k, v)) for k, v in OPTIONS.items()}
        if merged["threads"]:
            torch.set_num_threads(merged["threads"])
        return cls(merged)

    @property
    def sample_rate(self) -> int:
        return SAMPLE_RATE

    def voices(self) -> list[VoiceInfo]:
        return [VoiceInfo(VOICE, "en-US", SAMPLE_RATE, "reference engine: tones, not speech")]

    # -- bookkeeping the tests read ------------------------------------------------------------------
    @property
    def live_requests(self) -> int:
        return len(self._live)

    @property
    def kv_tokens(self) -> int:
        """Cached tokens, what the budget counts (a paged engine would count blocks)."""
        return sum(used for _, used, _ in self._kv.values())

    @property
    def kv_bytes(self) -> int:
        """Memory the caches hold, spare room of their buffers included."""
        return sum(buf.numel() * buf.element_size() for buf, _, _ in self._kv.values())

    def _append(self, rid: str, rows: torch.Tensor) -> None:
        """Add ``rows`` ([layers, 2, heads, tokens, head_dim]) to a request's cache."""
        n = rows.shape[3]
        buf, used, gen = self._kv.get(rid) or (rows[:, :, :, :0], 0, next(self._generation))
        if used + n > buf.shape[3]:
            grown = rows.new_zeros((*rows.shape[:3], max(2 * buf.shape[3], used + n, 16), rows.shape[4]))
            grown[:, :, :, :used] = buf[:, :, :, :used]
            buf = grown
        buf[:, :, :, used:used + n] = rows
        self._kv[rid] = (buf, used + n, gen)

    # -- the contract --------------------------------------------------------------------------------
    def prepare(self, text: str, params: SynthesisParams) -> list[Segment]:
        if params.voice != VOICE:
            raise EngineError(f"unknown voice {params.voice!r}; this model has: {VOICE}", param="voice")
        for name in params.extra:
            if name not in EXTRA:
                raise EngineError(f"unknown extra field {name!r} for reference-lm; known: {', '.join(EXTRA)}",
                                  param=f"extra.{name}")
        sampling_from_extra(params.extra, DEFAULT_SAMPLING)  # 400 now rather than mid-stream
        prefix = list((params.instructions or "").encode()[:MAX_INSTRUCTION_BYTES])
        prefix = [*prefix, 1] if prefix else []
        segments = []
        for sentence in re.split(r"(?<=[.!?])\s+", text.strip()):
            data = sentence.encode()
            for start in range(0, len(data), MAX_SEGMENT_BYTES):
                ids = prefix + [b or 32 for b in data[start:start + MAX_SEGMENT_BYTES]]
                if len(ids) + self.opt["max_new_tokens"] > self.opt["kv_budget_tokens"]:
                    raise EngineError("a sentence is longer than this engine's KV-cache budget", param="input")
                if ids:
                    segments.append(Segment(sentence, ids, len(ids)))
        if not segments:
            raise EngineError("input has nothing to speak", param="input")
        return segments

    def capacity(self) -> int:
        return self.opt["kv_budget_tokens"] - self.kv_tokens

    def cost(self, item: WorkItem) -> int:
        ctx = _context(item)
        if ctx.id in self._kv:
            return 1
        resumed = ctx.state.get("out", ()) if ctx.state.get("index") == item.index else ()
        return len(item.segment.tokens) + len(resumed) + 1

    def preempt(self, item: WorkItem) -> None:
        self._kv.pop(_context(item).id, None)  # tokens and sampler stay: the next step recomputes the cache

    def release(self, ctx: RequestContext, reason: FinishReason) -> None:
        self._kv.pop(ctx.id, None)
        self._live.discard(ctx.id)
        ctx.state.clear()

    def step(self, items: list[WorkItem]) -> list[StepOutput]:
        ctxs = [_context(i) for i in items]
        for item, ctx in zip(items, ctxs, strict=True):
            if "generator" not in ctx.state:
                self._live.add(ctx.id)
                sampling = sampling_from_extra(item.params.extra, DEFAULT_SAMPLING)
                seed = secrets.randbits(63) if sampling.seed is None else sampling.seed
                ctx.state.update(generator=torch.Generator().manual_seed(seed), sampling=sampling)
            if ctx.state.get("index") != item.index:  # a new segment: a fresh cache and token list
                self._kv.pop(ctx.id, None)
                ctx.state.update(index=item.index, out=[], pending=[])
        logits = torch.empty(len(items), VOCAB, dtype=torch.float64)
        decode = [k for k, c in enumerate(ctxs) if c.id in self._kv]
        for k, (item, ctx) in enumerate(zip(items, ctxs, strict=True)):
            if ctx.id not in self._kv:  # first step of a segment, or resuming after a preemption
                cache, logits[k] = self._prefill(list(item.segment.tokens) + ctx.state["out"])
                self._append(ctx.id, cache)
        if decode:
            logits[decode] = self._decode([ctxs[k] for k in decode])
        tokens = self._sample(logits, ctxs)
        return [self._advance(item, ctx, token) for item, ctx, token in zip(items, ctxs, tokens, strict=True)]

    # -- model ---------------------------------------------------------------------------------------
    def _attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
        return torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1) @ v

    def _block(self, x: torch.Tensor, layer: dict[str, torch.Tensor], attend: Any) -> torch.Tensor:
        d = x.shape[-1]
        h = F.layer_norm(x, (d,)) @ layer["qkv"]
        x = x + attend(h) @ layer["out"]
        return x + F.gelu(F.layer_norm(x, (d,)) @ layer["up"]) @ layer["down"]

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, (x.shape[-1],)) @ self.head

    def _prefill(self, ids: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """One sequence through the model: its cache and the logits after its last token."""
        self.prefill_calls += 1
        n, heads = len(ids), self.opt["heads"]
        x = self.emb[ids] + self.pos[:n]
        causal = torch.ones(n, n, dtype=torch.bool).tril()
        kv = []

        def attend(h: torch.Tensor) -> torch.Tensor:
            q, k, v = h.view(n, 3, heads, -1).permute(1, 2, 0, 3)  # each [heads, n, head_dim]
            kv.append(torch.stack([k, v]))  # [2, heads, n, head_dim]
            return self._attend(q, k, v, causal).transpose(0, 1).reshape(n, -1)

        for layer in self.layers:
            x = self._block(x, layer, attend)
        return torch.stack(kv), self._logits(x[-1])  # [layers, 2, heads, n, head_dim]

    def _decode(self, ctxs: list[RequestContext]) -> torch.Tensor:
        """The last token of every request through the model at once: a ragged batch of caches, padded,
        with a mask. Appends each request's new keys and values to its own cache."""
        self.decode_calls += 1
        heads = self.opt["heads"]
        caches = [self._kv[c.id] for c in ctxs]
        lengths = torch.tensor([used for _, used, _ in caches])
        b, t_max = len(ctxs), int(lengths.max())
        layers, _, _, _, head_dim = caches[0][0].shape
        if self._scratch.dim() < 6 or self._scratch.shape[2] < b or self._scratch.shape[4] <= t_max:
            shape = (layers, 2, max(b, 16), heads, max(2 * t_max, 64), head_dim)
            self._scratch = torch.zeros(shape, dtype=torch.float64)
            self._rows = []
        self._rows += [(-1, -1)] * (b - len(self._rows))
        # [layers, 2, batch, heads, t_max + 1, head_dim]: each row its request's cache, then this step's keys
        # and values at the row's own position
        padded = self._scratch[:, :, :b, :, : t_max + 1]
        for k, (buf, used, gen) in enumerate(caches):
            if self._rows[k] != (gen, used):
                padded[:, :, k, :, :used] = buf[:, :, :, :used]
        rows = torch.arange(b)
        mask = (torch.arange(t_max + 1)[None] <= lengths[:, None])[:, None, None, :]  # [batch, 1, 1, t_max + 1]
        x = self.emb[[c.state["out"][-1] for c in ctxs]] + self.pos[lengths]
        for index, layer in enumerate(self.layers):

            def attend(h: torch.Tensor, index: int = index) -> torch.Tensor:
                q, k, v = h.view(b, 3, heads, 1, -1).unbind(1)  # each [batch, heads, 1, head_dim]
                padded[index, 0, rows, :, lengths] = k[:, :, 0]
                padded[index, 1, rows, :, lengths] = v[:, :, 0]
                return self._attend(q, padded[index, 0], padded[index, 1], mask).reshape(b, -1)

            x = self._block(x, layer, attend)
        for k, c in enumerate(ctxs):
            used = caches[k][1]
            self._append(c.id, padded[:, :, k, :, used : used + 1])
            self._rows[k] = (caches[k][2], used + 1)
        return self._logits(x)

    def _sample(self, logits: torch.Tensor, ctxs: list[RequestContext]) -> list[int]:
        """One token per row, each row with its own knobs and its own generator: no row's choice depends
        on the others."""
        sampling: list[Sampling] = [c.state["sampling"] for c in ctxs]
        seen = torch.zeros_like(logits, dtype=torch.bool)
        for k, c in enumerate(ctxs):
            seen[k, c.state["out"]] = True
        penalty = torch.tensor([s.repetition_penalty for s in sampling], dtype=torch.float64)[:, None]
        logits = torch.where(seen, torch.where(logits > 0, logits / penalty, logits * penalty), logits)
        temperature = torch.tensor([s.temperature or 1.0 for s in sampling], dtype=torch.float64)[:, None]
        ordered, index = torch.sort(logits / temperature, dim=-1, descending=True, stable=True)
        top_k = torch.tensor([s.top_k or VOCAB for s in sampling])[:, None]
        ordered = ordered.masked_fill(torch.arange(VOCAB)[None] >= top_k, float("-inf"))
        probs = torch.softmax(ordered, dim=-1)
        top_p = torch.tensor([s.top_p for s in sampling], dtype=torch.float64)[:, None]
        probs = probs.masked_fill(probs.cumsum(-1) - probs >= top_p, 0.0)
        cdf = probs.cumsum(-1)
        draws = torch.tensor([torch.rand((), generator=c.state["generator"], dtype=torch.float64).item()
                              if s.temperature > 0 else 0.0 for s, c in zip(sampling, ctxs, strict=True)],
                             dtype=torch.float64)[:, None]
        pick = torch.searchsorted(cdf, draws * cdf[:, -1:]).clamp(max=VOCAB - 1)
        return index.gather(1, pick)[:, 0].tolist()

    def _advance(self, item: WorkItem, ctx: RequestContext, token: int) -> StepOutput:
        out, pending = ctx.state["out"], ctx.state["pending"]
        fail_after = item.params.extra.get("fail_after")
        if fail_after is not None and len(out) >= fail_after:
            return StepOutput(item, _EMPTY, True, error=RuntimeError(f"failed after {len(out)} tokens (test knob)"))
        finished = token == EOS or len(out) + 1 >= self.opt["max_new_tokens"]
        if token != EOS:
            out.append(token)
            pending.append(token)
        if finished:
            self._kv.pop(ctx.id, None)  # the segment is done: its cache goes now, not at release
        if not pending or (len(pending) < self.opt["chunk_tokens"] and not finished):
            return StepOutput(item, _EMPTY, finished, tokens=0)
        audio = tones(pending, item.params.speed)
        emitted = len(pending)
        pending.clear()
        return StepOutput(item, audio, finished, tokens=emitted)


_EMPTY = np.zeros(0, np.float32)


def tones(tokens: list[int], speed: float = 1.0) -> np.ndarray:
    """The token → waveform mapping: 20 ms (at speed 1) of a sine whose pitch the token sets."""
    n = max(1, round(TOKEN_SAMPLES / speed))
    freq = 110.0 * 2.0 ** (np.asarray(tokens, np.float64) / 48.0)
    t = np.arange(n) / SAMPLE_RATE
    return (0.3 * np.sin(2 * np.pi * freq[:, None] * t[None])).astype(np.float32).reshape(-1)


def _context(item: WorkItem) -> RequestContext:
    """The item's request context; an item made by hand (no scheduler) gets one of its own."""
    if item.context is None:
        item.context = RequestContext(item.request_id, item.params, [item.segment])
    return item.context
