"""CosyVoice3 through the real server on the tiny model directory of scripts/make_tiny_cosyvoice3.py: a
consent and custom voices made with the unchanged ``openai`` SDK, 16 concurrent streamed requests with seeds
(each one's audio equals the same request alone), cancelled and disconnected streams that leave no KV memory,
every response format and SSE.

The worker runs ``tests.cosyvoice3_probe:ProbeEngine``, the registered engine plus a file that reports its
KV figures. The tiny model has random weights: its audio is noise-like, not speech."""

from __future__ import annotations

import base64
import importlib.util
import io
import json
import socket
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("tiktoken")
pytest.importorskip("kaldi_native_fbank")
pytest.importorskip("onnx")
openai = pytest.importorskip("openai")
sf = pytest.importorskip("soundfile")

from tests.integration.conftest import Server, start_server  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT.parent / "shared" / "fixtures" / "cosyvoice3-tiny"
pytestmark = pytest.mark.skipif(not (FIXTURE / "model" / "llm.pt").is_file(), reason="no CosyVoice3 fixture")
KEY = "cv3-key"
RATE = 24000
TEXTS = ["Hello there.", "A second sentence, a little longer.", "Short one.", "Numbers like 42 too!"]


def tone(hz: float, seconds: float = 3.0, rate: int = 16000, fmt: str = "WAV") -> bytes:
    t = np.arange(int(rate * seconds)) / rate
    wave = 0.3 * np.sin(2 * np.pi * hz * t) * (1 + 0.3 * np.sin(2 * np.pi * 2 * t))
    buf = io.BytesIO()
    sf.write(buf, wave.astype(np.float32), rate, format=fmt)
    return buf.getvalue()


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("cv3serve")
    spec = importlib.util.spec_from_file_location("make_tiny", ROOT / "scripts" / "make_tiny_cosyvoice3.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.make(tmp / "model", FIXTURE)
    config = tmp / "vtts.toml"
    config.write_text(
        f'[server]\napi_keys = ["{KEY}"]\ndata_dir = "{tmp / "data"}"\ndefault_model = "cv3"\n\n'
        f'[[models]]\nid = "cv3"\nengine = "tests.cosyvoice3_probe:ProbeEngine"\nmodel = "{model}"\n'
        'max_batch = 16\noptions = { max_segment_tokens = 60, threads = 1 }\n')
    s = start_server(["--config", str(config)], tmp,
                     env={"PYTHONPATH": str(ROOT), "VTTS_CV3_PROBE": str(tmp / "probe.json")})
    s.probe = tmp / "probe.json"  # type: ignore[attr-defined]
    # one SDK client for the module, closed at the end: a client per call would leave its pooled sockets to
    # the garbage collector (a ResourceWarning, an error under this suite's filters)
    s.sdk = openai.OpenAI(base_url=s.url + "/v1", api_key=KEY, max_retries=0, timeout=120)  # type: ignore[attr-defined]
    yield s
    s.sdk.close()  # type: ignore[attr-defined]
    s.stop()


def client(srv: Server) -> Any:
    return srv.sdk  # type: ignore[attr-defined]


def probe(srv: Server) -> dict[str, Any]:
    return json.loads(srv.probe.read_text()) if srv.probe.is_file() else {}  # type: ignore[attr-defined]


def wait_idle(srv: Server, timeout: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        figures = probe(srv)
        if figures and figures["live_requests"] == 0 and figures["kv_tokens"] == 0:
            return figures
        time.sleep(0.1)
    return probe(srv)


@pytest.fixture(scope="module")
def voices(srv: Server) -> dict[str, str]:
    c = client(srv)
    consent = c.audio.voice_consents.create(name="me", recording=("c.wav", tone(200), "audio/wav"), language="en-US")
    zero_shot = c.audio.voices.create(name="zs", audio_sample=("s.wav", tone(180), "audio/wav"), consent=consent.id,
                                      extra_body={"transcript": "A sample of my voice."})
    cross = c.audio.voices.create(name="xl", audio_sample=("s.flac", tone(260, fmt="FLAC"), "audio/flac"),
                                  consent=consent.id)
    return {"zero_shot": zero_shot.id, "cross_lingual": cross.id}


def speak(srv: Server, voice: Any, text: str, seed: int, fmt: str = "pcm", **kw: Any) -> bytes:
    with client(srv).audio.speech.with_streaming_response.create(
            model="cv3", voice=voice, input=text, response_format=fmt, extra_body={"extra": {"seed": seed}},
            **kw) as r:
        return b"".join(r.iter_bytes())


def requests(voices: dict[str, str]) -> list[tuple[Any, str, int, dict[str, Any]]]:
    """16 requests over every mode: built-in speaker, zero-shot, cross-lingual, instruct."""
    kinds: list[Any] = ["tiny", {"id": voices["zero_shot"]}, {"id": voices["cross_lingual"]}]
    out = []
    for i in range(16):
        kw = {"instructions": "Speak happily."} if i % 4 == 3 else {}
        out.append((kinds[i % 3], TEXTS[i % len(TEXTS)], i, kw))
    return out


def pcm(data: bytes) -> np.ndarray:
    return np.frombuffer(data, "<i2").astype(np.int32)


def test_16_concurrent_streams_equal_each_request_alone(srv: Server, voices: dict[str, str]) -> None:
    reqs = requests(voices)
    with ThreadPoolExecutor(16) as pool:
        together = list(pool.map(lambda r: speak(srv, r[0], r[1], r[2], **r[3]), reqs))
    alone = [speak(srv, v, t, s, **kw) for v, t, s, kw in reqs]
    assert all(a for a in alone)
    for a, b in zip(alone, together, strict=True):
        x, y = pcm(a), pcm(b)
        assert x.size == y.size and np.abs(x - y).max() <= 4  # float rounding before 16-bit, at most a few LSB
    assert len({len(a) for a in alone}) > 3  # the requests really differ
    figures = wait_idle(srv)
    assert figures["live_requests"] == 0 and figures["kv_tokens"] == 0 and figures["flow_kv_bytes"] == 0


def test_same_seed_same_audio_and_modes_differ(srv: Server, voices: dict[str, str]) -> None:
    a = speak(srv, {"id": voices["zero_shot"]}, "Hello there.", 7)
    assert a == speak(srv, {"id": voices["zero_shot"]}, "Hello there.", 7)
    assert a != speak(srv, {"id": voices["zero_shot"]}, "Hello there.", 8)
    assert a != speak(srv, {"id": voices["cross_lingual"]}, "Hello there.", 7)


def _raw_stream(srv: Server, body: dict[str, Any], read_bytes: int) -> None:
    """POST a streamed request, read ``read_bytes`` of its body, then drop the connection."""
    data = json.dumps(body).encode()
    host, port = srv.url.split("//")[1].split(":")
    with socket.create_connection((host, int(port)), timeout=60) as sock:
        sock.sendall(f"POST /v1/audio/speech HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n"
                     f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n".encode() + data)
        got = b""
        while len(got) < read_bytes:
            chunk = sock.recv(65536)
            if not chunk:
                break
            got += chunk
        assert got.startswith(b"HTTP/1.1 200"), got[:200]


def test_disconnected_and_cancelled_streams_leave_no_kv(srv: Server, voices: dict[str, str]) -> None:
    long_text = " ".join(TEXTS * 6)
    before = probe(srv).get("released", 0)
    bodies = [{"model": "cv3", "voice": v, "input": long_text, "response_format": "pcm", "extra": {"seed": i}}
              for i, v in enumerate(["tiny", {"id": voices["zero_shot"]}, {"id": voices["cross_lingual"]}] * 2)]
    with ThreadPoolExecutor(6) as pool:
        list(pool.map(lambda b: _raw_stream(srv, b, 4000), bodies))
    # the SDK closing a stream after its first chunk
    with client(srv).audio.speech.with_streaming_response.create(
            model="cv3", voice="tiny", input=long_text, response_format="pcm", extra_body={"extra": {"seed": 1}}) as r:
        next(r.iter_bytes(1024))
    figures = wait_idle(srv)
    assert figures["live_requests"] == 0 and figures["kv_tokens"] == 0 and figures["flow_kv_bytes"] == 0
    assert figures["released"] >= before + 7
    assert figures["capacity"] == figures["budget"]


@pytest.mark.parametrize("fmt", ["mp3", "opus", "aac", "flac", "wav", "pcm"])
def test_every_format(srv: Server, voices: dict[str, str], fmt: str) -> None:
    import av

    data = speak(srv, {"id": voices["zero_shot"]}, "Hello there.", 3, fmt=fmt)
    reference = pcm(speak(srv, {"id": voices["zero_shot"]}, "Hello there.", 3))
    if fmt == "pcm":
        assert np.array_equal(pcm(data), reference)
        return
    with av.open(io.BytesIO(data)) as container:  # FFmpeg decodes what a client would play
        frames = list(container.decode(audio=0))
    seconds = sum(f.samples for f in frames) / frames[0].sample_rate
    assert abs(seconds - reference.size / RATE) < 0.1


def test_sse(srv: Server, voices: dict[str, str]) -> None:
    events = []
    with client(srv).audio.speech.with_streaming_response.create(
            model="cv3", voice={"id": voices["cross_lingual"]}, input="Hello there.", response_format="pcm",
            stream_format="sse", extra_body={"extra": {"seed": 3}}) as r:
        for line in r.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
    audio = b"".join(base64.b64decode(e["audio"]) for e in events if e["type"] == "speech.audio.delta")
    assert events[-1]["type"] == "speech.audio.done" and audio
    assert audio == speak(srv, {"id": voices["cross_lingual"]}, "Hello there.", 3)


def test_bad_requests_are_400s(srv: Server, voices: dict[str, str]) -> None:
    c = client(srv)
    with pytest.raises(openai.BadRequestError) as err:
        c.audio.speech.create(model="cv3", voice="tiny", input="Hi.", extra_body={"extra": {"temperature": 0.3}})
    assert err.value.body["param"] == "extra.temperature"
    with pytest.raises(openai.BadRequestError):
        c.audio.speech.create(model="cv3", voice="nobody", input="Hi.")


def test_voices_carry_the_speaker_similarity_campplus_measured(srv: Server, voices: dict[str, str]) -> None:
    """The model's CAM++ compares each voice's sample with its consent recording (the threshold is off here,
    so nothing is refused): the consent's own audio as the sample is the same speaker (1.0); another
    signal is less similar."""
    c = client(srv)
    consent = c.audio.voice_consents.create(name="me", recording=("c.wav", tone(200), "audio/wav"), language="en-US")
    same = c.audio.voices.create(name="same", audio_sample=("s.wav", tone(200), "audio/wav"), consent=consent.id,
                                 extra_body={"transcript": "A sample of my voice."})
    shown = same.model_dump()
    assert shown["speaker_similarity"] == pytest.approx(1.0, abs=1e-3)
    asked = urllib.request.Request(f"{srv.url}/v1/audio/voices/{voices['zero_shot']}",
                                   headers={"Authorization": f"Bearer {KEY}"})
    with urllib.request.urlopen(asked, timeout=30) as r:
        other = json.loads(r.read())
    assert -1.0 <= other["speaker_similarity"] < 0.999
    c.audio.voices.delete(same.id)
