"""The TOML configuration: one documented schema, every field defaulted, unknown fields rejected by name.

Shared by the supervisor (who starts what), the frontend (limits, keys, routing names) and the workers
(which model to load). See ``configs/default.toml`` for the documented default.
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, get_type_hints

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

#: OpenAI's model names; they alias the default model
OPENAI_MODELS = ("tts-1", "tts-1-hd", "gpt-4o-mini-tts", "gpt-4o-mini-tts-2025-12-15")
#: OpenAI's voice names; they map to configured voices
OPENAI_VOICES = (
    "alloy", "ash", "ballad", "coral", "echo", "fable", "onyx", "nova", "sage", "shimmer", "verse",
    "marin", "cedar",
)
API_KEY_ENV = "VTTS_API_KEY"
ADMIN_KEY_ENV = "VTTS_ADMIN_KEY"
#: bounds of a model entry's numeric fields (the admin API takes entries from clients)
MAX_MEMORY_MB = 1024 * 1024
#: bound on the pacing fields of a model entry (first_audio_target_s, playback_margin_s, ...), in seconds
MAX_PACING_S = 3600.0
MAX_BATCH = 1024
MAX_QUEUE = 65536
#: nesting depth of a model entry's ``options`` (tables and lists)
MAX_OPTIONS_DEPTH = 16
DEFAULT_MAX_REPLICAS = 16


class ConfigError(ValueError):
    """The configuration is invalid; the message names the field."""


@dataclass
class ServerConfig:
    """The HTTP frontend and process-wide settings."""

    host: str = "127.0.0.1"
    port: int = 8000
    #: bearer keys accepted on /v1 routes; empty = no auth (also read from $VTTS_API_KEY)
    api_keys: list[str] = field(default_factory=list)
    max_input_chars: int = 4096
    #: longest audio one request may make, estimated from its normalized text (pauses included, divided by
    #: speed) before synthesis; over it the request fails with 400 audio_too_long (0 = unbounded)
    max_audio_seconds: float = 900.0
    #: model that OpenAI's model names (tts-1, ...) resolve to; default: the first model
    default_model: str = ""
    #: a request that cannot start within this many seconds ends with an error
    request_timeout_s: float = 60.0
    #: a worker silent for this long is considered dead
    heartbeat_timeout_s: float = 10.0
    #: directory for ipc:// sockets; default: a fresh temporary directory
    run_dir: str = ""
    log_level: str = "info"
    #: seconds the supervisor waits for processes to exit on shutdown before killing them
    shutdown_timeout_s: float = 10.0
    #: keys for /admin routes; empty = admin only from loopback (also read from $VTTS_ADMIN_KEY)
    admin_keys: list[str] = field(default_factory=list)
    #: how long a request for a model that is not loaded waits for it to load (then 503)
    load_timeout_s: float = 60.0
    #: how long unload and hot swap let in-flight streams of the old workers finish before killing them
    drain_timeout_s: float = 30.0
    #: a worker that exits this many times within ``restart_window_s`` marks its model failed
    max_restarts: int = 5
    restart_window_s: float = 60.0
    #: CPU memory the models may use in all (MiB); 0 = what the system has available
    cpu_memory_budget_mb: int = 0
    #: GPU memory left free for other processes on every GPU (MiB)
    gpu_memory_reserve_mb: int = 512
    #: a connection must send its complete request head within this
    header_timeout_s: float = 10.0
    #: the whole request body must arrive within this (after the head)
    body_timeout_s: float = 30.0
    #: idle keep-alive connections are closed after this
    keepalive_timeout_s: float = 15.0
    #: a client that accepts no bytes for this long is disconnected and its request cancelled
    write_timeout_s: float = 30.0
    #: audio a response may hold for a slow reader before its request is cancelled (bytes of PCM)
    max_buffered_bytes: int = 8388608
    #: open client connections; past it the oldest idle ones are closed, or a new one gets a 503
    max_connections: int = 512
    #: a worker whose engine step runs this long (or whose heartbeats stop for ``heartbeat_timeout_s``) is
    #: killed and restarted by the supervisor
    worker_stall_timeout_s: float = 120.0
    #: upper bound on ``replicas`` of any model entry (config file and admin API)
    max_replicas: int = DEFAULT_MAX_REPLICAS
    #: interpreters (``python``) and plugin engines ("module:Class") the admin API may start without an
    #: admin key; models in the config file itself are trusted
    admin_python_allowlist: list[str] = field(default_factory=list)
    admin_engine_allowlist: list[str] = field(default_factory=list)
    #: OpenAI's model names that route to the default model (``GET /v1/models`` lists them)
    openai_model_aliases: list[str] = field(default_factory=lambda: list(OPENAI_MODELS))
    #: origins browsers may call the API from (CORS); ``["*"]`` = any; empty = no CORS headers
    cors_origins: list[str] = field(default_factory=list)
    #: WebSocket text-in sessions (``/v1/audio/speech/stream``): no client message and nothing to send for
    #: this long closes the session
    ws_idle_timeout_s: float = 60.0
    #: a session is closed after this long, whatever it does
    ws_max_session_s: float = 3600.0
    #: text received but not yet sent to a worker; past it the session ends with an error
    ws_max_buffered_chars: int = 16384
    #: audio a session holds for a client that does not read (PCM waiting plus encoded bytes unsent);
    #: past it the client is disconnected and everything in flight cancelled
    ws_max_buffered_bytes: int = 4194304
    #: admission by streaming capacity: a model takes a new HTTP stream while its in-flight requests stay
    #: within this fraction of its ready replicas' measured speed (× real time, from done timings); past
    #: it, 429 with Retry-After. 0 = off (frontend/admission.py)
    stream_headroom: float = 0.0
    #: serve the web playground at ``/playground`` (``/`` redirects there); false = both are 404
    playground: bool = True
    #: custom voices and consents (SQLite + FLAC files); empty = $XDG_DATA_HOME/vtts or ~/.local/share/vtts
    data_dir: str = ""
    #: custom voices one owner (API key) may keep; past it creating one is a 429
    max_voices_per_owner: int = 100
    #: bytes of stored voice audio (FLAC) one owner may keep; past it creating one is a 400
    max_voice_bytes_per_owner: int = 268435456
    #: speaker verification of custom voices, when a served model has a speaker model (CosyVoice3's CAM++):
    #: a voice whose sample's speaker vector is less similar (cosine) than this to its consent recording's is
    #: refused (400 speaker_mismatch). The similarity is stored and shown either way; 0 = never refuse
    speaker_match_threshold: float = 0.0


@dataclass
class ModelConfig:
    """One served model: which engine loads which reference, where, how many times."""

    id: str = ""
    engine: str = ""
    #: model reference: a local path, a hub id or an engine-specific name (piper: the bundled voice)
    model: str = ""
    device: str = "cpu"
    replicas: int = 1
    #: 0 = the engine's own measured default for the device
    max_batch: int = 0
    #: requests a worker accepts beyond the ones running; past it the frontend answers 429
    max_queue: int = 128
    #: interpreter for this model's workers (its own venv); default: the supervisor's
    python: str = ""
    #: engine-specific options (threads, scales, ...)
    options: dict[str, Any] = field(default_factory=dict)
    #: voice aliases: a name clients send -> one of the engine's voices (OpenAI names map to the default
    #: voice unless listed here)
    voice_aliases: dict[str, str] = field(default_factory=dict)
    #: extra model names that route here
    aliases: list[str] = field(default_factory=list)
    #: load at start-up; false = load on the first request (and whenever it was evicted)
    preload: bool = True
    #: never evicted to make room for another model
    pinned: bool = False
    #: memory one replica needs (MiB); 0 = measured at load (until then a default estimate)
    memory_mb: int = 0
    #: playback-deadline scheduling (workers/scheduler.py): a new request's first audio is due this long
    #: after it arrives (its step that much earlier where the engine's rate is measured)...
    first_audio_target_s: float = 0.3
    #: ...a later one this long before its listener's buffer runs dry...
    playback_margin_s: float = 0.2
    #: ...and a request with no listener (a non-streamed answer) this much later than a stream would be
    relaxed_deadline_s: float = 5.0
    #: the listener's buffer the worker's stall timings (``stall_s``, ``stalls``) assume: a player that
    #: starts this long after the first audio and plays at real time
    jitter_buffer_s: float = 0.2
    #: segment sizing: how many times a later segment may be cut at a clause when its synthesis would outlast
    #: the slack of the requests waiting behind it (0 = never; engines that can cut: Piper)
    max_cuts: int = 1
    #: segment sizing also keeps a later step short enough that a request arriving during it still gets its
    #: first audio within ``first_audio_target_s`` (while other streams are in flight and none is late)
    short_steps: bool = True


@dataclass
class Config:
    """The whole configuration file."""

    server: ServerConfig = field(default_factory=ServerConfig)
    models: list[ModelConfig] = field(default_factory=list)

    def model(self, model_id: str) -> ModelConfig:
        for m in self.models:
            if m.id == model_id:
                return m
        raise KeyError(model_id)

    @property
    def default_model(self) -> str:
        return self.server.default_model or (self.models[0].id if self.models else "")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _build(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a table")
    hints = get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown field {unknown[0]!r} (known: {', '.join(sorted(known))})")
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        kwargs[name] = _check(hints[name], value, f"{where}.{name}" if where else name)
    return cls(**kwargs)


def _check(hint: Any, value: Any, where: str) -> Any:
    origin = getattr(hint, "__origin__", None)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number")
        return float(value)
    if hint in (int, str, bool):
        if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
            raise ConfigError(f"{where}: expected {hint.__name__}")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list")
        (item,) = hint.__args__
        if dataclasses.is_dataclass(item):
            return [_build(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
        return [_check(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a table")
        return dict(value)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, where)
    raise ConfigError(f"{where}: unsupported type")  # pragma: no cover


def validate(config: Config) -> Config:
    """Cross-field checks the types cannot express."""
    s = config.server
    if not 0 < s.port < 65536:
        raise ConfigError("server.port: must be 1..65535")
    if s.max_input_chars < 1:
        raise ConfigError("server.max_input_chars: must be positive")
    if not 0 <= s.max_audio_seconds < float("inf"):
        raise ConfigError("server.max_audio_seconds: must be >= 0 (0 = unbounded)")
    for name in ("request_timeout_s", "heartbeat_timeout_s", "load_timeout_s", "drain_timeout_s",
                 "shutdown_timeout_s", "restart_window_s", "header_timeout_s", "body_timeout_s",
                 "keepalive_timeout_s", "write_timeout_s", "max_buffered_bytes", "max_connections",
                 "worker_stall_timeout_s", "ws_idle_timeout_s", "ws_max_session_s", "ws_max_buffered_chars",
                 "ws_max_buffered_bytes"):
        if getattr(s, name) <= 0:
            raise ConfigError(f"server.{name}: must be positive")
    if s.max_restarts < 1 or s.cpu_memory_budget_mb < 0 or s.gpu_memory_reserve_mb < 0:
        raise ConfigError("server: max_restarts must be >= 1 and memory sizes >= 0")
    if not 1 <= s.max_replicas <= 1024:
        raise ConfigError("server.max_replicas: must be 1..1024")
    if isinstance(s.stream_headroom, bool) or not isinstance(s.stream_headroom, (int, float)) \
            or not 0 <= s.stream_headroom <= 100:
        raise ConfigError("server.stream_headroom: must be 0..100 (0 = off)")
    if isinstance(s.speaker_match_threshold, bool) or not isinstance(s.speaker_match_threshold, (int, float)) \
            or not 0 <= s.speaker_match_threshold <= 1:
        raise ConfigError("server.speaker_match_threshold: must be 0..1 (0 = never refuse)")
    names: dict[str, str] = {}
    for i, m in enumerate(config.models):
        where = f"models[{i}]"
        validate_model(m, where, s.max_replicas)
        clash = name_clash(m, names, s.openai_model_aliases)
        if clash:
            raise ConfigError(f"{where}: {clash}")
        names.update(dict.fromkeys(model_names(m), m.id))
    seen = {m.id for m in config.models}
    if s.default_model and s.default_model not in seen:
        raise ConfigError(f"server.default_model: {s.default_model!r} is not a configured model")
    return config


def model_names(m: ModelConfig) -> set[str]:
    """The names that route to ``m``: its id and its aliases."""
    return {m.id, *m.aliases}


def name_clash(m: ModelConfig, taken: dict[str, str], openai_names: Iterable[str] = OPENAI_MODELS) -> str:
    """Why ``m``'s names cannot join ``taken`` (name -> model id), or "" when they can. Names are unique
    across model ids, aliases and OpenAI's model names (``server.openai_model_aliases``), so no entry can
    take over another's traffic."""
    openai_names = set(openai_names)
    for name in sorted(model_names(m)):
        if name in openai_names:
            return f"{name!r} is one of OpenAI's model names (they route to server.default_model)"
        owner = taken.get(name)
        if owner is not None and owner != m.id:
            return f"the name {name!r} is already taken by model {owner!r}"
        if owner is not None and name == m.id:
            return f"duplicate model id {m.id!r}"
    return ""


