"""Reading request bodies: content type, size and JSON errors become OpenAI-shaped 4xx answers."""

from __future__ import annotations

import json

from aiohttp import web

from .errors import APIError


async def read_json(request: web.Request) -> object:
    """The JSON body, or a 4xx naming what is wrong with it."""
    ctype = request.content_type
    if ctype != "application/json":
        raise APIError(415, f"Content-Type must be application/json, got {ctype or 'none'!r}",
                       code="unsupported_media_type")
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        raise APIError(413, "request body is too large", code="request_too_large") from exc
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise APIError(400, f"We could not parse the JSON body of your request: {exc}", code="invalid_json") from exc
