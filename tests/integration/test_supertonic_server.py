"""``vtts serve`` with a tiny Supertonic model next to the bundled Piper voice, driven by the ``openai`` SDK."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import openai
import pytest

from tests.audio import decode, rms
from tests.integration.conftest import Server, start_server
from tests.tiny_models import make_tiny_supertonic
from vtts.workers.engine import SynthesisParams, WorkItem
from vtts.workers.engines.supertonic import SupertonicEngine

FORMATS = ["mp3", "opus", "aac", "flac", "wav", "pcm"]
TEXT = "Hello from a tiny Supertonic model, served by vTTS."
CONFIG = """
[[models]]
id = "piper-joe"
engine = "piper"
model = "en_US-joe-medium"
# no warm-up at load (about 1 s of the start on 2 cores): nothing here measures memory
options = {{ warmup = false }}

[[models]]
id = "supertonic-tiny"
engine = "supertonic"
model = "{path}"
options = {{ total_steps = 4 }}
voice_aliases = {{ nova = "F2" }}
"""


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_supertonic(tmp_path_factory.mktemp("supertonic") / "tiny-v2", 2)


@pytest.fixture(scope="module")
def server(model_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("supertonic-server")
    cfg = tmp / "vtts.toml"
    cfg.write_text(CONFIG.format(path=model_dir))
    srv = start_server(["--config", str(cfg)], tmp, env={"HF_HUB_OFFLINE": "1"})
    yield srv
    _, left = srv.stop()
    assert not left


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0) as client:
        yield client


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format(client: openai.OpenAI, fmt: str) -> None:
    response = client.audio.speech.create(model="supertonic-tiny", voice="M3", input=TEXT, response_format=fmt)
    samples, rate = decode(response.content, fmt)
    seconds = samples.size / rate
    assert 0.03 * len(TEXT) < seconds < 0.08 * len(TEXT), seconds  # the tiny model's ~55 ms per character
    assert rms(samples) > 0.02
    assert int(response.response.headers["x-sample-rate"]) == rate
    if fmt == "wav":
        assert rate == 44100


@pytest.mark.parametrize("fmt", ["mp3", "wav", "pcm"])
def test_streams_per_segment(client: openai.OpenAI, fmt: str) -> None:
    text = " ".join(f"Sentence number {i} of a streamed answer." for i in range(1, 5))
    with client.audio.speech.with_streaming_response.create(
        model="supertonic-tiny", voice="nova", input=text, response_format=fmt
    ) as response:
        assert response.headers.get("transfer-encoding") == "chunked"
        chunks = list(response.iter_bytes())
    assert len(chunks) > 1
    samples, rate = decode(b"".join(chunks), fmt)
    assert samples.size / rate > 4 * 0.3  # four segments and the silences between them


def test_sse_and_usage(client: openai.OpenAI) -> None:
    with client.audio.speech.with_streaming_response.create(
        model="supertonic-tiny", voice="F1", input=TEXT, response_format="pcm", stream_format="sse"
    ) as response:
        events = [json.loads(line[6:]) for line in response.iter_lines() if line.startswith("data: ")]
    assert events[-1]["type"] == "speech.audio.done" and events[-1]["usage"]["input_tokens"] > len(TEXT)
    pcm = b"".join(base64.b64decode(e["audio"]) for e in events if e["type"] == "speech.audio.delta")
    assert rms(decode(pcm, "pcm")[0]) > 0.02


def test_sse_timestamps(client: openai.OpenAI) -> None:
    """``extra.timestamps`` works on SSE for Supertonic as for Kokoro: the input's words, in order, on the
    request's timeline (the second segment's words after the first's)."""
    with client.audio.speech.with_streaming_response.create(
        model="supertonic-tiny", voice="F1", input="Hello there. Dr. Smith paid $5.", response_format="pcm",
        stream_format="sse", extra_body={"extra": {"timestamps": True}}
    ) as response:
        events = [json.loads(line[6:]) for line in response.iter_lines() if line.startswith("data: ")]
    words = [w for e in events if e["type"] == "speech.audio.timestamps" for w in e["words"]]
    assert [w["word"] for w in words] == ["Hello", "there", "Dr", "Smith", "paid", "5"]
    starts = [w["start"] for w in words]
    assert starts == sorted(starts) and words[2]["start"] > words[1]["end"] + 0.2  # the gap between segments
    pcm = b"".join(base64.b64decode(e["audio"]) for e in events if e["type"] == "speech.audio.delta")
    samples, rate = decode(pcm, "pcm")
    assert words[-1]["end"] <= samples.size / rate + 1e-3


