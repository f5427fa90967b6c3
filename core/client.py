"""A small Python client for a vTTS server (sync and async): whole files or streamed chunks.

The official ``openai`` SDK works too; this client adds no dependency beyond the standard library (sync)
and aiohttp (async, and ``stream_text`` in both), and exposes vTTS extensions (voices listing, ``language``,
``extra``, text streamed in over the WebSocket route).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import secrets
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from typing import Any

#: what ``stream_text`` yields: the server's JSON events as dicts (``audio.start``, ``audio.done``,
#: ``session.done``) and each binary audio frame as bytes
StreamEvent = dict[str, Any] | bytes

CHUNK = 8192


class VTTSError(Exception):
    """An error answer from the server, in OpenAI's shape."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        err = body.get("error", {}) if isinstance(body, dict) else {}
        super().__init__(f"{status}: {err.get('message', body)}")
        self.status = status
        self.code = err.get("code")
        self.param = err.get("param")


#: an audio file for the voice routes: bytes, or a path to read
AudioFile = bytes | str | os.PathLike


def _audio(value: AudioFile) -> tuple[str, bytes]:
    if isinstance(value, bytes):
        return "audio", value
    with open(value, "rb") as f:
        return os.path.basename(os.fspath(value)), f.read()


def _multipart(fields: dict[str, str | None], files: dict[str, AudioFile]) -> tuple[bytes, str]:
    """(body, content type) of a multipart/form-data upload; ``None`` fields are left out."""
    boundary = secrets.token_hex(16)
    out = bytearray()
    for name, value in fields.items():
        if value is not None:
            out += (f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n').encode()
    for name, value in files.items():
        filename, data = _audio(value)
        out += (f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n").encode() + data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"


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

    def _open(self, method: str, path: str, body: dict[str, Any] | None = None,
              form: tuple[bytes, str] | None = None):
        headers = {"Content-Type": form[1] if form else "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        data = form[0] if form else json.dumps(body).encode() if body is not None else None
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

    def _json(self, method: str, path: str, body: dict[str, Any] | None = None,
              form: tuple[bytes, str] | None = None) -> dict[str, Any]:
        with self._open(method, path, body, form) as r:
            return json.load(r)

    # -- custom voices (OpenAI's consent and voice routes; ``transcript``/``language`` are vTTS extensions) --
    def create_consent(self, name: str, recording: AudioFile, language: str = "en") -> dict[str, Any]:
        """Upload a consent recording (bytes or a path); the ``audio.voice_consent`` object."""
        return self._json("POST", "/v1/audio/voice_consents",
                          form=_multipart({"name": name, "language": language}, {"recording": recording}))

    def list_consents(self, after: str | None = None, limit: int = 20) -> dict[str, Any]:
        """One page: ``data``, ``first_id``, ``last_id``, ``has_more``."""
        query = urllib.parse.urlencode({"limit": limit, **({"after": after} if after else {})})
        return self._json("GET", f"/v1/audio/voice_consents?{query}")

    def delete_consent(self, consent_id: str, cascade: bool = False) -> dict[str, Any]:
        """Delete a consent; ``cascade`` deletes the voices made with it too (else they make it a 409)."""
        return self._json("DELETE", f"/v1/audio/voice_consents/{consent_id}" + ("?cascade=true" if cascade else ""))

    def create_voice(self, name: str, audio_sample: AudioFile, consent: str, transcript: str | None = None,
                     language: str | None = None) -> dict[str, Any]:
        """Create a custom voice from a 2–30 s sample; the ``audio.voice`` object (use its ``id`` as
        ``voice={"id": ...}``)."""
        fields = {"name": name, "consent": consent, "transcript": transcript, "language": language}
        return self._json("POST", "/v1/audio/voices", form=_multipart(fields, {"audio_sample": audio_sample}))

    def custom_voices(self) -> list[dict[str, Any]]:
        """The caller's custom voices (each with the models that can speak it)."""
        return [v for v in self.voices() if v.get("object") == "audio.voice"]

    def update_voice(self, voice_id: str, name: str | None = None, transcript: str | None = None) -> dict[str, Any]:
        body = {k: v for k, v in {"name": name, "transcript": transcript}.items() if v is not None}
        return self._json("POST", f"/v1/audio/voices/{voice_id}", body)

    def delete_voice(self, voice_id: str) -> dict[str, Any]:
        return self._json("DELETE", f"/v1/audio/voices/{voice_id}")

    def stream_text(self, texts: Iterable[str], voice: str = "alloy", model: str = "tts-1",
                    response_format: str = "pcm", speed: float = 1.0, **extra: Any) -> Iterator[StreamEvent]:
        """Send ``texts`` (e.g. an LLM's tokens, as they come) over ``/v1/audio/speech/stream`` and yield what
        comes back as it comes: ``audio.start`` dicts, audio bytes, ``audio.done`` dicts, then ``session.done``
        (with ``usage``). Runs :meth:`AsyncClient.stream_text` on a private event loop thread; ``texts`` is
        read on another thread, so a generator that waits for its next token does not stall the audio."""
        out: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=256)
        stop = threading.Event()

        async def tokens() -> AsyncIterator[str]:
            it = iter(texts)
            end = object()
            while (item := await asyncio.to_thread(next, it, end)) is not end:
                yield item  # type: ignore[misc]

        def put(item: tuple[str, Any]) -> bool:
            while not stop.is_set():
                with contextlib.suppress(queue.Full):
                    out.put(item, timeout=0.1)
                    return True
            return False

        async def session() -> None:
            try:
                async with AsyncClient(self.base_url, self.api_key, self.timeout) as client:
                    async for event in client.stream_text(tokens(), voice, model, response_format, speed, **extra):
                        if not await asyncio.to_thread(put, ("event", event)):
                            return
                put(("end", None))
            except BaseException as exc:  # handed to the caller's thread
                put(("raise", exc))

        thread = threading.Thread(target=asyncio.run, args=(session(),), daemon=True, name="vtts-stream-text")
        thread.start()
        try:
            while True:
                kind, value = out.get()
                if kind == "end":
                    return
                if kind == "raise":
                    raise value
                yield value
        finally:
            stop.set()


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

    async def stream_text(self, texts: Iterable[str] | AsyncIterable[str], voice: str = "alloy",
                          model: str = "tts-1", response_format: str = "pcm", speed: float = 1.0,
                          **extra: Any) -> AsyncIterator[StreamEvent]:
        """Send ``texts`` as they come over ``/v1/audio/speech/stream`` (WebSocket) and yield the server's
        events (dicts) and audio frames (bytes) as they arrive, ending with ``session.done``. An ``error``
        event raises :class:`VTTSError`. A plain iterable must not block (use an async one for that)."""
        import aiohttp

        url = "ws" + self.base_url[4:] + "/v1/audio/speech/stream" if self.base_url.startswith("http") else \
            self.base_url + "/v1/audio/speech/stream"
        config = {"type": "session.config", **_payload("", voice, model, response_format, speed, **extra)}
        del config["input"]
        try:
            ws = await self._session.ws_connect(url)
        except aiohttp.WSServerHandshakeError as exc:
            raise VTTSError(exc.status, {"error": {"message": exc.message}}) from None

        async def feed() -> None:
            await ws.send_json(config)
            if isinstance(texts, AsyncIterable):
                async for text in texts:
                    await ws.send_json({"type": "input.text", "text": text})
            else:
                for text in texts:
                    await ws.send_json({"type": "input.text", "text": text})
            await ws.send_json({"type": "input.done"})

        feeder = asyncio.create_task(feed())
        try:
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.BINARY:
                    yield msg.data
                    continue
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
                event = json.loads(msg.data)
                if event.get("type") == "error":
                    err = event.get("error", {})
                    raise VTTSError(400 if err.get("type") == "invalid_request_error" else 500, event)
                yield event
                if event.get("type") == "session.done":
                    return
            if feeder.done() and feeder.exception() is not None:
                raise feeder.exception()  # type: ignore[misc]
            raise VTTSError(502, {"error": {"message": "the server closed the stream before session.done"}})
        finally:
            feeder.cancel()
            with contextlib.suppress(BaseException):
                await feeder
            await ws.close()
