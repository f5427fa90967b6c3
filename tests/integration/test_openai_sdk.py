"""The unchanged official ``openai`` SDK against a real ``vtts serve`` process tree."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import openai
import pytest

from tests.audio import decode, rms

FORMATS = ["mp3", "opus", "aac", "flac", "wav", "pcm"]
TEXT = "Hello from vTTS. This sentence is spoken by the bundled Piper voice."


@pytest.fixture(scope="module")
def client(server) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0) as client:
        yield client


@pytest.mark.parametrize("fmt", FORMATS)
def test_create_in_every_format_is_real_speech(client: openai.OpenAI, fmt: str) -> None:
    response = client.audio.speech.create(model="tts-1", voice="alloy", input=TEXT, response_format=fmt)
    samples, rate = decode(response.content, fmt)
    seconds = samples.size / rate
    words = len(TEXT.split())
    assert 0.2 * words <= seconds <= 0.8 * words, seconds  # ~2-5 words per second
    assert rms(samples) > 0.02
    if fmt == "pcm":
        assert response.response.headers["x-sample-rate"] == "24000"
    assert int(response.response.headers["x-sample-rate"]) == rate


def test_default_format_is_mp3(client: openai.OpenAI) -> None:
    response = client.audio.speech.create(model="tts-1", voice="alloy", input="Short one.")
    assert response.response.headers["content-type"] == "audio/mpeg"
    assert decode(response.content, "mp3")[0].size > 0


@pytest.mark.parametrize("fmt", FORMATS)
def test_streaming_response_arrives_in_chunks_and_decodes_whole(client: openai.OpenAI, fmt: str) -> None:
    text = " ".join(f"This is sentence number {i} of a longer streamed answer." for i in range(1, 6))
    chunks = []
    with client.audio.speech.with_streaming_response.create(
        model="tts-1", voice="nova", input=text, response_format=fmt
    ) as response:
        assert response.headers.get("transfer-encoding") == "chunked"
        for chunk in response.iter_bytes():
            chunks.append(chunk)
    assert len(chunks) > 1
    samples, rate = decode(b"".join(chunks), fmt)
    assert samples.size / rate > 5.0
    assert rms(samples) > 0.02


def test_sse_stream_has_deltas_then_done_with_usage(client: openai.OpenAI) -> None:
    with client.audio.speech.with_streaming_response.create(
        model="gpt-4o-mini-tts", voice="coral", input=TEXT, response_format="pcm", stream_format="sse"
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [json.loads(line[len("data: "):]) for line in response.iter_lines() if line.startswith("data: ")]
    deltas = [e for e in events if e["type"] == "speech.audio.delta"]
    assert deltas and events[-1]["type"] == "speech.audio.done"
    usage = events[-1]["usage"]
    assert usage["input_tokens"] > 0 and usage["output_tokens"] > 0
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    pcm = b"".join(base64.b64decode(e["audio"]) for e in deltas)
    seconds = len(pcm) / 2 / 24000
    # output_tokens are 20 ms frames of audio
    assert abs(usage["output_tokens"] - seconds * 50) <= 2
    assert rms(decode(pcm, "pcm")[0]) > 0.02


def test_speed_changes_duration(client: openai.OpenAI) -> None:
    """Speed 0.5 against 2.0 is 4x in theory. The bundled voice rounds every phoneme up to a whole frame
    inside its graph, which does not scale with speed: on this text the ratio is 2.92 without duration noise,
    and with the voice's noise one pair measured 2.79 mean, sigma 0.15 (30 pairs: 2.44 to 3.12), so one pair
    against 2.5 failed about one run in thirty (2.49 on CI). Three pairs summed have sigma 0.09: 2.3 is more
    than 5 sigma below the mean, and far above the 1.0 of a speed that is ignored."""
    def samples(speed: float) -> int:
        return sum(decode(client.audio.speech.create(model="tts-1", voice="alloy", input=TEXT, response_format="wav",
                                                     speed=speed).content, "wav")[0].size for _ in range(3))

    assert samples(0.5) > 2.3 * samples(2.0)


def test_voice_object_and_native_names(client: openai.OpenAI, server) -> None:
    voices = json.loads(server.get("/v1/audio/voices")[1])["data"]
    native = voices[0]["id"]
    r = client.audio.speech.create(model=voices[0]["model"], voice={"id": native}, input="Hi.", response_format="wav")
    assert decode(r.content, "wav")[0].size > 0


def test_errors_surface_as_sdk_exceptions(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as err:
        client.audio.speech.create(model="no-such-model", voice="alloy", input="x")
    assert err.value.body["code"] == "model_not_found"
    with pytest.raises(openai.BadRequestError) as err:
        client.audio.speech.create(model="tts-1", voice="nobody", input="x")
    assert err.value.body["param"] == "voice"
