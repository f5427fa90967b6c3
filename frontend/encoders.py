"""Streaming audio encoders for the HTTP frontend.

Every encoder takes int16 mono PCM in arbitrary-sized chunks and returns encoded bytes as soon as the codec
has them, so a response can start before synthesis ends; the concatenation of everything ``encode`` and
``finish`` return is one complete file. One instance serves one request on one thread: there is no module
level codec state, so instances can run in a thread pool side by side.

Format choices (what a client sees):

- ``wav``: 44-byte RIFF header with the RIFF and ``data`` sizes set to 0xFFFFFFFF ("unknown, read to the
  end"), then 16-bit mono PCM at ``input_rate``. Both libsndfile (soundfile) and FFmpeg (PyAV) read such a
  stream to its end; a size of 0, which some servers send, makes libsndfile return no samples at all.
- ``pcm``: raw 16-bit little-endian mono at 24 kHz, no header, as OpenAI sends it. Resampled with a
  streaming soxr resampler so chunk boundaries leave no clicks and the total length is exact.
- ``mp3``: lameenc (faster than FFmpeg's libmp3lame through PyAV), 64 kbit/s CBR mono at the input rate
  when MP3 has that rate (else the next MP3 rate above, via soxr). An MP3 stream sent before it is complete
  cannot carry LAME's gapless tag, so decoders play the encoder delay and last-frame padding (~50-100 ms).
- ``opus``: Ogg/Opus through PyAV's libopus at 32 kbit/s. Opus decoders always output 48 kHz, so
  ``output_rate`` is 48000; libopus is fed the input rate when Opus has it, else the next Opus rate above
  via soxr (22.05 kHz -> 24 kHz, ~10 % cheaper than 48 kHz). Ogg pages are cut every 60 ms (FFmpeg's default
  is 1 s, too late for streaming); ``finish`` writes the last page, flagged end-of-stream, whose granule
  position trims the final frame's padding.
- ``aac``: ADTS through FFmpeg's native aac encoder at 64 kbit/s, "fast" coder (see ``AacEncoder``). ADTS
  cannot signal the encoder's 1024-sample priming, so decoders play it plus the last frame's padding (up to
  ~2048 samples extra).
- ``mulaw`` / ``alaw`` (vTTS extensions, telephony): raw G.711 through FFmpeg's ``pcm_mulaw``/``pcm_alaw``,
  one byte per sample, no header, 8 kHz unless ``sample_rate`` says otherwise.
- ``sample_rate`` (``make_encoder``'s argument; the request's ``extra.sample_rate``, 8000-48000): the PCM is
  resampled to it with soxr before any format encodes it (pcm, mulaw and alaw then come out at that rate
  instead of 24 / 8 kHz; mp3, aac and opus at the codec rate nearest above it, opus decoders still output
  48 kHz).
- ``flac``: PyAV's flac encoder and muxer, 16-bit at ``input_rate``, blocks a bit under 90 ms so the first
  frame leaves with the first 100 ms chunk. The header's total-samples field stays 0 ("unknown"), which is
  valid FLAC; the muxer's default 8 KiB padding block is turned off since nobody can seek back to fill it.

The PyAV encoders write into a non-seekable sink. That matters: given a seekable buffer, FFmpeg's flac
muxer seeks back on close to patch the header, which would rewrite bytes the client already has.
"""

from __future__ import annotations

import struct
from abc import ABC, abstractmethod
from collections.abc import Callable
from fractions import Fraction

import av
import lameenc
import numpy as np
import soxr

__all__ = ["ALL_FORMATS", "CONTENT_TYPES", "EXTENSION_FORMATS", "FORMATS", "PCM_RATE", "StreamEncoder", "make_encoder"]

#: OpenAI's formats
FORMATS = ("mp3", "opus", "aac", "flac", "wav", "pcm")
#: vTTS's own: raw G.711 for telephony
EXTENSION_FORMATS = ("mulaw", "alaw")
ALL_FORMATS = FORMATS + EXTENSION_FORMATS
#: ``extra.sample_rate`` bounds
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 8000, 48000
G711_RATE = 8000

CONTENT_TYPES: dict[str, str] = {
    "mp3": "audio/mpeg",
    "opus": "audio/ogg; codecs=opus",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "pcm": "audio/pcm",  # what OpenAI sends; "audio/L16; rate=24000" would be the registered name
    "mulaw": "audio/basic",  # RFC 2046's 8 kHz mu-law
    "alaw": "audio/x-alaw-basic",
}

