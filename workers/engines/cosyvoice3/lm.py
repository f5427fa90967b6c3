"""CosyVoice3's speech-token LM: text (and a voice prompt) in, speech tokens out, many requests per step.

Public API (what the engine uses)::

    lm = CosyVoice3LM.load(llm_pt, qwen_dir, device="cpu", dtype=torch.float32)
    req = lm.start(prompt_text_ids, text_ids, prompt_speech_tokens, sampling=LMSampling(), seed=1234)
    while live:                                   # requests join and leave between steps
        tokens = lm.step(live)                    # one forward call for the whole ragged batch
        for req, tok in zip(live, tokens):        # tok: a speech token (0..6560), or None: stopped, no token
            ...                                   # req.finished: True once it stopped or reached max_len
    req.kv_tokens        # cached tokens held now (the engine's KV budget counts these); req.kv_bytes;
                         # lm.kv_bytes_per_token sizes a budget from memory
    req.next_cost        # tokens its next step feeds: the whole prefix (+ generated) when it has no cache, else 1
    req.drop_cache()     # preemption: frees the cache; the next step recomputes it, same sampler, same tokens
    req.release()        # every exit (finished, cancelled, failed): frees everything; stepping it again fails

``lm.log_probs(requests)`` / ``req.force(token)`` split a step into its forward pass and its choice
(teacher forcing in the tests). Inputs are ids: ``prompt_text_ids`` and ``text_ids`` from the Qwen tokenizer
(with CosyVoice3's ``<|endofprompt|>`` = 151646 somewhere in them, as upstream asserts), ``prompt_speech_tokens``
from the voice's speech tokenizer (0..6560; empty for cross-lingual mode). Malformed ids raise ``ValueError``:
the engine validates user input before it gets here.

The model (facts from FunAudioLLM/CosyVoice's ``CosyVoice3LM``; the code is ours): a Qwen2 decoder
(:mod:`.qwen`) fed with embeddings. The input is ``speech_embedding[sos]``, the Qwen ``embed_tokens`` of
prompt text ++ text, ``speech_embedding[task_id]`` and the ``speech_embedding`` of the prompt's speech tokens;
then each generated token's ``speech_embedding``. ``llm_decoder`` (no bias) maps the last hidden state to
6761 scores: 6561 speech tokens, then 200 special ids (sos 6561, eos 6562, task_id 6563, fill 6564, ...), every
one of which ends decoding, as upstream's ``stop_token_ids`` does. Lengths follow upstream: at least
``int(len(text_ids) * 2)`` and at most ``int(len(text_ids) * 20)`` tokens (ratios in :class:`LMSampling`, plus
an optional hard ``max_tokens`` bound). Below the minimum every stop id is masked (upstream masks only id
6561, which in CosyVoice3 is sos, not the eos it trained with: masking them all is what the minimum means).

Sampling is upstream's repetition-aware sampling (``ras_sampling``): nucleus sampling over the softmax (top-p
0.8, at most top-k 25, the token that crosses top-p kept); if the chosen token occurs at least ``window *
tau`` times (10 × 0.1) among the last 10 generated tokens, it is masked and a token is drawn from the whole
distribution instead. Draws come from a ``torch.Generator`` per request seeded from ``seed``, one uniform
number per draw, so a request's tokens depend only on its inputs, its seed and its log-probs (upstream draws
from torch's global RNG: same seed, different tokens from upstream's). Batching moves float32 log-probs by
about 2e-6 (matrix products of other shapes), which can flip a draw that lands that close to a boundary
between two tokens: roughly once in 1e5 draws. In float64 (``dtype=torch.float64``, the CPU choice where the
same seed must give the same audio alone or batched) batching moves them by about 1e-15: never in practice.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .qwen import KVCache, Qwen2, Qwen2Config

SPEECH_VOCAB = 6561  # speech tokens 0..6560
SPECIAL = 200  # ids SPEECH_VOCAB .. SPEECH_VOCAB + 199: specials, all of them stop decoding
SOS = SPEECH_VOCAB
EOS = SPEECH_VOCAB + 1
TASK_ID = SPEECH_VOCAB + 2
FILL = SPEECH_VOCAB + 3
END_OF_PROMPT = 151646  # <|endofprompt|> in CosyVoice3's tokenizer
QWEN_PREFIX = "llm.model.model."  # upstream's key prefix of the Qwen2 weights inside llm.pt
UNUSED_KEYS = ("llm.model.lm_head.weight",)  # the Qwen LM head: CosyVoice3 scores with llm_decoder instead


@dataclass(frozen=True)
class LMSampling:
    """Sampling and length knobs of one request; the defaults are upstream's (``cosyvoice3.yaml``)."""

    top_p: float = 0.8
    top_k: int = 25
    window: int = 10
    tau: float = 0.1
    min_token_text_ratio: float = 2.0
    max_token_text_ratio: float = 20.0
    max_tokens: int | None = None  # a hard bound on generated tokens, on top of the ratio

    def __post_init__(self) -> None:
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError("top_p must be in (0, 1]")
        if self.top_k < 1 or self.window < 1 or self.tau < 0:
            raise ValueError("top_k and window must be positive, tau not negative")
        if not 0 <= self.min_token_text_ratio <= self.max_token_text_ratio:
            raise ValueError("need 0 <= min_token_text_ratio <= max_token_text_ratio")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise ValueError("max_tokens must be positive")


