"""The wire format between the frontend and the workers: the only module that knows it.

Every message is a msgpack map with ``v`` (protocol version) and ``type``. Sockets: the frontend binds a
ROUTER, each worker connects a DEALER whose identity is its worker id; ZeroMQ prepends/strips the identity
frame, so the payload below is always one frame.

Audio travels as 16-bit signed little-endian mono PCM at the worker's native rate (:data:`PCM_DTYPE`):
half the bytes of float32, and what every encoder consumes.

The vocabularies every process shares live here too, as enums (never strings matched by hand): worker
states, error codes (and which of them are worth a retry on another worker), and the reasons a request
leaves a worker. They are ``str`` enums, so they travel as plain strings and compare equal to them.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field, fields
from enum import Enum
from typing import Any, ClassVar

import msgpack

VERSION = 1
#: the one PCM layout on the wire: 16-bit signed little-endian mono
PCM_DTYPE = "s16le"


class WorkerState(str, Enum):
    """A worker's lifecycle, as its heartbeats report it."""

    LOADING = "loading"
    READY = "ready"
    DRAINING = "draining"
    FAILED = "failed"
    STOPPING = "stopping"


class ErrorCode(str, Enum):
    """``Error.code`` values a worker sends (the frontend adds its own, OpenAI-shaped ones)."""

    INVALID_REQUEST = "invalid_request"
    DUPLICATE_REQUEST = "duplicate_request"
    QUEUE_FULL = "queue_full"
    TIMEOUT = "timeout"
    ENGINE_ERROR = "engine_error"
    DRAINING = "draining"
    UNAVAILABLE = "unavailable"
    WORKER_LOST = "worker_lost"


#: errors that mean "this worker could not take the request", not "this request is bad": a request that
#: has not started yet is tried again on another worker
RETRYABLE: frozenset[str] = frozenset({ErrorCode.DRAINING, ErrorCode.WORKER_LOST, ErrorCode.UNAVAILABLE})


def is_retryable(code: str) -> bool:
    """Whether a request that failed with ``code`` before its first audio may go to another worker."""
    return code in RETRYABLE


class FinishReason(str, Enum):
    """Why a request left a worker; the engine's ``release`` hears it. A client that disconnects reaches
    the worker as a cancel."""

    FINISHED = "finished"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    FAILED = "failed"
    DRAINED = "drained"
    STOPPING = "stopping"


class ProtocolError(ValueError):
    """A frame that is not a valid message of this protocol version."""


@dataclass
class Message:
    """Base of all messages; subclasses set ``TYPE``."""

    TYPE: ClassVar[str] = ""


@dataclass
class Synthesize(Message):
    """Frontend → worker: start a request."""

    TYPE: ClassVar[str] = "synthesize"
    id: str
    text: str
    voice: str
    speed: float = 1.0
    language: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: seconds since the epoch after which the request must not start (0 = none)
    deadline: float = 0.0
    #: the longest audio the request may produce, in seconds (0 = unbounded)
    max_audio_s: float = 0.0
    #: OpenAI's ``instructions`` (style, tone), for engines that take them
    instructions: str | None = None
    #: a custom voice (cloning engines only): ``id``, ``version``, ``pcm`` (16-bit mono), ``sample_rate``,
    #: ``transcript``, ``language``; empty = one of the engine's own voices
    reference: dict[str, Any] = field(default_factory=dict)
    #: a listener plays the audio as it arrives; False = the answer is delivered whole, so the worker's
    #: scheduler gives it a relaxed deadline
    streaming: bool = True
    #: seconds since the epoch when the frontend sent it (0 = unknown): the worker counts its playback
    #: deadline from here, not from when it read the message after the step in progress
    sent_at: float = 0.0


@dataclass
class Audio(Message):
    """Worker → frontend: the next chunk of a request's audio, in order (``seq`` from 0)."""

    TYPE: ClassVar[str] = "audio"
    id: str
    seq: int
    sample_rate: int
    pcm: bytes
    #: word timings of this chunk, when the engine gives them and the request asked:
    #: ``{"word", "start", "end"}`` in seconds from the start of the request's audio
    timestamps: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Done(Message):
    """Worker → frontend: the request finished; ``usage`` and ``timings`` are documented in the README."""

    TYPE: ClassVar[str] = "done"
    id: str
    usage: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class Error(Message):
    """Worker → frontend: the request failed. ``status`` is the HTTP status the frontend should use when
    no audio was sent yet (4xx for the client's fault, 5xx for ours)."""

    TYPE: ClassVar[str] = "error"
    id: str
    code: str
    message: str
    param: str | None = None
    status: int = 500


@dataclass
class Cancel(Message):
    """Frontend → worker: drop the rest of a request (client went away)."""

    TYPE: ClassVar[str] = "cancel"
    id: str