PCM_RATE = 24000  # OpenAI's pcm format: 24 kHz, whatever the engine's rate
OPUS_DECODE_RATE = 48000  # Opus decoders always output 48 kHz
MP3_RATES = frozenset({8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000})
OPUS_RATES = frozenset({8000, 12000, 16000, 24000, 48000})
AAC_RATES = frozenset({7350, 8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000})


def _nearest_rate(rate: int, supported: frozenset[int]) -> int:
    """Keep ``rate`` if the codec has it, else the lowest supported rate above it (no band is lost)."""
    if rate in supported:
        return rate
    above = [r for r in supported if r > rate]
    return min(above) if above else max(supported)


class _Resampler:
    """Streaming int16 resampler; a pass-through when the rates match.

    soxr's stream keeps filter state across chunks, so chunk boundaries cause no clicks and the output
    length over the whole stream is exactly ``len(input) * out_rate / in_rate`` once ``flush`` is called.
    """

    def __init__(self, in_rate: int, out_rate: int) -> None:
        self._stream = None if in_rate == out_rate else soxr.ResampleStream(in_rate, out_rate, 1, dtype="int16")

    def __call__(self, pcm: np.ndarray) -> np.ndarray:
        return pcm if self._stream is None else self._stream.resample_chunk(pcm)

    def flush(self) -> np.ndarray:
        if self._stream is None:
            return np.zeros(0, dtype=np.int16)
        return self._stream.resample_chunk(np.zeros(0, dtype=np.int16), last=True)


class StreamEncoder(ABC):
    """One response's encoder: feed int16 mono PCM with ``encode``, end with ``finish``.

    Subclasses implement ``_encode``/``_finish``; this base validates input and enforces the call order so
    every encoder fails the same way when misused.
    """

    input_rate: int
    output_rate: int
    content_type: str

    def __init__(self, input_rate: int, output_rate: int, content_type: str) -> None:
        if input_rate <= 0:
            raise ValueError(f"input_rate must be positive, got {input_rate}")
        self.input_rate = input_rate
        self.output_rate = output_rate
        self.content_type = content_type
        self._finished = False

    def encode(self, pcm: np.ndarray) -> bytes:
        """Encode a chunk; returns the bytes ready now (often b"" while a codec frame fills)."""
        if self._finished:
            raise RuntimeError("encode() after finish()")
        pcm = np.asarray(pcm)
        if pcm.dtype != np.int16:
            raise TypeError(f"expected int16 PCM, got {pcm.dtype}")
        if pcm.ndim != 1:
            raise ValueError(f"expected mono 1-D PCM, got shape {pcm.shape}")
        return self._encode(np.ascontiguousarray(pcm, dtype="<i2"))

    def finish(self) -> bytes:
        """Flush the codec and close the stream; returns the last bytes of the file."""
        if self._finished:
            raise RuntimeError("finish() called twice")
        self._finished = True
        return self._finish()

    @abstractmethod
    def _encode(self, pcm: np.ndarray) -> bytes: ...

    @abstractmethod
    def _finish(self) -> bytes: ...


class WavEncoder(StreamEncoder):
    """16-bit mono WAV at the input rate with a streamed (size-unknown) header; no resampling."""

    UNKNOWN_SIZE = 0xFFFFFFFF

    def __init__(self, input_rate: int) -> None:
        super().__init__(input_rate, input_rate, CONTENT_TYPES["wav"])
        self._header_sent = False

    def header(self) -> bytes:
        """The 44-byte header; both sizes say "unknown" since the length is not known when it is sent."""
        rate = self.input_rate
        fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)  # PCM, mono, rate, byte rate, align, bits
        size = struct.pack("<I", self.UNKNOWN_SIZE)
        return b"RIFF" + size + b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + size

    def _take_header(self) -> bytes:
        if self._header_sent:
            return b""
        self._header_sent = True
        return self.header()

    def _encode(self, pcm: np.ndarray) -> bytes:
        return self._take_header() + pcm.tobytes()

    def _finish(self) -> bytes:
        return self._take_header()


