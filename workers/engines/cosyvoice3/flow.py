"""CosyVoice3's flow-matching decoder: speech tokens (25 Hz) → 80-bin mel frames (50 Hz), batched and streamed.

Public API::

    flow = CosyVoice3Flow.load("model/flow.pt", device="cpu", dtype=torch.float32)   # dims read off the weights
    prompt = flow.prompt(prompt_token, prompt_feat, embedding)     # once per voice: [P], [2P, 80], [192]

    # offline (upstream streaming=False, finalize=True): one padded forward for the whole batch
    mels = flow.offline([(prompt, tokens), ...])                  # each [80, 2 * len(tokens)], float32

    # streaming (upstream streaming=True: chunk-causal attention, 50 frames a chunk)
    state = flow.start(prompt)                                    # one per request, never shared
    mels = flow.stream([(state, new_tokens, finalize), ...])      # each [80, new frames] (may be empty)
    flow.release(state)                                           # on cancel: frees its cache at once

    # both kinds in one forward
    mels = flow.decode([(prompt, tokens), (state, new_tokens, finalize), ...])

``stream`` appends each request's new tokens and returns the mel frames that are now determined: with
``finalize=False`` the last 3 tokens are look-ahead only (upstream's pre-lookahead), with ``finalize=True``
everything (then the state is spent). ``state.ready_frames`` says how many frames a non-final call would
return now, so an engine can pick its hops (upstream: 25 tokens + 3 look-ahead first, then growing hops).
Different requests (lengths, prompts, speakers, any point of their stream) batch in one call of either
method and each gets what it would alone (padding and masks; within 1e-5).

Why streaming costs (near) linear time here. Upstream re-runs the decoder over prompt + all tokens so far for every
chunk. But in streaming mode everything is causal at chunk granularity: attention is chunk-causal (a frame
sees its own 50-frame chunk and all earlier ones), the position convolutions are causal, the starting noise
is fixed per absolute frame, and every Euler step of a chunk depends only on the same step of earlier
chunks. So this module keeps, per request, each Euler step's and each CFG branch's keys/values of the frames
of *complete* chunks (plus the convolutions' 30-frame left inputs) and each call computes only the new
frames (and re-does the one incomplete chunk a call may end in). With ``left_frames=None`` (the default) the
result equals upstream's streamed output for the same hops (float rounding only: checked against the parity
fixture and against one-shot recomputation in the tests); every layer runs once per frame, and only the
attention over the cache grows with the length (half of what one offline pass spends on it).
``left_frames=K`` makes the cost strictly linear and bounds memory: only the prompt's frames and the last K
frames before the new ones stay in the cache — an approximation, measured below.

Measured with :func:`measure_streaming` on the tiny fixture model (CPU, one thread, float32): a 60 s
utterance (750 tokens, 1500 frames) after a 3 s prompt (75 tokens), diff against one-shot streaming-mode
recomputation (mel values average 1.02 in magnitude), compute against one offline pass (FLOPs with
attention counted; CPU seconds, best of 2, on a shared 2-core machine):

=================  ================  ===================  =======  ========  ===================
left_frames        hops (tokens)     max / mean abs diff  FLOPs    CPU time  cache peak (tiny)
=================  ================  ===================  =======  ========  ===================
None (exact)       25 each (30)      1.2e-6 / 1e-7        0.62x    1.39x     57 MB (capacity)
None (exact)       28, 50, 100.. (9) 1.7e-6 / 1e-7        0.65x    1.06x     57 MB
300 (6 s)          25 each           1.4e-2 / 1.7e-3      0.42x    1.20x     13 MB
300 (6 s)          28, 50, 100..     1.4e-2 / 1.5e-3      0.47x    0.79x     13 MB
100 (2 s)          25 each           2.0e-2 / 2.8e-3      0.34x    1.16x     7 MB
100 (2 s)          28, 50, 100..     1.8e-2 / 2.5e-3      0.40x    0.72x     9 MB
=================  ================  ===================  =======  ========  ===================

"28, 50, 100.." is upstream's schedule (:func:`stream_hops` with ``grow=2``). Upstream's recompute-everything
streaming costs 12.6x the offline FLOPs with 25-token hops and 3.8x with its schedule on the same case (and
grows with the square of the length). At the tiny size attention dominates and each call's fixed Python
overhead (~10 ms) shows in CPU time; at real size (1024 wide, 22 layers) the per-frame linear layers
dominate, which streaming computes exactly once per frame. The bounded diffs are on random weights: they
say how far the approximation moves the mel, not how it sounds.

KV memory per request and retained frame: steps x layers x 2 (k, v) x 2 (CFG branches) x heads x head-dim
values — at real size 10 x 22 x 2 x 2 x 1024 = 0.9 M values (1.8 MB in bf16), so a 10 s prompt + 6 s of
left context is ~1.4 GB in bf16: :attr:`FlowStream.kv_bytes` reports it.

Written from the facts of upstream's ``cosyvoice/flow/flow.py`` (CausalMaskedDiffWithDiT),
``flow_matching.py`` (CausalConditionalCFM) and ``transformer/upsample_encoder.py`` (PreLookaheadLayer).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...engine import EngineError
from .dit import DiTDims, DiTEstimator, estimator_key


@dataclass(frozen=True)
class FlowDims:
    """Sizes of the decoder. Defaults are Fun-CosyVoice3-0.5B's; :meth:`from_shapes` reads them off weights."""

    vocab: int = 6561
    mel: int = 80
    spk_embed: int = 192
    lookahead_channels: int = 1024
    lookahead: int = 3
    token_mel_ratio: int = 2
    chunk_frames: int = 50
    n_timesteps: int = 10
    cfg_rate: float = 0.7
    noise_frames: int = 15000
    dit: DiTDims = field(default_factory=DiTDims)

    @classmethod
    def from_shapes(cls, shapes: dict[str, tuple[int, ...]], chunk_frames: int = 50) -> FlowDims:
        """Sizes from an upstream flow state dict's key → shape map (``chunk_frames``, the streaming chunk
        in mel frames, is a config value: ``chunk_size`` x ``token_mel_ratio`` of cosyvoice3.yaml)."""
        vocab, mel = shapes["input_embedding.weight"]
        channels, _, width = shapes["pre_lookahead_layer.conv1.weight"]
        return cls(vocab=vocab, mel=mel, spk_embed=shapes["spk_embed_affine_layer.weight"][1],
                   lookahead_channels=channels, lookahead=width - 1, chunk_frames=chunk_frames,
                   dit=DiTDims.from_shapes(shapes))