class LMRequest:
    """One request's decoding state: its inputs, generated tokens, KV cache and sampler."""

    def __init__(self, text: torch.Tensor, prompt_speech: torch.Tensor, sampling: LMSampling, seed: int,
                 min_len: int, max_len: int) -> None:
        self.text = text  # prompt text ++ text ids
        self.prompt_speech = prompt_speech
        self.sampling = sampling
        self.seed = seed
        self.generator = torch.Generator().manual_seed(seed)
        self.min_len, self.max_len = min_len, max_len
        self.prefix_len = 2 + len(text) + len(prompt_speech)  # sos + text + task_id + prompt speech tokens
        self.tokens: list[int] = []
        self.cache: KVCache | None = None
        self.finished = False
        self.released = False

    @property
    def kv_tokens(self) -> int:
        return self.cache.length if self.cache is not None else 0

    @property
    def kv_bytes(self) -> int:
        return self.cache.nbytes if self.cache is not None else 0

    @property
    def next_cost(self) -> int:
        """Inputs the next step feeds through the model (what it adds to the KV cache)."""
        return self.prefix_len + len(self.tokens) - self.kv_tokens

    def force(self, token: int) -> None:
        """Append ``token`` as if it had been sampled (teacher forcing)."""
        if not 0 <= token < SPEECH_VOCAB:
            raise ValueError(f"not a speech token: {token}")
        self.tokens.append(token)

    def drop_cache(self) -> None:
        """Preemption: give back the cache; tokens and sampler stay, the next step recomputes the cache."""
        self.cache = None

    def release(self) -> None:
        self.cache = None
        self.finished = self.released = True


