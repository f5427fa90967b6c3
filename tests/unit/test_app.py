"""The frontend app in-process: the error middleware's counting (issue 12 #12), and every route and the
HTTP error matrix of ``/v1/audio/speech`` against a fake worker (issue 13)."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import shutil
import tempfile
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
import zmq
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer

from vtts import config as cfg
from vtts import protocol as P
from vtts.frontend.app import build_app, error_middleware
from vtts.frontend.body import MAX_BODY_BYTES
from vtts.frontend.encoders import ALL_FORMATS, CONTENT_TYPES
from vtts.frontend.errors import APIError
from vtts.frontend.metrics import Metrics
from vtts.frontend.state import METRICS, POOL


async def _boom(request: web.Request) -> web.Response:
    raise RuntimeError("a bug")


async def _counted(request: web.Request) -> web.Response:
    exc = APIError(503, "no worker", code="model_not_ready")
    request.app[METRICS].requests.labels("m", "503").inc()  # as create_speech does for its refusals
    exc.counted = True
    raise exc


def _count(metrics: Metrics, model: str, status: str) -> float:
    return metrics.registry.get_sample_value("vtts_requests_total", {"model": model, "status": status}) or 0.0


def test_unhandled_errors_are_counted_once() -> None:
    async def run() -> Metrics:
        app = web.Application(middlewares=[error_middleware])
        app[METRICS] = metrics = Metrics()
        app.router.add_get("/boom", _boom)
        app.router.add_get("/counted", _counted)
        async with TestClient(TestServer(app)) as client:
            for _ in range(3):
                r = await client.get("/boom")
                assert r.status == 500 and (await r.json())["error"]["code"] == "internal_error"
            assert (await client.get("/counted")).status == 503
            assert (await client.get("/missing")).status == 404
        return metrics

    metrics = asyncio.run(run())
    assert _count(metrics, "", "500") == 3
    assert _count(metrics, "m", "503") == 1 and _count(metrics, "", "503") == 0
    assert _count(metrics, "", "404") == 0  # client errors outside speech stay uncounted, as before


# -- the whole app in-process, against a fake worker (issue 13) ---------------------------------------------
#
# ``build_app`` with its real pool and supervisor link; a thread plays the worker (a DEALER on the pool's
# endpoint) and the supervisor (a ROUTER on the control endpoint), speaking core/protocol.py over ipc:// in a
# temporary directory: no engine, no subprocess, each test well under a second.

WORKER_ID = "fake-0"
RATE = 24000
VOICES = [{"id": "af_one", "name": "One", "language": "en-US", "sample_rate": RATE, "description": "first"},
          {"id": "bm_two", "name": "Two", "language": "en-GB", "sample_rate": RATE}]
USAGE = {"input_tokens": 7, "output_tokens": 10, "total_tokens": 17}
#: texts the fake worker answers with an error before any audio: text -> (code, HTTP status, param)
REFUSALS = {
    "queue full": (P.ErrorCode.QUEUE_FULL, 429, None),
    "engine broke": (P.ErrorCode.ENGINE_ERROR, 500, None),
    "bad knob": (P.ErrorCode.INVALID_REQUEST, 400, "extra.knob"),
}
#: a text the fake worker answers with one chunk of audio, then an error
FAILS_MIDWAY = "fails midway"
#: a text the fake worker refuses when asked for word timings, as an engine without them does
NO_TIMESTAMPS = "cannot time words"


def _chunk(seconds: float = 0.05) -> bytes:
    t = np.arange(int(RATE * seconds)) / RATE
    return (np.sin(2 * np.pi * 440 * t) * 8000).astype("<i2").tobytes()


class FakeBackend(threading.Thread):
    """The supervisor (answers every ``Admin``; ``ensure`` fails with ``ensure_error`` when one is given)
    and, once :meth:`add_worker` was called, one worker of model ``fake``: a ready ``Status``, then ``Audio``
    + ``Done`` for each ``Synthesize`` (or the error :data:`REFUSALS` names for its text). Every message
    received is kept in :attr:`received`."""

    def __init__(self, endpoint: str, control: str, ensure_error: str = "") -> None:
        super().__init__(name="fake-backend", daemon=True)
        self.endpoint, self.control, self.ensure_error = endpoint, control, ensure_error
        self.ctx = zmq.Context()
        self.admin = self.ctx.socket(zmq.ROUTER)
        self.admin.setsockopt(zmq.LINGER, 0)
        self.admin.bind(control)
        self.worker: zmq.Socket | None = None
        self._want_worker = threading.Event()
        self._halt = threading.Event()
        self.received: list[P.Message] = []

    def add_worker(self) -> None:
        self._want_worker.set()

    def status(self) -> P.Status:
        return P.Status(worker_id=WORKER_ID, model="fake", pid=os.getpid(), state="ready", engine="fake",
                        sample_rate=RATE, voices=VOICES, max_queue=8, capacity=4)

    def run(self) -> None:
        poller = zmq.Poller()
        poller.register(self.admin, zmq.POLLIN)
        while not self._halt.is_set():
            if self._want_worker.is_set() and self.worker is None:
                self.worker = self.ctx.socket(zmq.DEALER)
                self.worker.setsockopt(zmq.IDENTITY, WORKER_ID.encode())
                self.worker.setsockopt(zmq.LINGER, 0)
                self.worker.connect(self.endpoint)
                self.worker.send(P.encode(self.status()))
                poller.register(self.worker, zmq.POLLIN)
            events = dict(poller.poll(20))
            if events.get(self.admin):
                ident, frame = self.admin.recv_multipart()
                msg = P.decode(frame)
                assert isinstance(msg, P.Admin)
                self.received.append(msg)
                ok = not self.ensure_error or msg.op != "ensure"
                reply = P.AdminReply(msg.id, ok, 200 if ok else 503, "" if ok else self.ensure_error,
                                     "" if ok else f"cannot load it: {self.ensure_error}", models=[])
                self.admin.send_multipart([ident, P.encode(reply)])
            if self.worker is not None and events.get(self.worker):
                msg = P.decode(self.worker.recv())
                self.received.append(msg)
                if isinstance(msg, P.Synthesize):
                    for reply in self.answer(msg):
                        self.worker.send(P.encode(reply))
        for sock in (self.admin, self.worker):
            if sock is not None:
                sock.close(linger=0)
        self.ctx.term()

    def answer(self, msg: P.Synthesize) -> list[P.Message]:
        if msg.text in REFUSALS:
            code, status, param = REFUSALS[msg.text]
            return [P.Error(msg.id, code, f"refused: {msg.text}", param, status=status)]
        if msg.text == NO_TIMESTAMPS and "timestamps" in msg.extra:
            return [P.Error(msg.id, P.ErrorCode.INVALID_REQUEST, "unknown extra field 'timestamps'",
                            "extra.timestamps", status=400)]
        # the text's words as the engine names them, 10 ms each, the way Piper and Kokoro time what they say
        words = [{"word": w, "start": i / 100, "end": (i + 1) / 100} for i, w in enumerate(msg.text.split())] \
            if msg.extra.get("timestamps") else []
        first = P.Audio(msg.id, 0, RATE, _chunk(), timestamps=words)
        if msg.text == FAILS_MIDWAY:
            return [first, P.Error(msg.id, P.ErrorCode.ENGINE_ERROR, "broke after the first chunk", status=500)]
        return [first, P.Audio(msg.id, 1, RATE, _chunk()),
                P.Done(msg.id, usage=USAGE, timings={"audio_s": 0.1, "engine_s": 0.01, "queue_wait_s": 0.0})]

    def stop(self) -> None:
        self._halt.set()
        self.join(5)


MODEL = {"id": "fake", "engine": "piper", "model": "x", "aliases": ["fake-alias"],
         "voice_aliases": {"nova": "bm_two"}}


@asynccontextmanager
async def serving(server: dict[str, Any] | None = None, worker: bool = True,
                  ensure_error: str = "") -> AsyncIterator[tuple[TestClient, FakeBackend]]:
    """The app on an ephemeral port, its pool and supervisor link on ipc:// sockets of a fresh directory
    (short: a socket path is limited to about 100 bytes), and the fake backend behind them."""
    run_dir = tempfile.mkdtemp(prefix="vtts-app-")
    endpoint, control = f"ipc://{run_dir}/w.sock", f"ipc://{run_dir}/c.sock"
    config = cfg.parse({"server": {"run_dir": run_dir, **(server or {})}, "models": [MODEL]})
    backend = FakeBackend(endpoint, control, ensure_error)
    backend.start()
    try:
        async with TestClient(TestServer(build_app(config, endpoint, control))) as client:
            if worker:
                backend.add_worker()
                pool = client.app[POOL]
                for _ in range(500):
                    if pool.ready_workers("fake"):
                        break
                    await asyncio.sleep(0.01)
                assert pool.ready_workers("fake"), "the fake worker never became ready"
            yield client, backend
    finally:
        backend.stop()
        shutil.rmtree(run_dir, ignore_errors=True)


def _run(body: Callable[[TestClient, FakeBackend], Awaitable[None]], **kwargs: Any) -> None:
    async def main() -> None:
        async with serving(**kwargs) as (client, backend):
            await body(client, backend)

    asyncio.run(main())


async def _error(r: ClientResponse) -> dict[str, Any]:
    """The OpenAI-shaped error body of ``r`` (asserting the shape)."""
    assert r.content_type == "application/json", await r.text()
    error = (await r.json())["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    return error


def _speech(**fields: Any) -> dict[str, Any]:
    return {"model": "fake", "input": "Hello there.", "voice": "af_one", "response_format": "wav", **fields}


#: (body, expected param, expected code); each a 400 from /v1/audio/speech
FIELD_ERRORS: list[tuple[Any, str | None, str]] = [
    ([1, 2], None, "invalid_type"),
    ({"input": "hi", "voice": "af_one"}, "model", "missing_required_parameter"),
    (_speech(model=""), "model", "invalid_value"),
    (_speech(model=3), "model", "invalid_type"),
    ({"model": "fake", "voice": "af_one"}, "input", "missing_required_parameter"),
    (_speech(input="   "), "input", "empty_input"),
    (_speech(input="x" * 101), "input", "string_above_max_length"),
    (_speech(input="hi \ud800"), "input", "invalid_unicode"),
    ({"model": "fake", "input": "hi"}, "voice", "missing_required_parameter"),
    (_speech(voice=7), "voice", "invalid_type"),
    (_speech(voice={"id": ""}), "voice", "invalid_type"),
    (_speech(voice="nobody"), "voice", "voice_not_found"),
    (_speech(response_format="ogg"), "response_format", "invalid_value"),
    (_speech(stream_format="chunks"), "stream_format", "invalid_value"),
    (_speech(speed="fast"), "speed", "invalid_type"),
    (_speech(speed=10), "speed", "invalid_value"),
    (_speech(language="english please"), "language", "invalid_value"),
    (_speech(instructions=5), "instructions", "invalid_type"),
    (_speech(instructions="x" * 5000), "instructions", "invalid_value"),
    (_speech(extra=[1]), "extra", "invalid_type"),
    (_speech(extra={"sample_rate": 5}), "extra", "invalid_value"),
    (_speech(extra={"a": float("inf")}), "extra", "invalid_value"),  # json.dumps writes Infinity
    (_speech(temperature=0.5), "temperature", "unknown_parameter"),
    (_speech(input="bad knob"), "extra.knob", P.ErrorCode.INVALID_REQUEST),  # refused by the worker
]


def test_speech_field_errors_are_400s_naming_the_field() -> None:
    async def body(client: TestClient, backend: FakeBackend) -> None:
        wrong = []
        for doc, param, code in FIELD_ERRORS:
            r = await client.post("/v1/audio/speech", data=json.dumps(doc), headers=JSON)
            error = await _error(r)
            if (r.status, error["param"], error["code"], error["type"]) != (400, param, code,
                                                                            "invalid_request_error"):
                wrong.append((str(doc)[:60], r.status, error))
        assert not wrong
        r = await client.post("/v1/audio/speech", data=b"{not json", headers=JSON)
        assert r.status == 400 and (await _error(r))["code"] == "invalid_json"
        # only the request the worker refused reached it: the others were refused in the frontend
        assert [m.text for m in backend.received if isinstance(m, P.Synthesize)] == ["bad knob"]

    _run(body, server={"max_input_chars": 100})


JSON = {"Content-Type": "application/json"}


def test_speech_4xx_matrix() -> None:
    """401 (missing, wrong key), 404 (model, route), 405, 413, 415: OpenAI-shaped, each with its code."""

    async def body(client: TestClient, backend: FakeBackend) -> None:
        auth = {"Authorization": "Bearer k1", **JSON}
        r = await client.post("/v1/audio/speech", json=_speech())
        assert r.status == 401 and (await _error(r))["code"] == "invalid_api_key"
        r = await client.post("/v1/audio/speech", json=_speech(), headers={"Authorization": "Bearer nope"})
        assert r.status == 401 and "Incorrect API key" in (await _error(r))["message"]
        r = await client.post("/v1/audio/speech", json=_speech(model="gpt-9"), headers=auth)
        error = await _error(r)
        assert r.status == 404 and (error["code"], error["param"]) == ("model_not_found", "model")
        r = await client.post("/v1/audio/nothing", json=_speech(), headers=auth)
        assert r.status == 404 and (await _error(r))["code"] == "not_found"
        r = await client.get("/v1/audio/speech", headers=auth)
        assert r.status == 405 and (await _error(r))["code"] == "method_not_allowed"
        r = await client.post("/v1/audio/speech", data=io.BytesIO(b"x" * (MAX_BODY_BYTES + 1)),
                              headers=auth)
        assert r.status == 413 and (await _error(r))["code"] == "request_too_large"
        r = await client.post("/v1/audio/speech", data=json.dumps(_speech()),
                              headers={"Authorization": "Bearer k1", "Content-Type": "text/plain"})
        assert r.status == 415 and (await _error(r))["code"] == "unsupported_media_type"
        r = await client.post("/v1/audio/speech", json=_speech(), headers={"Authorization": "Bearer k2"})
        assert r.status == 200 and (await r.read())[:4] == b"RIFF"
        assert (await client.get("/health")).status == 200  # open without a key
        # only the authorized request reached the worker
        assert [m.text for m in backend.received if isinstance(m, P.Synthesize)] == ["Hello there."]

    _run(body, server={"api_keys": ["k1", "k2"]})


def test_worker_refusals_become_their_statuses() -> None:
    """queue_full from the worker is a 429 with Retry-After; an engine failure before audio a 500."""

    async def body(client: TestClient, backend: FakeBackend) -> None:
        r = await client.post("/v1/audio/speech", json=_speech(input="queue full"))
        error = await _error(r)
        assert r.status == 429 and error["type"] == "rate_limit_error" and r.headers["Retry-After"] == "1"
        r = await client.post("/v1/audio/speech", json=_speech(input="engine broke"))
        assert r.status == 500 and (await _error(r))["code"] == P.ErrorCode.ENGINE_ERROR
        metrics = client.app[METRICS]
        assert metrics.registry.get_sample_value("vtts_rejected_total",
                                                 {"model": "fake", "reason": "queue_full"}) == 1

    _run(body)


def test_no_worker_is_a_503_with_retry_after() -> None:
    async def body(client: TestClient, backend: FakeBackend) -> None:
        r = await client.post("/v1/audio/speech", json=_speech())
        assert r.status == 503 and r.headers["Retry-After"] == "1"
        assert (await _error(r))["code"] == "model_not_ready"
        r = await client.get("/ready")
        assert r.status == 503 and (await r.json())["models"]["fake"]["ready"] == 0

    _run(body, worker=False, server={"load_timeout_s": 0.2, "request_timeout_s": 0.2})


def test_a_model_the_supervisor_cannot_load_is_a_503_naming_why() -> None:
    async def body(client: TestClient, backend: FakeBackend) -> None:
        r = await client.post("/v1/audio/speech", json=_speech())
        error = await _error(r)
        assert r.status == 503 and error["code"] == "model_failed" and "cannot load it" in error["message"]
        assert "x-should-retry" not in r.headers

    _run(body, worker=False, ensure_error="model_failed")


def test_insufficient_memory_tells_the_sdk_not_to_retry() -> None:
    """The SDK retries 5xx unless told not to; a model that cannot fit must not cost three loads."""

    async def body(client: TestClient, backend: FakeBackend) -> None:
        r = await client.post("/v1/audio/speech", json=_speech())
        assert r.status == 503 and (await _error(r))["code"] == "insufficient_memory"
        assert r.headers["x-should-retry"] == "false"
        assert [m.op for m in backend.received if isinstance(m, P.Admin)].count("ensure") == 1

    _run(body, worker=False, ensure_error="insufficient_memory")


def test_cors_preflight_allowed_origins_and_exposed_headers() -> None:
    origin = "https://app.example"

    async def body(client: TestClient, backend: FakeBackend) -> None:
        r = await client.options("/v1/audio/speech", headers={
            "Origin": origin, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type"})
        assert r.status == 204  # answered before auth: a preflight carries no key
        assert r.headers["Access-Control-Allow-Origin"] == origin
        assert "POST" in r.headers["Access-Control-Allow-Methods"]
        assert r.headers["Access-Control-Allow-Headers"] == "authorization, content-type"
        r = await client.post("/v1/audio/speech", json=_speech(response_format="pcm"),
                              headers={"Origin": origin, "Authorization": "Bearer k"})
        assert r.status == 200 and await r.read()
        assert r.headers["Access-Control-Allow-Origin"] == origin
        exposed = {h.strip().lower() for h in r.headers["Access-Control-Expose-Headers"].split(",")}
        assert {"x-request-id", "x-sample-rate", "retry-after"} <= exposed
        r = await client.get("/v1/models", headers={"Origin": origin})
        assert r.status == 401 and r.headers["Access-Control-Allow-Origin"] == origin  # errors are readable too
        r = await client.options("/v1/audio/speech", headers={"Origin": "https://evil.example",
                                                              "Access-Control-Request-Method": "POST"})
        assert "Access-Control-Allow-Origin" not in r.headers

    _run(body, server={"api_keys": ["k"], "cors_origins": [origin]})


def test_each_response_format_has_its_content_type() -> None:
    async def body(client: TestClient, backend: FakeBackend) -> None:
        for fmt in ALL_FORMATS:
            r = await client.post("/v1/audio/speech", json=_speech(response_format=fmt))
            data = await r.read()
            assert r.status == 200, (fmt, data[:200])
            assert r.headers["Content-Type"] == CONTENT_TYPES[fmt] and data, fmt
            assert r.headers["X-Request-Id"]
        synth = [m for m in backend.received if isinstance(m, P.Synthesize)]
        assert len(synth) == len(ALL_FORMATS) and {m.voice for m in synth} == {"af_one"}
        r = await client.post("/v1/audio/speech", json=_speech(response_format="pcm"))
        assert await r.read() == _chunk() * 2  # 24 kHz s16le from a 24 kHz worker: the bytes it sent

    _run(body)


def _events(raw: bytes) -> list[dict[str, Any]]:
    """Parse an SSE body, checking its framing: every event one ``data:`` line and a blank line."""
    text = raw.decode()
    assert text.endswith("\n\n")
    events = []
    for block in text[:-2].split("\n\n"):
        assert block.startswith("data: ") and "\n" not in block, block[:80]
        events.append(json.loads(block[len("data: "):]))
    return events


def test_sse_framing_usage_and_timestamps() -> None:
    async def body(client: TestClient, backend: FakeBackend) -> None:
        r = await client.post("/v1/audio/speech",
                              json=_speech(response_format="pcm", stream_format="sse", extra={"timestamps": True}))
        assert r.status == 200 and r.headers["Content-Type"] == "text/event-stream"
        events = _events(await r.read())
        types = [e["type"] for e in events]
        assert types[-1] == "speech.audio.done" and events[-1]["usage"] == USAGE
        assert "speech.audio.timestamps" in types
        audio = b"".join(base64.b64decode(e["audio"]) for e in events if e["type"] == "speech.audio.delta")
        assert audio == _chunk() * 2  # pcm at the engine's rate: the bytes the worker sent

        r = await client.post("/v1/audio/speech", json=_speech(input=FAILS_MIDWAY, stream_format="sse"))
        events = _events(await r.read())
        assert r.status == 200 and events[0]["type"] == "speech.audio.delta"
        assert events[-1]["type"] == "error" and events[-1]["error"]["code"] == P.ErrorCode.ENGINE_ERROR

    _run(body)


def test_caption_answers_json_srt_vtt() -> None:
    """``json``/``srt``/``vtt`` answers are whole bodies made of the request's word timings (asked of the
    engine for the client), with offsets into the client's text; every failure is still an HTTP error."""
    import srt
    import webvtt

    text = "Hello there. General Kenobi!"

    async def body(client: TestClient, backend: FakeBackend) -> None:
        r = await client.post("/v1/audio/speech", json=_speech(input=text, response_format="json",
                                                                extra={"audio_format": "pcm"}))
        answer = await r.json()
        assert r.status == 200 and r.content_type == "application/json", answer
        assert base64.b64decode(answer["audio"]) == _chunk() * 2 and answer["format"] == "pcm"
        assert answer["duration"] == 0.1
        assert [(w["word"], text[w["char_start"]:w["char_end"]]) for w in answer["words"]] == [
            (w, w) for w in text.split()]
        [synth] = [m for m in backend.received if isinstance(m, P.Synthesize)]
        assert synth.extra == {"timestamps": True}  # asked of the engine; audio_format stays in the frontend

        r = await client.post("/v1/audio/speech", json=_speech(input=text, response_format="srt"))
        assert r.status == 200 and r.content_type == "application/x-subrip"
        subs = list(srt.parse(await r.text()))
        assert [s.content for s in subs] == ["Hello there.", "General Kenobi!"]  # a cue ends with a sentence
        assert [(s.start.total_seconds(), s.end.total_seconds()) for s in subs] == [(0.0, 0.02), (0.02, 0.04)]

        r = await client.post("/v1/audio/speech", json=_speech(input=text, response_format="vtt"))
        assert r.status == 200 and r.content_type == "text/vtt"
        cues = webvtt.from_buffer(io.StringIO(await r.text())).captions
        assert [(c.start, c.end, c.text) for c in cues] == [("00:00:00.000", "00:00:00.020", "Hello there."),
                                                            ("00:00:00.020", "00:00:00.040", "General Kenobi!")]

        r = await client.post("/v1/audio/speech", json=_speech(input=NO_TIMESTAMPS, response_format="srt"))
        error = await _error(r)
        assert r.status == 400 and error["param"] == "response_format" and error["code"] == "unsupported_format"
        r = await client.post("/v1/audio/speech", json=_speech(input=FAILS_MIDWAY, response_format="json"))
        assert r.status == 500 and (await _error(r))["code"] == P.ErrorCode.ENGINE_ERROR  # not a cut body
        for bad, param in ((_speech(response_format="srt", stream_format="sse"), "stream_format"),
                           (_speech(response_format="wav", extra={"audio_format": "pcm"}), "extra"),
                           (_speech(response_format="json", extra={"audio_format": "ogg"}), "extra")):
            r = await client.post("/v1/audio/speech", json=bad)
            assert r.status == 400 and (await _error(r))["param"] == param, bad

    _run(body)


