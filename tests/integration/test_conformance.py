"""Conformance (issue 18): every answer of the OpenAI routes vTTS serves, errors included, validated against OpenAI's
schemas (tests/integration/openai_schemas.py says where they come from) with ``jsonschema``, driven by the
unchanged ``openai`` SDK: sync, async and streaming. Every value the request schema enumerates is sent once."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import jsonschema
import openai
import pytest
import websockets.sync.client as wsc
from websockets.exceptions import ConnectionClosed

from tests.audio import decode, rms
from tests.integration import openai_schemas as S
from tests.integration.conftest import KEYED_API_KEY, Server

KEY = KEYED_API_KEY
#: every request body below is first checked against the request schema, so the suite sends only what
#: OpenAI's own clients may send
REQUEST = jsonschema.Draft202012Validator(S.CREATE_SPEECH_REQUEST)


def check(instance: Any, schema: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(instance)


@pytest.fixture(scope="module")
def srv(keyed_server: Server) -> Server:
    return keyed_server


@pytest.fixture(scope="module")
def client(srv: Server) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=srv.url + "/v1", api_key=KEY, max_retries=0) as c:
        yield c


def speech(client: openai.OpenAI, **params: Any) -> bytes:
    body = {"input": "Conformance.", **params}
    REQUEST.validate(body)
    return client.audio.speech.create(**body).content


def test_every_enumerated_model_voice_and_format_is_served(client: openai.OpenAI) -> None:
    props = S.CREATE_SPEECH_REQUEST["properties"]
    for model in props["model"]["anyOf"][1]["enum"]:
        assert rms(decode(speech(client, model=model, voice="alloy", response_format="pcm"), "pcm")[0]) > 0.02
    for voice in props["voice"]["anyOf"][1]["enum"] + [{"id": "en_US-joe-medium"}]:
        assert len(speech(client, model="tts-1", voice=voice, response_format="pcm")) > 1000
    for fmt in props["response_format"]["enum"]:
        samples, _ = decode(speech(client, model="tts-1", voice="alloy", response_format=fmt), fmt)
        assert rms(samples) > 0.02
    for speed in (props["speed"]["minimum"], props["speed"]["maximum"]):
        assert len(speech(client, model="tts-1", voice="alloy", response_format="pcm", speed=speed)) > 100
    long_input = "word " * 818 + "end."  # the longest input the schema allows is accepted (first bytes only)
    body = {"model": "tts-1", "voice": "alloy", "input": long_input, "response_format": "pcm",
            "instructions": "x" * props["instructions"]["maxLength"]}
    assert len(long_input) == props["input"]["maxLength"] - 2
    REQUEST.validate(body)
    with client.audio.speech.with_streaming_response.create(**body) as response:
        assert next(response.iter_bytes())


def test_sse_events_match_the_event_schemas(client: openai.OpenAI) -> None:
    body = {"model": "gpt-4o-mini-tts", "voice": "nova", "input": "One event stream. Two sentences.",
            "response_format": "mp3", "stream_format": "sse"}
    REQUEST.validate(body)
    events = []
    with client.audio.speech.with_streaming_response.create(**body) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
    *deltas, done = events
    assert deltas
    for e in deltas:
        check(e, S.SPEECH_AUDIO_DELTA_EVENT)
    check(done, S.SPEECH_AUDIO_DONE_EVENT)
    audio = b"".join(base64.b64decode(e["audio"]) for e in deltas)
    assert rms(decode(audio, "mp3")[0]) > 0.02


def test_async_sdk_concurrent_and_streamed(srv: Server) -> None:
    async def run() -> tuple[list[bytes], bytes]:
        async with openai.AsyncOpenAI(base_url=srv.url + "/v1", api_key=KEY, max_retries=0) as c:
            whole = await asyncio.gather(*(
                c.audio.speech.create(model="tts-1", voice=v, input=f"Async request {i}.", response_format="wav")
                for i, v in enumerate(("alloy", "echo", "sage", "cedar"))))
            chunks = []
            async with c.audio.speech.with_streaming_response.create(
                    model="tts-1-hd", voice="onyx", input="Streamed. In chunks. As it is made.",
                    response_format="opus") as r:
                async for chunk in r.iter_bytes():
                    chunks.append(chunk)
            page = await c.models.list()
            check({"object": page.object, "data": [m.model_dump() for m in page.data]}, S.LIST_MODELS_RESPONSE)
            return [w.content for w in whole], b"".join(chunks)

    whole, streamed = asyncio.run(run())
    assert all(rms(decode(w, "wav")[0]) > 0.02 for w in whole)
    assert rms(decode(streamed, "opus")[0]) > 0.02


def test_models_list_and_retrieve_match_the_schemas(client: openai.OpenAI) -> None:
    raw = client.models.with_raw_response.list()
    listing = json.loads(raw.http_response.content)
    check(listing, S.LIST_MODELS_RESPONSE)
    for model in listing["data"]:
        one = client.models.with_raw_response.retrieve(model["id"])
        check(json.loads(one.http_response.content), S.MODEL)


def sdk_error(call) -> tuple[int, dict]:
    with pytest.raises(openai.APIStatusError) as err:
        call()
    return err.value.status_code, err.value.response.json()


@pytest.mark.parametrize(("params", "status"), [
    ({"voice": "nobody"}, 400),
    ({"model": "whisper-9"}, 404),
    ({"speed": 9.0}, 400),
    ({"input": ""}, 400),
    ({"input": "x" * 4097}, 400),
    ({"response_format": "ogg"}, 400),
    ({"stream_format": "ws"}, 400),
])
def test_sdk_errors_match_the_error_schema(client: openai.OpenAI, params: dict, status: int) -> None:
    body = {"model": "tts-1", "voice": "alloy", "input": "Hi.", **params}
    got, answer = sdk_error(lambda: client.audio.speech.create(**body))
    assert got == status
    check(answer, S.ERROR_RESPONSE)


def test_auth_and_lookup_errors_match_the_error_schema(srv: Server, client: openai.OpenAI) -> None:
    with openai.OpenAI(base_url=srv.url + "/v1", api_key="wrong", max_retries=0) as bad:
        for call in (bad.models.list, lambda: bad.audio.speech.create(model="tts-1", voice="alloy", input="x")):
            status, answer = sdk_error(call)
            assert status == 401
            check(answer, S.ERROR_RESPONSE)
            assert answer["error"]["type"] == "invalid_request_error"
    status, answer = sdk_error(lambda: client.models.retrieve("whisper-9"))
    assert status == 404
    check(answer, S.ERROR_RESPONSE)


@pytest.mark.parametrize(("method", "path", "body", "content_type", "status"), [
    ("GET", "/v1/nowhere", None, None, 404),
    ("DELETE", "/v1/audio/speech", None, None, 405),
    ("POST", "/v1/audio/speech", b"{}", "text/plain", 415),
    ("POST", "/v1/audio/speech", b"{not json", "application/json", 400),
    ("POST", "/v1/audio/speech", b"x" * (2 << 20), "application/json", 413),
])
def test_raw_http_errors_match_the_error_schema(srv: Server, method: str, path: str, body: bytes | None,
                                               content_type: str | None, status: int) -> None:
    headers = {"Authorization": f"Bearer {KEY}", **({"Content-Type": content_type} if content_type else {})}
    req = urllib.request.Request(srv.url + path, data=body, method=method, headers=headers)
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=30)
    with err.value:
        assert err.value.code == status
        check(json.loads(err.value.read()), S.ERROR_RESPONSE)


def test_open_webui_lists_match_what_it_reads(srv: Server) -> None:
    for path, schema in (("/v1/audio/voices", S.OPEN_WEBUI_VOICES), ("/v1/audio/models", S.OPEN_WEBUI_MODELS)):
        status, raw = srv.get(path, headers={"Authorization": f"Bearer {KEY}"})
        assert status == 200
        check(json.loads(raw), schema)


def test_websocket_events_match_their_schema(srv: Server) -> None:
    url = f"ws://127.0.0.1:{srv.port}/v1/audio/speech/stream"
    for config, texts in (({"voice": "alloy", "response_format": "pcm"}, ["Two sentences. ", "Both spoken."]),
                          ({"voice": "nobody"}, [])):
        with wsc.connect(url, additional_headers={"Authorization": f"Bearer {KEY}"}) as conn:
            conn.send(json.dumps({"type": "session.config", **config}))
            if texts:  # (after a refused config the server has closed: nothing more may be sent)
                for t in texts:
                    conn.send(json.dumps({"type": "input.text", "text": t}))
                conn.send(json.dumps({"type": "input.done"}))
            events = []
            with contextlib.suppress(ConnectionClosed):  # an error closes with 1008
                for msg in conn:
                    if isinstance(msg, str):
                        events.append(json.loads(msg))
        assert events and events[-1]["type"] == ("session.done" if texts else "error")
        for e in events:
            check(e, S.WS_EVENT)
