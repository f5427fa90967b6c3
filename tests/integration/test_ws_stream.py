"""WebSocket text-in streaming (``/v1/audio/speech/stream``, issue 18) against a real ``vtts serve``: tokens that
arrive every 30 ms give audio per sentence, in order; flush, done and usage; errors as ``error`` events in
OpenAI's shape; auth by header, query and subprotocol; the idle timeout and the text bound; a client that stops
reading is disconnected with the frontend's memory flat; a disconnect cancels the work in flight."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
import websockets.sync.client as wsc
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.audio import decode, rms
from tests.integration.conftest import Server, processes, start_server
from tests.integration.test_http_limits import closed_within, metric, rss_bytes

KEY = "k"
IDLE_S = 3.0
#: the HTTP deadlines are short, so a session that outlives them shows they do not apply to it
HTTP_TIMEOUT_S = 1.5
MAX_CHARS = 6000
MAX_BYTES = 393216
SLACK_S = 2.5
TEXT = ("The train leaves the station at half past seven every morning. It is rarely late. "
        "Dr. Smith takes it to work, and she reads on the way! Does she like it? Yes, very much.")
SENTENCES = ["The train leaves the station,", "at half past seven every morning.", "It is rarely late.",
             "Dr. Smith takes it to work, and she reads on the way!", "Does she like it?", "Yes, very much."]
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("ws")
    (tmp / "vtts.toml").write_text(
        f'[server]\napi_keys = ["{KEY}"]\nws_idle_timeout_s = {IDLE_S}\nws_max_buffered_chars = {MAX_CHARS}\n'
        f"ws_max_buffered_bytes = {MAX_BYTES}\nheader_timeout_s = {HTTP_TIMEOUT_S}\nbody_timeout_s = {HTTP_TIMEOUT_S}\n"
        f"keepalive_timeout_s = {HTTP_TIMEOUT_S}\n"
        '[[models]]\nid = "joe"\nengine = "piper"\nmodel = "en_US-joe-medium"\n'
        "options = { warmup = false }\n"  # only the frontend's memory is measured here
    )
    server = start_server(["--config", str(tmp / "vtts.toml")], tmp)
    yield server
    _, left = server.stop()
    assert not left


def ws_url(srv: Server, query: str = "") -> str:
    return f"ws://127.0.0.1:{srv.port}/v1/audio/speech/stream{query}"


def tokens(text: str) -> list[str]:
    """LLM-like pieces: each word with its leading space."""
    return re.findall(r" ?\S+", text)


def collect(conn: wsc.ClientConnection, timeout: float = 60.0) -> list[Any]:
    """Every message until the server ends the session: dicts for JSON, bytes for audio (with arrival times
    recorded as ``("t", seconds)`` after each)."""
    out: list[Any] = []
    try:
        while True:
            msg = conn.recv(timeout)
            out.append(json.loads(msg) if isinstance(msg, str) else msg)
            out.append(("t", time.monotonic()))
            if isinstance(out[-2], dict) and out[-2]["type"] in ("session.done", "error"):
                return out
    except ConnectionClosed:
        return out


def sentences_of(events: list[Any]) -> list[tuple[dict, bytes]]:
    """(audio.start, audio) per sentence, checking the framing: start, binary frames, done, in index order."""
    out: list[tuple[dict, bytes]] = []
    current: dict | None = None
    audio = b""
    for e in events:
        if isinstance(e, tuple):
            continue
        if isinstance(e, bytes):
            assert current is not None, "audio outside a sentence"
            audio += e
        elif e["type"] == "audio.start":
            assert current is None and e["sentence_index"] == len(out)
            current, audio = e, b""
        elif e["type"] == "audio.done":
            assert current is not None and e["sentence_index"] == current["sentence_index"]
            out.append((current, audio))
            current = None
    assert current is None
    return out


def test_tokens_every_30ms_give_audio_per_sentence_in_order(srv: Server) -> None:
    start = time.monotonic()
    with wsc.connect(ws_url(srv), additional_headers=AUTH) as conn:
        conn.send(json.dumps({"type": "session.config", "model": "tts-1", "voice": "alloy", "response_format": "wav"}))
        sent_at: list[float] = []

        def feed() -> None:
            pieces = tokens(TEXT)
            for i, tok in enumerate(pieces):
                conn.send(json.dumps({"type": "input.text", "text": tok}))
                sent_at.append(time.monotonic())
                time.sleep(0.03)
                if i == len(pieces) // 2:  # an LLM that pauses to think, longer than every HTTP deadline
                    time.sleep(HTTP_TIMEOUT_S + 0.5)
            conn.send(json.dumps({"type": "input.done"}))

        feeder = threading.Thread(target=feed)
        feeder.start()
        events = collect(conn)
        feeder.join()
    messages = [e for e in events if isinstance(e, dict)]
    # the session outlived the HTTP deadlines
    assert time.monotonic() - start > HTTP_TIMEOUT_S, (messages[-3:], srv.logs(4000))
    done = messages[-1]
    assert done["type"] == "session.done", done
    pieces = sentences_of(events)
    assert [p[0]["sentence_text"] for p in pieces] == SENTENCES
    assert done["total_sentences"] == len(SENTENCES)
    seconds = 0.0
    for start_event, audio in pieces:
        assert start_event["format"] == "wav"
        samples, rate = decode(audio, "wav")  # each sentence is a whole file
        assert rate == 22050 and rms(samples) > 0.02
        seconds += samples.size / rate
        assert 0.15 * len(start_event["sentence_text"].split()) < samples.size / rate < 1.5 * (
            len(start_event["sentence_text"].split()) + 1)
    usage = done["usage"]
    assert usage["input_tokens"] > 0 and usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert abs(usage["output_tokens"] - 50 * seconds) < 5 * len(SENTENCES)
    # the first sentence was spoken before the text was all sent: clauses go out as they complete
    first_audio = next(e for e in events if isinstance(e, bytes))
    first_audio_at = events[events.index(first_audio) + 1][1]
    assert first_audio_at < sent_at[-1]


def test_flush_speaks_what_is_buffered_and_a_trailing_fragment_at_done(srv: Server) -> None:
    with wsc.connect(ws_url(srv), additional_headers=AUTH) as conn:
        conn.send(json.dumps({"type": "session.config", "voice": "alloy", "response_format": "pcm"}))
        conn.send(json.dumps({"type": "input.text", "text": "Hello there my friend"}))
        conn.send(json.dumps({"type": "input.flush"}))
        first = json.loads(conn.recv(30))
        assert first == {"type": "audio.start", "sentence_index": 0, "sentence_text": "Hello there my friend",
                         "format": "pcm"}
        conn.send(json.dumps({"type": "input.text", "text": "and goodbye"}))
        conn.send(json.dumps({"type": "input.done"}))
        events = [first, ("t", 0.0)] + collect(conn)
    pieces = sentences_of(events)
    assert [p[0]["sentence_text"] for p in pieces] == ["Hello there my friend", "and goodbye"]
    assert all(rms(decode(a, "pcm")[0]) > 0.02 for _, a in pieces)
    assert events[-2]["type"] == "session.done" and events[-2]["total_sentences"] == 2


def error_of(conn: wsc.ClientConnection) -> dict:
    """The session's error event; the server closes the connection after it."""
    events = collect(conn, 30)
    errors = [e for e in events if isinstance(e, dict) and e["type"] == "error"]
    assert len(errors) == 1, events
    err = errors[0]["error"]
    assert set(err) == {"message", "type", "param", "code"} and err["message"]
    with pytest.raises(ConnectionClosed):
        conn.recv(10)
    return err


