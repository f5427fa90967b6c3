"""Parse and validate a ``POST /v1/audio/speech`` body into a :class:`SpeechRequest`.

Only shapes and ranges are checked here; whether a model or voice exists is the router's question.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .encoders import FORMATS
from .errors import APIError

STREAM_FORMATS = ("audio", "sse")
MIN_SPEED, MAX_SPEED = 0.25, 4.0
MAX_INSTRUCTIONS = 4096
KNOWN_FIELDS = {
    "model", "input", "voice", "instructions", "response_format", "speed", "stream_format",
    # vTTS extensions
    "language", "extra",
}


@dataclass
class SpeechRequest:
    """A validated speech request, still in the client's names (model alias, voice alias)."""

    model: str
    input: str
    voice: str
    response_format: str = "mp3"
    speed: float = 1.0
    stream_format: str = "audio"
    instructions: str | None = None
    language: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _bad(message: str, param: str | None, code: str = "invalid_value") -> APIError:
    return APIError(400, message, param=param, code=code)


def _string(body: dict[str, Any], name: str, required: bool) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise _bad(f"'{name}' is required", name, "missing_required_parameter")
        return None
    if not isinstance(value, str):
        raise _bad(f"'{name}' must be a string, got {type(value).__name__}", name, "invalid_type")
    return value


def parse_speech(body: Any, max_input_chars: int) -> SpeechRequest:
    """Validate a decoded JSON body; raise :class:`APIError` (400) naming the offending parameter."""
    if not isinstance(body, dict):
        raise _bad("request body must be a JSON object", None, "invalid_type")
    unknown = sorted(set(body) - KNOWN_FIELDS)
    if unknown:
        raise _bad(f"unrecognized request argument: {unknown[0]!r}", unknown[0], "unknown_parameter")
    model = _string(body, "model", True)
    if not model:
        raise _bad("'model' must not be empty", "model")
    text = _string(body, "input", True)
    if not text or not text.strip():
        raise _bad("'input' must not be empty", "input", "empty_input")
    if len(text) > max_input_chars:
        raise _bad(
            f"'input' is {len(text)} characters; the limit is {max_input_chars}", "input", "string_above_max_length"
        )
    voice_raw = body.get("voice")
    if isinstance(voice_raw, dict):
        voice = voice_raw.get("id")
        if not isinstance(voice, str) or not voice:
            raise _bad("'voice.id' must be a non-empty string", "voice", "invalid_type")
    elif isinstance(voice_raw, str):
        voice = voice_raw
    elif voice_raw is None:
        raise _bad("'voice' is required", "voice", "missing_required_parameter")
    else:
        raise _bad("'voice' must be a string or an object with an 'id'", "voice", "invalid_type")
    if not voice:
        raise _bad("'voice' must not be empty", "voice")
    instructions = _string(body, "instructions", False)
    if instructions is not None and len(instructions) > MAX_INSTRUCTIONS:
        raise _bad(f"'instructions' is longer than {MAX_INSTRUCTIONS} characters", "instructions")
    fmt = _string(body, "response_format", False) or "mp3"
    if fmt not in FORMATS:
        raise _bad(f"'response_format' must be one of {', '.join(FORMATS)}; got {fmt!r}", "response_format")
    stream_format = _string(body, "stream_format", False) or "audio"
    if stream_format not in STREAM_FORMATS:
        raise _bad(f"'stream_format' must be 'audio' or 'sse'; got {stream_format!r}", "stream_format")
    speed = body.get("speed", 1.0)
    if speed is None:
        speed = 1.0
    if isinstance(speed, bool) or not isinstance(speed, (int, float)):
        raise _bad("'speed' must be a number", "speed", "invalid_type")
    if not MIN_SPEED <= float(speed) <= MAX_SPEED:
        raise _bad(f"'speed' must be between {MIN_SPEED} and {MAX_SPEED}; got {speed}", "speed")
    language = _string(body, "language", False)
    extra = body.get("extra") or {}
    if not isinstance(extra, dict):
        raise _bad("'extra' must be an object", "extra", "invalid_type")
    return SpeechRequest(
        model=model, input=text, voice=voice, response_format=fmt, speed=float(speed),
        stream_format=stream_format, instructions=instructions, language=language, extra=extra,
    )
