"""GPT-SoVITS reference side: a voice's sample → what the model needs of it, computed once per voice.

Public API::

    hubert = HubertEncoder.load("TencentGameMate/chinese-hubert-base" or a local dir, device="cpu")
    feats = reference_features(audio, sample_rate, hubert, decoder)   # -> ReferenceFeatures
    feats.prompt_codes   # LongTensor [T]: the sample's semantic tokens (the GPT's prompt)
    feats.spec           # FloatTensor [1025, F]: 32 kHz linear spectrogram (the SoVITS style input)
    feats.style          # FloatTensor [gin, 1]: decoder.reference_style(spec), what SoVITSDecoder.decode takes
    feats.speaker        # v2Pro/v2ProPlus (pass speaker=SpeakerEncoder): FloatTensor [20480], else None

For v2Pro the speaker-verification embedding is computed as upstream does it: from the sample as the spectrogram
sees it (at 32 kHz, over-range input tamed), resampled to 16 kHz without HuBERT's trailing silence; the style is
then ``decoder.reference_style(spec, speaker)``.

The pieces are public too: :func:`linear_spectrogram` (upstream's ``spectrogram_torch`` at 32 kHz: n_fft and
window 2048, hop 640, reflect padding of (n_fft - hop) / 2 on both sides, no centering, magnitude with 1e-8 under
the square root) and :func:`hubert_input` (the sample at 16 kHz, 3-10 s by default as upstream requires, with
0.3 * 32000 zero samples appended at the end exactly as upstream's TTS pipeline does; upstream feeds these samples
to HuBERT without the feature extractor's normalization, and so does :class:`HubertEncoder`).

Resampling uses soxr (a base dependency); upstream uses librosa's default (soxr "HQ") for 16 kHz and torchaudio's
sinc resampler for 32 kHz, so a sample not already at 32 kHz gives a spectrogram within resampler differences of
upstream's. Samples outside the length bounds raise :class:`ReferenceError` with the measured length.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from vtts.workers.engines.gptsovits.sovits import SoVITSDecoder
    from vtts.workers.engines.gptsovits.speaker import SpeakerEncoder

SPEC_RATE = 32000
N_FFT = 2048
HOP = 640
WIN = 2048
HUBERT_RATE = 16000
#: upstream appends int(0.3 * sampling_rate) zeros (sampling_rate being the model's 32 kHz) to the 16 kHz audio
TAIL_ZEROS = int(0.3 * SPEC_RATE)


class ReferenceError(ValueError):
    """The reference sample cannot be used (too short, too long, empty); the message says why."""


def _mono(audio: np.ndarray) -> np.ndarray:
    a = np.asarray(audio, dtype=np.float32)
    if a.ndim == 2:  # [channels, samples] or [samples, channels]: average the shorter axis
        a = a.mean(axis=0 if a.shape[0] < a.shape[1] else 1)
    if a.ndim != 1 or a.size == 0:
        raise ReferenceError("reference audio must be a non-empty mono or stereo signal")
    return a


def _resample(audio: np.ndarray, rate: int, target: int) -> np.ndarray:
    if rate == target:
        return audio
    import soxr

    return soxr.resample(audio, rate, target, quality="HQ").astype(np.float32, copy=False)


def _at_32k(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """The sample at 32 kHz, over-range input scaled down as upstream does before its spectrogram."""
    a = _resample(_mono(audio), sample_rate, SPEC_RATE)
    peak = float(np.abs(a).max())
    if peak > 1:  # upstream tames over-range input the same way
        a = a / min(2.0, peak)
    return a


def speaker_input(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """What upstream's speaker model hears: the 32 kHz sample of the spectrogram, resampled to 16 kHz."""
    return _resample(_at_32k(audio, sample_rate), SPEC_RATE, HUBERT_RATE)


