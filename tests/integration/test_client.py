"""The package's own Python client (sync and async) against the shared server."""

from __future__ import annotations

import asyncio

import pytest

from tests.audio import decode, rms
from vtts.client import AsyncClient, Client, VTTSError


def test_sync_client_whole_file_and_stream(server) -> None:
    c = Client(server.url)
    data = c.speech("The client speaks.", response_format="wav")
    samples, rate = decode(data, "wav")
    assert rate == 22050 and rms(samples) > 0.02
    chunks = list(c.stream("One sentence. Then another one. And a third.", response_format="pcm"))
    assert len(chunks) >= 2 and rms(decode(b"".join(chunks), "pcm")[0]) > 0.02
    assert [v["id"] for v in c.voices()] == ["en_US-joe-medium"]
    assert "tts-1" in {m["id"] for m in c.models()}


def test_sync_client_raises_openai_shaped_errors(server) -> None:
    with pytest.raises(VTTSError) as err:
        Client(server.url).speech("x", voice="nobody")
    assert err.value.status == 400 and err.value.param == "voice"


def test_async_client(server) -> None:
    async def run() -> tuple[bytes, list[dict]]:
        async with AsyncClient(server.url) as c:
            chunks = [chunk async for chunk in c.stream("Async streaming works. Twice over.", response_format="mp3")]
            with pytest.raises(VTTSError):
                await c.speech("x", model="missing")
            return b"".join(chunks), await c.voices()

    data, voices = asyncio.run(run())
    assert rms(decode(data, "mp3")[0]) > 0.02 and voices
