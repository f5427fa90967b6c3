"""The voice routes' request handling without workers: multipart bounds (a chunked body has no
Content-Length to refuse early), missing fields named, prompt-designed voices refused, paging bounds, and a
custom voice on a model that cannot clone."""

from __future__ import annotations

import asyncio
import io
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import aiohttp
import numpy as np
import soundfile as sf
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from vtts.config import Config, ServerConfig
from vtts.frontend.app import error_middleware
from vtts.frontend.metrics import Metrics
from vtts.frontend.pool import WorkerPool
from vtts.frontend.state import CONFIG, EXECUTOR, METRICS, POOL
from vtts.frontend.voices import MAX_UPLOAD_BYTES, setup_voice_routes, speech_reference


def wav(seconds: float = 3.0) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, (0.3 * np.sin(np.arange(int(16000 * seconds)) * 0.2)).astype(np.float32), 16000, format="WAV")
    return buf.getvalue()


def make_app(tmp: Path) -> web.Application:
    app = web.Application(middlewares=[error_middleware])
    app[CONFIG] = Config(server=ServerConfig(data_dir=str(tmp)))
    app[METRICS] = Metrics()
    app[EXECUTOR] = ThreadPoolExecutor(2)
    app[POOL] = WorkerPool("inproc://unused")
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
