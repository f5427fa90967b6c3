"""Test helpers: decode what the server sent with real decoders."""

from __future__ import annotations

import io

import av
import numpy as np


def decode(data: bytes, fmt: str) -> tuple[np.ndarray, int]:
    """Decode a whole response body to float mono samples and the decoder's sample rate."""
    if fmt == "pcm":
        return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0, 24000
    with av.open(io.BytesIO(data), "r") as container:
        stream = container.streams.audio[0]
        chunks = [frame.to_ndarray().reshape(-1) for frame in container.decode(stream)]
        rate = stream.codec_context.sample_rate
    samples = np.concatenate(chunks).astype(np.float32)
    if np.abs(samples).max(initial=0) > 2.0:  # integer sample formats
        samples /= 32768.0
    return samples, rate


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(samples)))) if samples.size else 0.0
