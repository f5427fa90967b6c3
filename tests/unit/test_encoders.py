"""The streaming encoders, checked with real decoders (PyAV/FFmpeg, libsndfile) rather than byte layouts."""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor

import av
import numpy as np
import pytest
import soundfile

from vtts.frontend.encoders import (
    ALL_FORMATS,
    CONTENT_TYPES,
    EXTENSION_FORMATS,
    FORMATS,
    PCM_RATE,
    StreamEncoder,
    make_encoder,
)

RATE = 22050
SECONDS = 2.0
TONE_HZ = 440.0


def duration_slack(fmt: str, rate: int) -> tuple[float, float]:
    """Decoded length minus fed length, in seconds, that a correct ``fmt`` stream may show.

    mp3: LAME's ~1105-sample delay plus last-frame padding; aac: 1024 samples of priming plus last-frame
    padding (a headerless stream can signal neither, so decoders play them); opus: Ogg carries pre-skip and
    end trimming, so it is near exact; the PCM formats are exact (pcm to soxr's rounding).
    """
    extra_samples = {"mp3": 2304, "aac": 2048}
    if fmt in extra_samples:
        return 0.0, extra_samples[fmt] / rate
    return {"opus": (-0.01, 0.01), "pcm": (-0.001, 0.001)}.get(fmt, (0.0, 0.0))


def sine(rate: int, seconds: float = SECONDS, hz: float = TONE_HZ) -> np.ndarray:
    t = np.arange(round(rate * seconds)) / rate
    return (np.sin(2 * np.pi * hz * t) * 12000).astype(np.int16)


def feed(enc: StreamEncoder, pcm: np.ndarray, chunk_s: float = 0.1) -> tuple[list[bytes], bytes]:
    """Feed ``pcm`` in ``chunk_s`` chunks; returns each encode() result and finish()'s result."""
    step = round(enc.input_rate * chunk_s)
    parts = [enc.encode(pcm[i : i + step]) for i in range(0, len(pcm), step)]
    return parts, enc.finish()


def decode(fmt: str, data: bytes) -> tuple[np.ndarray, int]:
    """Mono float samples and the sample rate a real decoder reports."""
    if fmt == "pcm":
        return np.frombuffer(data, dtype="<i2").astype(np.float64), PCM_RATE
    with av.open(io.BytesIO(data)) as container:
        frames = list(container.decode(audio=0))
    rate = frames[0].sample_rate
    samples = np.concatenate([f.to_ndarray().reshape(f.samples, -1)[:, 0] for f in frames])
    return samples.astype(np.float64), rate


def dominant_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.argmax(spectrum) * rate / len(samples))


def test_formats_and_content_types() -> None:
    assert FORMATS == ("mp3", "opus", "aac", "flac", "wav", "pcm")
    assert EXTENSION_FORMATS == ("mulaw", "alaw")
    assert set(CONTENT_TYPES) == set(ALL_FORMATS)
    for fmt in ALL_FORMATS:
        assert make_encoder(fmt, RATE).content_type == CONTENT_TYPES[fmt]


@pytest.mark.parametrize("fmt", FORMATS)
def test_streams_a_valid_file(fmt: str) -> None:
    enc = make_encoder(fmt, RATE)
    parts, tail = feed(enc, sine(RATE))
    data = b"".join(parts) + tail

    # Streaming: the first 100 ms chunk already yields bytes, and most of the file leaves before finish().
    assert parts[0], f"{fmt}: nothing after the first 100 ms"
    assert sum(map(len, parts)) >= 0.5 * len(data)

    samples, rate = decode(fmt, data)
    assert rate == enc.output_rate
    lo, hi = duration_slack(fmt, enc.output_rate)
    assert SECONDS + lo <= len(samples) / rate <= SECONDS + hi, len(samples) / rate
    assert abs(dominant_hz(samples, rate) - TONE_HZ) < 3


