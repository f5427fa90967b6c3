"""``vtts bench``: throughput, time to first audio byte and latency against concurrency, as ratios to the raw
engine measured in the same run.

Machines are noisy (and these are shared), so absolute figures mean little from one run to the next; what
holds is the ratio of the server's throughput to the bare engine's ceiling ``R`` measured minutes apart on
the same machine. One run therefore does everything side by side:

1. ``R``: the engine in this process, ``prepare`` + ``step`` over the clients' texts, ONNX Runtime's
   default threads — audio seconds per wall second, measured before the first level and again after each
   one, so every level is compared with the engine as fast as the machine was just then;
2. a ``vtts serve`` subprocess (unless ``--url``), and optionally a peer server (``--peer-url``);
3. closed-loop clients per concurrency level: each sends its next request when the previous one ends.

Each level's window opens once the opening burst is over (after ``--warmup`` seconds, or when the first
``concurrency`` requests have finished, up to ``--max-warmup``) and stays open ``--duration`` seconds. The
measured requests are the ones that *start* inside it; clients keep the load up until every one of them
has finished, so none of them ran against a draining server. Throughput is the audio that *arrives* inside
the window. CPU seconds of every server process, of this client and of the whole machine are sampled at
the window's edges, to show where the cores went and how much of the machine other programs took.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import itertools
import json
import math
import os
import platform
import struct
import sys
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from vtts.bench_summary import render_summary, summarize
from vtts.bench_texts import TextSource
from vtts.local_server import LocalServer, descendants
from vtts.playback import DEFAULT_JITTER_S, PlaybackMeter

#: the response formats a run can ask for
FORMATS = ("pcm", "wav", "mp3", "opus", "aac", "flac")
#: OpenAI's ``pcm``: 24 kHz, 16-bit little-endian, mono
PCM_RATE = 24000
DEFAULT_OUT = "bench/out"
#: cores taken by other programs during a window above which the report warns that it is not clean
NOISY_OTHER_CORES = 0.25
#: the longest Retry-After a client honours
MAX_BACKOFF_S = 5.0
#: error prefix of measured requests still running when a level's drain timed out
UNFINISHED = "unfinished"
#: the status of a refusal by admission (server.stream_headroom): not an error of an admitted stream
REFUSED_STATUS = 429


# --------------------------------------------------------------------------- statistics


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0–100) with linear interpolation between order statistics (NumPy's default,
    so figures compare with other tools); NaN for no values."""
    if not 0 <= q <= 100:
        raise ValueError("q must be within 0..100")
    data = sorted(values)
    if not data:
        return math.nan
    pos = (len(data) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


@dataclass
class RequestRecord:
    """One request as a client saw it, filled in while it runs. Times are seconds on the level's clock
    (0 = clients started); ``ttfb`` is from sending to the first body byte; ``window_bytes`` are the body
    bytes that arrived while the measurement window was open."""

    index: int
    start: float = 0.0
    end: float = 0.0
    ttfb: float | None = None
    audio_s: float = 0.0
    status: int = 0
    error: str = ""
    #: the server's Retry-After on a refusal (429/503), which the client honours before its next request
    retry_after: float | None = None
    size: int = 0
    window_bytes: int = 0
    #: exact audio seconds per body byte when the format says (pcm); otherwise learnt from whole answers
    seconds_per_byte: float | None = None
    #: the longest gap a player starting ``--jitter`` seconds after the first byte heard, and how many
    #: gaps; None when the format does not tell each chunk's duration as it arrives (only pcm does)
    max_stall: float | None = None
    stalls: int = 0

    @property
    def ok(self) -> bool:
        return not self.error

    @property
    def unfinished(self) -> bool:
        return self.error.startswith(UNFINISHED)

    @property
    def refused(self) -> bool:
        """Refused before it started (429): admission said no, promptly, and the client backs off."""
        return self.status == REFUSED_STATUS and bool(self.error)

    @property
    def latency(self) -> float:
        return self.end - self.start


@dataclass
class LevelStats:
    """One row of the report: a server at one concurrency."""

    server: str
    concurrency: int
    window_s: float
    requests: int
    errors: int
    audio_s: float
    throughput: float
    #: the engine ceiling this row is compared with (the raw-engine runs just before and after it)
    ceiling: float | None
    ratio: float | None
    ttfb_p50: float
    ttfb_p99: float
    latency_p50: float
    latency_p99: float
    #: measured requests still running when the drain timed out: the percentiles leave them out, so with
    #: any of these the latency figures are lower bounds
    unfinished: int = 0
    #: requests left out of the percentiles (warm-up and opening burst)
    dropped: int = 0
    error_kinds: dict[str, int] = field(default_factory=dict)
    #: a few distinct error messages, to tell what went wrong without the server log
    error_examples: list[str] = field(default_factory=list)
    #: cores used during the window, per process role ("frontend", "worker", "client", "other", ...)
    cores: dict[str, float] = field(default_factory=dict)
    #: which pass over the matrix this row belongs to (``--repeat``), from 0
    round: int = 0
    #: successful measured requests whose stalls were measured (pcm answers), how many of them stalled,
    #: and their longest stall's worst and 99th percentile
    stall_measured: int = 0
    stalled: int = 0
    stall_max: float = math.nan
    stall_p99: float = math.nan
    #: measured requests refused with 429 (admission): counted apart from errors and left out of every
    #: percentile above, which cover admitted requests only; and how long the refusal took (p50, p99)
    refused: int = 0
    refused_p50: float = math.nan
    refused_p99: float = math.nan


def error_summary(errors: Iterable[RequestRecord]) -> tuple[dict[str, int], list[str]]:
    """Failed requests by kind (the error's text before its first colon) and up to three distinct messages."""
    errors = list(errors)
    return (dict(Counter(r.error.split(":", 1)[0] for r in errors)),
            list(dict.fromkeys(r.error for r in errors))[:3])


def aggregate(records: Iterable[RequestRecord], *, server: str, concurrency: int, window: tuple[float, float],
              ceiling: float | None, cores: Mapping[str, float] | None = None) -> LevelStats:
    """Reduce a level's records to its report row.

    Percentiles and error counts cover the requests that started inside ``window`` and were not among the
    first ``concurrency`` (the opening burst, which all arrive at once). A 429 (admission refusing a stream
    it could not keep smooth) is no error: refusals are counted apart, with their response times, and the
    TTFB, stall and latency percentiles are over admitted requests only. Throughput is the audio that
    *arrived* during the window, per window second, from every request (measured or not, finished or
    cut): counting whole requests by when they end would read near zero whenever latency is longer than
    the window, because a fair server finishes a burst of long requests all at about the same time.
    """
    w0, w1 = window
    span = w1 - w0
    if span <= 0:
        raise ValueError("empty window")
    records = list(records)
    measured = [r for r in records if w0 <= r.start < w1 and r.index >= concurrency]
    good = [r for r in measured if r.ok]
    whole = [r for r in records if r.ok and r.size and r.audio_s]
    learnt = sum(r.audio_s for r in whole) / sum(r.size for r in whole) if whole else 0.0

    def seconds_per_byte(r: RequestRecord) -> float:
        if r.seconds_per_byte:
            return r.seconds_per_byte
        return r.audio_s / r.size if r in whole else learnt

    audio = sum(r.window_bytes * seconds_per_byte(r) for r in records if r.window_bytes)
    refused = [r for r in measured if r.refused]
    errors = [r for r in measured if not r.ok and not r.unfinished and not r.refused]
    kinds, examples = error_summary(errors)
    stalls = [r for r in good if r.max_stall is not None]
    return LevelStats(
        server=server,
        concurrency=concurrency,
        window_s=span,
        requests=len(measured),
        errors=len(errors),
        audio_s=audio,
        throughput=audio / span,
        ceiling=ceiling,
        ratio=audio / span / ceiling if ceiling else None,
        ttfb_p50=percentile([r.ttfb for r in good if r.ttfb is not None], 50),
        ttfb_p99=percentile([r.ttfb for r in good if r.ttfb is not None], 99),
        latency_p50=percentile([r.latency for r in good], 50),
        latency_p99=percentile([r.latency for r in good], 99),
        unfinished=sum(1 for r in measured if r.unfinished),
        dropped=sum(1 for r in records if r.start < w1) - len(measured),
        error_kinds=kinds,
        error_examples=examples,
        cores=dict(cores or {}),
        stall_measured=len(stalls),
        stalled=sum(1 for r in stalls if r.stalls),
        stall_max=max((r.max_stall or 0.0 for r in stalls), default=math.nan),
        stall_p99=percentile([r.max_stall or 0.0 for r in stalls], 99),
        refused=len(refused),
        refused_p50=percentile([r.latency for r in refused], 50),
        refused_p99=percentile([r.latency for r in refused], 99),
    )


# --------------------------------------------------------------------------- audio durations


def wav_seconds(data: bytes) -> float:
    """Duration of a RIFF/WAVE file from its bytes. The ``data`` chunk's size field is trusted only when it
    fits: streamed WAVs write a placeholder (0 or 0xFFFFFFFF) because the length is not known up front."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError("not a RIFF/WAVE file")
    pos = 12
    rate = channels = bits = 0
    while pos + 8 <= len(data):
        chunk_id, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        body = pos + 8
        if chunk_id == b"fmt ":
            channels, rate = struct.unpack("<HI", data[body + 2 : body + 8])
            bits = struct.unpack("<H", data[body + 14 : body + 16])[0]
        elif chunk_id == b"data":
            if not rate or not channels or not bits:
                raise ValueError("WAV data chunk before its fmt chunk")
            available = len(data) - body
            n = size if 0 < size <= available else available
            return n // (channels * bits // 8) / rate
        pos = body + size + (size & 1)
    raise ValueError("WAV file without a data chunk")


def decoded_seconds(data: bytes) -> float:
    """Duration of any compressed file, by decoding it whole with PyAV (container headers lie when the file
    was streamed)."""
    import av

    samples = 0
    rate = 0
    with av.open(io.BytesIO(data)) as container:
        for frame in container.decode(audio=0):
            samples += frame.samples
            rate = frame.sample_rate
    if not rate:
        raise ValueError("no audio frames")
    return samples / rate


class RequestShape(ABC):
    """How to ask one kind of server for speech and how long the answer is: the pluggable boundary that
    lets the same client matrix drive vTTS and a peer."""

    #: whether :meth:`audio_seconds` needs the body (otherwise only its size is kept)
    keeps_body: bool = True

    @abstractmethod
    def request(self, text: str) -> tuple[str, dict[str, Any]]:
        """(path, JSON body) of a POST asking for ``text``."""

    @abstractmethod
    def audio_seconds(self, headers: Mapping[str, str], size: int, body: bytes) -> float:
        """Seconds of audio in a complete answer; raise ValueError when the answer is not valid audio."""

    def seconds_per_byte(self, headers: Mapping[str, str]) -> float | None:
        """Audio seconds per body byte when the format fixes it (raw PCM), else None."""
        return None


class OpenAIShape(RequestShape):
    """OpenAI's ``POST /v1/audio/speech`` (vTTS and OpenAI-compatible peers)."""

    def __init__(self, model: str = "tts-1", voice: str = "alloy", fmt: str = "pcm",
                 extra: Mapping[str, Any] | None = None) -> None:
        self.model, self.voice, self.fmt = model, voice, fmt
        self.extra = dict(extra or {})
        self.keeps_body = fmt != "pcm"

    def request(self, text: str) -> tuple[str, dict[str, Any]]:
        body = {"model": self.model, "input": text, "voice": self.voice, "response_format": self.fmt}
        return "/v1/audio/speech", {**body, "extra": self.extra} if self.extra else body

    def seconds_per_byte(self, headers: Mapping[str, str]) -> float | None:
        return 1 / 2 / int(headers.get("X-Sample-Rate") or PCM_RATE) if self.fmt == "pcm" else None

    def audio_seconds(self, headers: Mapping[str, str], size: int, body: bytes) -> float:
        if self.fmt == "pcm":
            if size % 2:
                raise ValueError("odd byte count for 16-bit PCM")
            return size / 2 / int(headers.get("X-Sample-Rate") or PCM_RATE)
        if self.fmt == "wav":
            return wav_seconds(body)
        return decoded_seconds(body)


class PiperHTTPShape(RequestShape):
    """Piper's own HTTP server (``python -m piper.http_server``): JSON ``{"text": ...}``, a whole WAV back.
    piper-tts 1.3+ serves it at ``/synthesize``; pass ``path`` for other builds."""

    def __init__(self, path: str = "/synthesize") -> None:
        self.path = path

    def request(self, text: str) -> tuple[str, dict[str, Any]]:
        return self.path, {"text": text}

    def audio_seconds(self, headers: Mapping[str, str], size: int, body: bytes) -> float:
        return wav_seconds(body)


# --------------------------------------------------------------------------- the closed-loop client


@dataclass
class Window:
    """The measurement window of a level, on the level's clock; set by the controller as it opens and
    closes, read by the clients to tell which requests and bytes it covers."""

    start: float | None = None
    end: float | None = None

    @property
    def open(self) -> bool:
        return self.start is not None and self.end is None


async def fetch(session: Any, url: str, shape: RequestShape, text: str, clock: Callable[[], float],
                record: RequestRecord, headers: Mapping[str, str] | None = None,
                window: Window | None = None, jitter: float = DEFAULT_JITTER_S) -> RequestRecord:
    """One request, filling ``record`` as it goes (so a cancelled request keeps what it received); every
    failure (status, transport, short or invalid body) becomes the record's ``error``. When the format gives
    each chunk's duration (pcm), the gaps a player with a ``jitter``-second buffer hears are measured."""
    import aiohttp

    path, payload = shape.request(text)
    record.start = clock()
    parts: list[bytes] = []
    try:
        async with session.post(url + path, json=payload, headers=headers) as resp:
            record.status = resp.status
            if resp.status != 200:
                body = await resp.read()
                detail = body[:160].decode("utf-8", "replace").replace("\n", " ")
                record.error = f"HTTP {resp.status}: {detail}"
                record.retry_after = _retry_after(resp.headers.get("Retry-After"))
                return record
            record.seconds_per_byte = shape.seconds_per_byte(resp.headers)
            player = PlaybackMeter(jitter) if record.seconds_per_byte else None
            async for chunk in resp.content.iter_any():
                if not chunk:
                    continue
                now = clock()
                if record.ttfb is None:
                    record.ttfb = now - record.start
                if player is not None and record.seconds_per_byte:
                    player.add(now, len(chunk) * record.seconds_per_byte)
                    record.max_stall, record.stalls = player.longest, player.stalls
                record.size += len(chunk)
                if window is not None and window.open:
                    record.window_bytes += len(chunk)
                if shape.keeps_body:
                    parts.append(chunk)
            if not record.size:
                record.error = "empty: no audio bytes"
            else:
                record.audio_s = shape.audio_seconds(resp.headers, record.size, b"".join(parts))
    except aiohttp.ClientPayloadError as exc:
        record.error = f"short read: {exc}"
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
        record.error = f"transport: {type(exc).__name__} {exc}"
    except ValueError as exc:
        record.error = f"bad audio: {exc}"
    finally:
        record.end = clock()
    return record


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (the delta form; a date is treated as 1 s)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return 1.0


@dataclass
class LevelRun:
    """What one level's clients produced: the records, the measurement window and CPU samples at its edges."""

    records: list[RequestRecord]
    window: tuple[float, float]
    cpu_start: dict[str, float] = field(default_factory=dict)
    cpu_end: dict[str, float] = field(default_factory=dict)


async def run_level(url: str, shape: RequestShape, concurrency: int, *, duration: float, warmup: float,
                    texts: TextSource, max_warmup: float | None = None, drain_timeout: float = 60.0,
                    request_timeout: float = 120.0, headers: Mapping[str, str] | None = None,
                    probe: Callable[[], dict[str, float]] | None = None,
                    jitter: float = DEFAULT_JITTER_S) -> LevelRun:
    """Run ``concurrency`` closed-loop clients against ``url``.

    The window opens after ``warmup`` seconds, or later, once the opening burst of ``concurrency``
    requests has finished (up to ``max_warmup``), and stays open ``duration`` seconds. Requests started
    while it is open are measured; after it closes the clients keep the load up with unrecorded requests
    until every measured one has finished or ``drain_timeout`` passed, then all are cancelled (measured
    ones still running are recorded as unfinished). ``probe`` is called at the window's two edges.
    """
    import aiohttp

    if concurrency < 1 or duration <= 0 or warmup < 0:
        raise ValueError("need concurrency >= 1, duration > 0, warmup >= 0")
    loop = asyncio.get_running_loop()
    t0 = loop.time()

    def clock() -> float:
        return loop.time() - t0

    window = Window()
    records: list[RequestRecord] = []
    counter = itertools.count()
    pending: set[int] = set()
    drained = asyncio.Event()
    burst = set(range(concurrency))
    burst_done = asyncio.Event()

    async def client() -> None:
        while window.end is None or pending:
            record = RequestRecord(next(counter))
            measured = window.open
            if measured:
                pending.add(record.index)
            try:
                await fetch(session, url, shape, texts.next(), clock, record, headers, window, jitter)
            except asyncio.CancelledError:
                record.error = (f"{UNFINISHED}: still running at the drain timeout" if measured
                                else "cancelled: the level ended")
                records.append(record)
                raise
            records.append(record)
            burst.discard(record.index)
            if not burst:
                burst_done.set()
            if measured:
                pending.discard(record.index)
                if not pending and window.end is not None:
                    drained.set()
            if record.retry_after is not None:
                # a refused client waits as told (like the OpenAI SDK) instead of hammering the server
                await asyncio.sleep(min(record.retry_after, MAX_BACKOFF_S))

    timeout = aiohttp.ClientTimeout(total=request_timeout)
    connector = aiohttp.TCPConnector(limit=max(100, concurrency * 2))
    cpu_start: dict[str, float] = {}
    cpu_end: dict[str, float] = {}
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        tasks = [asyncio.create_task(client()) for _ in range(concurrency)]
        try:
            await asyncio.sleep(warmup)
            if max_warmup is not None and max_warmup > warmup:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(burst_done.wait(), max_warmup - clock())
            cpu_start = probe() if probe else {}
            window.start = clock()
            await asyncio.sleep(duration)
            window.end = clock()
            cpu_end = probe() if probe else {}
            if pending:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(drained.wait(), drain_timeout)
        finally:
            for t in tasks:
                t.cancel()
            results = await asyncio.gather(*tasks, return_exceptions=True)
        for r in results:
            if isinstance(r, Exception) and not isinstance(r, asyncio.CancelledError):
                raise r
    records.sort(key=lambda r: r.index)
    assert window.start is not None and window.end is not None
    return LevelRun(records, (window.start, window.end), cpu_start, cpu_end)


# --------------------------------------------------------------------------- CPU accounting (Linux /proc)


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of one process (all its threads); 0 when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_role(pid: int) -> str:
    """"frontend", "worker", "supervisor" or "other", from a server process's command line."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
    except OSError:
        return "other"
    if b"vtts.frontend" in argv:
        return "frontend"
    if b"vtts.workers" in argv:
        return "worker"
    if b"vtts" in argv and b"serve" in argv:
        return "supervisor"
    return "other"


def machine_busy_s() -> float:
    """CPU seconds the whole machine spent busy (all cores), from /proc/stat."""
    try:
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:]]
    except OSError:
        return 0.0
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return (sum(values[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def tree_cpu_s(pid: int) -> float:
    """CPU seconds of a process and everything below it."""
    return sum(process_cpu_s(p) for p in {pid} | descendants(pid))


def cpu_probe(server_pid: int | None, role: str | None = None) -> Callable[[], dict[str, float]]:
    """A probe of cumulative CPU seconds: the server's processes (per vTTS role, or all under ``role``),
    this client, and the whole machine."""

    def probe() -> dict[str, float]:
        sample: dict[str, float] = Counter()
        if server_pid is not None:
            for pid in {server_pid} | descendants(server_pid):
                sample[role or process_role(pid)] += process_cpu_s(pid)
        sample["client"] = process_cpu_s(os.getpid())
        sample["machine"] = machine_busy_s()
        return dict(sample)

    return probe


def wait_idle(pid: int | None, *, least: float, most: float, idle_cores: float = 0.05) -> float:
    """Sleep at least ``least`` seconds, then until the process tree of ``pid`` uses under ``idle_cores``
    over half a second, or ``most`` seconds passed; return the seconds waited. A server that does not
    cancel abandoned requests (Piper's own) keeps synthesizing them after a level; the next engine run
    must not share the cores with that."""
    start = time.monotonic()
    time.sleep(least)
    if pid is None:
        return time.monotonic() - start
    while time.monotonic() - start < most:
        before = tree_cpu_s(pid)
        time.sleep(0.5)
        if (tree_cpu_s(pid) - before) / 0.5 < idle_cores:
            break
    return time.monotonic() - start


def cores_used(start: Mapping[str, float], end: Mapping[str, float], seconds: float) -> dict[str, float]:
    """Cores each role used between two probes; ``other`` is the machine's busy time nobody here accounts
    for (other programs on a shared machine)."""
    if not start or not end or seconds <= 0:
        return {}
    used = {k: max(0.0, end.get(k, 0.0) - start.get(k, 0.0)) / seconds for k in end if k != "machine"}
    if "machine" in end:
        total = max(0.0, end["machine"] - start.get("machine", 0.0)) / seconds
        used["other"] = max(0.0, total - sum(used.values()))
        used["total"] = total
    return used


# --------------------------------------------------------------------------- the raw engine ceiling


@dataclass
class CeilingRun:
    """The engine alone in this process over the clients' texts."""

    audio_s: float
    wall_s: float
    texts: int
    segments: int
    #: engine seconds of each text's first segment (the floor of time to first audio)
    first_segment_p50: float
    first_segment_p90: float
    #: ``prepare`` seconds per text (phonemization; the worker does it before the first step)
    prepare_p50: float

    @property
    def rtx(self) -> float:
        """× real time: audio seconds per wall second."""
        return self.audio_s / self.wall_s if self.wall_s else math.nan


def measure_ceiling(engine_name: str, model_ref: str, device: str, options: Mapping[str, Any], *,
                    seed: int, duration: float, extra: Mapping[str, Any] | None = None) -> CeilingRun:
    """``prepare`` + ``step`` over the bench texts for ``duration`` seconds (whole texts), one process,
    ONNX Runtime's default threads (a thread pin from the server's config is dropped: this is the
    engine's own best). The engine reads whole sentences, as it would alone (no short first phrase: that
    is the server's choice, and its cost must show in the ratio). Apart from that, and outside the timed
    total, each text's first segment as the server cuts it (with the clients' ``extra``) is synthesized
    alone: the floor of TTFB."""
    from vtts.workers.engine import SynthesisParams
    from vtts.workers.offline import generate
    from vtts.workers.registry import engine_class

    opts = {k: v for k, v in options.items() if k != "intra_op_threads"}
    engine = engine_class(engine_name).load(model_ref, device, opts)
    try:
        served = SynthesisParams(voice=engine.voices()[0].id, extra=dict(extra or {}))
        whole = SynthesisParams(voice=served.voice, extra={"first_segment": "sentence"})
        rate = engine.sample_rate

        def run(segments: list[Any], params: SynthesisParams) -> int:
            return sum(int(o.audio.size) for _, o in generate(engine, [(params, segments)]))

        def synth(text: str) -> tuple[float, float, int]:
            """(prepare seconds, audio seconds, segments) of one whole text."""
            t = time.perf_counter()
            segments = engine.prepare(text, whole)
            prep = time.perf_counter() - t
            return prep, run(segments, whole) / rate, len(segments)

        def first_segment(text: str) -> float:
            segment = engine.prepare(text, served)[0]
            t = time.perf_counter()
            run([segment], served)
            return time.perf_counter() - t

        synth("Warming up the engine.")  # the first run allocates; keep it out
        texts = TextSource(seed)
        firsts: list[float] = []
        preps: list[float] = []
        audio = 0.0
        segments = 0
        wall = 0.0
        while wall < duration:
            text = texts.next()
            t = time.perf_counter()
            prep, secs, nseg = synth(text)
            wall += time.perf_counter() - t
            firsts.append(first_segment(text))
            preps.append(prep)
            audio += secs
            segments += nseg
    finally:
        engine.close()
    return CeilingRun(audio, wall, len(firsts), segments, percentile(firsts, 50), percentile(firsts, 90),
                      percentile(preps, 50))


# --------------------------------------------------------------------------- machine and report


def _version(*dists: str) -> str | None:
    for dist in dists:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return None


def machine_info() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_gib = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem_gib = round(int(line.split()[1]) / 2**20, 1)
                    break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        usable = os.cpu_count()
    try:
        load = os.getloadavg()
    except OSError:  # pragma: no cover
        load = None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "memory_gib": mem_gib,
        "os": platform.platform(),
        "python": platform.python_version(),
        "onnxruntime": _version("onnxruntime", "onnxruntime-gpu"),
        "aiohttp": _version("aiohttp"),
        "vtts": _version("vtts"),
        "load_average_at_start": load,
    }


def _fmt_s(value: float) -> str:
    if value is None or math.isnan(value):
        return "–"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def _stalled(stalled: int, measured: int) -> str:
    """"3/70" (stalled of measured requests), "–" when nothing was measured (not pcm)."""
    return f"{stalled}/{measured}" if measured else "–"


def _refused(count: int, p50: float, p99: float) -> str:
    """"12 | 8 ms / 31 ms": refusals and their response time p50 / p99."""
    return f"{count} | {_fmt_s(p50)} / {_fmt_s(p99)}" if count else "0 | –"


def render_table(rows: Sequence[LevelStats]) -> str:
    """The report's main table, in Markdown; with refusals (429s of admission) in any row, two more columns."""
    rounds = any(r.round for r in rows)
    refusals = any(r.refused for r in rows)
    lines = [
        "| server | concurrency | " + ("round | " if rounds else "") + "throughput (× real time) | R | / R | "
        "TTFB p50 | TTFB p99 | stalled | stall max | latency p50 | latency p99 | requests | errors |"
        + (" refused | refused in p50 / p99 |" if refusals else ""),
        "|---|---:|" + ("---:|" if rounds else "") + "---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        + ("---:|---:|" if refusals else ""),
    ]
    for r in rows:
        ratio = f"{r.ratio:.2f}" if r.ratio is not None else "–"
        ceiling = f"{r.ceiling:.1f}×" if r.ceiling is not None else "–"
        lines.append(
            f"| {r.server} | {r.concurrency} | " + (f"{r.round + 1} | " if rounds else "")
            + f"{r.throughput:.1f}× | {ceiling} | {ratio} | {_fmt_s(r.ttfb_p50)} | "
            f"{_fmt_s(r.ttfb_p99)} | {_stalled(r.stalled, r.stall_measured)} | {_fmt_s(r.stall_max)} | "
            f"{_fmt_s(r.latency_p50)} | {_fmt_s(r.latency_p99)} | {r.requests} | {r.errors} |"
            + (f" {_refused(r.refused, r.refused_p50, r.refused_p99)} |" if refusals else "")
        )
    return "\n".join(lines)


def render_cores(rows: Sequence[LevelStats]) -> str:
    """Where the cores went during each window (empty when nothing was sampled)."""
    roles = ["worker", "frontend", "supervisor", "peer", "client", "other", "total"]
    present = [k for k in roles if any(k in r.cores for r in rows)]
    if not present:
        return ""
    lines = ["| server | concurrency | " + " | ".join(present) + " |",
             "|---|---:|" + "---:|" * len(present)]
    for r in rows:
        cells = [f"{r.cores[k]:.2f}" if k in r.cores else "–" for k in present]
        lines.append(f"| {r.server} | {r.concurrency} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render_report(result: Mapping[str, Any]) -> str:
    """The Markdown printed at the end of a run (and the basis of docs/benchmarks.md)."""
    m = result["machine"]
    out = [f"Machine: {m['cpu']}, {m['usable_cores']} cores, {m['memory_gib']} GiB, Python {m['python']}, "
           f"onnxruntime {m['onnxruntime']}"]
    c = result.get("ceiling")
    if c:
        runs = ", ".join(f"{run['rtx']:.1f}×" for run in c["runs"])
        out.append(f"Engine ceiling R = {c['rtx']:.1f}× real time on average (runs in order: {runs}; each row's "
                   "R is the mean of the runs just before and after it); first segment alone: "
                   f"{_fmt_s(c['first_segment_p50'])} p50, {_fmt_s(c['first_segment_p90'])} p90, after "
                   f"{_fmt_s(c['prepare_p50'])} p50 of prepare")
    rows = [LevelStats(**row) for row in result["levels"]]
    out += ["", render_table(rows)]
    if any(r.stall_measured for r in rows):
        jitter = (result.get("settings") or {}).get("jitter", DEFAULT_JITTER_S)
        out += ["", f"Stalled: measured requests whose player, starting {jitter:g} s after the first byte and "
                    "playing at real time, ran dry at least once; stall max: the longest gap one heard."]
    if any(r.refused for r in rows):
        out += ["", "Refused: measured requests answered 429 by admission (server.stream_headroom), counted apart "
                    "from errors; TTFB, stall and latency figures cover admitted requests only. Refused in: the "
                    "time to the 429 (target: under 50 ms)."]
    repeated = any(r.round for r in rows)
    if repeated:
        out += ["", f"Over {max(r.round for r in rows) + 1} rounds (mean ratio and its range; formats paired with "
                    "the first one round by round):", "", render_summary(rows, _fmt_s)]
    if c:
        single = [f"{r.server}{f' (round {r.round + 1})' if repeated else ''}: TTFB p50 {_fmt_s(r.ttfb_p50)}, "
                  f"{(r.ttfb_p50 - c['first_segment_p50']) * 1000:+.0f} ms against the first segment alone"
                  for r in rows if r.concurrency == 1 and not math.isnan(r.ttfb_p50)]
        if single:
            out += ["", "One client (what the server adds to the engine's first segment): " + "; ".join(single)]
    cut = [f"{r.server} c={r.concurrency}: {r.unfinished}" for r in rows if r.unfinished]
    if cut:
        out += ["", "Measured requests still running at the drain timeout (left out, so those rows' latency "
                    "percentiles are lower bounds): " + ", ".join(cut)]
    cores = render_cores(rows)
    if cores:
        out += ["", "Cores used during each window:", "", cores]
        busiest = max(r.cores.get("other", 0.0) for r in rows)
        if busiest > NOISY_OTHER_CORES:
            out += ["", f"Warning: other programs used up to {busiest:.2f} cores during the windows; the figures "
                        "are depressed by them (ratios less so)."]
    return "\n".join(out)


def plot(result: Mapping[str, Any], path: Path) -> bool:
    """Throughput and TTFB p50/p99 against concurrency, R as a horizontal line; False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import NullFormatter, ScalarFormatter
    except ImportError:
        return False
    rows = [LevelStats(**row) for row in result["levels"]]
    summaries = summarize(rows)  # one point per server and level: the mean over rounds (``--repeat``)
    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(15, 4.2))
    for i, server in enumerate(dict.fromkeys(s.server for s in summaries)):
        color = f"C{i}"  # one colour per server in both panels
        mine = sorted((s for s in summaries if s.server == server), key=lambda s: s.concurrency)
        xs = [s.concurrency for s in mine]
        ax1.plot(xs, [s.throughput for s in mine], "o-", color=color, label=server)
        if any(s.ceiling for s in mine):
            ax1.plot(xs, [s.ceiling or math.nan for s in mine], "x:", color=color, alpha=0.4,
                     label=f"{server}: R around each level")
        ax2.plot(xs, [s.ttfb_p50 for s in mine], "o-", color=color, label=f"{server} p50")
        ax2.plot(xs, [s.ttfb_p99 for s in mine], "s--", color=color, label=f"{server} p99")
        ax3.plot(xs, [100 * s.stalled / s.stall_measured if s.stall_measured else math.nan for s in mine], "o-",
                 color=color, label=server)
    ceiling = (result.get("ceiling") or {}).get("rtx")
    if ceiling:
        ax1.axhline(ceiling, color="grey", linestyle="--", label=f"engine ceiling R = {ceiling:.1f}× (mean)")
    ax1.set(ylabel="× real time", title="Throughput", ylim=(0, None))
    ttfbs = [v for r in rows for v in (r.ttfb_p50, r.ttfb_p99) if v > 0]  # NaN compares False
    wide = bool(ttfbs) and max(ttfbs) / min(ttfbs) > 20
    ax2.set(yscale="log" if wide else "linear", ylabel="seconds", title="Time to first audio byte")
    if not wide:
        ax2.set_ylim(0, None)
    jitter = (result.get("settings") or {}).get("jitter", DEFAULT_JITTER_S)
    ax3.set(ylabel="% of requests", title=f"Stalled streams (player buffer {jitter:g} s)", ylim=(0, None))
    if not any(r.stall_measured for r in rows):
        ax3.text(0.5, 0.5, "not measured: stalls are timed on --format pcm", transform=ax3.transAxes,
                 ha="center", va="center", color="grey")
    levels = sorted({r.concurrency for r in rows})
    for ax in (ax1, ax2, ax3):
        ax.set_xscale("log")
        ax.set_xlim(levels[0] / 1.5, levels[-1] * 1.5)  # also where a panel has no data (no stalls measured)
        ax.set_xticks(levels)
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("concurrent clients (closed loop)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    if wide:
        ax2.yaxis.set_major_formatter(ScalarFormatter())
    m = result["machine"]
    fig.suptitle(f"vtts bench — {m['cpu']}, {m['usable_cores']} cores", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


# --------------------------------------------------------------------------- orchestration


def _levels(text: str) -> list[int]:
    try:
        levels = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not levels or min(levels) < 1:
        raise argparse.ArgumentTypeError("concurrency levels must be positive")
    return levels


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _formats(text: str) -> list[str]:
    formats = [x.strip() for x in text.split(",") if x.strip()]
    bad = [f for f in formats if f not in FORMATS]
    if not formats or bad:
        raise argparse.ArgumentTypeError(f"formats are {', '.join(FORMATS)}; got {text!r}")
    return list(dict.fromkeys(formats))


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("expected a JSON object")
    return value


def _say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


class Ceilings:
    """The raw-engine runs of one bench, interleaved with the levels: one before the first level and one
    after each, so each level's ratio uses the two runs around it (the machine's speed drifts; shared
    machines drift a lot)."""

    def __init__(self, args: argparse.Namespace, model: Any) -> None:
        self.args, self.model = args, model
        self.runs: list[CeilingRun] = []

    @property
    def enabled(self) -> bool:
        return not self.args.no_ceiling

    def measure(self) -> float | None:
        """One more run; its × real time (None when disabled)."""
        if not self.enabled:
            return None
        m = self.model
        run = measure_ceiling(m.engine, m.model, m.device, m.options, seed=self.args.seed,
                              duration=self.args.ceiling_duration, extra=self.args.extra)
        self.runs.append(run)
        _say(f"engine ceiling: {run.rtx:.1f}× real time ({run.audio_s:.0f} s of audio in {run.wall_s:.1f} s, "
             f"{run.texts} texts); first segment {run.first_segment_p50 * 1000:.0f} ms p50")
        return run.rtx

    def summary(self) -> dict[str, Any] | None:
        if not self.runs:
            return None
        return {
            "rtx": sum(r.rtx for r in self.runs) / len(self.runs),
            "runs": [{**asdict(r), "rtx": r.rtx} for r in self.runs],
            "first_segment_p50": percentile([r.first_segment_p50 for r in self.runs], 50),
            "first_segment_p90": percentile([r.first_segment_p90 for r in self.runs], 50),
            "prepare_p50": percentile([r.prepare_p50 for r in self.runs], 50),
        }


def _matrix(args: argparse.Namespace, targets: Sequence[tuple[str, RequestShape]], url: str, ceilings: Ceilings,
            server_pid: int | None, headers: Mapping[str, str] | None, role: str | None = None) -> list[LevelStats]:
    """Every concurrency level against one server, each level with every ``(label, shape)`` target (the
    formats) back to back, each run followed by a raw-engine run."""
    rows = []
    probe = cpu_probe(server_pid, role)
    before = ceilings.runs[-1].rtx if ceilings.runs else ceilings.measure()
    for rnd, concurrency, (label, shape) in itertools.product(range(args.repeat), args.concurrency, targets):
        of = f" (round {rnd + 1} of {args.repeat})" if args.repeat > 1 else ""
        _say(f"{label}: {concurrency} clients, {args.warmup:.0f}–{args.max_warmup:.0f} s warm-up + "
             f"{args.duration:.0f} s{of}")
        run = asyncio.run(run_level(url, shape, concurrency, duration=args.duration, warmup=args.warmup,
                                    max_warmup=args.max_warmup, texts=TextSource(args.seed),
                                    drain_timeout=args.drain_timeout, request_timeout=args.request_timeout,
                                    headers=headers, probe=probe, jitter=args.jitter))
        waited = wait_idle(server_pid, least=args.settle, most=args.settle_timeout)
        if waited > args.settle + 1:
            _say(f"{label}: waited {waited:.0f} s for the server to go idle")
        after = ceilings.measure()
        ceiling = (before + after) / 2 if before and after else None
        before = after
        cores = cores_used(run.cpu_start, run.cpu_end, run.window[1] - run.window[0])
        row = aggregate(run.records, server=label, concurrency=concurrency, window=run.window, ceiling=ceiling,
                        cores=cores)
        row.round = rnd
        rows.append(row)
        _say(f"{label} c={concurrency}{of}: {row.throughput:.1f}× real time"
             + (f" ({row.ratio:.2f} R)" if row.ratio is not None else "")
             + f", TTFB p50 {_fmt_s(row.ttfb_p50)} p99 {_fmt_s(row.ttfb_p99)}, stalled "
             f"{_stalled(row.stalled, row.stall_measured)} (max {_fmt_s(row.stall_max)}), {row.requests} requests, "
             f"{row.errors} errors")
    return rows


def _soak(args: argparse.Namespace, result: dict[str, Any], url: str, shape: RequestShape, ceilings: Ceilings,
          server_pid: int | None, headers: Mapping[str, str] | None, json_path: Path) -> int:
    """``--soak N``: N requests at the first concurrency level, RSS of every server process; exit 1 on a
    failed verdict (errors, growth past 10 %, a replaced process)."""
    from vtts.soak import as_json, render_soak, rss_probe, run_soak

    concurrency = args.concurrency[0]
    _say(f"soak: {args.soak} requests from {concurrency} clients; RSS after {args.soak_baseline} and every "
         f"{args.soak_every}")
    soak = asyncio.run(run_soak(url, shape, concurrency, args.soak, texts=TextSource(args.seed),
                                probe=rss_probe(server_pid), baseline_after=args.soak_baseline,
                                sample_every=args.soak_every, request_timeout=args.request_timeout,
                                headers=headers, progress=lambda n, e: _say(f"soak: {n} done, {e} errors")))
    wait_idle(server_pid, least=args.settle, most=args.settle_timeout)
    ceilings.measure()
    summary = ceilings.summary()
    result["ceiling"] = summary
    result["soak"] = as_json(soak)
    result["machine"]["load_average_at_end"] = os.getloadavg()
    json_path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(render_soak(soak, summary["rtx"] if summary else None))
    _say(f"wrote {json_path}")
    return 0 if soak.ok else 1


def cmd_bench(args: argparse.Namespace) -> int:
    from vtts import config as cfg

    config = cfg.load(args.config)
    model_id = args.model or config.default_model
    try:
        model = config.model(model_id)
    except KeyError:
        raise cfg.ConfigError(f"--model {model_id!r} is not a configured model") from None
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    result: dict[str, Any] = {
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": "vtts bench " + " ".join(args.argv),
        "machine": machine_info(),
        "settings": {k: v for k, v in vars(args).items() if k not in ("func", "argv", "api_key", "peer_api_key")},
        "model": {"id": model.id, "engine": model.engine, "model": model.model, "device": model.device,
                  "replicas": args.replicas or model.replicas},
    }
    ceilings = Ceilings(args, model)
    ceilings.measure()  # before anything else runs: the machine as the clients will find it
    server: LocalServer | None = None
    rows: list[LevelStats] = []
    try:
        if args.url:
            url, server_pid = args.url.rstrip("/"), None
            request_model = args.request_model or "tts-1"
        else:
            serve_args = (["--config", args.config] if args.config else []) + (
                ["--replicas", str(args.replicas)] if args.replicas else [])
            server = LocalServer(serve_args, out_dir / f"bench-{stamp}-server.log")
            _say(f"starting vtts serve on {server.url} (log: {server.log_path})")
            server.wait_ready()
            url, server_pid = server.url, server.proc.pid
            request_model = args.request_model or model.id
        targets = [("vtts" if len(args.format) == 1 else f"vtts {fmt}",
                    OpenAIShape(request_model, args.voice, fmt, args.extra)) for fmt in args.format]
        headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else None
        if args.soak:
            return _soak(args, result, url, targets[0][1], ceilings, server_pid, headers,
                         out_dir / f"soak-{stamp}.json")
        rows += _matrix(args, targets, url, ceilings, server_pid, headers)
    finally:
        if server:
            server.stop()
    if args.peer_url:
        peer: RequestShape = (PiperHTTPShape(args.peer_path or "/synthesize") if args.peer_kind == "piper-http"
                              else OpenAIShape(args.peer_model, args.peer_voice, args.format[0]))
        headers = {"Authorization": f"Bearer {args.peer_api_key}"} if args.peer_api_key else None
        if args.peer_pid is None:
            _say("no --peer-pid: the peer's CPU is not accounted, and work it does for abandoned requests may "
                 "overlap the engine runs")
        rows += _matrix(args, [(f"peer ({args.peer_kind})", peer)], args.peer_url.rstrip("/"), ceilings,
                        args.peer_pid, headers, role="peer")

    summary = ceilings.summary()
    if summary:
        result["ceiling"] = summary
    result["levels"] = [asdict(r) for r in rows]
    result["machine"]["load_average_at_end"] = os.getloadavg()
    json_path = out_dir / f"bench-{stamp}.json"
    json_path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(render_report(result))
    _say(f"wrote {json_path}")
    if not args.no_plot:
        png = out_dir / f"bench-{stamp}.png"
        if plot(result, png):
            _say(f"wrote {png}")
        else:
            _say("matplotlib is not installed: no plot (pip install 'vtts[bench]')")
    return 0


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``vtts bench`` on the CLI's subparsers."""
    p = subparsers.add_parser("bench", help="load benchmark: throughput and latency vs concurrency, against "
                                            "the raw engine measured in the same run")
    p.add_argument("--config", help="TOML config of the server to start (default: the bundled voice)")
    p.add_argument("--model", help="configured model id to benchmark (default: the config's default)")
    p.add_argument("--replicas", type=int, help="worker processes per model for the started server")
    p.add_argument("--url", help="benchmark a running server instead of starting one (R is still measured "
                                 "here, with --config's model)")
    p.add_argument("--api-key", help="bearer key for --url")
    p.add_argument("--concurrency", type=_levels, default=[1, 8, 32], help="levels, comma-separated (1,8,32)")
    p.add_argument("--duration", type=float, default=30.0, help="measured seconds per level (30)")
    p.add_argument("--repeat", type=_positive, default=1,
                   help="passes over the whole matrix; with more than one, the report adds each row's mean "
                        "ratio, its range and formats paired round by round (1)")
    p.add_argument("--warmup", type=float, default=5.0, help="least seconds of load before each window (5)")
    p.add_argument("--max-warmup", type=float, default=30.0,
                   help="most seconds of load before each window, waiting for the opening burst to end (30)")
    p.add_argument("--drain-timeout", type=float, default=60.0,
                   help="seconds to wait for the window's requests to finish (60)")
    p.add_argument("--settle", type=float, default=1.0, help="least idle seconds after each level (1)")
    p.add_argument("--settle-timeout", type=float, default=60.0,
                   help="most seconds to wait after a level for the server's processes to go idle (60)")
    p.add_argument("--request-timeout", type=float, default=120.0, help="per-request timeout in seconds (120)")
    p.add_argument("--ceiling-duration", type=float, default=10.0,
                   help="seconds of each raw-engine run: one before the first level and one after each (10)")
    p.add_argument("--no-ceiling", action="store_true", help="skip the raw-engine runs (no ratios)")
    p.add_argument("--format", type=_formats, default=["pcm"],
                   help="response_format the clients ask for; several, comma-separated (wav,mp3,opus), run back "
                        "to back at each level, so their ratios compare (pcm)")
    p.add_argument("--jitter", type=float, default=DEFAULT_JITTER_S,
                   help="seconds of audio the clients' player buffers: it starts this long after the first byte "
                        "and plays at real time; a request stalled if it ran dry (pcm only) (0.2)")
    p.add_argument("--voice", default="alloy", help="voice the clients ask for (alloy)")
    p.add_argument("--extra", type=_json_object, help="vTTS's per-request 'extra' object the clients send, e.g. "
                                                      "'{\"first_segment\": \"sentence\"}'")
    p.add_argument("--request-model", help="model name the clients send (default: the model id, tts-1 with --url)")
    p.add_argument("--seed", type=int, default=0, help="seed of the text sequence (0)")
    p.add_argument("--peer-url", help="also run the matrix against this peer server")
    p.add_argument("--peer-kind", choices=["openai", "piper-http"], default="openai",
                   help="the peer's request shape (openai)")
    p.add_argument("--peer-path", help="piper-http: the synthesis route (/synthesize, piper-tts 1.3+)")
    p.add_argument("--peer-model", default="tts-1")
    p.add_argument("--peer-voice", default="alloy")
    p.add_argument("--peer-api-key")
    p.add_argument("--peer-pid", type=int,
                   help="the peer server's process id (on this machine): its CPU is accounted and the bench "
                        "waits for it to go idle after each level")
    p.add_argument("--soak", type=int, metavar="N",
                   help="instead of the matrix: N requests at the first --concurrency level, then the RSS of "
                        "every server process against its size after --soak-baseline requests (fails past 10%%)")
    p.add_argument("--soak-baseline", type=int, default=300, help="requests before the RSS baseline (300)")
    p.add_argument("--soak-every", type=int, default=100, help="requests between RSS samples (100)")
    p.add_argument("--out", default=DEFAULT_OUT, help=f"directory for the JSON, plot and server log ({DEFAULT_OUT})")
    p.add_argument("--no-plot", action="store_true")
    p.add_argument("--ws", type=_positive, metavar="N",
                   help="instead: N WebSocket text-in sessions, tokens every 30 ms; time from each clause's last "
                        "token to its first audio vs the clause's own synthesis time (vtts.bench_ws)")
    p.set_defaults(func=_run_bench, argv=[])
    return p


def _run_bench(args: argparse.Namespace) -> int:
    if args.ws:
        from vtts.bench_ws import cmd_ws

        return cmd_ws(args)
    args.argv = sys.argv[2:] if len(sys.argv) > 1 and sys.argv[1] == "bench" else []
    return cmd_bench(args)