@pytest.mark.parametrize(
    ("messages", "status_type", "param", "code"),
    [
        ([{"type": "input.text", "text": "hi"}], "invalid_request_error", "type", "invalid_message"),
        ([{"type": "session.config", "voice": "alloy", "stream_format": "sse"}], "invalid_request_error",
         "stream_format", "unknown_parameter"),
        ([{"type": "session.config", "voice": "alloy", "response_format": "ogg"}], "invalid_request_error",
         "response_format", "invalid_value"),
        ([{"type": "session.config", "voice": "alloy", "response_format": "srt"}], "invalid_request_error",
         "response_format", "invalid_value"),
        ([{"type": "session.config", "voice": "alloy", "speed": 9}], "invalid_request_error", "speed", "invalid_value"),
        ([{"type": "session.config", "model": "whisper-9", "voice": "alloy"}], "invalid_request_error", "model",
         "model_not_found"),
        ([{"type": "session.config", "voice": "nobody"}], "invalid_request_error", "voice", "voice_not_found"),
        (["{not json"], "invalid_request_error", None, "invalid_json"),
        ([b"\x00\x01"], "invalid_request_error", None, "invalid_message"),
        ([{"type": "session.config"}, {"type": "input.text", "text": 5}], "invalid_request_error", "text",
         "invalid_type"),
        ([{"type": "session.config"}, {"type": "session.config"}], "invalid_request_error", "type", "invalid_message"),
        ([{"type": "session.config"}, {"type": "input.audio"}], "invalid_request_error", "type", "invalid_message"),
        ([{"type": "session.config"}, {"type": "input.text", "text": "x" * (MAX_CHARS + 500)}],
         "invalid_request_error", "text", "buffer_full"),
    ],
)
def test_bad_messages_end_the_session_with_an_openai_error(srv: Server, messages: list, status_type: str,
                                                           param: str | None, code: str) -> None:
    with wsc.connect(ws_url(srv), additional_headers=AUTH) as conn:
        for m in messages:
            conn.send(json.dumps(m) if isinstance(m, dict) else m)
        err = error_of(conn)
    assert (err["type"], err["param"], err["code"]) == (status_type, param, code)