def flow_key(upstream: str) -> str:
    """This module's name for an upstream flow.pt key."""
    if upstream.startswith("decoder.estimator."):
        return "estimator." + estimator_key(upstream[len("decoder.estimator."):])
    for pattern, repl in ((r"input_embedding\.", "token_embedding."), (r"spk_embed_affine_layer\.", "speaker_proj."),
                          (r"pre_lookahead_layer\.conv1\.", "lookahead.conv_ahead."),
                          (r"pre_lookahead_layer\.conv2\.", "lookahead.conv_back.")):
        new, n = re.subn("^" + pattern, repl, upstream)
        if n:
            return new
    raise KeyError(f"unknown flow key {upstream!r}")


class PreLookahead(nn.Module):
    """Token features with 3 tokens of look-ahead: conv(k=4) over this and the next 3 token embeddings,
    leaky ReLU, causal conv(k=3) back to the mel width, plus the embedding (residual). So a token's output
    depends on tokens t-2 .. t+3."""

    def __init__(self, mel: int, channels: int, lookahead: int) -> None:
        super().__init__()
        self.lookahead = lookahead
        self.conv_ahead = nn.Conv1d(mel, channels, lookahead + 1)
        self.conv_back = nn.Conv1d(channels, mel, 3)

    def forward(self, emb: Tensor, skip: int, ahead: int) -> Tensor:
        """emb [N, mel]: ``skip`` leading tokens (the sequence's start when fewer than 2) serve only as left
        context, ``ahead`` trailing ones only as look-ahead (zeros stand in for the missing rest). Returns
        [N - skip - ahead, mel]."""
        seq = F.pad(emb.t(), (0, self.lookahead - ahead))
        mid = F.leaky_relu(self.conv_ahead(seq[None]))
        mid = F.pad(mid[..., max(0, skip - 2):], (max(0, 2 - skip), 0))
        return self.conv_back(mid)[0].t() + emb[skip:emb.shape[0] - ahead]


@dataclass
class FlowPrompt:
    """A voice's decoder prompt: its speech tokens [P], its mel [2P, mel] and projected speaker vector."""

    token: Tensor
    feat: Tensor
    spk: Tensor

    @property
    def frames(self) -> int:
        return self.feat.shape[0]


