"""Reading request bodies: content type, size, encoding and JSON errors become OpenAI-shaped 4xx answers.

Every route that takes a body reads it here, so the bounds hold everywhere: at most ``MAX_BODY_BYTES``
(checked against Content-Length before a ``100 Continue`` is sent), a compressed body that does not
decompress is a 400, and JSON nested deeper than ``MAX_JSON_DEPTH`` is a 400 before any code recurses on it.
"""

from __future__ import annotations

import json

from aiohttp import web
from aiohttp.web_urldispatcher import _default_expect_handler

from .errors import APIError

#: the largest request body accepted (the app's ``client_max_size``)
MAX_BODY_BYTES = 1024 * 1024
#: JSON nesting allowed in any body; Python's parser raises RecursionError near 1000
MAX_JSON_DEPTH = 64


def too_large() -> APIError:
    return APIError(413, f"request body is larger than {MAX_BODY_BYTES} bytes", code="request_too_large")


async def expect_within_limit(request: web.Request) -> web.StreamResponse | None:
    """``Expect: 100-continue`` handler: a declared body over the limit gets its 413 at once, so the client
    never uploads it; otherwise aiohttp's usual ``100 Continue``."""
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        return too_large().response()
    return await _default_expect_handler(request)


async def read_body(request: web.Request) -> bytes:
    """The raw (decompressed) body, or a 413/400."""
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        raise too_large() from exc
    except web.RequestPayloadError as exc:  # e.g. Content-Encoding: gzip with a body that is not gzip
        encoding = request.headers.get("Content-Encoding", "identity")
        raise APIError(400, f"the request body could not be decoded (Content-Encoding: {encoding})",
                       code="invalid_body") from exc


def parse_json(raw: bytes) -> object:
    """Parse a JSON document, refusing nesting deeper than ``MAX_JSON_DEPTH``."""
    try:
        value = json.loads(raw)
    except RecursionError:
        value = None
        depth = MAX_JSON_DEPTH + 1
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, an integer over Python's digit limit
        raise APIError(400, f"We could not parse the JSON body of your request: {exc}", code="invalid_json") from exc
    else:
        # a document with fewer brackets than the bound cannot be nested deeper: skip the walk
        depth = json_depth(value) if raw.count(b"[") + raw.count(b"{") > MAX_JSON_DEPTH else 0
    if depth > MAX_JSON_DEPTH:
        # name the field that holds the deep value where the parser got that far
        param = next((k for k, v in value.items() if json_depth(v) >= MAX_JSON_DEPTH), None) \
            if isinstance(value, dict) else None
        raise APIError(400, f"the JSON body is nested more than {MAX_JSON_DEPTH} levels deep"
                       + (f" (in {param!r})" if param else ""), param=param, code="invalid_json")
    return value


def json_depth(value: object) -> int:
    """Nesting depth of a parsed JSON value (a scalar is 0), without recursion."""
    deepest = 0
    stack = [(value, 0)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, dict):
            v = v.values()
        elif not isinstance(v, list):
            continue
        deepest = max(deepest, depth + 1)
        if deepest > MAX_JSON_DEPTH:
            break
        stack.extend((x, depth + 1) for x in v if isinstance(x, (list, dict)))
    return deepest


async def read_json(request: web.Request) -> object:
    """The JSON body, or a 4xx naming what is wrong with it."""
    ctype = request.content_type
    if ctype != "application/json":
        raise APIError(415, f"Content-Type must be application/json, got {ctype or 'none'!r}",
                       code="unsupported_media_type")
    return parse_json(await read_body(request))