def test_auth_by_header_query_or_subprotocol(srv: Server) -> None:
    with pytest.raises(InvalidStatus) as refused:
        wsc.connect(ws_url(srv))
    assert refused.value.response.status_code == 401
    body = json.loads(refused.value.response.body)
    assert body["error"]["type"] == "invalid_request_error" and body["error"]["code"] == "invalid_api_key"
    with pytest.raises(InvalidStatus):
        wsc.connect(ws_url(srv, "?api_key=wrong"))
    for kwargs, chosen in (
        ({"additional_headers": AUTH}, None),
        ({"uri": ws_url(srv, f"?api_key={KEY}")}, None),
        ({"subprotocols": ["vtts", f"openai-insecure-api-key.{KEY}"]}, "vtts"),
        ({"subprotocols": [f"openai-insecure-api-key.{KEY}"]}, f"openai-insecure-api-key.{KEY}"),
    ):
        uri = kwargs.pop("uri", ws_url(srv))
        with wsc.connect(uri, **kwargs) as conn:
            assert conn.subprotocol == chosen
            conn.send(json.dumps({"type": "session.config", "response_format": "pcm"}))
            conn.send(json.dumps({"type": "input.text", "text": "Yes."}))
            conn.send(json.dumps({"type": "input.done"}))
            events = collect(conn)
        assert events[-2]["type"] == "session.done" and events[-2]["total_sentences"] == 1


def test_plain_get_is_a_400_in_openai_shape(srv: Server) -> None:
    status, body = srv.get("/v1/audio/speech/stream", headers=AUTH)
    assert status == 400 and json.loads(body)["error"]["code"] == "websocket_required"


def test_idle_session_is_closed(srv: Server) -> None:
    for first in ([], [{"type": "session.config"}, {"type": "input.text", "text": "An unfinished"}]):
        with wsc.connect(ws_url(srv), additional_headers=AUTH) as conn:
            start = time.monotonic()
            for m in first:
                conn.send(json.dumps(m))
            err = error_of(conn)
            took = time.monotonic() - start
        assert err["code"] == "idle_timeout"
        assert IDLE_S - 0.2 < took < IDLE_S + SLACK_S


LONG = " ".join(f"Sentence number {i} is part of a long answer, one that keeps going for quite a while before it "
                "finally comes to an end, so that every sentence holds several seconds of audio." for i in range(20))