@pytest.mark.parametrize("fmt", FORMATS)
def test_empty_chunks_are_harmless(fmt: str) -> None:
    enc = make_encoder(fmt, RATE)
    empty = np.zeros(0, dtype=np.int16)
    out = [enc.encode(empty)]
    parts, tail = feed(enc, sine(RATE, 0.5))
    out += parts
    out.append(tail)
    samples, rate = decode(fmt, b"".join(out))
    assert rate == enc.output_rate
    lo, hi = duration_slack(fmt, enc.output_rate)
    assert 0.5 + lo <= len(samples) / rate <= 0.5 + hi


@pytest.mark.parametrize("fmt", FORMATS)
def test_read_only_buffers(fmt: str) -> None:
    # The frontend hands over np.frombuffer() views of the worker's bytes, which are read-only.
    pcm = np.frombuffer(sine(RATE, 0.5).astype("<i2").tobytes(), dtype="<i2")
    assert not pcm.flags.writeable
    enc = make_encoder(fmt, RATE)
    parts, tail = feed(enc, pcm)
    samples, rate = decode(fmt, b"".join(parts) + tail)
    assert rate == enc.output_rate and len(samples) > 0


@pytest.mark.parametrize("fmt", FORMATS)
def test_finish_without_audio(fmt: str) -> None:
    # An empty answer still ends cleanly: headers where the format has them, nothing for ADTS and raw PCM.
    # (Ogg/Opus gets its two header pages; FFmpeg's demuxer will not open an Ogg stream with no audio.)
    data = make_encoder(fmt, RATE).finish()
    if fmt in ("aac", "pcm"):
        assert data == b""
    elif fmt == "opus":
        assert data.startswith(b"OggS") and b"OpusHead" in data
    else:
        with av.open(io.BytesIO(data)) as container:
            assert container.streams.audio


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("rate", [11000, 16000, 24000, 44100])
def test_other_input_rates(fmt: str, rate: int) -> None:
    enc = make_encoder(fmt, rate)
    parts, tail = feed(enc, sine(rate, 0.5))
    samples, decoded_rate = decode(fmt, b"".join(parts) + tail)
    assert decoded_rate == enc.output_rate
    lo, hi = duration_slack(fmt, enc.output_rate)
    assert 0.5 + lo <= len(samples) / decoded_rate <= 0.5 + hi
    assert abs(dominant_hz(samples, decoded_rate) - TONE_HZ) < 5


def test_pcm_at_24k_passes_through() -> None:
    pcm = sine(PCM_RATE)
    parts, tail = feed(make_encoder("pcm", PCM_RATE), pcm)
    assert b"".join(parts) + tail == pcm.astype("<i2").tobytes()