class PcmEncoder(StreamEncoder):
    """Headerless 16-bit little-endian mono at 24 kHz (OpenAI's ``pcm``), or at ``output_rate``."""

    def __init__(self, input_rate: int, output_rate: int = PCM_RATE) -> None:
        super().__init__(input_rate, output_rate, CONTENT_TYPES["pcm"])
        self._resample = _Resampler(input_rate, output_rate)

    def _encode(self, pcm: np.ndarray) -> bytes:
        return self._resample(pcm).tobytes()

    def _finish(self) -> bytes:
        return self._resample.flush().tobytes()


class Mp3Encoder(StreamEncoder):
    """CBR MP3 through lameenc; resamples only when MP3 lacks the input rate."""

    BIT_RATE_KBPS = 64
    # LAME's algorithm quality 0 (best, slowest) .. 9. Measured on speech-like audio at 22.05 kHz: q=2 ~150x
    # real time, q=5 ~310x, q=7 ~465x (q>=7 drops the psychoacoustic noise shaping); 5 is the middle.
    QUALITY = 5

    def __init__(self, input_rate: int) -> None:
        rate = _nearest_rate(input_rate, MP3_RATES)
        super().__init__(input_rate, rate, CONTENT_TYPES["mp3"])
        self._resample = _Resampler(input_rate, rate)
        self._lame = lameenc.Encoder()
        self._lame.set_channels(1)
        self._lame.set_in_sample_rate(rate)
        self._lame.set_out_sample_rate(rate)
        self._lame.set_bit_rate(self.BIT_RATE_KBPS)
        self._lame.set_quality(self.QUALITY)

    def _encode(self, pcm: np.ndarray) -> bytes:
        # lameenc starts its stream on the first encode() call, even an empty one; flush() needs that.
        return bytes(self._lame.encode(self._resample(pcm).tobytes()))

    def _finish(self) -> bytes:
        tail = bytes(self._lame.encode(self._resample.flush().tobytes()))
        return tail + bytes(self._lame.flush())


