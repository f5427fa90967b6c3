"""``POST /v1/text/normalize``: what a voice will read for a text, without synthesizing it.

A debugging aid for users: the same text frontend the workers run (normalization, SSML, lexicon,
segmentation), imported as the pure ``vtts.workers.text`` package, never an engine. With ``model`` the
model's lexicon files (its ``options.lexicon``) and its voices' language apply, as in synthesis.

Request: ``{"input": str, "language"?: str, "locale"?: str, "model"?: str, "lexicon"?: {word: respelling},
"normalize"?: bool}``. Answer: ``{"object": "text.normalization", "language", "text", "segments": [...]}``.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from vtts.workers.engine import EngineError
from vtts.workers.text import TextFrontend, TextSegment

from .body import parse_json, read_body
from .errors import APIError
from .state import CATALOG, CONFIG

#: one frontend per model (its lexicon files), and one for requests that name none
TEXT_FRONTENDS = web.AppKey("text_frontends", dict)
_FIELDS = frozenset({"input", "language", "locale", "model", "lexicon", "normalize"})


def _segment(segment: TextSegment) -> dict[str, Any]:
    return {
        "text": segment.text,
        "pieces": [{"text": p.text, **({"ipa": p.ipa} if p.ipa is not None else {})} for p in segment.pieces],
        "rate": segment.rate,
        "pause_before_ms": segment.pause_before_ms,
        "pause_after_ms": segment.pause_after_ms,
    }


def _frontend(app: web.Application, model: str | None) -> TextFrontend:
    """The text frontend for ``model`` (its lexicon, its voices' language), built once per model."""
    cache = app[TEXT_FRONTENDS]
    if model is None:
        return cache.setdefault("", TextFrontend("en", multilingual=True))
    model_id = app[CATALOG].resolve_model(model)
    if model_id not in cache:
        entry = app[CATALOG].entries().get(model_id)
        voices = app[CATALOG].voices(model_id)
        language = (voices[0].get("language") if voices else None) or "en"
        options = entry.options if entry else {}
        try:
            cache[model_id] = TextFrontend.from_options(options, language)
        except ValueError as exc:
            raise APIError(500, f"model {model_id!r} has a bad lexicon: {exc}", code="lexicon_error") from exc
    return cache[model_id]


def _body(raw: bytes, max_chars: int) -> dict[str, Any]:
    body = parse_json(raw or b"null")
    if not isinstance(body, dict):
        raise APIError(400, "the body must be a JSON object", code="invalid_json")
    unknown = sorted(set(body) - _FIELDS)
    if unknown:
        raise APIError(400, f"unknown field {unknown[0]!r}", param=unknown[0], code="unknown_parameter")
    text = body.get("input")
    if not isinstance(text, str) or not text.strip():
        raise APIError(400, "'input' must be a non-empty string", param="input", code="invalid_value")
    if len(text) > max_chars:
        raise APIError(400, f"'input' is {len(text)} characters; the limit is {max_chars}", param="input",
                       code="string_above_max_length")
    for name in ("language", "locale", "model"):
        if body.get(name) is not None and not isinstance(body[name], str):
            raise APIError(400, f"'{name}' must be a string", param=name, code="invalid_type")
    return body


async def normalize_text(request: web.Request) -> web.Response:
    body = _body(await read_body(request), request.app[CONFIG].server.max_input_chars)
    frontend = _frontend(request.app, body.get("model"))
    extra = {k: body[k] for k in ("locale", "lexicon", "normalize") if body.get(k) is not None}
    try:
        segments = frontend.process(body["input"], language=body.get("language"), extra=extra, first_max_chars=0)
    except EngineError as exc:
        raise APIError(400, exc.message, param="input" if exc.param == "input" else exc.param,
                       code=exc.code) from None
    language = segments[0].language if segments else frontend.language_for(body["input"], body.get("language"))
    return web.json_response({
        "object": "text.normalization",
        "language": language,
        "text": " ".join(s.text for s in segments),
        "segments": [_segment(s) for s in segments],
    })


def setup_text_routes(app: web.Application) -> None:
    """Register ``POST /v1/text/normalize`` on the frontend app."""
    app[TEXT_FRONTENDS] = {}
    app.router.add_post("/v1/text/normalize", normalize_text)