def test_piper_from_the_same_frontend(client: openai.OpenAI, server: Server) -> None:
    response = client.audio.speech.create(model="piper-joe", voice="alloy", input="Piper is here too.",
                                          response_format="wav")
    samples, rate = decode(response.content, "wav")
    assert rate == 22050 and samples.size / rate > 0.5
    voices = json.loads(server.get("/v1/audio/voices")[1])["data"]
    assert {v["model"] for v in voices} >= {"piper-joe", "supertonic-tiny"}
    assert {v["id"] for v in voices if v["model"] == "supertonic-tiny"} >= {"F1", "M5"}


def _alone(engine: SupertonicEngine, text: str, voice: str, language: str | None, seed: int) -> np.ndarray:
    params = SynthesisParams(voice=voice, language=language, extra={"seed": seed, "first_segment": "sentence"})
    (segment,) = engine.prepare(text, params)
    item = WorkItem("x", 0, segment, params)
    while not (out := engine.step([item])[0]).finished:
        pass
    return out.audio


def test_concurrent_requests_batch_and_each_sounds_as_alone(client: openai.OpenAI, model_dir: Path) -> None:
    """Concurrent requests of different voices and languages share the worker's steps; each one's wav is
    the engine's audio for it alone (to 16-bit rounding)."""
    jobs = [("First request, in English.", "F1", "en", 1),
            ("\uc548\ub155\ud558\uc138\uc694, \ubc18\uac11\uc2b5\ub2c8\ub2e4.", "M2", "ko", 2),
            ("\u00bfQu\u00e9 tal, amigo?", "F4", "es", 3),
            ("A fourth, somewhat longer request, to pad the batch.", "M5", "en", 4)]

    def call(job: tuple[str, str, str, int]) -> bytes:
        text, voice, lang, seed = job
        return client.audio.speech.create(model="supertonic-tiny", voice=voice, input=text, response_format="wav",
                                          extra_body={"language": lang,
                                                      "extra": {"seed": seed, "first_segment": "sentence"}}).content

    with ThreadPoolExecutor(len(jobs)) as pool:
        bodies = list(pool.map(call, jobs))
    engine = SupertonicEngine.load(str(model_dir), options={"total_steps": 4})
    for job, body in zip(jobs, bodies, strict=True):
        served, rate = decode(body, "wav")
        expected = _alone(engine, *job)
        assert rate == 44100 and served.size == expected.size
        assert np.max(np.abs(served - np.clip(expected, -1, 1))) < 2.0 / 32767


@pytest.mark.parametrize(("body", "param"), [
    ({"language": "xx"}, "language"),
    ({"extra": {"total_steps": 0}}, "extra.total_steps"),
    ({"extra": {"silence_s": "long"}}, "extra.silence_s"),
])
def test_bad_requests_are_400s_naming_the_parameter(client: openai.OpenAI, body: dict, param: str) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        client.audio.speech.create(model="supertonic-tiny", voice="F1", input="Hi.", extra_body=body)
    assert err.value.body["param"] == param


def test_unreadable_characters_are_named(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        client.audio.speech.create(model="supertonic-tiny", voice="F1", input="\u5b57 is Chinese.")
    assert err.value.body["param"] == "input" and "U+5B57" in err.value.body["message"]
