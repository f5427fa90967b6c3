"""``POST /v1/text/normalize``: what a voice will read for a text, without synthesizing it.

A debugging aid for users: the same text frontend the workers run (normalization, SSML, lexicon,
segmentation), imported as the pure ``vtts.workers.text`` package, never an engine. With ``model`` the
model's lexicon files (its ``options.lexicon``) and its voices' language apply, as in synthesis.

The text work (regular expressions, a lexicon file's first read) runs in the app's executor, never on the
event loop, with the speech route's input-length bound. A model whose lexicon file is bad answers 503
``lexicon_error`` naming the file and line (never its contents), logged as a warning; the model's frontend
is rebuilt when its entry changes (a hot swap with a new lexicon).

Request: ``{"input": str, "language"?: str, "locale"?: str, "model"?: str, "lexicon"?: {word: respelling},
"normalize"?: bool}``. Answer: ``{"object": "text.normalization", "language", "text", "segments": [...]}``.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

from aiohttp import web

from vtts.workers.engine import EngineError
from vtts.workers.text import NORMALIZERS, TextFrontend, TextSegment, base_language

from .body import parse_json, read_body
from .errors import APIError
from .state import CATALOG, CONFIG, EXECUTOR

log = logging.getLogger(__name__)
#: model id → (its entry, its frontend), and "" → (None, the frontend for requests that name no model)
TEXT_FRONTENDS = web.AppKey("text_frontends", dict)
_FIELDS = frozenset({"input", "language", "locale", "model", "lexicon", "normalize"})
#: languages the frontend has rules for (normalization, or sentence segmentation); any other would pass
#: through unchanged, which reads as if normalization were broken
LANGUAGES = frozenset({*NORMALIZERS, "ja", "zh"})
_TAG = re.compile(r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*")


def _segment(segment: TextSegment) -> dict[str, Any]:
    return {
        "text": segment.text,
        "pieces": [{"text": p.text, **({"ipa": p.ipa} if p.ipa is not None else {})} for p in segment.pieces],
        "rate": segment.rate,
        "pause_before_ms": segment.pause_before_ms,
        "pause_after_ms": segment.pause_after_ms,
    }


def _frontend(app: web.Application, model: str | None) -> TextFrontend:
    """The text frontend for ``model`` (its lexicon, its voices' language), built once per model entry:
    a hot swap or reload that changes the entry builds a new one. Runs in the executor (reads files)."""
    cache = app[TEXT_FRONTENDS]
    if model is None:
        return cache.setdefault("", (None, TextFrontend("en", multilingual=True)))[1]
    model_id = app[CATALOG].resolve_model(model)
    entry = app[CATALOG].entries().get(model_id)
    cached = cache.get(model_id)
    if cached is None or cached[0] != entry:
        voices = app[CATALOG].voices(model_id)
        language = (voices[0].get("language") if voices else None) or "en"
        try:
            cached = cache[model_id] = (entry, TextFrontend.from_options(entry.options if entry else {}, language))
        except ValueError as exc:  # the messages name the file and line, never its contents
            log.warning("/v1/text/normalize: model %s: %s", model_id, exc)
            raise APIError(503, f"model {model_id!r} has a bad lexicon: {exc}", code="lexicon_error") from None
    return cached[1]


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
    language = body.get("language")
    if language is not None and not (_TAG.fullmatch(language) and base_language(language) in LANGUAGES):
        raise APIError(400, f"'language' must be a language tag of one of: {', '.join(sorted(LANGUAGES))}",
                       param="language", code="unsupported_language")
    return body


async def normalize_text(request: web.Request) -> web.Response:
    body = _body(await read_body(request), request.app[CONFIG].server.max_input_chars)
    extra = {k: body[k] for k in ("locale", "lexicon", "normalize") if body.get(k) is not None}

    def work() -> tuple[list[TextSegment], str]:
        frontend = _frontend(request.app, body.get("model"))
        try:
            segments = frontend.process(body["input"], language=body.get("language"), extra=extra,
                                        first_max_chars=0)
        except EngineError as exc:
            raise APIError(400, exc.message, param=exc.param, code=exc.code) from None
        language = segments[0].language if segments else frontend.language_for(body["input"], body.get("language"))
        return segments, language

    segments, language = await asyncio.get_running_loop().run_in_executor(request.app[EXECUTOR], work)
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