@dataclass
class FlowStream:
    """One request's streaming state (never shared between requests). Frames are counted from the start of
    the prompt; ``committed`` (a chunk boundary) is where the cached keys/values end, ``emitted`` where the
    returned mel ends."""

    prompt: FlowPrompt
    tokens: Tensor  # token ids from absolute token index `token_base` on (prompt tokens included)
    token_base: int = 0
    committed: int = 0
    emitted: int = 0
    # keys/values of cached frames: [steps, layers, 2 (k, v), 2 (CFG branches), heads, capacity, head dim],
    # the first kv_len frames valid (positions in kv_pos); grown by doubling, compacted by left_frames
    kv: Tensor | None = None
    kv_pos: Tensor | None = None
    kv_len: int = 0
    tails: Tensor | None = None  # [steps, 2 (convs), 2 (branches), dim, kernel-1] at `committed`
    finished: bool = False
    lookahead: int = 3
    ratio: int = 2

    @property
    def total_tokens(self) -> int:
        return self.token_base + self.tokens.shape[0]

    @property
    def ready_frames(self) -> int:
        """Mel frames a non-final :meth:`CosyVoice3Flow.stream` call would return now."""
        return max(0, self.ratio * (self.total_tokens - self.lookahead) - self.emitted)

    @property
    def kv_bytes(self) -> int:
        """Bytes held by the key/value cache (its allocated capacity)."""
        return 0 if self.kv is None else self.kv.numel() * self.kv.element_size()


@dataclass
class _Job:
    """One request's frames for one solver call."""

    start: int  # absolute frame of the first computed frame
    noise: Tensor  # [T, mel]
    mu: Tensor  # [T, mel]
    cond: Tensor  # [T, mel]
    spk: Tensor  # [mel]
    state: FlowStream | None = None  # streaming (chunk-causal, cached) when set
    commit: int = 0  # frames (from start) whose keys/values and tails to keep

    @property
    def frames(self) -> int:
        return self.mu.shape[0]

    @property
    def past(self) -> int:
        return 0 if self.state is None else self.state.kv_len


