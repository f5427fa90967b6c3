"""CosyVoice3's causal HiFT vocoder: 80-bin mel at 50 frames/s -> 24 kHz waveform (480 samples per frame).

The network (upstream ``CausalHiFTGenerator`` with ``CausalConvRNNF0Predictor``) is written here as *streaming
operators*: every convolution keeps its own left context per request, so a new mel chunk is vocoded with a
bounded amount of work (no re-run over what was already vocoded) and the concatenated chunks equal vocoding the
whole mel at once (to float rounding). Offline vocoding is the same code path: one chunk with ``finalize=True``.

Public API::

    voc = CosyVoice3Vocoder.load("hift.pt", device="cpu", dtype=torch.float32)   # dims inferred from the file
    st = voc.new_stream()                         # per-request state; nothing is shared between requests
    outs = voc.vocode([(st, mel_chunk, False), (st2, mel2, True), ...])
    # mel_chunk: [80, n] (numpy or torch, n >= 0 *new* frames); returns one float32 numpy array per entry:
    # that request's new samples. finalize=True flushes the look-ahead; the stream is finished afterwards.
    wav = voc.vocode_offline(mel)                 # [80, T] -> [480 * T] samples (one stream, finalize=True)

Bad input (wrong shape, non-finite values, a stream twice in a batch or used after finalize, more than
``max_frames`` mel frames in one stream) raises ``EngineError``; a checkpoint with other keys or shapes raises
``ModelLoadError``. ``VocoderState.frames_in`` / ``samples_out`` count what a stream has taken and given.

Non-final chunks hold back only what still depends on frames not yet received: the look-ahead of ``conv_pre``
(4 mel frames; the f0 predictor's 3 fit inside it) plus the ISTFT overlap, so after R frames in total a stream
has emitted 480 * (R - 4) - 4 samples (upstream's ``finalize=False`` emits 480 * (R - 8)). The concatenated
output of any chunking equals offline vocoding (measured: 1.3e-7 on 60 s, tiny model).

Streaming cost: each convolution keeps its left context per request, so a chunk costs the multiply-adds of its
new positions only (streamed / offline convolution MACs = 1.00 by construction, see :func:`streaming_cost`).
CPU time (1 thread) streamed / offline for 60 s on the tiny model: 0.8x with upstream's hops (50, 100, then 200
frames), about 1.3-1.5x with fixed 50-frame chunks (per-call overhead of a model this small); at real
dimensions (random weights, 3 s) 1.07-1.2x with 25-frame chunks, 0.94x with 50/100.

Source noise: the harmonic source adds ``noise_amp * U[0, 1)`` noise that upstream draws once from the global
RNG while building the model (``torch.rand(1, 300 * 24000, 9)``). Here it is a :class:`SourceNoise` indexed by
the request's own sample offset, so a request's audio does not depend on its batch position or chunking: by
default blocks of ``torch.rand`` drawn from ``torch.Generator().manual_seed(seed * 1_000_003 + block)``
(``seed=0``, blocks of 48 000 samples, unbounded length); :meth:`SourceNoise.fixed` injects given values
(the parity fixture's ``sine_waves_head``). Upstream's initial harmonic phases (``rand_ini``) are added to the
first sample's phase increment, which the causal source's linear down-sampling (it reads samples 239 and 240
of each 480-sample frame) never reads, so they do not affect the output; upstream's noise-branch buffer
(``uv``) is not used by inference at all. Neither is needed here.

Precision: the f0 predictor runs in float64 (as upstream: the causal source is sensitive to f0), the source,
STFT and ISTFT in float32; the rest of the network in ``dtype``.
"""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from vtts.workers.engine import EngineError, ModelLoadError

__all__ = ["CosyVoice3Vocoder", "HiFTDims", "SourceNoise", "VocoderState", "expected_keys"]

SAMPLES_PER_FRAME = 480