class CosyVoice3LM(nn.Module):
    """The speech-token LM around a :class:`Qwen2` (see the module docstring)."""

    def __init__(self, cfg: Qwen2Config) -> None:
        super().__init__()
        self.qwen = Qwen2(cfg)
        self.speech_embedding = nn.Embedding(SPEECH_VOCAB + SPECIAL, cfg.hidden_size)
        self.llm_decoder = nn.Linear(cfg.hidden_size, SPEECH_VOCAB + SPECIAL, bias=False)

    # -- loading -------------------------------------------------------------------------------------
    def upstream_layout(self) -> dict[str, tuple[int, ...]]:
        """Upstream ``llm.pt`` key → shape this module takes (``llm.model.lm_head.weight`` is accepted too)."""
        layout = {QWEN_PREFIX + k: tuple(v.shape) for k, v in self.qwen.state_dict().items()}
        layout.update({k: tuple(v.shape) for k, v in self.state_dict().items() if not k.startswith("qwen.")})
        return layout

    def load_upstream(self, state: dict[str, torch.Tensor], qwen_weights: dict[str, torch.Tensor] | None = None,
                      assign: bool = False) -> None:
        """Load an upstream ``llm.pt`` state dict. ``qwen_weights`` (the Qwen directory's safetensors, keys
        without the ``model.`` prefix) supply the Qwen2 weights when ``llm.pt`` lacks them. Missing, unknown
        or misshapen keys raise ``ValueError`` naming them."""
        layout = self.upstream_layout()
        unknown = sorted(k for k in state if k not in layout and k not in UNUSED_KEYS)
        if unknown:
            raise ValueError(f"llm.pt has keys this CosyVoice3 LM does not know: {', '.join(unknown[:5])}")
        merged = {QWEN_PREFIX + k: v for k, v in (qwen_weights or {}).items() if QWEN_PREFIX + k in layout}
        merged.update({k: v for k, v in state.items() if k in layout})
        missing = sorted(k for k in layout if k not in merged)
        if missing:
            raise ValueError(f"llm.pt lacks {len(missing)} weights, e.g. {', '.join(missing[:5])}")
        wrong = [f"{k} {tuple(v.shape)} (expected {layout[k]})"
                 for k, v in merged.items() if tuple(v.shape) != layout[k]]
        if wrong:
            raise ValueError(f"llm.pt weights of the wrong shape (another model size?): {', '.join(wrong[:5])}")
        own = {("qwen." + k.removeprefix(QWEN_PREFIX) if k.startswith(QWEN_PREFIX) else k): v
               for k, v in merged.items()}
        self.load_state_dict(own, strict=True, assign=assign)

    @classmethod
    def load(cls, llm_pt: str | Path, qwen_dir: str | Path, device: str | torch.device = "cpu",
             dtype: torch.dtype = torch.float32) -> CosyVoice3LM:
        """Build from ``CosyVoice-BlankEN/config.json`` and load ``llm.pt`` (its Qwen2 weights, or those of
        ``model.safetensors`` when it has none)."""
        qwen_dir = Path(qwen_dir)
        with torch.device("meta"):
            model = cls(Qwen2Config.from_json(qwen_dir / "config.json"))
        try:  # mapped, not read: the real file holds 0.5 B parameters
            state = torch.load(str(llm_pt), map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError:  # a checkpoint in torch's legacy (non-zip) format cannot be mapped
            state = torch.load(str(llm_pt), map_location="cpu", weights_only=True)
        qwen_weights = None
        if not any(k.startswith(QWEN_PREFIX) for k in state):
            from safetensors.torch import load_file

            raw = load_file(str(qwen_dir / "model.safetensors"), device="cpu")
            qwen_weights = {k.removeprefix("model."): v for k, v in raw.items()}
        model.load_upstream(state, qwen_weights, assign=True)
        return model.to(device=device, dtype=dtype).eval()

    @property
    def kv_bytes_per_token(self) -> int:
        """Cache memory one token takes (keys and values of every layer), to size a KV budget from memory."""
        cfg = self.qwen.config
        size = self.llm_decoder.weight.element_size()
        return 2 * cfg.num_hidden_layers * cfg.num_key_value_heads * cfg.head_dim * size

    @property
    def device(self) -> torch.device:
        return self.llm_decoder.weight.device

    # -- requests ------------------------------------------------------------------------------------
    def start(self, prompt_text_ids: list[int], text_ids: list[int], prompt_speech_tokens: list[int],
              sampling: LMSampling | None = None, seed: int | None = None) -> LMRequest:
        """A new request (nothing computed yet: its first :meth:`step` prefills it)."""
        sampling = sampling or LMSampling()
        vocab = self.qwen.config.vocab_size
        if not text_ids:
            raise ValueError("text_ids is empty: nothing to speak")
        ids = [*prompt_text_ids, *text_ids]
        if any(not 0 <= int(i) < vocab for i in ids):
            raise ValueError(f"text ids must be in 0..{vocab - 1}")
        if END_OF_PROMPT not in ids:
            raise ValueError("CosyVoice3 needs <|endofprompt|> (151646) in the prompt text or the text")
        if any(not 0 <= int(t) < SPEECH_VOCAB for t in prompt_speech_tokens):
            raise ValueError(f"prompt speech tokens must be in 0..{SPEECH_VOCAB - 1}")
        min_len = int(len(text_ids) * sampling.min_token_text_ratio)
        max_len = int(len(text_ids) * sampling.max_token_text_ratio)
        if sampling.max_tokens is not None:
            max_len = min(max_len, sampling.max_tokens)
        if max_len < 1:
            raise ValueError("the text is too short for max_token_text_ratio to allow any token")
        if 2 + len(ids) + len(prompt_speech_tokens) + max_len > self.qwen.config.max_position_embeddings:
            raise ValueError(f"prompt and speech would pass the model's {self.qwen.config.max_position_embeddings} "
                             "positions: shorten the text or the voice prompt")
        seed = secrets.randbits(63) if seed is None else int(seed)
        text = torch.tensor(ids, dtype=torch.long)
        speech = torch.tensor(list(prompt_speech_tokens), dtype=torch.long)
        return LMRequest(text, speech, sampling, seed, min(min_len, max_len), max_len)

    def _prefix(self, req: LMRequest) -> torch.Tensor:
        """Embeddings of the request's prefix: sos, prompt text ++ text, task_id, prompt speech tokens."""
        device = self.device
        specials = self.speech_embedding(torch.tensor([SOS, TASK_ID], device=device))
        text = self.qwen.embed_tokens(req.text.to(device))
        speech = self.speech_embedding(req.prompt_speech.to(device))
        return torch.cat([specials[:1], text, specials[1:], speech])

    def _inputs(self, requests: list[LMRequest]) -> torch.Tensor:
        """The packed embeddings of what each request has not fed yet (its prefix when it has no cache, then
        its generated tokens past the cache): the speech tokens of all of them in one lookup."""
        ids, counts = [], []
        for req in requests:
            if 0 < req.kv_tokens < req.prefix_len:
                raise RuntimeError("a cache ends inside the prefix")  # never made by this module
            part = req.tokens[max(0, req.kv_tokens - req.prefix_len):]
            ids += part
            counts.append(len(part))
        generated = self.speech_embedding(torch.tensor(ids, dtype=torch.long, device=self.device))
        if all(req.kv_tokens for req in requests):
            return generated
        pieces = []
        for req, part in zip(requests, generated.split(counts), strict=True):
            if not req.kv_tokens:
                pieces.append(self._prefix(req))
            pieces.append(part)
        return torch.cat(pieces)

    @torch.inference_mode()
    def log_probs(self, requests: list[LMRequest]) -> torch.Tensor:
        """Feed every request's new inputs in one ragged forward pass; return the next token's log-probs
        ``[len(requests), 6761]`` (float32, or float64 for a float64 model)."""
        for req in requests:
            if req.finished:
                raise ValueError("a finished or released request cannot be stepped")
            if req.cache is None:
                req.cache = self.qwen.new_cache()
        new = [req.next_cost for req in requests]
        if min(new, default=1) < 1:
            raise ValueError("a request has no new input: sample (or force) a token before the next step")
        embeds = self._inputs(requests)
        hidden = self.qwen(embeds, new, [req.cache for req in requests])
        last = torch.tensor(new, device=hidden.device).cumsum(0) - 1
        scores = self.llm_decoder(hidden[last])
        return torch.log_softmax(scores.to(torch.promote_types(scores.dtype, torch.float32)), dim=-1)

    def step(self, requests: list[LMRequest]) -> list[int | None]:
        """One decoding step for every request: a speech token each, or None for one that stopped
        (``finished`` is then set, as it is for one that reached its maximum length)."""
        if not requests:
            return []
        return self.sample(requests, self.log_probs(requests))

    @torch.inference_mode()
    def sample(self, requests: list[LMRequest], logp: torch.Tensor) -> list[int | None]:
        """Choose each request's next token from ``logp`` with its own sampler; append it or finish."""
        scores = logp.to(torch.promote_types(logp.dtype, torch.float32)).clone()
        young = [k for k, req in enumerate(requests) if len(req.tokens) < req.min_len]
        if young:
            scores[young, SPEECH_VOCAB:] = float("-inf")
        probs = scores.softmax(dim=-1)
        top_k = max(req.sampling.top_k for req in requests)
        values, index = probs.topk(min(top_k, probs.shape[-1]), dim=-1)  # sorted, largest first
        ks = torch.tensor([req.sampling.top_k for req in requests], device=probs.device)[:, None]
        ps = torch.tensor([req.sampling.top_p for req in requests], device=probs.device)[:, None]
        before = values.cumsum(-1) - values  # mass of the better tokens: a token joins while that is < top_p
        rank = torch.arange(values.shape[-1], device=probs.device)[None]
        kept = values * ((before < ps) & (rank < ks))
        picks = index.gather(1, _draw(kept, requests)).squeeze(1).tolist()
        again = [k for k, req in enumerate(requests)
                 if req.tokens[-req.sampling.window:].count(picks[k]) >= req.sampling.window * req.sampling.tau]
        if again:
            rows = scores[again]
            rows[torch.arange(len(again)), torch.tensor([picks[k] for k in again])] = float("-inf")
            redrawn = _draw(rows.softmax(dim=-1), [requests[k] for k in again]).squeeze(1).tolist()
            for k, token in zip(again, redrawn, strict=True):
                picks[k] = token
        out: list[int | None] = []
        for req, token in zip(requests, picks, strict=True):
            if token >= SPEECH_VOCAB:
                req.finished = True
                req.cache = None
                out.append(None)
                continue
            req.tokens.append(token)
            if len(req.tokens) >= req.max_len:
                req.finished = True
                req.cache = None
            out.append(token)
        return out


def _draw(weights: torch.Tensor, requests: list[LMRequest]) -> torch.Tensor:
    """One index per row of non-negative ``weights`` (``[B, n]``), drawn with each request's generator:
    inverse CDF of a single uniform number, so a row's draw depends on nothing but its own weights."""
    u = torch.tensor([torch.rand((), generator=req.generator, dtype=torch.float64).item() for req in requests],
                     dtype=torch.float64, device=weights.device)
    cdf = weights.double().cumsum(-1)
    target = (u * cdf[:, -1])[:, None]
    pick = torch.searchsorted(cdf, target, right=True)
    last = (cdf < cdf[:, -1:]).sum(-1, keepdim=True)  # the last index with weight (rounding never picks past it)
    return torch.minimum(pick, last)


def real_size_config(**overrides: Any) -> Qwen2Config:
    """Fun-CosyVoice3-0.5B's Qwen2 (Qwen2.5-0.5B) dimensions, for checks and benchmarks without weights."""
    dims = {"hidden_size": 896, "intermediate_size": 4864, "num_hidden_layers": 24, "num_attention_heads": 14,
            "num_key_value_heads": 2, "vocab_size": 151936, "rms_norm_eps": 1e-6, "rope_theta": 1e6}
    return Qwen2Config(**{**dims, **overrides})