class CosyVoice3Flow(nn.Module):
    """Token embedding, pre-lookahead, speaker projection and the CFM solver around the DiT estimator."""

    def __init__(self, dims: FlowDims, left_frames: int | None = None) -> None:
        super().__init__()
        self.dims = dims
        self.left_frames = left_frames
        self.token_embedding = nn.Embedding(dims.vocab, dims.mel)
        self.speaker_proj = nn.Linear(dims.spk_embed, dims.mel)
        self.lookahead = PreLookahead(dims.mel, dims.lookahead_channels, dims.lookahead)
        self.estimator = DiTEstimator(dims.dit)
        self.noise = torch.zeros(0, dims.mel)  # [frames, mel], drawn by prepare()
        self._schedule: list[tuple[float, Tensor]] = []
        self._mods: list[tuple[Tensor, Tensor]] = []

    # ---------------------------------------------------------------- loading

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
             chunk_frames: int = 50, left_frames: int | None = None) -> CosyVoice3Flow:
        """Build from an upstream ``flow.pt`` (sizes read off its shapes)."""
        state = torch.load(Path(path), map_location="cpu", weights_only=True)
        dims = FlowDims.from_shapes({k: tuple(v.shape) for k, v in state.items()}, chunk_frames=chunk_frames)
        model = cls(dims, left_frames=left_frames)
        model.load_state_dict({flow_key(k): v for k, v in state.items()}, strict=True)
        return model.prepare(device, dtype)

    @classmethod
    def check_layout(cls, shapes: dict[str, Sequence[int]], chunk_frames: int = 50) -> FlowDims:
        """Check an upstream key → shape map (e.g. real_keys.json's flow part) against this module built at
        the sizes it implies, on the meta device (no memory). Raises ValueError naming the first mismatch."""
        shapes = {k: tuple(v) for k, v in shapes.items()}
        dims = FlowDims.from_shapes(shapes, chunk_frames=chunk_frames)
        with torch.device("meta"):
            model = cls(dims)
        mine = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        theirs = {flow_key(k): v for k, v in shapes.items()}
        if mine.keys() != theirs.keys():
            raise ValueError(f"key mismatch: missing {sorted(theirs.keys() - mine.keys())[:3]}, "
                             f"unexpected {sorted(mine.keys() - theirs.keys())[:3]}")
        for k, shape in mine.items():
            if theirs[k] != shape:
                raise ValueError(f"{k}: weights {theirs[k]}, model {shape}")
        return dims

    def prepare(self, device: str | torch.device, dtype: torch.dtype) -> CosyVoice3Flow:
        """Move to device/dtype and precompute the solver's fixed times and every layer's modulation."""
        inv_freq = self.estimator.inv_freq.float().clone()
        self.to(device=device, dtype=dtype).eval()
        self.estimator.inv_freq = inv_freq.to(device)  # rotary angles stay float32 whatever the dtype
        # upstream draws the solver's starting noise once, from seed 0, for 15000 frames (300 s), in float32
        generator = torch.Generator().manual_seed(0)
        noise = torch.randn(1, self.dims.mel, self.dims.noise_frames, generator=generator)
        self.noise = noise[0].t().contiguous().to(device)
        steps = self.dims.n_timesteps
        # upstream's schedule and its accumulation of t, in float32
        span = 1 - torch.cos(torch.linspace(0, 1, steps + 1) * 0.5 * torch.pi)
        t, dt = span[0], span[1] - span[0]
        self._schedule, self._mods = [], []
        with torch.inference_mode():
            for step in range(1, steps + 1):
                self._schedule.append((float(dt), t.clone()))
                layer_mod, final_mod = self.estimator.modulation(t.reshape(1).to(device))
                self._mods.append((layer_mod, final_mod))
                t = t + dt
                if step < steps:
                    dt = span[step + 1] - t
        return self

    @property
    def device(self) -> torch.device:
        return self.token_embedding.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.token_embedding.weight.dtype

    # ---------------------------------------------------------------- public API

    def _check_tokens(self, tokens: Tensor, param: str) -> Tensor:
        tokens = torch.as_tensor(tokens).reshape(-1).long()
        if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= self.dims.vocab):
            raise EngineError(f"speech tokens must lie in [0, {self.dims.vocab})", param=param)
        return tokens.to(self.device)

    @torch.inference_mode()
    def prompt(self, prompt_token: Tensor, prompt_feat: Tensor, embedding: Tensor) -> FlowPrompt:
        """A voice's prompt: speech tokens [P] (or [1, P]), mel [2P, 80] (or [1, 2P, 80]) and the 192-wide
        speaker vector (L2-normalised here, as upstream). Reusable by any number of requests."""
        token = self._check_tokens(prompt_token, "prompt_token")
        feat = torch.as_tensor(prompt_feat).reshape(-1, self.dims.mel)
        if feat.shape[0] != self.dims.token_mel_ratio * token.shape[0]:
            raise EngineError(f"prompt mel has {feat.shape[0]} frames, expected {self.dims.token_mel_ratio} per "
                              f"prompt token ({token.shape[0]})", param="prompt_feat")
        emb = torch.as_tensor(embedding).reshape(1, -1).to(self.device, self.dtype)
        if emb.shape[1] != self.dims.spk_embed:
            raise EngineError(f"speaker vector must have {self.dims.spk_embed} values", param="embedding")
        spk = self.speaker_proj(F.normalize(emb, dim=1))[0]
        return FlowPrompt(token=token, feat=feat.to(self.device, self.dtype), spk=spk)

    def start(self, prompt: FlowPrompt) -> FlowStream:
        """A fresh streaming state for one request."""
        return FlowStream(prompt=prompt, tokens=prompt.token.clone(), emitted=prompt.frames,
                          lookahead=self.dims.lookahead, ratio=self.dims.token_mel_ratio)

    @property
    def max_frames(self) -> int:
        """Prompt plus generated mel frames one utterance may have (the fixed noise's length, 300 s)."""
        return self.dims.noise_frames

    def offline(self, batch: Sequence[tuple[FlowPrompt, Tensor]]) -> list[Tensor]:
        """Upstream's non-streamed decode (full attention, finalize=True) for each (prompt, tokens):
        mel [80, 2 x len(tokens)] each."""
        return self.decode(batch)

    def stream(self, batch: Sequence[tuple[FlowStream, Tensor, bool]]) -> list[Tensor]:
        """Feed each request's new tokens; return its newly determined mel frames [80, n] (see module doc)."""
        return self.decode(batch)

    @torch.inference_mode()
    def decode(self, batch: Sequence[tuple[FlowPrompt, Tensor] | tuple[FlowStream, Tensor, bool]]) -> list[Tensor]:
        """One forward for a mixed batch: ``(prompt, tokens)`` items decode offline, ``(state, new_tokens,
        finalize)`` items stream. Every item is checked before any stream changes, so a bad one (an
        EngineError) leaves all streams as they were."""
        checked = []
        for item in batch:
            if isinstance(item[0], FlowStream):
                state = item[0]
                if state.finished:
                    raise EngineError("this stream was already finalized", param="finalize")
                new = self._check_tokens(item[1], "tokens")
                self._check_length(state.total_tokens + new.shape[0])
            else:
                new = self._check_tokens(item[1], "tokens")
                self._check_length(item[0].token.shape[0] + new.shape[0])
            checked.append(new)
        streams = [id(item[0]) for item in batch if isinstance(item[0], FlowStream)]
        if len(set(streams)) < len(streams):
            raise ValueError("a stream may appear only once per call")
        jobs: list[_Job] = []
        plans: list[tuple[int, FlowStream | None, int, bool] | None] = []
        for item, new in zip(batch, checked, strict=True):
            if isinstance(item[0], FlowStream):
                plans.append(self._plan_stream(item[0], new, bool(item[2]), jobs))  # type: ignore[misc]
            elif new.numel() == 0:
                plans.append(None)
            else:
                prompt = item[0]
                mu = self._features(torch.cat((prompt.token, new)), skip=0, ahead=0)
                plans.append((len(jobs), None, prompt.frames, True))
                jobs.append(self._job(prompt, 0, mu))
        mels, tails = self._solve(jobs)
        out = []
        for plan in plans:
            if plan is None:
                out.append(self._empty())
                continue
            j, state, end, finalize = plan
            job = jobs[j]
            if state is None:  # offline: everything after the prompt
                out.append(mels[j][end:].t().contiguous())
                continue
            out.append(mels[j][state.emitted - job.start:].t().contiguous())
            state.emitted = end
            if finalize:
                self._finish(state)
            else:
                self._commit(state, job, tails[j])
        return out

    def _plan_stream(self, state: FlowStream, new: Tensor, finalize: bool,
                     jobs: list[_Job]) -> tuple[int, FlowStream, int, bool] | None:
        """Append a stream's tokens and queue its job: from its last committed chunk boundary to the last
        frame now determined (all of them when finalizing). None when no new frame is determined."""
        state.tokens = torch.cat((state.tokens, new))
        ahead = 0 if finalize else self.dims.lookahead
        end = self.dims.token_mel_ratio * (state.total_tokens - ahead)
        if end <= state.emitted:
            if finalize:
                self._finish(state)
            return None
        start = state.committed
        first = start // self.dims.token_mel_ratio
        skip = min(2, first)
        mu = self._features(state.tokens[first - skip - state.token_base:], skip=skip, ahead=ahead)
        job = self._job(state.prompt, start, mu)
        job.state = state
        job.commit = 0 if finalize else (end // self.dims.chunk_frames) * self.dims.chunk_frames - start
        jobs.append(job)
        return len(jobs) - 1, state, end, finalize

    # ---------------------------------------------------------------- internals

    def _empty(self) -> Tensor:
        return torch.zeros(self.dims.mel, 0, device=self.device)

    def _check_length(self, tokens: int) -> None:
        if self.dims.token_mel_ratio * tokens > self.max_frames:
            raise EngineError(f"prompt and speech tokens exceed the decoder's {self.max_frames} mel frames "
                              f"({self.max_frames // (self.dims.token_mel_ratio * 25)} s)", param="input")

    def release(self, state: FlowStream) -> None:
        """Free a stream's cache now (cancelled, disconnected, past its deadline); it cannot be fed again."""
        self._finish(state)

    @property
    def kv_bytes_per_frame(self) -> int:
        """Cache bytes one retained frame of a stream costs (all steps, layers, k/v and CFG branches)."""
        d = self.dims.dit
        values = self.dims.n_timesteps * d.depth * 2 * 2 * d.heads * d.dim_head
        return values * self.token_embedding.weight.element_size()

    @staticmethod
    def _finish(state: FlowStream) -> None:
        state.finished = True
        state.kv = state.kv_pos = state.tails = None
        state.kv_len = 0

    def _features(self, seq: Tensor, skip: int, ahead: int) -> Tensor:
        """mu [2 x (len - skip - ahead), mel] for token ids ``seq`` (see :meth:`PreLookahead.forward`)."""
        h = self.lookahead(self.token_embedding(seq), skip=skip, ahead=ahead)
        return h.repeat_interleave(self.dims.token_mel_ratio, dim=0)

    def _job(self, prompt: FlowPrompt, start: int, mu: Tensor) -> _Job:
        frames = mu.shape[0]
        cond = torch.zeros_like(mu)
        if start < prompt.frames:
            n = min(prompt.frames, start + frames) - start
            cond[:n] = prompt.feat[start:start + n]
        noise = self.noise[start:start + frames]
        return _Job(start=start, noise=noise, mu=mu, cond=cond, spk=prompt.spk)

    def _reserve(self, state: FlowStream, frames: int) -> None:
        """Make the state's cache hold at least ``frames`` frames (doubling, so growth costs linear time)."""
        capacity = 0 if state.kv is None else state.kv.shape[5]
        if capacity >= frames:
            return
        d = self.dims.dit
        least = state.prompt.frames + 4 * self.dims.chunk_frames
        most = self.dims.noise_frames if self.left_frames is None else least + self.left_frames
        capacity = max(frames, min(max(2 * capacity, least), most))
        # uninitialised: frames past kv_len are always written by a call before its attention reads them
        kv = torch.empty(self.dims.n_timesteps, d.depth, 2, 2, d.heads, capacity, d.dim_head, device=self.device,
                         dtype=self.dtype)
        pos = torch.zeros(capacity, dtype=torch.long, device=self.device)
        if state.kv is not None:
            kv[:, :, :, :, :, :state.kv_len] = state.kv[:, :, :, :, :, :state.kv_len]
            pos[:state.kv_len] = state.kv_pos[:state.kv_len]
        state.kv, state.kv_pos = kv, pos

    def _commit(self, state: FlowStream, job: _Job, tails: Tensor | None) -> None:
        """Keep the complete chunks' keys/values (already in the cache) and the conv tails there; then bound
        the cache to the prompt's frames + ``left_frames``."""
        if job.commit <= 0:
            return
        assert state.kv is not None and state.kv_pos is not None
        n = state.kv_len
        state.kv_pos[n:n + job.commit] = torch.arange(job.start, job.start + job.commit, device=self.device)
        state.kv_len = n + job.commit
        state.committed = job.start + job.commit
        state.tails = tails
        if self.left_frames is not None:
            head, left = min(state.prompt.frames, state.kv_len), self.left_frames
            if state.kv_len > head + left:
                src = slice(state.kv_len - left, state.kv_len)
                state.kv[:, :, :, :, :, head:head + left] = state.kv[:, :, :, :, :, src].clone()
                state.kv_pos[head:head + left] = state.kv_pos[src].clone()
                state.kv_len = head + left
        # tokens before (committed token - 2) are no longer needed (pre-lookahead's left context is 2 tokens)
        drop = max(0, state.committed // self.dims.token_mel_ratio - 2 - state.token_base)
        state.tokens, state.token_base = state.tokens[drop:], state.token_base + drop

    def _solve(self, jobs: list[_Job]) -> tuple[list[Tensor], list[Tensor | None]]:
        """Ten Euler steps with classifier-free guidance for a padded batch of jobs (rows: B conditional,
        then B unconditional with mu, cond and speaker zeroed, as upstream). Streaming jobs attend to their
        cached frames too, and leave this call's keys/values in their cache (after ``kv_len``; committed
        by :meth:`_commit`). Returns per job its mel [T, mel] (float32) and, for jobs that commit, the
        conv tails at the commit frame."""
        if not jobs:
            return [], []
        est, dims = self.estimator, self.dims.dit
        dev, dt_ = self.device, self.dtype
        b, frames = len(jobs), max(job.frames for job in jobs)
        lengths = torch.tensor([job.frames for job in jobs], device=dev)

        def pad(t: Tensor) -> Tensor:
            return F.pad(t, (0, 0, 0, frames - t.shape[0]))

        x = torch.stack([pad(job.noise) for job in jobs]).float()
        mu = torch.stack([pad(job.mu) for job in jobs])
        cond = torch.stack([pad(job.cond) for job in jobs])
        spk = torch.stack([job.spk for job in jobs])
        mu_in, cond_in = torch.cat((mu, torch.zeros_like(mu))), torch.cat((cond, torch.zeros_like(cond)))
        spk_in = torch.cat((spk, torch.zeros_like(spk)))
        starts = torch.tensor([job.start for job in jobs], device=dev)
        positions = starts[:, None] + torch.arange(frames, device=dev)

        # Keys/values. One committing stream alone works straight in its own cache (no copy). Otherwise a
        # one-step working buffer [layers, 2, 2B, H, longest past + T, Dh] takes each stream's cached frames
        # at every step (padding stays zero: finite under the mask), and committed frames are copied back:
        # memory for one step, not ten, and nothing kept for frames no one will attend to again.
        direct = b == 1 and jobs[0].state is not None and jobs[0].commit > 0
        for job in jobs:
            if job.state is not None and job.commit > 0:
                self._reserve(job.state, job.past + (job.frames if direct else job.commit))
        work, offset = None, max(job.past for job in jobs)
        if not direct and any(job.state is not None for job in jobs):
            work = torch.zeros(dims.depth, 2, 2 * b, dims.heads, offset + frames, dims.dim_head, device=dev, dtype=dt_)
        allowed = self._mask(jobs, positions, lengths, offset).repeat(2, 1, 1, 1)
        mask = None  # additive, built once per call (SDPA would convert a boolean one at every layer and step)
        if not bool(allowed.all()):
            mask = torch.zeros(allowed.shape, dtype=dt_, device=dev).masked_fill(~allowed, -torch.inf)
        rope = est.rope(positions.repeat(2, 1))
        tails = None
        if any(job.state is not None and job.state.tails is not None for job in jobs):
            zeros = torch.zeros(self.dims.n_timesteps, 2, 2, dims.dim, est.tail, device=dev, dtype=dt_)
            tails = torch.stack([job.state.tails if job.state is not None and job.state.tails is not None else zeros
                                 for job in jobs], dim=3).flatten(2, 3)

        committing = [(i, job) for i, job in enumerate(jobs) if job.state is not None and job.commit > 0]
        step_tails: list[list[Tensor]] = [[] for _ in jobs]
        rate, tail = self.dims.cfg_rate, est.tail
        for step, ((dt, _), mod) in enumerate(zip(self._schedule, self._mods, strict=True)):
            cache = jobs[0].state.kv[step] if direct else work  # type: ignore[union-attr]
            if work is not None:
                for i, job in enumerate(jobs):
                    if job.past:
                        work[:, :, [i, b + i], :, :job.past] = job.state.kv[step, :, :, :, :, :job.past]  # type: ignore
            out = est(torch.cat((x, x)).to(dt_), cond_in, mu_in, spk_in, mod, rope, mask, cache=cache, offset=offset,
                      tails=None if tails is None else (tails[step, 0], tails[step, 1]))
            v_cond, v_uncond = out.out.float().split(b)
            x = x + dt * ((1.0 + rate) * v_cond - rate * v_uncond)
            in1, in2 = out.conv_in
            for i, job in committing:
                rows, c = [i, b + i], job.commit
                step_tails[i].append(torch.stack((in1[rows, :, c:c + tail], in2[rows, :, c:c + tail])))
                if work is not None:
                    p = job.past
                    job.state.kv[step, :, :, :, :, p:p + c] = work[:, :, rows, :, offset:offset + c]  # type: ignore

        mels = [x[i, :job.frames] for i, job in enumerate(jobs)]
        new_tails: list[Tensor | None] = [None] * b
        for i, _ in committing:
            new_tails[i] = torch.stack(step_tails[i])
        return mels, new_tails

    def _mask(self, jobs: list[_Job], positions: Tensor, lengths: Tensor, past_len: int) -> Tensor:
        """Boolean [B, 1, T, past_len + T]: valid cached frames (always earlier, complete chunks), then new
        frames — all valid ones offline, chunk-causal ones when streaming. Padding queries see every valid
        key (their rows are discarded; a row with no key would make NaNs)."""
        dev, frames = positions.device, positions.shape[1]
        idx = torch.arange(frames, device=dev)
        key_valid = idx[None, :] < lengths[:, None]  # [B, T]
        chunk = positions // self.dims.chunk_frames
        chunked = torch.tensor([job.state is not None for job in jobs], device=dev)
        causal = chunk[:, None, :] <= chunk[:, :, None]  # [B, Tq, Tk]
        new = key_valid[:, None, :] & (causal | ~chunked[:, None, None])
        query_valid = key_valid[:, :, None]
        new = torch.where(query_valid, new, key_valid[:, None, :].expand_as(new))
        past_lengths = torch.tensor([job.past for job in jobs], device=dev)
        past = (torch.arange(past_len, device=dev)[None, :] < past_lengths[:, None])[:, None, :].expand(-1, frames, -1)
        return torch.cat((past, new), dim=-1)[:, None]


def stream_hops(tokens: int, first: int = 25, lookahead: int = 3, grow: float = 1.0, most: int = 100,
                prompt_tokens: int = 0) -> list[int]:
    """Token counts fed per streaming call for ``tokens`` tokens, as upstream schedules them: the first hop
    is ``first`` tokens plus what aligns prompt + hop to a chunk (of ``first`` tokens), plus the look-ahead;
    each next hop is the previous one times ``grow``, at most ``most`` (upstream: x2 up to 100; with the
    cache growth is not needed, but fewer calls pay less per-call overhead). The last call finalizes."""
    pad = -prompt_tokens % first
    hops, fed, hop = [], 0, first
    while fed < tokens:
        n = min(tokens - fed, hop + (pad + lookahead if not hops else 0))
        hops.append(n)
        fed += n
        hop = min(most, int(hop * grow))
    return hops


def measure_streaming(flow: CosyVoice3Flow, prompt: FlowPrompt, tokens: Tensor, hops: list[int] | None = None,
                      repeats: int = 2) -> dict[str, float]:
    """Stream ``tokens`` in ``hops`` (default :func:`stream_hops`) and compare with one-shot streaming-mode
    recomputation (max/mean abs mel difference). Compute of the streamed calls against one offline call:
    FLOPs (torch's counter, plus attention, which it does not count: 4 x queries x keys x width, masked or
    not) and CPU seconds of this process (best of ``repeats``, none when 0; keep torch at one thread)."""
    import time

    from torch.overrides import TorchFunctionMode
    from torch.utils.flop_counter import FlopCounterMode

    class AttentionFlops(TorchFunctionMode):
        total = 0

        def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
            if func is F.scaled_dot_product_attention:
                q, k = args[0], args[1]
                AttentionFlops.total += 4 * q.shape[0] * q.shape[1] * q.shape[2] * k.shape[2] * q.shape[3]
            return func(*args, **(kwargs or {}))

    hops = hops or stream_hops(tokens.shape[0], lookahead=flow.dims.lookahead, prompt_tokens=prompt.token.shape[0])

    def offline() -> tuple[Tensor, int]:
        return flow.offline([(prompt, tokens)])[0], 0

    def streamed() -> tuple[Tensor, int]:
        state, parts, pos, peak = flow.start(prompt), [], 0, 0
        for i, n in enumerate(hops):
            parts.append(flow.stream([(state, tokens[pos:pos + n], i == len(hops) - 1)])[0])
            pos += n
            peak = max(peak, state.kv_bytes)
        return torch.cat(parts, dim=1), peak

    def flops(fn) -> int:  # type: ignore[no-untyped-def]
        AttentionFlops.total = 0
        counter = FlopCounterMode(display=False)
        with counter, AttentionFlops():
            fn()
        return counter.get_total_flops() + AttentionFlops.total

    def seconds(fn) -> float:  # type: ignore[no-untyped-def]
        best = math.inf
        for _ in range(repeats):
            began = time.process_time()
            fn()
            best = min(best, time.process_time() - began)
        return best

    reference = flow.stream([(flow.start(prompt), tokens, True)])[0]
    mel, peak = streamed()
    diff = (mel - reference).abs()
    offline_s, streamed_s = (seconds(offline), seconds(streamed)) if repeats else (math.nan, math.nan)
    return {"max_abs_diff": float(diff.max()), "mean_abs_diff": float(diff.mean()),
            "mel_abs_mean": float(reference.abs().mean()), "flop_ratio": flops(streamed) / flops(offline),
            "cpu_ratio": streamed_s / offline_s, "offline_s": offline_s, "streamed_s": streamed_s,
            "frames": float(mel.shape[1]), "calls": float(len(hops)), "kv_bytes_peak": float(peak)}