@dataclass(frozen=True)
class HiFTDims:
    """Hyper-parameters of the vocoder; defaults are Fun-CosyVoice3-0.5B's (``cosyvoice3.yaml``)."""

    in_channels: int = 80
    base_channels: int = 512
    f0_cond_channels: int = 512
    nb_harmonics: int = 8
    sampling_rate: int = 24000
    nsf_alpha: float = 0.1
    nsf_sigma: float = 0.003
    nsf_voiced_threshold: float = 10.0
    upsample_rates: tuple[int, ...] = (8, 5, 3)
    upsample_kernel_sizes: tuple[int, ...] = (16, 11, 7)
    n_fft: int = 16
    hop_len: int = 4
    resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11)
    resblock_dilation_sizes: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    source_resblock_kernel_sizes: tuple[int, ...] = (7, 7, 11)
    source_resblock_dilation_sizes: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    lrelu_slope: float = 0.1
    audio_limit: float = 0.99
    conv_pre_look_right: int = 4
    f0_look_right: int = 3

    @property
    def hop_samples(self) -> int:
        """Waveform samples per mel frame (480 at 24 kHz)."""
        return int(np.prod(self.upsample_rates)) * self.hop_len

    def down_rates(self) -> list[int]:
        """Cumulative STFT-frame stride of each stage's source branch (15, 3, 1 for the real model)."""
        rates = [1, *self.upsample_rates[::-1][:-1]]
        return [int(r) for r in np.cumprod(rates)[::-1]]

    @classmethod
    def from_state_dict(cls, sd: dict[str, Any]) -> HiFTDims:
        """Default dims with the channel counts read from a checkpoint (the tiny fixture only shrinks those)."""
        try:
            base = int(sd["conv_pre.bias"].shape[0])
            cond = int(sd["f0_predictor.classifier.weight"].shape[1])
            in_ch = int(sd["conv_pre.parametrizations.weight.original1"].shape[1])
        except KeyError as exc:
            raise ModelLoadError(f"hift checkpoint lacks {exc.args[0]!r}: not a CosyVoice3 causal HiFT") from exc
        return cls(base_channels=base, f0_cond_channels=cond, in_channels=in_ch)


def _wn(prefix: str, out: int, inp: int, k: int) -> dict[str, tuple[int, ...]]:
    return {
        f"{prefix}.bias": (out,),
        f"{prefix}.parametrizations.weight.original0": (out, 1, 1),
        f"{prefix}.parametrizations.weight.original1": (out, inp, k),
    }


def _resblock_keys(prefix: str, ch: int, k: int, dils: Sequence[int]) -> dict[str, tuple[int, ...]]:
    keys: dict[str, tuple[int, ...]] = {}
    for j in range(len(dils)):
        keys |= _wn(f"{prefix}.convs1.{j}", ch, ch, k) | _wn(f"{prefix}.convs2.{j}", ch, ch, k)
    for j in range(len(dils)):
        keys[f"{prefix}.activations1.{j}.alpha"] = (ch,)
        keys[f"{prefix}.activations2.{j}.alpha"] = (ch,)
    return keys