def _depth_and_ints_ok(value: Any, max_depth: int) -> bool:
    """True when ``value`` nests at most ``max_depth`` tables/lists and every int fits in 64 bits.
    Iterative, so a hostile document cannot exhaust the stack."""
    todo = [(value, 0)]
    while todo:
        v, depth = todo.pop()
        if isinstance(v, dict):
            items = list(v.values())
        elif isinstance(v, list):
            items = v
        else:
            if isinstance(v, int) and not -(2**63) <= v < 2**63:
                return False
            continue
        if depth >= max_depth:
            return False
        todo.extend((i, depth + 1) for i in items)
    return True


def validate_model(m: ModelConfig, where: str = "model", max_replicas: int = DEFAULT_MAX_REPLICAS) -> ModelConfig:
    """Checks of one model entry (also used for entries sent to the admin API): every number bounded, so an
    entry can neither start unbounded processes nor carry values the wire format cannot hold."""
    if not m.id:
        raise ConfigError(f"{where}.id: required")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}", m.id):
        raise ConfigError(f"{where}.id: use letters, digits and . _ : - (got {m.id!r})")
    if not m.engine:
        raise ConfigError(f"{where}.engine: required")
    if not 1 <= m.replicas <= max_replicas:
        raise ConfigError(f"{where}.replicas: must be 1..{max_replicas} (server.max_replicas)")
    if not 1 <= m.max_queue <= MAX_QUEUE:
        raise ConfigError(f"{where}.max_queue: must be 1..{MAX_QUEUE}")
    if not 0 <= m.max_batch <= MAX_BATCH:
        raise ConfigError(f"{where}.max_batch: must be 0..{MAX_BATCH}")
    if not re.fullmatch(r"cpu|cuda(:\d+)?", m.device):
        raise ConfigError(f"{where}.device: expected 'cpu', 'cuda' or 'cuda:N', got {m.device!r}")
    if not 0 <= m.memory_mb <= MAX_MEMORY_MB:
        raise ConfigError(f"{where}.memory_mb: must be 0..{MAX_MEMORY_MB}")
    for name in ("first_audio_target_s", "playback_margin_s", "relaxed_deadline_s", "jitter_buffer_s"):
        value = getattr(m, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= MAX_PACING_S:
            raise ConfigError(f"{where}.{name}: must be 0..{MAX_PACING_S:g} seconds")
    if isinstance(m.max_cuts, bool) or not isinstance(m.max_cuts, int) or not 0 <= m.max_cuts <= 2:
        raise ConfigError(f"{where}.max_cuts: must be 0, 1 or 2")
    if not isinstance(m.short_steps, bool):
        raise ConfigError(f"{where}.short_steps: expected true or false")
    if not _depth_and_ints_ok(m.options, MAX_OPTIONS_DEPTH):
        raise ConfigError(f"{where}.options: nested deeper than {MAX_OPTIONS_DEPTH} or holds an integer "
                          "outside 64 bits")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in m.voice_aliases.items()):
        raise ConfigError(f"{where}.voice_aliases: expected a table of strings")
    return m


