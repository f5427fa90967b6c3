"""The reference-audio side of CosyVoice3: what a custom voice's sample becomes, once per voice.

Three features, as upstream's frontend computes them from the prompt sample:

* the speaker vector: ``campplus.onnx`` (CAM++) on an 80-bin Kaldi filterbank of the 16 kHz sample
  (25 ms frames, 10 ms hop, no dither), mean-subtracted over time → [192];
* the speech tokens: ``speech_tokenizer_v3.onnx`` on Whisper's 128-bin log-mel of the 16 kHz sample
  (400-point FFT, 160 hop, centred reflect padding, last frame dropped, clamped to 8 decades below the
  peak, ``(log10 + 4) / 4``) → 25 tokens a second;
* the prompt mel: the 24 kHz sample's 80-bin log-mel as the flow decoder was trained on (Matcha-TTS's
  settings: 1920-point FFT and window, 480 hop, reflect padding of 720 on each side, magnitude
  ``sqrt(re² + im² + 1e-9)``, Slaney mel filters 0 Hz – Nyquist, ``log(max(x, 1e-5))``) → 50 frames a
  second; tokens and frames are then cut to exactly 2 frames per token.

The graphs are run through ONNX Runtime with their inputs taken by position, as upstream does (the released
files name them ``input`` for CAM++, ``feats``/``feats_length`` for the tokenizer). Resampling is soxr's.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soxr
import torch

from ...engine import EngineError, ModelLoadError

SPEAKER_RATE = 16000
#: the shortest recording a speaker vector is made of (CAM++'s filterbank needs some frames to mean anything)
MIN_EMBED_SECONDS = 0.5
MEL_RATE = 24000
#: upstream refuses longer samples for the speech tokenizer; the voice library keeps samples to 30 s anyway
MAX_SECONDS = 30.0
MIN_SECONDS = 0.5
TOKEN_MEL_RATIO = 2


@dataclass(frozen=True)
class VoicePrompt:
    """A voice's conditioning: ``tokens`` [N] int64 speech tokens, ``mel`` [2N, 80] float32 prompt frames,
    ``embedding`` [192] float32 speaker vector (not normalized; the flow model normalizes it)."""

    tokens: np.ndarray
    mel: np.ndarray
    embedding: np.ndarray

    def as_dict(self) -> dict[str, Any]:
        return {"tokens": self.tokens, "mel": self.mel, "embedding": self.embedding}


@functools.lru_cache(maxsize=8)
def slaney_mel_filters(rate: int, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None) -> np.ndarray:
    """[n_mels, n_fft // 2 + 1] triangular filters on the Slaney mel scale with Slaney area normalization
    (what librosa's ``filters.mel`` gives by default, which both Whisper and Matcha use)."""
    fmax = rate / 2 if fmax is None else fmax
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0

    def hz_to_mel(hz: np.ndarray) -> np.ndarray:
        hz = np.asarray(hz, np.float64)
        return np.where(hz >= min_log_hz, min_log_mel + np.log(np.maximum(hz, 1e-10) / min_log_hz) / logstep,
                        hz / f_sp)

    def mel_to_hz(mel: np.ndarray) -> np.ndarray:
        return np.where(mel >= min_log_mel, min_log_hz * np.exp(logstep * (mel - min_log_mel)), f_sp * mel)

    fft_freqs = np.linspace(0, rate / 2, n_fft // 2 + 1)
    mel_freqs = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    fdiff = np.diff(mel_freqs)
    ramps = mel_freqs[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_freqs[2:n_mels + 2] - mel_freqs[:n_mels]))[:, None]
    return weights.astype(np.float32)


def whisper_log_mel(audio16k: np.ndarray, n_mels: int = 128) -> np.ndarray:
    """Whisper's log-mel of a 16 kHz signal → [n_mels, frames] float32 (100 frames a second)."""
    x = torch.from_numpy(np.ascontiguousarray(audio16k, np.float32))
    spec = torch.stft(x, 400, 160, window=torch.hann_window(400), center=True, pad_mode="reflect",
                      return_complex=True)
    power = spec[..., :-1].abs() ** 2
    mel = torch.from_numpy(slaney_mel_filters(SPEAKER_RATE, 400, n_mels)) @ power
    log = torch.clamp(mel, min=1e-10).log10()
    log = torch.maximum(log, log.max() - 8.0)
    return ((log + 4.0) / 4.0).numpy()


def prompt_mel(audio24k: np.ndarray) -> np.ndarray:
    """The flow decoder's mel of a 24 kHz signal → [frames, 80] float32 (one frame per 480 samples)."""
    n_fft, hop = 1920, 480
    x = torch.from_numpy(np.ascontiguousarray(audio24k, np.float32))[None, None]
    pad = (n_fft - hop) // 2
    x = torch.nn.functional.pad(x, (pad, pad), mode="reflect")[0, 0]
    spec = torch.stft(x, n_fft, hop, window=torch.hann_window(n_fft), center=False, return_complex=True)
    magnitude = torch.sqrt(spec.real**2 + spec.imag**2 + 1e-9)
    mel = torch.from_numpy(slaney_mel_filters(MEL_RATE, n_fft, 80)) @ magnitude
    return torch.log(torch.clamp(mel, min=1e-5)).T.contiguous().numpy()


def kaldi_fbank(audio16k: np.ndarray) -> np.ndarray:
    """Kaldi's 80-bin log filterbank of a 16 kHz signal (25 ms / 10 ms, povey window, no dither), minus its
    mean over time → [frames, 80] float32 (CAM++'s input)."""
    import kaldi_native_fbank as knf

    opts = knf.FbankOptions()
    opts.frame_opts.dither = 0.0
    opts.frame_opts.samp_freq = SPEAKER_RATE
    opts.mel_opts.num_bins = 80
    fbank = knf.OnlineFbank(opts)
    fbank.accept_waveform(SPEAKER_RATE, np.asarray(audio16k, np.float32).tolist())
    fbank.input_finished()
    frames = np.stack([fbank.get_frame(i) for i in range(fbank.num_frames_ready)]).astype(np.float32)
    return frames - frames.mean(axis=0, keepdims=True)


def resample(audio: np.ndarray, rate: int, target: int) -> np.ndarray:
    audio = np.asarray(audio, np.float32)
    return audio if rate == target else soxr.resample(audio, rate, target, quality="HQ").astype(np.float32)


class ReferenceEncoder:
    """The two ONNX graphs of a model directory, turning samples into :class:`VoicePrompt` s."""

    def __init__(self, campplus: Path, tokenizer: Path, threads: int = 1) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        try:
            self.campplus = ort.InferenceSession(str(campplus), opts, providers=["CPUExecutionProvider"])
            self.tokenizer = ort.InferenceSession(str(tokenizer), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own types for unreadable or invalid graphs
            raise ModelLoadError(f"cannot open the CosyVoice3 frontend graphs ({campplus.name}, "
                                 f"{tokenizer.name}): {exc}") from exc
        if len(self.tokenizer.get_inputs()) != 2 or len(self.campplus.get_inputs()) != 1:
            raise ModelLoadError(f"{tokenizer.name} must take 2 inputs (feats, feats_length) and {campplus.name} 1 "
                                 "(an 80-bin filterbank)")

    def speaker_vector(self, audio16k: np.ndarray) -> np.ndarray:
        feats = kaldi_fbank(audio16k)[None]
        return self.campplus.run(None, {self.campplus.get_inputs()[0].name: feats})[0].reshape(-1).astype(np.float32)

    def speaker_embedding(self, audio: np.ndarray, rate: int) -> np.ndarray:
        """CAM++'s vector of any mono float32 recording (a consent recording or a sample), for verification."""
        audio = np.asarray(audio, np.float32).reshape(-1)
        if rate < 8000 or audio.size < MIN_EMBED_SECONDS * rate:
            raise EngineError(f"speaker verification needs at least {MIN_EMBED_SECONDS:g} s of audio at 8 kHz or "
                              f"more (got {audio.size / max(rate, 1):.2f} s at {rate} Hz)", param="audio_sample")
        if not np.isfinite(audio).all():
            raise EngineError("the audio holds non-finite values", param="audio_sample")
        return self.speaker_vector(resample(audio, rate, SPEAKER_RATE))

    def speech_tokens(self, audio16k: np.ndarray) -> np.ndarray:
        feats = whisper_log_mel(audio16k)[None]
        inputs = self.tokenizer.get_inputs()
        out = self.tokenizer.run(None, {inputs[0].name: feats,
                                        inputs[1].name: np.array([feats.shape[2]], np.int32)})[0]
        return np.asarray(out).reshape(-1).astype(np.int64)

    def encode(self, audio: np.ndarray, rate: int) -> VoicePrompt:
        """A sample (float32 mono at ``rate``) → its :class:`VoicePrompt`; EngineError for one this model
        cannot use (too short, too long, too low a rate)."""
        audio = np.asarray(audio, np.float32).reshape(-1)
        seconds = audio.size / max(rate, 1)
        if rate < SPEAKER_RATE:
            raise EngineError(f"the voice sample's rate is {rate} Hz; CosyVoice3 needs at least {SPEAKER_RATE} Hz",
                              param="voice")
        if not MIN_SECONDS <= seconds <= MAX_SECONDS:
            raise EngineError(f"the voice sample lasts {seconds:.1f} s; CosyVoice3 takes {MIN_SECONDS:g} to "
                              f"{MAX_SECONDS:g} s", param="voice")
        if not np.isfinite(audio).all():
            raise EngineError("the voice sample holds non-finite values", param="voice")
        audio16k = resample(audio, rate, SPEAKER_RATE)
        tokens = self.speech_tokens(audio16k)
        mel = prompt_mel(resample(audio, rate, MEL_RATE))
        n = min(mel.shape[0] // TOKEN_MEL_RATIO, tokens.size)
        if n < 1:
            raise EngineError("the voice sample gave no speech tokens", param="voice")
        return VoicePrompt(tokens[:n].copy(), mel[: TOKEN_MEL_RATIO * n].copy(), self.speaker_vector(audio16k))
