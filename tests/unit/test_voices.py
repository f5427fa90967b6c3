"""The voice routes' request handling without workers: multipart bounds (a chunked body has no
Content-Length to refuse early), missing fields named, prompt-designed voices refused, paging bounds, and a
custom voice on a model that cannot clone."""

from __future__ import annotations

import asyncio
import io
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import aiohttp
import numpy as np
import pytest
import soundfile as sf
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from vtts import protocol as P
from vtts.config import Config, ServerConfig
from vtts.frontend.app import error_middleware
from vtts.frontend.metrics import Metrics
from vtts.frontend.pool import WorkerPool
from vtts.frontend.state import CONFIG, EXECUTOR, METRICS, POOL
from vtts.frontend.voices import MAX_UPLOAD_BYTES, STORE, setup_voice_routes, speech_reference


def wav(seconds: float = 3.0) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, (0.3 * np.sin(np.arange(int(16000 * seconds)) * 0.2)).astype(np.float32), 16000, format="WAV")
    return buf.getvalue()


def make_app(tmp: Path, pool: object = None, threshold: float = 0.0) -> web.Application:
    app = web.Application(middlewares=[error_middleware])
    app[CONFIG] = Config(server=ServerConfig(data_dir=str(tmp), speaker_match_threshold=threshold))
    app[METRICS] = Metrics()
    app[EXECUTOR] = ThreadPoolExecutor(2)
    app[POOL] = pool or WorkerPool("inproc://unused")  # type: ignore[assignment]
    setup_voice_routes(app)

    async def speak(request: web.Request) -> web.Response:
        ref = await speech_reference(request, "m", request.query["voice"])
        return web.json_response({"reference": ref is not None})

    app.router.add_get("/speak", speak)
    return app


