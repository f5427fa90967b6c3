"""A small Python client for a vTTS server (sync and async): whole files or streamed chunks.

The official ``openai`` SDK works too; this client adds no dependency beyond the standard library (sync)
and aiohttp (async), and exposes vTTS extensions (voices listing, ``language``, ``extra``).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from typing import Any

CHUNK = 8192


class VTTSError(Exception):
    """An error answer from the server, in OpenAI's shape."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        err = body.get("error", {}) if isinstance(body, dict) else {}
        super().__init__(f"{status}: {err.get('message', body)}")
        self.status = status
        self.code = err.get("code")
        self.param = err.get("param")


def _payload(text: str, voice: str, model: str, response_format: str, speed: float, **kw: Any) -> dict[str, Any]:
    body = {"model": model, "input": text, "voice": voice, "response_format": response_format, "speed": speed}
    body.update({k: v for k, v in kw.items() if v is not None})
    return body


class Client:
    """Blocking client (urllib)."""

    def __init__(self, base_url: str = "http://127.0.0.1:8000", api_key: str | None = None, timeout: float = 120):
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout

    def _open(self, method: str, path: str, body: dict[str, Any] | None = None):
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base_url + path, data=data, headers=headers, method=method)
        try:
            return urllib.request.urlopen(req, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            try:
                payload = json.loads(exc.read() or b"{}")
            except json.JSONDecodeError:
                payload = {}
            raise VTTSError(exc.code, payload) from None

    def stream(self, text: str, voice: str = "alloy", model: str = "tts-1", response_format: str = "mp3",
               speed: float = 1.0, **extra: Any) -> Iterator[bytes]:
        """Yield encoded audio chunks as the server makes them."""
        with self._open("POST", "/v1/audio/speech", _payload(text, voice, model, response_format, speed, **extra)) as r:
            while chunk := r.read1(CHUNK) if hasattr(r, "read1") else r.read(CHUNK):
                yield chunk

    def speech(self, text: str, voice: str = "alloy", model: str = "tts-1", response_format: str = "mp3",
               speed: float = 1.0, **extra: Any) -> bytes:
        """The whole audio file."""
        return b"".join(self.stream(text, voice, model, response_format, speed, **extra))

    def voices(self) -> list[dict[str, Any]]:
        with self._open("GET", "/v1/audio/voices") as r:
            return json.load(r)["data"]

    def models(self) -> list[dict[str, Any]]:
        with self._open("GET", "/v1/models") as r:
            return json.load(r)["data"]


class AsyncClient:
    """Asyncio client (aiohttp); use as ``async with AsyncClient(url) as c``."""

    def __init__(self, base_url: str = "http://127.0.0.1:8000", api_key: str | None = None, timeout: float = 120):
        import aiohttp

        self.base_url = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._session = aiohttp.ClientSession(headers=headers, timeout=aiohttp.ClientTimeout(total=timeout))

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._session.close()

    async def stream(self, text: str, voice: str = "alloy", model: str = "tts-1", response_format: str = "mp3",
                     speed: float = 1.0, **extra: Any) -> AsyncIterator[bytes]:
        """Yield encoded audio chunks as the server makes them."""
        body = _payload(text, voice, model, response_format, speed, **extra)
        async with self._session.post(self.base_url + "/v1/audio/speech", json=body) as r:
            if r.status >= 400:
                raise VTTSError(r.status, await r.json(content_type=None))
            async for chunk in r.content.iter_any():
                yield chunk

    async def speech(self, text: str, voice: str = "alloy", model: str = "tts-1", response_format: str = "mp3",
                     speed: float = 1.0, **extra: Any) -> bytes:
        return b"".join([c async for c in self.stream(text, voice, model, response_format, speed, **extra)])

    async def voices(self) -> list[dict[str, Any]]:
        async with self._session.get(self.base_url + "/v1/audio/voices") as r:
            if r.status >= 400:
                raise VTTSError(r.status, await r.json(content_type=None))
            return (await r.json())["data"]