def raw_session(srv: Server, text: str, rcvbuf: int = 4096) -> socket.socket:
    """A WebSocket client on a bare socket with a tiny receive buffer that never reads (a library client reads
    in a background thread)."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.connect(("127.0.0.1", srv.port))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(f"GET /v1/audio/speech/stream HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer {KEY}\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(1)
    assert head.startswith(b"HTTP/1.1 101")
    for m in ({"type": "session.config", "response_format": "wav"}, {"type": "input.text", "text": text},
              {"type": "input.done"}):
        payload = json.dumps(m).encode()
        mask = os.urandom(4)
        size = bytes([0x80 | len(payload)]) if len(payload) < 126 else bytes([0x80 | 126]) + len(payload).to_bytes(2)
        s.sendall(b"\x81" + size + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
    return s


def test_client_that_stops_reading_is_disconnected_with_memory_flat(srv: Server) -> None:
    (frontend,) = processes(srv, b"vtts.frontend")
    before_rss = rss_bytes(frontend)
    before = metric(srv, "vtts_cancelled_total")
    clients = [raw_session(srv, LONG) for _ in range(3)]
    try:
        deadline = time.monotonic() + 90
        while metric(srv, "vtts_cancelled_total") < before + len(clients) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert metric(srv, "vtts_cancelled_total") >= before + len(clients)
        while metric(srv, "vtts_worker_active_requests") > 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert metric(srv, "vtts_worker_active_requests") == 0  # nothing left synthesizing for them
        assert rss_bytes(frontend) - before_rss < 32 * 1024 * 1024
        for s in clients:
            assert closed_within(s, 10.0) is not None
    finally:
        for s in clients:
            s.close()


def test_disconnect_cancels_what_is_in_flight(srv: Server) -> None:
    before = metric(srv, "vtts_cancelled_total")
    with wsc.connect(ws_url(srv), additional_headers=AUTH) as conn:
        conn.send(json.dumps({"type": "session.config", "response_format": "pcm"}))
        conn.send(json.dumps({"type": "input.text", "text": LONG}))
        while not isinstance(conn.recv(30), bytes):
            pass
    deadline = time.monotonic() + 30
    while metric(srv, "vtts_cancelled_total") < before + 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert metric(srv, "vtts_cancelled_total") >= before + 1
    while metric(srv, "vtts_worker_active_requests") > 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert metric(srv, "vtts_worker_active_requests") == 0


def test_aiohttp_client_gets_mp3_per_sentence(srv: Server) -> None:
    async def run() -> list[Any]:
        events: list[Any] = []
        async with aiohttp.ClientSession(headers=AUTH) as session, session.ws_connect(ws_url(srv)) as ws:
            await ws.send_json({"type": "session.config", "voice": "alloy", "response_format": "mp3", "speed": 1.2})
            await ws.send_json({"type": "input.text", "text": "One whole answer. Sent at once, in one message."})
            await ws.send_json({"type": "input.done"})
            async for msg in ws:
                events.append(msg.data if msg.type == aiohttp.WSMsgType.BINARY else json.loads(msg.data))
            assert ws.close_code == 1000
        return events

    events = asyncio.run(run())
    assert events[-1]["type"] == "session.done" and events[-1]["total_sentences"] == 2
    pieces = sentences_of(events)
    assert [p[0]["sentence_text"] for p in pieces] == ["One whole answer.", "Sent at once, in one message."]
    assert all(rms(decode(a, "mp3")[0]) > 0.02 for _, a in pieces)


def test_shutdown_ends_open_sessions_at_once(tmp_path) -> None:
    """SIGTERM with sessions open (one idle before its config, one mid-text): each gets a 503 ``shutting_down``
    error and close code 1001, and the server stops in seconds instead of waiting for the clients."""
    server = start_server([], tmp_path)
    try:
        url = f"ws://127.0.0.1:{server.port}/v1/audio/speech/stream"
        with wsc.connect(url) as idle, wsc.connect(url) as busy:
            busy.send(json.dumps({"type": "session.config", "response_format": "pcm"}))
            busy.send(json.dumps({"type": "input.text", "text": "An unfinished thought"}))
            time.sleep(0.5)
            start = time.monotonic()
            server.proc.terminate()
            for conn in (idle, busy):
                err = error_of(conn)
                assert err["code"] == "shutting_down" and err["type"] == "server_error"
                assert conn.close_code == 1001
        server.proc.wait(15)
        assert time.monotonic() - start < 8.0
    finally:
        _, left = server.stop()
    assert not left


def test_word_timings_per_sentence_with_offsets_into_its_text(srv: Server) -> None:
    """With ``extra.timestamps`` a session also sends ``audio.timestamps`` after the audio they time: times
    from the sentence's audio start, offsets into its ``sentence_text``."""
    with wsc.connect(ws_url(srv), additional_headers=AUTH) as conn:
        conn.send(json.dumps({"type": "session.config", "voice": "alloy", "response_format": "pcm",
                              "extra": {"timestamps": True}}))
        conn.send(json.dumps({"type": "input.text", "text": "Captions work here. They follow the words."}))
        conn.send(json.dumps({"type": "input.done"}))
        events = [e for e in collect(conn) if not isinstance(e, tuple)]
    pieces = sentences_of(events)
    stamps = [e for e in events if isinstance(e, dict) and e["type"] == "audio.timestamps"]
    assert {s["sentence_index"] for s in stamps} == set(range(len(pieces))) and len(pieces) >= 2
    for start, audio in pieces:
        text = start["sentence_text"]
        words = [w for s in stamps if s["sentence_index"] == start["sentence_index"] for w in s["words"]]
        samples, rate = decode(audio, "pcm")
        assert [text[w["char_start"]:w["char_end"]] for w in words] == re.findall(r"[A-Za-z]+", text)
        assert all(0 <= w["start"] < w["end"] <= samples.size / rate + 0.01 for w in words)
    # a timings event follows the audio it times: never before its sentence's first audio frame
    for s in stamps:
        at = events.index(s)
        assert any(isinstance(e, bytes) for e in events[:at]), "timings before any audio"
