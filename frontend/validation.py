"""Parse and validate a ``POST /v1/audio/speech`` body into a :class:`SpeechRequest`.

Only shapes and ranges are checked here; whether a model or voice exists is the router's question.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from .captions import CAPTION_FORMATS
from .encoders import ALL_FORMATS, MAX_SAMPLE_RATE, MIN_SAMPLE_RATE
from .errors import APIError

STREAM_FORMATS = ("audio", "sse")
MIN_SPEED, MAX_SPEED = 0.25, 4.0
MAX_INSTRUCTIONS = 4096
#: BCP-47-like tags ("en", "en-US", "pt_BR", "zh-Hans-CN"): engines use the value to pick files and rules
LANGUAGE_RE = re.compile(r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8}){0,6}")
#: ``extra`` goes to the worker as msgpack: nesting, size and numbers must stay within what it carries
MAX_EXTRA_DEPTH = 32
MAX_EXTRA_ITEMS = 4096
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
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
    #: ``extra.sample_rate``: the frontend resamples to it (taken out of ``extra``, engines never see it)
    sample_rate: int | None = None
    #: ``extra.audio_format``: the audio inside a ``json`` answer (taken out of ``extra`` like sample_rate)
    audio_format: str = "mp3"


def _bad(message: str, param: str | None, code: str = "invalid_value") -> APIError:
    return APIError(400, message, param=param, code=code)


def _unicode(value: str, where: str, param: str) -> str:
    """Reject lone surrogates (a JavaScript string cut inside an emoji): they cannot be encoded as UTF-8,
    so the worker could never receive them."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise _bad(f"'{where}' holds an unpaired surrogate U+{ord(value[exc.start]):04X} at position {exc.start}; "
                   "send valid Unicode", param, "invalid_unicode") from None
    return value


def _string(body: dict[str, Any], name: str, required: bool) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise _bad(f"'{name}' is required", name, "missing_required_parameter")
        return None
    if not isinstance(value, str):
        raise _bad(f"'{name}' must be a string, got {type(value).__name__}", name, "invalid_type")
    return _unicode(value, name, name)


def _choice(body: dict[str, Any], name: str, default: str, allowed: tuple[str, ...]) -> str:
    """An enumerated string; absent (or null) means the default, but an empty string is an error."""
    value = _string(body, name, False)
    if value is None:
        return default
    if value not in allowed:
        raise _bad(f"'{name}' must be one of {', '.join(allowed)}; got {value!r}", name)
    return value


def check_plain(value: Any, where: str = "extra") -> None:
    """Check that ``value`` is plain JSON the worker protocol can carry: str (valid Unicode), finite float,
    int within int64, bool, None, lists and str-keyed objects, at most ``MAX_EXTRA_DEPTH`` deep and
    ``MAX_EXTRA_ITEMS`` values in all. Iterative, so depth never costs Python stack."""
    param = where.split(".")[0].split("[")[0]
    stack: list[tuple[Any, int, str]] = [(value, 0, where)]
    count = 0
    while stack:
        v, depth, path = stack.pop()
        if depth > MAX_EXTRA_DEPTH:
            raise _bad(f"'{param}' is nested more than {MAX_EXTRA_DEPTH} levels deep", param)
        if v is None or isinstance(v, bool):
            continue
        if isinstance(v, int):
            if not INT64_MIN <= v <= INT64_MAX:
                raise _bad(f"'{path}' is an integer outside the 64-bit range", param)
        elif isinstance(v, float):
            if not math.isfinite(v):
                raise _bad(f"'{path}' must be a finite number", param)
        elif isinstance(v, str):
            _unicode(v, path, param)
        elif isinstance(v, (list, dict)):
            count += len(v)
            if count > MAX_EXTRA_ITEMS:
                raise _bad(f"'{param}' holds more than {MAX_EXTRA_ITEMS} values", param)
            if isinstance(v, list):
                stack.extend((x, depth + 1, f"{path}[{i}]") for i, x in enumerate(v))
            else:
                for k, x in v.items():
                    if not isinstance(k, str):
                        raise _bad(f"'{path}' has a key that is not a string", param, "invalid_type")
                    stack.append((x, depth + 1, f"{path}.{_unicode(k, path, param)}"))
        else:
            raise _bad(f"'{path}' must be JSON (string, number, boolean, null, array or object)", param,
                       "invalid_type")


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
    _unicode(voice, "voice", "voice")
    instructions = _string(body, "instructions", False)
    if instructions is not None and len(instructions) > MAX_INSTRUCTIONS:
        raise _bad(f"'instructions' is longer than {MAX_INSTRUCTIONS} characters", "instructions")
    fmt = _choice(body, "response_format", "mp3", ALL_FORMATS + CAPTION_FORMATS)
    stream_format = _choice(body, "stream_format", "audio", STREAM_FORMATS)
    if fmt in CAPTION_FORMATS and stream_format == "sse":
        raise _bad(f"response_format '{fmt}' is a whole answer, not a stream: use stream_format 'audio' (SSE "
                   "events carry the word timings already)", "stream_format")
    speed = body.get("speed", 1.0)
    if speed is None:
        speed = 1.0
    if isinstance(speed, bool) or not isinstance(speed, (int, float)):
        raise _bad("'speed' must be a number", "speed", "invalid_type")
    if not MIN_SPEED <= speed <= MAX_SPEED:  # compared before float(): a 400-digit integer overflows it
        shown = speed if isinstance(speed, float) or abs(speed) < 10**9 else "an integer out of range"
        raise _bad(f"'speed' must be between {MIN_SPEED} and {MAX_SPEED}; got {shown}", "speed")
    language = _string(body, "language", False)
    if language is not None and not LANGUAGE_RE.fullmatch(language):
        raise _bad(f"'language' must be a language tag such as 'en' or 'en-US'; got {language[:40]!r}", "language")
    extra = body.get("extra") or {}
    if not isinstance(extra, dict):
        raise _bad("'extra' must be an object", "extra", "invalid_type")
    check_plain(extra)
    sample_rate = None
    if "sample_rate" in extra:
        extra = dict(extra)
        sample_rate = extra.pop("sample_rate")
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or not (
                MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE):
            raise _bad(f"'extra.sample_rate' must be an integer from {MIN_SAMPLE_RATE} to {MAX_SAMPLE_RATE}",
                       "extra")
    audio_format = "mp3"
    if "audio_format" in extra:
        extra = dict(extra)
        audio_format = extra.pop("audio_format")
        if fmt != "json" or audio_format not in ALL_FORMATS:
            raise _bad(f"'extra.audio_format' is the audio of a response_format 'json' answer, one of "
                       f"{', '.join(ALL_FORMATS)}", "extra")
    if fmt in CAPTION_FORMATS and "timestamps" not in extra:
        extra = {**extra, "timestamps": True}  # what captions are made of
    return SpeechRequest(
        model=model, input=text, voice=voice, response_format=fmt, speed=float(speed),
        stream_format=stream_format, instructions=instructions, language=language, extra=extra,
        sample_rate=sample_rate, audio_format=audio_format,
    )