def test_routes_refuse_bad_requests(tmp_path: Path) -> None:
    async def run() -> None:
        async with TestClient(TestServer(make_app(tmp_path))) as c:
            async def chunks():
                for _ in range(MAX_UPLOAD_BYTES // 65536 + 3):
                    yield b"\0" * 65536

            with aiohttp.MultipartWriter("form-data") as mp:
                part = mp.append(chunks())
                part.set_content_disposition("form-data", name="audio_sample", filename="s.wav")
            r = await c.post("/v1/audio/voices", data=mp)
            assert r.status == 413, await r.text()

            r = await c.post("/v1/audio/voices", data=b"x", headers={"Content-Type": "audio/wav"})
            assert r.status == 415
            r = await c.post("/v1/audio/voices", json={"name": "x", "consent": "cons_x"})
            assert r.status == 400 and (await r.json())["error"]["param"] == "audio_sample"

            form = aiohttp.FormData({"consent": "cons_x"})
            form.add_field("audio_sample", wav(), filename="s.wav")
            r = await c.post("/v1/audio/voices", data=form)
            assert r.status == 400 and (await r.json())["error"]["param"] == "name"

            r = await c.post("/v1/audio/voices", data={"name": "x", "type": "prompt", "prompt": "deep"})
            assert r.status == 400 and "designs voices" in (await r.json())["error"]["message"]

            for limit in ("0", "101", "x"):
                r = await c.get(f"/v1/audio/voice_consents?limit={limit}")
                assert r.status == 400 and (await r.json())["error"]["param"] == "limit"

            form = aiohttp.FormData({"name": "c", "language": "en"})
            form.add_field("recording", wav(), filename="c.wav")
            cons = await (await c.post("/v1/audio/voice_consents", data=form)).json()
            form = aiohttp.FormData({"name": "v", "consent": cons["id"]})
            form.add_field("audio_sample", wav(), filename="s.wav")
            voice = await (await c.post("/v1/audio/voices", data=form)).json()
            r = await c.get(f"/speak?voice={voice['id']}")
            assert r.status == 400 and (await r.json())["error"]["code"] == "voice_not_supported"
            r = await c.get("/speak?voice=voice_absent")
            assert r.status == 404
            assert (await (await c.get("/speak?voice=alloy")).json()) == {"reference": False}
            r = await c.delete(f"/v1/audio/voice_consents/{cons['id']}?cascade=true")
            assert r.status == 200
            assert (await (await c.get("/v1/audio/voice_consents")).json())["data"] == []

    asyncio.run(run())


class SpeakerPool:
    """Stands in for the worker pool: one ready worker whose speaker model's vector of a recording is its
    spectrum (so one tone matches itself and not another), or that fails with ``fail``."""

    def __init__(self, verifies: bool = True, fail: P.Message | str | None = None) -> None:
        status = SimpleNamespace(verifies_speakers=verifies, active=0, queued=0)
        self.workers = {"w0": SimpleNamespace(id="w0", ready=True, status=status)}
        self.fail = fail
        self.asked: list[dict] = []

    async def control(self, worker: object, op: str, timeout: float, args: dict) -> P.Message:
        assert op == "speaker_embedding"
        self.asked.append(args)
        if self.fail is not None:
            # "sizes": a speaker model whose vectors differ in size between calls (both replies are ok)
            return P.ControlReply("x", True, result={"embedding": [1.0] * len(self.asked)}) \
                if self.fail == "sizes" else self.fail
        audio = np.frombuffer(args["pcm"], "<i2").astype(np.float32)
        return P.ControlReply("x", True, result={"embedding": np.abs(np.fft.rfft(audio[:8000]))[:400].tolist()})


def tone_wav(hz: float, seconds: float = 3.0) -> bytes:
    buf = io.BytesIO()
    t = np.arange(int(16000 * seconds)) / 16000
    sf.write(buf, (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32), 16000, format="WAV")
    return buf.getvalue()


async def _create(c: TestClient, recording: bytes, sample: bytes) -> tuple[int, dict]:
    form = aiohttp.FormData({"name": "c", "language": "en"})
    form.add_field("recording", io.BytesIO(recording), filename="c.wav")  # raw bytes over 1 MiB warn in aiohttp
    cons = await (await c.post("/v1/audio/voice_consents", data=form)).json()
    form = aiohttp.FormData({"name": "v", "consent": cons["id"], "transcript": "hello"})
    form.add_field("audio_sample", sample, filename="s.wav")
    r = await c.post("/v1/audio/voices", data=form)
    return r.status, await r.json()


@pytest.mark.parametrize("threshold", [0.0, 0.9])
def test_speaker_verification_compares_consent_and_sample(tmp_path: Path, threshold: float) -> None:
    async def run() -> None:
        pool = SpeakerPool()
        app = make_app(tmp_path, pool, threshold)
        async with TestClient(TestServer(app)) as c:
            status, same = await _create(c, tone_wav(440), tone_wav(440))
            assert status == 200 and same["speaker_similarity"] == pytest.approx(1.0, abs=1e-3)
            assert len(pool.asked) == 2 and {a["sample_rate"] for a in pool.asked} == {16000}
            status, other = await _create(c, tone_wav(440), tone_wav(1300))
            if threshold:
                assert status == 400 and other["error"]["code"] == "speaker_mismatch"
                assert other["error"]["param"] == "audio_sample" and "similarity 0." in other["error"]["message"]
                assert len(app[STORE].list_voices(None)) == 1  # the refused voice was not stored
            else:  # measured and shown, never refused
                assert status == 200 and other["speaker_similarity"] < 0.5
            # a consent recording longer than MAX_VERIFY_S is compared on its first 30 s
            await _create(c, tone_wav(440, 40.0), tone_wav(440))
            assert len(pool.asked[-2]["pcm"]) == 2 * 16000 * 30

    asyncio.run(run())


@pytest.mark.parametrize(("fail", "threshold", "status", "code"), [
    (P.ControlReply("x", False, "speaker embedding failed: too short"), 0.5, 400, "speaker_verification_failed"),
    (P.Error("x", "worker_lost", "worker w0 did not answer", status=503), 0.5, 503, "speaker_verification_failed"),
    (P.Error("x", "worker_lost", "worker w0 did not answer", status=503), 0.0, 200, None),
    ("sizes", 0.5, 400, "speaker_verification_failed"),
    ("sizes", 0.0, 200, None),
])
def test_a_failed_verification_refuses_only_when_a_threshold_is_set(
        tmp_path: Path, fail: P.Message | str, threshold: float, status: int, code: str | None) -> None:
    async def run() -> None:
        app = make_app(tmp_path, SpeakerPool(fail=fail), threshold)
        async with TestClient(TestServer(app)) as c:
            got, body = await _create(c, tone_wav(440), tone_wav(440))
            assert got == status
            if code:
                assert body["error"]["code"] == code
            else:
                assert body["speaker_similarity"] is None  # stored unverified

    asyncio.run(run())


def test_no_speaker_model_no_verification(tmp_path: Path) -> None:
    async def run() -> None:
        pool = SpeakerPool(verifies=False)
        app = make_app(tmp_path, pool, 0.9)
        async with TestClient(TestServer(app)) as c:
            status, voice = await _create(c, tone_wav(440), tone_wav(1300))
            assert status == 200 and voice["speaker_similarity"] is None and not pool.asked

    asyncio.run(run())