def expected_keys(d: HiFTDims) -> dict[str, tuple[int, ...]]:
    """State-dict key -> shape that upstream's classes produce for ``d`` (checked against real_keys.json)."""
    keys: dict[str, tuple[int, ...]] = {
        "m_source.l_linear.weight": (1, d.nb_harmonics + 1),
        "m_source.l_linear.bias": (1,),
    }
    base = d.base_channels
    keys |= _wn("conv_pre", base, d.in_channels, d.conv_pre_look_right + 1)
    for i, k in enumerate(d.upsample_kernel_sizes):
        keys |= _wn(f"ups.{i}", base // 2 ** (i + 1), base // 2**i, k)
    for i, u in enumerate(d.down_rates()):
        keys[f"source_downs.{i}.weight"] = (base // 2 ** (i + 1), d.n_fft + 2, 1 if u == 1 else 2 * u)
        keys[f"source_downs.{i}.bias"] = (base // 2 ** (i + 1),)
    for i, (k, dil) in enumerate(zip(d.source_resblock_kernel_sizes, d.source_resblock_dilation_sizes, strict=True)):
        keys |= _resblock_keys(f"source_resblocks.{i}", base // 2 ** (i + 1), k, dil)
    n = 0
    for i in range(len(d.upsample_rates)):
        for k, dil in zip(d.resblock_kernel_sizes, d.resblock_dilation_sizes, strict=True):
            keys |= _resblock_keys(f"resblocks.{n}", base // 2 ** (i + 1), k, dil)
            n += 1
    keys |= _wn("conv_post", d.n_fft + 2, base // 2 ** len(d.upsample_rates), 7)
    cond = d.f0_cond_channels
    keys |= _wn("f0_predictor.condnet.0", cond, d.in_channels, d.f0_look_right + 1)
    for j in (2, 4, 6, 8):
        keys |= _wn(f"f0_predictor.condnet.{j}", cond, cond, 3)
    keys["f0_predictor.classifier.weight"] = (1, cond)
    keys["f0_predictor.classifier.bias"] = (1,)
    return keys


class SourceNoise:
    """The harmonic source's U[0,1) noise, a function of the absolute sample index (shape [n, harmonics])."""

    def __init__(self, seed: int = 0, harmonics: int = 9, block: int = 48000, head: Tensor | None = None) -> None:
        self.seed, self.harmonics, self.block = seed, harmonics, block
        self.head = head
        self._blocks: OrderedDict[int, Tensor] = OrderedDict()

    @classmethod
    def fixed(cls, values: np.ndarray | Tensor) -> SourceNoise:
        """Noise with given leading values ([n, harmonics] or [1, n, harmonics]); past them it is an error."""
        head = torch.as_tensor(np.asarray(values, dtype=np.float32)).reshape(-1, np.shape(values)[-1])
        return cls(harmonics=head.shape[1], head=head)

    def _block(self, b: int) -> Tensor:
        blk = self._blocks.get(b)
        if blk is None:
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + b)
            blk = torch.rand(self.block, self.harmonics, generator=gen)
            self._blocks[b] = blk
            while len(self._blocks) > 8:
                self._blocks.popitem(last=False)
        else:
            self._blocks.move_to_end(b)
        return blk

    def take(self, start: int, n: int) -> Tensor:
        """Noise for samples ``start .. start + n - 1`` (float32, CPU)."""
        if self.head is not None:
            if start + n > self.head.shape[0]:
                raise EngineError(f"fixed source noise covers {self.head.shape[0]} samples, asked up to {start + n}")
            return self.head[start:start + n]
        parts, pos, end = [], start, start + n
        while pos < end:
            b, off = divmod(pos, self.block)
            take = min(self.block - off, end - pos)
            parts.append(self._block(b)[off:off + take])
            pos += take
        return torch.cat(parts) if parts else torch.zeros(0, self.harmonics)


@dataclass
class VocoderState:
    """One request's streaming state: every operator's left context, the source phase and offsets."""

    buf: dict[str, Tensor] = field(default_factory=dict)
    pend: dict[str, tuple[Tensor, Tensor]] = field(default_factory=dict)
    phase: Tensor | None = None  # float64 [harmonics]: running sum of per-frame phase increments
    source_samples: int = 0  # source samples made so far (index into the noise)
    stft_started: bool = False
    reflected: bool = False  # the stage-2 reflection sample has been inserted
    ola_tail: Tensor | None = None
    ola_frames: int = 0  # ISTFT frames overlap-added so far
    frames_in: int = 0  # mel frames received
    samples_out: int = 0
    finished: bool = False


class CosyVoice3Vocoder:
    """The causal HiFT vocoder as batched streaming operators (see the module docstring for the API)."""

    def __init__(self, weights: dict[str, Tensor], dims: HiFTDims, device: torch.device | str = "cpu",
                 dtype: torch.dtype = torch.float32, noise: SourceNoise | None = None,
                 max_frames: int = 300 * 50) -> None:
        self.dims, self.device, self.dtype = dims, torch.device(device), dtype
        self.noise = noise or SourceNoise(harmonics=dims.nb_harmonics + 1)
        self.max_frames = max_frames
        self.w = weights
        self._inv = {k: 1.0 / (t + 1e-9) for k, t in weights.items() if k.endswith(".alpha")}  # snake's 1/alpha
        self.conv_macs = 0  # multiply-accumulates done by the convolutions (padding included), for cost figures
        self.window = torch.hann_window(dims.n_fft, periodic=True, dtype=torch.float32, device=self.device)
        w2 = self.window.double() ** 2
        self._w2 = w2.float()
        self._harm = torch.arange(1, dims.nb_harmonics + 2, dtype=torch.float32, device=self.device)

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, hift_pt: str | Path, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32,
             dims: HiFTDims | None = None, noise: SourceNoise | None = None, max_frames: int = 300 * 50,
             ) -> CosyVoice3Vocoder:
        """Read ``hift.pt`` (upstream key names, weight norm folded here) and check every key and shape."""
        try:
            sd = torch.load(str(hift_pt), map_location="cpu", weights_only=True)
        except (OSError, RuntimeError) as exc:
            raise ModelLoadError(f"cannot read hift checkpoint {hift_pt}: {exc}") from exc
        return cls.from_state_dict(sd, device=device, dtype=dtype, dims=dims, noise=noise, max_frames=max_frames)

    @classmethod
    def from_state_dict(cls, sd: dict[str, Tensor], device: torch.device | str = "cpu",
                        dtype: torch.dtype = torch.float32, dims: HiFTDims | None = None,
                        noise: SourceNoise | None = None, max_frames: int = 300 * 50) -> CosyVoice3Vocoder:
        """Validate ``sd`` against :func:`expected_keys` and fold ``g * v / ||v||`` into plain conv weights."""
        dims = dims or HiFTDims.from_state_dict(sd)
        want = expected_keys(dims)
        missing = sorted(set(want) - set(sd))
        extra = sorted(set(sd) - set(want))
        if missing or extra:
            raise ModelLoadError(f"hift checkpoint keys differ from CosyVoice3's: missing {missing[:5]}, "
                                 f"unexpected {extra[:5]}")
        for k, shape in want.items():
            if tuple(sd[k].shape) != shape:
                raise ModelLoadError(f"hift checkpoint {k} has shape {tuple(sd[k].shape)}, expected {shape}")
        w: dict[str, Tensor] = {}
        for k in want:
            if k.endswith(".parametrizations.weight.original1"):
                stem = k[: -len(".parametrizations.weight.original1")]
                g, v = sd[f"{stem}.parametrizations.weight.original0"], sd[k]
                # (on the meta device only the shapes matter, and its decomposition imports torch's compiler)
                w[f"{stem}.weight"] = v.float() if v.is_meta else torch._weight_norm(v.float(), g.float(), 0)
            elif not k.endswith(".original0"):
                w[k] = sd[k].float()
        out: dict[str, Tensor] = {}
        for k, t in w.items():
            if k.startswith("f0_predictor."):
                out[k] = t.to(device=device, dtype=torch.float64)  # upstream runs the f0 predictor in float64
            elif k.startswith("m_source."):
                out[k] = t.to(device=device, dtype=torch.float32)
            elif k.endswith(".alpha"):
                out[k] = t.to(device=device, dtype=dtype)[:, None]
            else:
                out[k] = t.to(device=device, dtype=dtype)
        return cls(out, dims, device=device, dtype=dtype, noise=noise, max_frames=max_frames)

    @staticmethod
    def real_keys(path: str | Path) -> dict[str, tuple[int, ...]]:
        """The ``hift`` section of a real_keys.json (key -> shape)."""
        data = json.loads(Path(path).read_text())
        return {k: tuple(v) for k, v in data["hift"].items()}

    # ------------------------------------------------------------------ public API
    def new_stream(self) -> VocoderState:
        """A fresh per-request state."""
        return VocoderState()

    @torch.inference_mode()
    def vocode(self, batch: Sequence[tuple[VocoderState, Any, bool]]) -> list[np.ndarray]:
        """Vocode one mel chunk per request in one batched pass; returns each request's new samples."""
        if not batch:
            return []
        states = [b[0] for b in batch]
        if len({id(s) for s in states}) != len(states):
            raise EngineError("a vocoder stream appears twice in one batch")
        finals = [bool(b[2]) for b in batch]
        mels = []
        for st, (_, mel, _) in zip(states, batch, strict=True):
            if st.finished:
                raise EngineError("this vocoder stream was already finalized")
            try:
                m = torch.as_tensor(np.asarray(mel, dtype=np.float32) if not isinstance(mel, Tensor) else mel)
            except (TypeError, ValueError) as exc:
                raise EngineError(f"mel chunk is not a float array: {exc}") from exc
            if m.dim() == 3 and m.shape[0] == 1:
                m = m[0]
            if m.dim() != 2 or m.shape[0] != self.dims.in_channels:
                raise EngineError(f"mel chunk must be [{self.dims.in_channels}, frames], got {tuple(m.shape)}")
            if not torch.isfinite(m).all():
                raise EngineError("mel chunk has non-finite values")
            if st.frames_in + m.shape[1] > self.max_frames:
                raise EngineError(f"vocoder input over {self.max_frames} mel frames (max_frames)",
                                  param="max_frames")
            mels.append(m.to(self.device, torch.float32))
        for st, m in zip(states, mels, strict=True):  # counted only once the whole batch is valid
            st.frames_in += m.shape[1]
        wavs = self._forward(mels, states, finals)
        outs = []
        for st, wav, fin in zip(states, wavs, finals, strict=True):
            st.samples_out += wav.shape[0]
            if fin:
                st.finished = True
                st.buf.clear()
                st.pend.clear()
            outs.append(wav.float().cpu().numpy())
        return outs

    def vocode_offline(self, mel: Any) -> np.ndarray:
        """The whole mel [80, T] at once (upstream's ``inference(finalize=True)``)."""
        return self.vocode([(self.new_stream(), mel, True)])[0]

    @torch.inference_mode()
    def source_offline(self, mel: Any) -> np.ndarray:
        """The harmonic excitation for a whole mel [80, T] (upstream's second ``inference`` output), to check."""
        st = self.new_stream()
        m = torch.as_tensor(np.asarray(mel, dtype=np.float32)).to(self.device)
        f0 = self._f0([m], [st], [True])[0]
        return self._source(f0, st).cpu().numpy()

    # ------------------------------------------------------------------ operators on ragged batches
    def _conv(self, key: str, xs: list[Tensor], states: list[VocoderState], finals: list[bool], *,
              stride: int = 1, dilation: int = 1, left: int = 0, flush: int = 0, up: int = 1) -> list[Tensor]:
        """A 1-D convolution over each request's [left context ++ new input]: outputs every window that is
        complete, keeps the unconsumed tail as the next call's context. ``left`` zeros start a stream (causal
        padding), ``flush`` zeros end it (right look-ahead padding at finalize), ``up`` nearest-upsamples first."""
        weight, bias = self.w[f"{key}.weight"], self.w[f"{key}.bias"]
        span = dilation * (weight.shape[-1] - 1) + 1
        fulls = []
        for x, st, fin in zip(xs, states, finals, strict=True):
            if up > 1:
                x = x.repeat_interleave(up, dim=-1)
            prev = st.buf.get(key)
            if prev is None:
                prev = x.new_zeros(x.shape[0], left)
            parts = [prev, x]
            if flush and fin:
                parts.append(x.new_zeros(x.shape[0], flush))
            fulls.append(torch.cat(parts, dim=-1))
        counts = [max(0, (f.shape[-1] - span) // stride + 1) for f in fulls]
        if max(counts) == 0:
            ys = [weight.new_zeros(weight.shape[0], 0) for _ in fulls]
        else:
            length = max(f.shape[-1] for f in fulls)
            if len(fulls) == 1:
                batch = fulls[0][None]
            else:
                batch = torch.stack([F.pad(f, (0, length - f.shape[-1])) for f in fulls])
            y = F.conv1d(batch, weight, bias, stride=stride, dilation=dilation)
            self.conv_macs += y.shape[0] * y.shape[2] * weight.numel()
            ys = [y[i, :, :c] for i, c in enumerate(counts)]
        for f, c, st in zip(fulls, counts, states, strict=True):
            st.buf[key] = f[:, c * stride:]
        return ys

    @staticmethod
    def _map(fn: Callable[[Tensor], Tensor], xs: list[Tensor]) -> list[Tensor]:
        """A pointwise op over all requests at once (concatenated along time)."""
        if len(xs) == 1:
            return [fn(xs[0])]
        lens = [x.shape[-1] for x in xs]
        return list(torch.split(fn(torch.cat(xs, dim=-1)), lens, dim=-1))

    def _snake(self, key: str, xs: list[Tensor]) -> list[Tensor]:
        alpha, inv = self.w[key], self._inv[key]
        return self._map(lambda x: x + inv * torch.sin(x * alpha).pow(2), xs)

    def _resblock(self, key: str, k: int, dils: Sequence[int], xs: list[Tensor], states: list[VocoderState],
                  finals: list[bool]) -> list[Tensor]:
        for j, d in enumerate(dils):
            t = self._snake(f"{key}.activations1.{j}.alpha", xs)
            t = self._conv(f"{key}.convs1.{j}", t, states, finals, dilation=d, left=(k - 1) * d)
            t = self._snake(f"{key}.activations2.{j}.alpha", t)
            t = self._conv(f"{key}.convs2.{j}", t, states, finals, left=k - 1)
            xs = [a + b for a, b in zip(t, xs, strict=True)]
        return xs

    @staticmethod
    def _zip_add(key: str, xs: list[Tensor], ss: list[Tensor], states: list[VocoderState]) -> list[Tensor]:
        """x + s position by position; whichever branch is ahead waits for the other in the state."""
        out = []
        for x, s, st in zip(xs, ss, states, strict=True):
            px, ps = st.pend.get(key, (x[:, :0], s[:, :0]))
            x, s = torch.cat([px, x], dim=-1), torch.cat([ps, s], dim=-1)
            n = min(x.shape[-1], s.shape[-1])
            out.append(x[:, :n] + s[:, :n])
            st.pend[key] = (x[:, n:], s[:, n:])
        return out

    # ------------------------------------------------------------------ the network
    def _f0(self, mels: list[Tensor], states: list[VocoderState], finals: list[bool]) -> list[Tensor]:
        """Causal f0 predictor (float64): 3 frames of look-ahead, then four left-causal convs."""
        d = self.dims
        h = [m.double() for m in mels]
        h = self._conv("f0_predictor.condnet.0", h, states, finals, flush=d.f0_look_right)
        h = self._map(F.elu, h)
        for j in (2, 4, 6, 8):
            h = self._conv(f"f0_predictor.condnet.{j}", h, states, finals, left=2)
            h = self._map(F.elu, h)
        wc, bc = self.w["f0_predictor.classifier.weight"], self.w["f0_predictor.classifier.bias"]
        return [torch.abs(F.linear(x.transpose(0, 1), wc, bc)[:, 0]).float() for x in h]

    def _source(self, f0: Tensor, st: VocoderState) -> Tensor:
        """Harmonic-plus-noise source for n f0 frames -> n * 480 samples (float32), phase carried in ``st``.

        Upstream's causal SineGen2 keeps one phase per frame: per-frame increments (f0 * h / sr) mod 1 are
        summed, scaled by 2 pi * 480 and held for the frame's 480 samples."""
        d = self.dims
        hop = d.hop_samples
        n = f0.shape[0]
        if n == 0:
            return f0.new_zeros(0)
        fn = f0[:, None] * self._harm[None, :]
        rad = (fn / d.sampling_rate) % 1
        if st.phase is None:
            st.phase = torch.zeros(fn.shape[1], dtype=torch.float64, device=f0.device)
        # float32 cumsum on CPU accumulates in float64 and rounds each partial sum: do the same, carried over
        cum = torch.cumsum(torch.cat([st.phase[None], rad.double()]), dim=0)[1:]
        st.phase = cum[-1]
        phase = cum.float() * 2 * np.pi * hop
        sines = torch.sin(phase) * d.nsf_alpha
        uv = (f0 > d.nsf_voiced_threshold).float()[:, None]
        noise_amp = uv * d.nsf_sigma + (1 - uv) * d.nsf_alpha / 3
        noise = self.noise.take(st.source_samples, n * hop).to(f0.device).view(n, hop, -1)
        st.source_samples += n * hop
        waves = (sines * uv)[:, None, :] + noise_amp[:, None, :] * noise
        lin_w, lin_b = self.w["m_source.l_linear.weight"], self.w["m_source.l_linear.bias"]
        return torch.tanh(F.linear(waves.reshape(n * hop, -1), lin_w, lin_b))[:, 0]

    def _stft(self, srcs: list[Tensor], states: list[VocoderState], finals: list[bool]) -> list[Tensor]:
        """Centered STFT (reflect padding at the true start and end) of the source, frame by frame."""
        d = self.dims
        pad = d.n_fft // 2
        bufs, counts = [], []
        for s, st, fin in zip(srcs, states, finals, strict=True):
            if not st.stft_started:
                if s.shape[0] == 0:
                    bufs.append(s)
                    counts.append(0)
                    continue
                s = torch.cat([s[1:pad + 1].flip(0), s])
                st.stft_started = True
            else:
                s = torch.cat([st.buf["stft"], s])
            if fin:
                s = torch.cat([s, s[-pad - 1:-1].flip(0)])
            c = max(0, (s.shape[0] - d.n_fft) // d.hop_len + 1)
            st.buf["stft"] = s[c * d.hop_len:]
            bufs.append(s)
            counts.append(c)
        out = [torch.zeros(d.n_fft + 2, 0, device=self.device) for _ in srcs]
        if max(counts) == 0:
            return out
        length = max(b.shape[0] for b in bufs)
        length = max(length, d.n_fft)
        batch = torch.stack([F.pad(b, (0, length - b.shape[0])) for b in bufs])
        spec = torch.stft(batch, d.n_fft, d.hop_len, d.n_fft, window=self.window, center=False,
                          return_complex=True)
        spec = torch.view_as_real(spec)
        for i, c in enumerate(counts):
            if c:
                out[i] = torch.cat([spec[i, :, :c, 0], spec[i, :, :c, 1]], dim=0)
        return out

    def _istft(self, y: Tensor, st: VocoderState, fin: bool) -> Tensor:
        """Overlap-add of new ISTFT frames; emits every sample no later frame can still change."""
        d = self.dims
        nf, hop = d.n_fft, d.hop_len
        y = y.float()
        half = nf // 2 + 1
        mag = torch.clip(torch.exp(y[:half]), max=1e2)
        ph = torch.sin(y[half:])
        spec = torch.complex(mag * torch.cos(ph), mag * torch.sin(ph))
        m = spec.shape[1]
        seg = torch.zeros(hop * m + nf - hop, device=y.device)
        if st.ola_tail is not None:
            seg[: nf - hop] += st.ola_tail
        if m:
            frames = torch.fft.irfft(spec, n=nf, dim=0) * self.window[:, None]
            seg[: hop * (m - 1) + nf] += F.fold(frames[None], (1, hop * (m - 1) + nf), (1, nf),
                                                stride=(1, hop))[0, 0, 0]
        k0 = st.ola_frames
        st.ola_frames += m
        total = st.ola_frames
        if total == 0:
            return seg[:0]
        ready = hop * m + (hop if fin else 0)
        st.ola_tail = seg[hop * m:]
        pos = torch.arange(hop * k0, hop * k0 + ready, device=y.device)
        env = torch.zeros(ready, device=y.device)
        for q in range(nf // hop):
            k = pos // hop - q
            ok = (k >= 0) & (k <= total - 1)
            env = env + torch.where(ok, self._w2[pos % hop + hop * q], torch.zeros((), device=y.device))
        out = seg[:ready] / env
        keep = pos >= nf // 2
        return torch.clamp(out[keep], -d.audio_limit, d.audio_limit)

    def _forward(self, mels: list[Tensor], states: list[VocoderState], finals: list[bool]) -> list[Tensor]:
        d = self.dims
        f0 = self._f0(mels, states, finals)
        srcs = [self._source(f, st) for f, st in zip(f0, states, strict=True)]
        s_stft = [s.to(self.dtype) for s in self._stft(srcs, states, finals)]
        x = self._conv("conv_pre", [m.to(self.dtype) for m in mels], states, finals, flush=d.conv_pre_look_right)
        n_up = len(d.upsample_rates)
        nk = len(d.resblock_kernel_sizes)
        for i, (u, k) in enumerate(zip(d.upsample_rates, d.upsample_kernel_sizes, strict=True)):
            x = self._map(lambda t: F.leaky_relu(t, d.lrelu_slope), x)
            x = self._conv(f"ups.{i}", x, states, finals, left=k - 1, up=u)
            if i == n_up - 1:
                x = [self._reflect_start(t, st) for t, st in zip(x, states, strict=True)]
            r = d.down_rates()[i]
            si = self._conv(f"source_downs.{i}", s_stft, states, finals, stride=r, left=0 if r == 1 else r - 1)
            si = self._resblock(f"source_resblocks.{i}", d.source_resblock_kernel_sizes[i],
                                d.source_resblock_dilation_sizes[i], si, states, finals)
            x = self._zip_add(f"fuse.{i}", x, si, states)
            acc: list[Tensor] | None = None
            for j in range(nk):
                rb = self._resblock(f"resblocks.{i * nk + j}", d.resblock_kernel_sizes[j],
                                    d.resblock_dilation_sizes[j], x, states, finals)
                acc = rb if acc is None else [a + b for a, b in zip(acc, rb, strict=True)]
            assert acc is not None
            x = [a / nk for a in acc]
        x = self._map(F.leaky_relu, x)
        x = self._conv("conv_post", x, states, finals, left=6)
        return [self._istft(t, st, fin) for t, st, fin in zip(x, states, finals, strict=True)]

    @staticmethod
    def _reflect_start(x: Tensor, st: VocoderState) -> Tensor:
        """Upstream reflection-pads the last stage by one step on the left: the stream's first output repeats
        its second."""
        if st.reflected or x.shape[-1] == 0:
            return x
        st.reflected = True
        return torch.cat([x[:, 1:2], x], dim=-1)


def streaming_cost(voc: CosyVoice3Vocoder, mel: Tensor, chunks: Sequence[int]) -> dict[str, float]:
    """Streamed vs offline vocoding of ``mel`` [80, T] cut into ``chunks`` frames: the largest sample
    difference, and the cost ratios (process CPU time; convolution multiply-accumulates)."""
    import time

    macs0, t0 = voc.conv_macs, time.process_time()
    ref = voc.vocode_offline(mel)
    t_off, macs_off = time.process_time() - t0, voc.conv_macs - macs0
    st = voc.new_stream()
    parts, pos = [], 0
    macs0, t0 = voc.conv_macs, time.process_time()
    for i, n in enumerate(chunks):
        parts.append(voc.vocode([(st, mel[:, pos:pos + n], i == len(chunks) - 1)])[0])
        pos += n
    t_str, macs_str = time.process_time() - t0, voc.conv_macs - macs0
    got = np.concatenate(parts)
    diff = float(np.abs(got - ref).max()) if got.shape == ref.shape else math.inf
    return {"max_abs_diff": diff, "time_ratio": t_str / t_off, "mac_ratio": macs_str / macs_off,
            "offline_s": t_off, "streamed_s": t_str}