def test_sse_timestamps_carry_offsets_into_the_input() -> None:
    text = "One, two: THREE"

    async def body(client: TestClient, backend: FakeBackend) -> None:
        r = await client.post("/v1/audio/speech", json=_speech(input=text, response_format="pcm", stream_format="sse",
                                                                extra={"timestamps": True}))
        [stamps] = [e for e in _events(await r.read()) if e["type"] == "speech.audio.timestamps"]
        assert [text[w["char_start"]:w["char_end"]] for w in stamps["words"]] == ["One,", "two:", "THREE"]

    _run(body)


def test_models_voices_health_ready_metrics() -> None:
    async def body(client: TestClient, backend: FakeBackend) -> None:
        models = await (await client.get("/v1/models")).json()
        names = {m["id"]: m["root"] for m in models["data"]}
        assert names["fake"] == names["fake-alias"] == names["tts-1"] == "fake"
        assert (await (await client.get("/v1/models/tts-1")).json())["root"] == "fake"
        r = await client.get("/v1/models/gpt-9")
        assert r.status == 404 and (await _error(r))["code"] == "model_not_found"
        voices = await (await client.get("/v1/audio/voices")).json()
        assert [(v["id"], v["model"], v["language"]) for v in voices["data"]] == [
            ("af_one", "fake", "en-US"), ("bm_two", "fake", "en-GB")]
        assert voices["voices"] == [{"id": "af_one", "name": "One"}, {"id": "bm_two", "name": "Two"}]
        health = await (await client.get("/health")).json()
        assert health["status"] == "ok"
        r = await client.get("/ready")
        ready = await r.json()
        assert r.status == 200 and ready["ready"] and ready["models"]["fake"]["ready"] == 1
        # an OpenAI model name and an OpenAI voice name reach the worker as the model's voice alias
        r = await client.post("/v1/audio/speech", json=_speech(model="tts-1", voice="nova"))
        assert r.status == 200 and (await r.read())[:4] == b"RIFF"
        assert [m.voice for m in backend.received if isinstance(m, P.Synthesize)] == ["bm_two"]
        r = await client.get("/metrics")
        text = await r.text()
        assert r.status == 200 and r.content_type == "text/plain"
        assert 'vtts_requests_total{model="fake",status="200"} 1.0' in text
        assert f'vtts_worker_queue_depth{{model="fake",worker="{WORKER_ID}"}} 0.0' in text
        assert 'vtts_audio_seconds_total{model="fake"} 0.1' in text  # from the worker's Done
        assert 'vtts_active_streams{model="fake"} 0.0' in text

    _run(body)
