"""The package's own Python client (sync and async) against the shared server."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator

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


def _tokens(text: str) -> Iterator[str]:
    """An LLM-like generator: one word every 30 ms."""
    for word in re.findall(r" ?\S+", text):
        time.sleep(0.03)
        yield word


def test_sync_stream_text_speaks_tokens_sentence_by_sentence(server) -> None:
    events = list(Client(server.url).stream_text(_tokens("Tokens come in slowly. Audio goes out per sentence."),
                                                 response_format="pcm"))
    starts = [e for e in events if isinstance(e, dict) and e["type"] == "audio.start"]
    assert [s["sentence_text"] for s in starts] == ["Tokens come in slowly.", "Audio goes out per sentence."]
    audio = b"".join(e for e in events if isinstance(e, bytes))
    assert rms(decode(audio, "pcm")[0]) > 0.02
    assert events[-1]["type"] == "session.done" and events[-1]["usage"]["output_tokens"] > 0


def test_async_stream_text_and_its_errors(server) -> None:
    async def run() -> list:
        async def words():
            for w in ("Async ", "tokens ", "work."):
                await asyncio.sleep(0.03)
                yield w

        async with AsyncClient(server.url) as c:
            events = [e async for e in c.stream_text(words(), response_format="wav")]
            with pytest.raises(VTTSError) as err:
                async for _ in c.stream_text(["Hello."], voice="nobody"):
                    pass
            assert err.value.param == "voice" and err.value.code == "voice_not_found"
            return events

    events = asyncio.run(run())
    (start,) = [e for e in events if isinstance(e, dict) and e["type"] == "audio.start"]
    assert start["sentence_text"] == "Async tokens work." and start["format"] == "wav"
    assert rms(decode(b"".join(e for e in events if isinstance(e, bytes)), "wav")[0]) > 0.02