def linear_spectrogram(audio: np.ndarray, sample_rate: int) -> torch.Tensor:
    """Mono audio at any rate → the 1025-bin linear magnitude spectrogram at 32 kHz, [1025, frames]."""
    a = _at_32k(audio, sample_rate)
    pad = (N_FFT - HOP) // 2
    if a.size <= pad:
        raise ReferenceError("reference audio is too short for a spectrogram")
    x = torch.nn.functional.pad(torch.from_numpy(np.ascontiguousarray(a))[None, None], (pad, pad), mode="reflect")
    spec = torch.stft(x[0], N_FFT, hop_length=HOP, win_length=WIN, window=torch.hann_window(WIN), center=False,
                      normalized=False, onesided=True, return_complex=True)
    return torch.sqrt(spec.real.pow(2) + spec.imag.pow(2) + 1e-8)[0]


def hubert_input(audio: np.ndarray, sample_rate: int, min_seconds: float = 3.0,
                 max_seconds: float = 10.0) -> np.ndarray:
    """The sample at 16 kHz with upstream's trailing silence; ReferenceError outside [min, max] seconds."""
    a = _resample(_mono(audio), sample_rate, HUBERT_RATE)
    seconds = a.size / HUBERT_RATE
    if seconds < min_seconds or seconds > max_seconds:
        raise ReferenceError(f"reference audio must last {min_seconds:g}-{max_seconds:g} s, got {seconds:.2f} s")
    return np.concatenate([a, np.zeros(TAIL_ZEROS, dtype=np.float32)])


class HubertEncoder:
    """chinese-hubert-base (any transformers ``HubertModel`` with 768-dim output) → 50 Hz features [1, 768, T]."""

    def __init__(self, model: torch.nn.Module, device: torch.device | str = "cpu",
                 dtype: torch.dtype = torch.float32) -> None:
        self.model = model.eval().to(device=device, dtype=dtype)
        self.device = torch.device(device)
        self.dtype = dtype

    @classmethod
    def load(cls, name_or_path: str, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32,
             local_files_only: bool = False) -> HubertEncoder:
        """A local directory or a Hugging Face id (downloads only when ``local_files_only`` is False)."""
        from transformers import HubertModel

        model = HubertModel.from_pretrained(name_or_path, local_files_only=local_files_only)
        return cls(model, device, dtype)

    @torch.inference_mode()
    def features(self, wav16k: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(wav16k, dtype=np.float32))[None].to(self.device, self.dtype)
        return self.model(x).last_hidden_state.transpose(1, 2).float()


@dataclass
class ReferenceFeatures:
    """What a voice contributes to every request: prompt tokens, spectrogram, style vector and (v2Pro) the
    speaker embedding the style includes."""

    prompt_codes: torch.Tensor
    spec: torch.Tensor
    style: torch.Tensor
    speaker: torch.Tensor | None = None


def prompt_codes(audio: np.ndarray, sample_rate: int, hubert: HubertEncoder, decoder: SoVITSDecoder,
                 min_seconds: float = 3.0, max_seconds: float = 10.0) -> torch.Tensor:
    """The sample's semantic tokens [T]: HuBERT features → ssl_proj → the quantizer's nearest codewords."""
    feats = hubert.features(hubert_input(audio, sample_rate, min_seconds, max_seconds))
    return decoder.extract_latent(feats)[0, 0].cpu()


def reference_features(audio: np.ndarray, sample_rate: int, hubert: HubertEncoder, decoder: SoVITSDecoder,
                       min_seconds: float = 3.0, max_seconds: float = 10.0,
                       speaker: SpeakerEncoder | None = None) -> ReferenceFeatures:
    """Everything the engine caches per voice, from the voice's sample (any rate, mono or stereo float).
    A v2Pro/v2ProPlus decoder needs ``speaker`` (a ValueError without it)."""
    codes = prompt_codes(audio, sample_rate, hubert, decoder, min_seconds, max_seconds)
    spec = linear_spectrogram(audio, sample_rate)
    embedding = None
    if decoder.needs_speaker_embedding:
        if speaker is None:
            raise ValueError("this SoVITS model (v2Pro/v2ProPlus) needs a speaker model for its reference voices")
        embedding = speaker.embedding(speaker_input(audio, sample_rate))
    return ReferenceFeatures(codes, spec, decoder.reference_style(spec, embedding).cpu(), embedding)
