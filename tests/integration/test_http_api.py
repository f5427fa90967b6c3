"""Raw HTTP against a real server: every error case in OpenAI's shape, discovery routes, metrics."""

from __future__ import annotations

import json
import socket
import urllib.request

import pytest

OK = {"model": "tts-1", "input": "Hello there.", "voice": "alloy", "response_format": "wav"}


def post(server, body: bytes | str | dict, content_type: str = "application/json", path: str = "/v1/audio/speech",
         method: str = "POST") -> tuple[int, dict[str, str], bytes]:
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    data = data.encode() if isinstance(data, str) else data
    req = urllib.request.Request(server.url + path, data=data, method=method, headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, dict(exc.headers), exc.read()


def assert_openai_error(status: int, body: bytes, expected: int, param: str | None = None) -> dict:
    assert status == expected, body
    err = json.loads(body)["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert err["message"]
    if param is not None:
        assert err["param"] == param
    return err


@pytest.mark.parametrize(
    ("change", "status", "param"),
    [
        ({"input": ""}, 400, "input"),
        ({"input": "x" * 4097}, 400, "input"),
        ({"model": "whisper-9"}, 404, "model"),
        ({"voice": "nobody"}, 400, "voice"),
        ({"voice": 7}, 400, "voice"),
        ({"response_format": "ogg"}, 400, "response_format"),
        ({"speed": 0.0}, 400, "speed"),
        ({"speed": 9}, 400, "speed"),
        ({"speed": "1"}, 400, "speed"),
        ({"input": ["a"]}, 400, "input"),
        ({"stream_format": "ws"}, 400, "stream_format"),
        ({"extra": "x"}, 400, "extra"),
        ({"input": ".,;!?"}, 400, "input"),  # nothing speakable
    ],
)
def test_bad_requests(server, change: dict, status: int, param: str) -> None:
    code, headers, body = post(server, {**OK, **change})
    assert_openai_error(code, body, status, param)
    assert headers["Content-Type"].startswith("application/json")


def test_missing_fields(server) -> None:
    for name in ("model", "input", "voice"):
        body = {k: v for k, v in OK.items() if k != name}
        code, _, raw = post(server, body)
        assert_openai_error(code, raw, 400, name)


def test_malformed_json(server) -> None:
    code, _, body = post(server, b"{not json")
    assert assert_openai_error(code, body, 400)["code"] == "invalid_json"
    code, _, body = post(server, b"\xff\xfe")
    assert_openai_error(code, body, 400)
    code, _, body = post(server, b"[1, 2]")
    assert_openai_error(code, body, 400)


def test_wrong_content_type(server) -> None:
    code, _, body = post(server, json.dumps(OK), content_type="text/plain")
    assert assert_openai_error(code, body, 415)["code"] == "unsupported_media_type"


def test_unknown_route_and_method(server) -> None:
    code, _, body = post(server, OK, path="/v1/audio/speeches")
    assert_openai_error(code, body, 404)
    status, body = server.get("/nope")
    assert_openai_error(status, body, 404)
    status, body = server.get("/v1/audio/speech")
    assert_openai_error(status, body, 405)


def test_body_too_large(server) -> None:
    code, _, body = post(server, {**OK, "input": "x" * (2 * 1024 * 1024)})
    assert_openai_error(code, body, 413)


def test_models_lists_config_ids_and_openai_aliases(server) -> None:
    status, body = server.get("/v1/models")
    ids = {m["id"] for m in json.loads(body)["data"]}
    assert {"tts-1", "tts-1-hd", "gpt-4o-mini-tts", "piper-joe"} <= ids


def test_voices_report_language_and_rate(server) -> None:
    voices = json.loads(server.get("/v1/audio/voices")[1])["data"]
    assert voices == [
        {"id": "en_US-joe-medium", "object": "voice", "model": "piper-joe", "language": "en-US",
         "sample_rate": 22050, "description": voices[0]["description"]}
    ]


def test_health_and_ready(server) -> None:
    status, body = server.get("/health")
    assert status == 200 and json.loads(body)["status"] == "ok"
    status, body = server.get("/ready")
    ready = json.loads(body)
    assert status == 200 and ready["models"]["piper-joe"]["ready"] == 1


def test_metrics_count_requests_and_audio(server) -> None:
    code, _, _ = post(server, OK)
    assert code == 200
    status, body = server.get("/metrics")
    text = body.decode()
    assert status == 200
    assert 'vtts_requests_total{model="piper-joe",status="200"}' in text
    audio = [line for line in text.splitlines() if line.startswith('vtts_audio_seconds_total{model="piper-joe"}')]
    assert audio and float(audio[0].split()[-1]) > 0
    assert "vtts_time_to_first_audio_seconds_bucket" in text
    stalls = [line for line in text.splitlines() if line.startswith('vtts_stall_seconds_count{model="piper-joe"}')]
    assert stalls and float(stalls[0].split()[-1]) >= 1  # the worker's Done carried its stall timings
    assert 'vtts_worker_queue_depth{model="piper-joe",worker="piper-joe-0"}' in text


def test_client_disconnect_cancels_the_request(server) -> None:
    text = " ".join(f"Sentence {i} of a long text that the client abandons." for i in range(60))
    body = json.dumps({**OK, "input": text}).encode()
    with socket.create_connection(("127.0.0.1", server.port)) as s:
        s.sendall(
            b"POST /v1/audio/speech HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode() + body
        )
        assert s.recv(4096).startswith(b"HTTP/1.1 200")
    # the server notices at its next write and cancels; the worker then goes idle
    import time

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        text_m = server.get("/metrics")[1].decode()
        cancelled = [ln for ln in text_m.splitlines() if ln.startswith('vtts_cancelled_total{model="piper-joe"}')]
        active = [ln for ln in text_m.splitlines() if ln.startswith('vtts_worker_active_requests{')]
        if cancelled and float(cancelled[0].split()[-1]) >= 1 and active and float(active[0].split()[-1]) == 0:
            return
        time.sleep(0.2)
    pytest.fail("the abandoned request was not cancelled")


@pytest.mark.parametrize(("fmt", "sample_rate", "rate"), [
    ("mulaw", None, 8000), ("alaw", None, 8000), ("mulaw", 16000, 16000), ("wav", 16000, 16000), ("pcm", 8000, 8000),
    ("flac", 48000, 48000),
])
def test_telephony_formats_and_sample_rate(server, fmt: str, sample_rate: int | None, rate: int) -> None:
    """Issue 18: ``mulaw``/``alaw`` (raw G.711, 8 kHz) and ``extra.sample_rate`` for any format, decoded by FFmpeg."""
    import io

    import av
    import numpy as np

    body = {**OK, "input": "Telephony works.", "response_format": fmt}
    if sample_rate:
        body["extra"] = {"sample_rate": sample_rate}
    status, headers, data = post(server, body)
    assert status == 200, data
    assert int(headers["X-Sample-Rate"]) == rate
    if fmt == "pcm":
        samples = np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768
    else:
        opts = {"sample_rate": str(rate), "ch_layout": "mono"} if fmt in ("mulaw", "alaw") else {}
        with av.open(io.BytesIO(data), format=fmt if fmt in ("mulaw", "alaw") else None, options=opts) as c:
            frames = list(c.decode(audio=0))
        assert frames[0].sample_rate == rate
        samples = np.concatenate([f.to_ndarray().reshape(-1) for f in frames]).astype(np.float32)
        samples /= 32768 if np.abs(samples).max() > 2 else 1
    assert 0.5 < samples.size / rate < 3.0 and float(np.sqrt(np.mean(samples**2))) > 0.02


def test_captions_from_the_bundled_voice(server) -> None:
    """Issue 18: ``json`` carries the audio and Piper's word timings with offsets into the input; ``srt``
    cues from the same timings cover the audio in order."""
    import base64
    import io

    import soundfile as sf
    import srt

    text = "Captions work. They follow the words."
    status, headers, data = post(server, {**OK, "input": text, "response_format": "json",
                                          "extra": {"audio_format": "wav"}})
    assert status == 200 and headers["Content-Type"].startswith("application/json"), data[:300]
    answer = json.loads(data)
    audio, rate = sf.read(io.BytesIO(base64.b64decode(answer["audio"])))
    assert answer["format"] == "wav" and abs(audio.size / rate - answer["duration"]) < 0.05
    words = answer["words"]
    assert [text[w["char_start"]:w["char_end"]] for w in words] == text.replace(".", "").split()
    assert all(0 <= w["start"] < w["end"] <= answer["duration"] + 0.01 for w in words)
    assert [w["start"] for w in words] == sorted(w["start"] for w in words)

    status, headers, data = post(server, {**OK, "input": text, "response_format": "srt"})
    assert status == 200 and headers["Content-Type"].startswith("application/x-subrip"), data[:300]
    subs = list(srt.parse(data.decode()))
    assert [s.content for s in subs] == ["Captions work.", "They follow the words."]
    assert subs[0].end <= subs[1].start and subs[1].end.total_seconds() <= answer["duration"] + 0.5
