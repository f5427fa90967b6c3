"""Bearer keys: one parser for the API keys (/v1) and the admin keys (/admin)."""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from aiohttp import web


def bearer_token(request: web.Request) -> str:
    """The token of an ``Authorization: Bearer TOKEN`` header, or "" when there is none."""
    header = request.headers.get("Authorization", "")
    return header[7:].strip() if header[:7].lower() == "bearer " else ""


def key_matches(token: str, keys: Iterable[str]) -> bool:
    """Constant-time comparison against every key. aiohttp decodes header bytes that are not UTF-8 with
    surrogateescape, so such a token is encoded back the same way (and matches no key) instead of raising."""
    raw = token.encode("utf-8", "surrogateescape")
    return any(hmac.compare_digest(raw, k.encode()) for k in keys)