@dataclass
class Status(Message):
    """Worker → frontend heartbeat: who the worker is, what it serves and how loaded it is. Sent on start,
    periodically, and whenever load changes enough to matter for routing."""

    TYPE: ClassVar[str] = "status"
    worker_id: str
    model: str
    pid: int
    state: str  # a WorkerState
    engine: str = ""
    device: str = "cpu"
    sample_rate: int = 0
    voices: list[dict[str, Any]] = field(default_factory=list)
    active: int = 0
    queued: int = 0
    max_queue: int = 0
    rss_bytes: int = 0
    error: str = ""
    started_at: float = 0.0
    #: seconds since the epoch of the last request received (0 = none yet): idleness for eviction
    last_request_at: float = 0.0
    #: the interpreter the worker runs under (a model may have its own venv)
    python: str = ""
    #: time.time() the current engine step began; 0.0 while no step runs (heartbeats come from their own
    #: thread, so a step that stops making progress shows here)
    step_started_at: float = 0.0
    #: memory the worker holds on its device (torch's allocator, else NVML for this process; 0 = unknown/CPU)
    device_memory_bytes: int = 0
    #: free capacity in the engine's own units (e.g. free KV tokens), or free batch slots for an engine
    #: without a budget: more = more room, comparable between replicas of one model
    capacity: int = 0
    #: counts up with every status a worker process sends: statuses travel on two sockets (the loop's and
    #: the heartbeat thread's), so a late one (the first "loading") must not overwrite a newer "ready"
    seq: int = 0
    #: the engine clones voices from a reference sample (custom voices), and whether it needs its transcript
    clones: bool = False
    needs_transcript: bool = False
    #: the engine can embed a speaker (Control ``speaker_embedding``): custom voices are verified through it
    verifies_speakers: bool = False
    #: the worker's voice-feature cache: lookups that found features, lookups that computed them, entries held
    voice_cache_hits: int = 0
    voice_cache_misses: int = 0
    voice_cache_entries: int = 0


@dataclass
class Admin(Message):
    """Frontend → supervisor: a control-plane operation on models.

    ``op``: "list" | "load" | "unload" | "swap" | "ensure" (load on demand if configured and not loaded).
    ``entry`` is a full model entry (config schema) for load/swap; empty means "the configured one"."""

    TYPE: ClassVar[str] = "admin"
    id: str
    op: str
    model: str = ""
    entry: dict[str, Any] = field(default_factory=dict)


@dataclass
class AdminReply(Message):
    """Supervisor → frontend: the outcome of an :class:`Admin` operation, with every model's state."""

    TYPE: ClassVar[str] = "admin_reply"
    id: str
    ok: bool
    status: int = 200
    code: str = ""
    message: str = ""
    models: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Control(Message):
    """Frontend → one worker: an operation on the loaded engine (``op`` = "reload_lexicon"; "forget_voice"
    with ``args`` ``{"voice": id}``: drop that custom voice's cached features; "speaker_embedding" with
    ``{"pcm": 16-bit mono bytes, "sample_rate": Hz}``: the reply's ``result["embedding"]``, a list of floats)."""

    TYPE: ClassVar[str] = "control"
    id: str
    op: str
    args: dict[str, Any] = field(default_factory=dict)


@dataclass
class ControlReply(Message):
    """Worker → frontend: the outcome of a :class:`Control` operation."""

    TYPE: ClassVar[str] = "control_reply"
    id: str
    ok: bool
    message: str = ""
    result: dict[str, Any] = field(default_factory=dict)


MESSAGE_TYPES: dict[str, type[Message]] = {
    cls.TYPE: cls
    for cls in (Synthesize, Audio, Done, Error, Cancel, Status, Admin, AdminReply, Control, ControlReply)
}


def encode(msg: Message) -> bytes:
    """Serialize a message to one frame."""
    body = asdict(msg)
    body["v"] = VERSION
    body["type"] = msg.TYPE
    return msgpack.packb(body, use_bin_type=True)


def decode_or_log(frame: bytes, logger: logging.Logger, source: object) -> Message | None:
    """:func:`decode`, but a bad frame is logged (naming ``source``) and skipped: a peer speaking another
    version must not take the receiving loop down."""
    try:
        return decode(frame)
    except ProtocolError as exc:
        logger.warning("dropping a bad frame from %s: %s", source, exc)
        return None


def decode(frame: bytes) -> Message:
    """Parse one frame; raise :class:`ProtocolError` for anything that is not a valid message."""
    try:
        body = msgpack.unpackb(frame, raw=False)
    except Exception as exc:  # msgpack raises several unrelated types
        raise ProtocolError(f"undecodable frame: {exc}") from exc
    if not isinstance(body, dict):
        raise ProtocolError("frame is not a map")
    if body.pop("v", None) != VERSION:
        raise ProtocolError(f"unsupported protocol version (want {VERSION})")
    cls = MESSAGE_TYPES.get(body.pop("type", None))
    if cls is None:
        raise ProtocolError("unknown message type")
    names = {f.name for f in fields(cls)}
    try:
        return cls(**{k: v for k, v in body.items() if k in names})
    except TypeError as exc:
        raise ProtocolError(f"bad {cls.TYPE} message: {exc}") from exc
