"""JSON Schemas of the OpenAI API parts vTTS serves, for the conformance suite (tests/integration/test_conformance.py).

Source: the definitions of OpenAI's published OpenAPI spec (github.com/openai/openai-openapi) as its own SDK,
``openai`` (openai-python) 3.57.0, carries them in its generated types — ``openai/types/model.py`` (``Model``),
``openai/types/shared/error_object.py`` (``ErrorObject``), ``openai/types/audio/speech_create_params.py``
(``CreateSpeechRequest``: models, voices, formats, speed bounds) and ``speech_model.py`` — and, for the parts the
SDK has no type for (the list envelope, the error envelope, the speech SSE events), the description of the spec
in /work/shared/FACTS.md. Written by hand from those (this machine has no network, so the spec file itself and
its commit could not be fetched); each schema names the spec component it stands for. Extra properties are
allowed wherever the spec allows them (it does not set ``additionalProperties: false`` on these objects).

The last two schemas are not OpenAI's: what Open WebUI reads from ``/audio/voices`` and ``/audio/models``, and
vllm-omni's WebSocket events (issue 18), whose ``error`` object is OpenAI's ``Error``.
"""

from __future__ import annotations

from typing import Any

#: components/schemas/Error (openai/types/shared/error_object.py: code, message, param, type; all present)
ERROR: dict[str, Any] = {
    "type": "object",
    "required": ["type", "message", "param", "code"],
    "properties": {
        "code": {"type": ["string", "null"]},
        "message": {"type": "string"},
        "param": {"type": ["string", "null"]},
        "type": {"type": "string"},
    },
}

#: components/schemas/ErrorResponse
ERROR_RESPONSE: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": ERROR},
}

#: components/schemas/Model (openai/types/model.py)
MODEL: dict[str, Any] = {
    "type": "object",
    "required": ["id", "object", "created", "owned_by"],
    "properties": {
        "id": {"type": "string"},
        "object": {"const": "model"},
        "created": {"type": "integer"},
        "owned_by": {"type": "string"},
    },
}

#: components/schemas/ListModelsResponse
LIST_MODELS_RESPONSE: dict[str, Any] = {
    "type": "object",
    "required": ["object", "data"],
    "properties": {"object": {"const": "list"}, "data": {"type": "array", "items": MODEL}},
}

#: components/schemas/CreateSpeechRequest (openai/types/audio/speech_create_params.py, speech_model.py)
CREATE_SPEECH_REQUEST: dict[str, Any] = {
    "type": "object",
    "required": ["model", "input", "voice"],
    "properties": {
        "model": {"anyOf": [{"type": "string"},
                            {"enum": ["tts-1", "tts-1-hd", "gpt-4o-mini-tts", "gpt-4o-mini-tts-2025-12-15"]}]},
        "input": {"type": "string", "maxLength": 4096},
        "instructions": {"type": "string", "maxLength": 4096},
        "voice": {"anyOf": [
            {"type": "string"},
            {"enum": ["alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar",
                      "fable", "onyx", "nova"]},
            {"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}},
        ]},
        "response_format": {"enum": ["mp3", "opus", "aac", "flac", "wav", "pcm"], "default": "mp3"},
        "speed": {"type": "number", "minimum": 0.25, "maximum": 4.0, "default": 1.0},
        "stream_format": {"enum": ["sse", "audio"], "default": "audio"},
    },
}

_USAGE: dict[str, Any] = {
    "type": "object",
    "required": ["input_tokens", "output_tokens", "total_tokens"],
    "properties": {k: {"type": "integer"} for k in ("input_tokens", "output_tokens", "total_tokens")},
}

#: components/schemas/SpeechAudioDeltaEvent
SPEECH_AUDIO_DELTA_EVENT: dict[str, Any] = {
    "type": "object",
    "required": ["type", "audio"],
    "properties": {"type": {"const": "speech.audio.delta"}, "audio": {"type": "string", "contentEncoding": "base64"}},
}

#: components/schemas/SpeechAudioDoneEvent
SPEECH_AUDIO_DONE_EVENT: dict[str, Any] = {
    "type": "object",
    "required": ["type", "usage"],
    "properties": {"type": {"const": "speech.audio.done"}, "usage": _USAGE},
}

#: not OpenAI's: what Open WebUI reads (``{v["id"]: v["name"] for v in data["voices"]}``, ``data["models"]``)
OPEN_WEBUI_VOICES: dict[str, Any] = {
    "type": "object",
    "required": ["voices"],
    "properties": {"voices": {"type": "array", "items": {
        "type": "object", "required": ["id", "name"],
        "properties": {"id": {"type": "string"}, "name": {"type": "string"}}}}},
}
OPEN_WEBUI_MODELS: dict[str, Any] = {
    "type": "object",
    "required": ["models"],
    "properties": {"models": {"type": "array", "items": {
        "type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}}}},
}

#: not OpenAI's: vllm-omni's WebSocket events (issue 18); ``error`` carries OpenAI's Error
WS_EVENT: dict[str, Any] = {
    "oneOf": [
        {"type": "object", "required": ["type", "sentence_index", "sentence_text", "format"],
         "properties": {"type": {"const": "audio.start"}, "sentence_index": {"type": "integer", "minimum": 0},
                        "sentence_text": {"type": "string", "minLength": 1}, "format": {"type": "string"}}},
        {"type": "object", "required": ["type", "sentence_index"],
         "properties": {"type": {"const": "audio.done"}, "sentence_index": {"type": "integer", "minimum": 0}}},
        {"type": "object", "required": ["type", "total_sentences", "usage"],
         "properties": {"type": {"const": "session.done"}, "total_sentences": {"type": "integer", "minimum": 0},
                        "usage": _USAGE}},
        {"type": "object", "required": ["type", "error"], "properties": {"type": {"const": "error"}, "error": ERROR}},
    ],
}