def test_pcm_resampling_has_no_chunk_seams() -> None:
    # Odd-sized chunks: a resampler restarted per chunk would glitch at each boundary; soxr's stream must not.
    enc = make_encoder("pcm", RATE)
    parts, tail = feed(enc, sine(RATE), chunk_s=0.0371)
    got = np.frombuffer(b"".join(parts) + tail, dtype="<i2").astype(np.float64)
    want = sine(PCM_RATE).astype(np.float64)
    assert len(got) == len(want)
    middle = slice(PCM_RATE // 10, -PCM_RATE // 10)  # skip the filter's edge transients
    assert np.max(np.abs(got[middle] - want[middle])) < 0.01 * 12000


def test_wav_is_exact_and_libsndfile_reads_the_streamed_header() -> None:
    pcm = sine(RATE)
    parts, tail = feed(make_encoder("wav", RATE), pcm)
    data = b"".join(parts) + tail
    assert data[4:8] == b"\xff\xff\xff\xff" and data[40:44] == b"\xff\xff\xff\xff"
    samples, rate = soundfile.read(io.BytesIO(data), dtype="int16")
    assert rate == RATE
    np.testing.assert_array_equal(samples, pcm)


def test_encoders_in_parallel_threads_match_serial() -> None:
    # The frontend runs one encoder per request in a thread pool: instances must not share state.
    pcm = sine(RATE, 0.5)

    def encode(fmt: str) -> np.ndarray:
        parts, tail = feed(make_encoder(fmt, RATE), pcm)
        return decode(fmt, b"".join(parts) + tail)[0]  # decoded: Ogg serial numbers are random per stream

    jobs = [fmt for fmt in FORMATS for _ in range(4)]
    serial = {fmt: encode(fmt) for fmt in FORMATS}
    with ThreadPoolExecutor(max_workers=8) as pool:
        for fmt, data in zip(jobs, pool.map(encode, jobs), strict=True):
            np.testing.assert_array_equal(data, serial[fmt], err_msg=fmt)


def test_unknown_format() -> None:
    with pytest.raises(ValueError):
        make_encoder("ogg", RATE)


def test_misuse_is_reported() -> None:
    enc = make_encoder("wav", RATE)
    with pytest.raises(TypeError):
        enc.encode(np.zeros(10, dtype=np.float32))
    with pytest.raises(ValueError):
        enc.encode(np.zeros((2, 10), dtype=np.int16))
    enc.finish()
    with pytest.raises(RuntimeError):
        enc.encode(np.zeros(10, dtype=np.int16))
    with pytest.raises(ValueError):
        make_encoder("wav", 0)


def decode_at(fmt: str, data: bytes, rate: int) -> tuple[np.ndarray, int]:
    """Like :func:`decode`, for headerless formats at a given rate: raw PCM by NumPy, G.711 by FFmpeg's own
    ``mulaw``/``alaw`` demuxers and decoders."""
    if fmt == "pcm":
        return np.frombuffer(data, dtype="<i2").astype(np.float64), rate
    if fmt in EXTENSION_FORMATS:
        with av.open(io.BytesIO(data), format=fmt, options={"sample_rate": str(rate), "ch_layout": "mono"}) as c:
            frames = list(c.decode(audio=0))
        return np.concatenate([f.to_ndarray().reshape(-1) for f in frames]).astype(np.float64), frames[0].sample_rate
    return decode(fmt, data)


@pytest.mark.parametrize("fmt", EXTENSION_FORMATS)
def test_g711_is_8khz_one_byte_per_sample_and_decodes(fmt: str) -> None:
    enc = make_encoder(fmt, RATE)
    parts, tail = feed(enc, sine(RATE))
    data = b"".join(parts) + tail
    assert parts[0] and enc.output_rate == 8000
    assert abs(len(data) - SECONDS * 8000) <= 2  # one byte per sample, no header
    samples, rate = decode_at(fmt, data, 8000)
    assert rate == 8000 and abs(dominant_hz(samples, rate) - TONE_HZ) < 3
    assert np.sqrt(np.mean(samples**2)) > 0.5 * 12000 / np.sqrt(2)  # the tone's level survives companding


EXPECTED_RATE = {"mp3": {16000: 16000, 44100: 44100, 8000: 8000, 20000: 22050},
                 "aac": {16000: 16000, 44100: 44100, 8000: 8000, 20000: 22050}}


@pytest.mark.parametrize("fmt", ALL_FORMATS)
@pytest.mark.parametrize("target", [8000, 16000, 20000, 44100])
def test_sample_rate_resamples_every_format(fmt: str, target: int) -> None:
    enc = make_encoder(fmt, RATE, target)
    parts, tail = feed(enc, sine(RATE))
    samples, rate = decode_at(fmt, b"".join(parts) + tail, enc.output_rate)
    expected = 48000 if fmt == "opus" else EXPECTED_RATE.get(fmt, {}).get(target, target)
    assert rate == enc.output_rate == expected
    lo, hi = duration_slack(fmt, rate)
    assert SECONDS + lo - 0.002 <= len(samples) / rate <= SECONDS + hi + 0.002, len(samples) / rate
    assert abs(dominant_hz(samples, rate) - TONE_HZ) < 3


def test_sample_rate_out_of_range_is_refused() -> None:
    for bad in (7999, 48001):
        with pytest.raises(ValueError):
            make_encoder("wav", RATE, bad)