def parse_model(data: Any, where: str = "model", max_replicas: int = DEFAULT_MAX_REPLICAS) -> ModelConfig:
    """A model entry from a JSON/TOML table, validated (the admin API's bodies)."""
    return validate_model(_build(ModelConfig, data, where), where, max_replicas)


def parse(data: dict[str, Any]) -> Config:
    """Build and validate a :class:`Config` from a parsed TOML (or JSON) document."""
    config = _build(Config, data, "")
    if not config.server.api_keys and os.environ.get(API_KEY_ENV):
        config.server.api_keys = [k for k in os.environ[API_KEY_ENV].split(",") if k]
    if not config.server.admin_keys and os.environ.get(ADMIN_KEY_ENV):
        config.server.admin_keys = [k for k in os.environ[ADMIN_KEY_ENV].split(",") if k]
    return validate(config)


def load(path: str | os.PathLike[str] | None = None) -> Config:
    """Load a config file, or the bundled default (``configs/default.toml``) when ``path`` is None."""
    if path is None:
        text = resources.files("vtts.configs").joinpath("default.toml").read_text("utf-8")
        where = "configs/default.toml"
    else:
        where = str(path)
        try:
            text = Path(path).read_text("utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read config {where}: {exc.strerror}") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: invalid TOML: {exc}") from exc
    return parse(data)