class _Sink:
    """Write-only, non-seekable file object for FFmpeg's output; ``drain`` hands over what was written."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._chunks.append(bytes(data))
        return len(data)

    def drain(self) -> bytes:
        out = b"".join(self._chunks)
        self._chunks.clear()
        return out


class _PyAVEncoder(StreamEncoder):
    """Shared PyAV plumbing: one audio stream muxed into a container that writes to a ``_Sink``.

    For a non-seekable output FFmpeg flushes its I/O buffer after every packet, so what ``encode`` returns
    is everything the muxer has released so far. The header is written up front, so the first call
    already returns bytes.
    """

    def __init__(
        self,
        input_rate: int,
        *,
        fmt: str,
        container: str,
        codec: str,
        codec_rate: int,
        output_rate: int,
        bit_rate: int | None = None,
        container_options: dict[str, str] | None = None,
        codec_options: dict[str, str] | None = None,
    ) -> None:
        super().__init__(input_rate, output_rate, CONTENT_TYPES[fmt])
        self._resample = _Resampler(input_rate, codec_rate)
        self._rate = codec_rate
        self._pts = 0
        self._sink = _Sink()
        self._container = av.open(self._sink, "w", format=container, options=container_options or {})
        self._stream = self._container.add_stream(codec, rate=codec_rate, options=codec_options or {})
        self._stream.layout = "mono"
        if bit_rate is not None:
            self._stream.bit_rate = bit_rate
        self._container.start_encoding()

    def _push(self, pcm: np.ndarray) -> None:
        if pcm.size == 0:
            return
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = self._rate
        frame.time_base = Fraction(1, self._rate)
        frame.pts = self._pts
        self._pts += pcm.size
        self._container.mux(self._stream.encode(frame))

    def _encode(self, pcm: np.ndarray) -> bytes:
        self._push(self._resample(pcm))
        return self._sink.drain()

    def _finish(self) -> bytes:
        self._push(self._resample.flush())
        self._container.mux(self._stream.encode(None))
        self._container.close()  # writes the trailer (Ogg: the last page, flagged end-of-stream)
        return self._sink.drain()


class OpusEncoder(_PyAVEncoder):
    """Ogg/Opus, 32 kbit/s; ``output_rate`` is 48 kHz because that is what every Opus decoder outputs."""

    BIT_RATE = 32000
    PAGE_DURATION_US = 60_000
    #: libopus complexity 0..10 (FFmpeg's default 10). Encoding competes with the engine for the same cores;
    #: 5 encoded ~1.5x faster than 10 on speech here (bench/encoders.py, docs/benchmarks.md)
    COMPLEXITY = 5

    def __init__(self, input_rate: int) -> None:
        super().__init__(
            input_rate,
            fmt="opus",
            container="ogg",
            codec="libopus",
            codec_rate=_nearest_rate(input_rate, OPUS_RATES),
            output_rate=OPUS_DECODE_RATE,
            bit_rate=self.BIT_RATE,
            container_options={"page_duration": str(self.PAGE_DURATION_US)},
            codec_options={"compression_level": str(self.COMPLEXITY)},
        )


class AacEncoder(_PyAVEncoder):
    """AAC-LC in ADTS frames (self-delimiting, so it streams), 64 kbit/s.

    FFmpeg's default "twoloop" quantizer search ran at ~22x real time on speech-like audio here (45 ms of
    CPU per second of audio, most of a synthesis budget); the "fast" coder runs ~85x. At 64 kbit/s mono
    speech the difference is small, so the frontend's CPU goes to synthesis instead.
    """

    BIT_RATE = 64000

    def __init__(self, input_rate: int) -> None:
        rate = _nearest_rate(input_rate, AAC_RATES)
        super().__init__(
            input_rate,
            fmt="aac",
            container="adts",
            codec="aac",
            codec_rate=rate,
            output_rate=rate,
            bit_rate=self.BIT_RATE,
            codec_options={"aac_coder": "fast"},
        )


class FlacEncoder(_PyAVEncoder):
    """Lossless FLAC at the input rate, with blocks short enough to leave with each 100 ms chunk."""

    def __init__(self, input_rate: int) -> None:
        # FFmpeg picks ~105 ms blocks by default; a multiple of 256 samples under 90 ms costs ~1 % in size.
        block = max(256, int(input_rate * 0.09) // 256 * 256)
        super().__init__(
            input_rate,
            fmt="flac",
            container="flac",
            codec="flac",
            codec_rate=input_rate,
            output_rate=input_rate,
            container_options={"metadata_header_padding": "0"},
            codec_options={"frame_size": str(block)},
        )


class G711Encoder(_PyAVEncoder):
    """Raw G.711 (``mulaw`` or ``alaw``): one byte per sample at 8 kHz (or ``output_rate``), no header."""

    def __init__(self, input_rate: int, law: str = "mulaw", output_rate: int = G711_RATE) -> None:
        super().__init__(input_rate, fmt=law, container=law, codec=f"pcm_{law}", codec_rate=output_rate,
                         output_rate=output_rate)


class _Resampled(StreamEncoder):
    """Another encoder fed at ``sample_rate``: the request's ``extra.sample_rate``."""

    def __init__(self, inner: StreamEncoder, input_rate: int) -> None:
        super().__init__(input_rate, inner.output_rate, inner.content_type)
        self._inner = inner
        self._resample = _Resampler(input_rate, inner.input_rate)

    def _encode(self, pcm: np.ndarray) -> bytes:
        return self._inner.encode(self._resample(pcm))

    def _finish(self) -> bytes:
        return self._inner.encode(self._resample.flush()) + self._inner.finish()


_ENCODERS: dict[str, Callable[[int], StreamEncoder]] = {
    "mp3": Mp3Encoder,
    "opus": OpusEncoder,
    "aac": AacEncoder,
    "flac": FlacEncoder,
    "wav": WavEncoder,
    "pcm": PcmEncoder,
    "mulaw": lambda rate: G711Encoder(rate, "mulaw"),
    "alaw": lambda rate: G711Encoder(rate, "alaw"),
}


def make_encoder(fmt: str, input_rate: int, sample_rate: int | None = None) -> StreamEncoder:
    """A fresh encoder for one response in ``fmt`` (one of ``ALL_FORMATS``), fed PCM at ``input_rate``;
    ``sample_rate`` resamples first (the formats without a fixed rate of their own then output at it)."""
    try:
        cls = _ENCODERS[fmt]
    except KeyError:
        raise ValueError(f"unknown audio format {fmt!r}; expected one of {', '.join(ALL_FORMATS)}") from None
    if sample_rate is None:
        return cls(input_rate)
    if not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
        raise ValueError(f"sample_rate must be {MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE}, got {sample_rate}")
    if fmt == "pcm":
        return PcmEncoder(input_rate, sample_rate)
    if fmt in EXTENSION_FORMATS:
        return G711Encoder(input_rate, fmt, sample_rate)
    return _Resampled(cls(sample_rate), input_rate)
