"""HTTP limits of a real ``vtts serve`` (issue 12 #2, #5, #8, #9, #12, #13): bad bodies are 4xx and hold no
queue slot, HTTP/1.0 works, non-reading clients are cut and their requests cancelled, silent and slow
connections are closed within their timeouts, and the connection cap admits new clients."""

from __future__ import annotations

import gzip
import json
import re
import socket
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.integration.conftest import Server, processes, start_server

KEY = "k"
HEADER_TIMEOUT_S, BODY_TIMEOUT_S, KEEPALIVE_TIMEOUT_S, WRITE_TIMEOUT_S = 4.0, 3.0, 3.0, 2.0
MAX_CONNECTIONS = 8
#: closing is checked by the guard's sweep a few times a second; this covers a loaded CI machine
SLACK_S = 2.5
OK = {"model": "tts-1", "input": "Hello there.", "voice": "alloy", "response_format": "wav"}
LONG = " ".join(f"Sentence number {i} is part of a long answer that takes a while." for i in range(40))


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("limits")
    (tmp / "vtts.toml").write_text(
        f'[server]\napi_keys = ["{KEY}"]\nheader_timeout_s = {HEADER_TIMEOUT_S}\nbody_timeout_s = {BODY_TIMEOUT_S}\n'
        f"keepalive_timeout_s = {KEEPALIVE_TIMEOUT_S}\nwrite_timeout_s = {WRITE_TIMEOUT_S}\n"
        f"max_buffered_bytes = 262144\nmax_connections = {MAX_CONNECTIONS}\n"
        '[[models]]\nid = "joe"\nengine = "piper"\nmodel = "en_US-joe-medium"\n'
        "options = { warmup = false }\n"  # only the frontend's memory is measured here
    )
    server = start_server(["--config", str(tmp / "vtts.toml")], tmp)
    yield server
    _, left = server.stop()
    assert not left


def connect(srv: Server, data: bytes = b"", rcvbuf: int = 0) -> socket.socket:
    s = socket.socket()
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.connect(("127.0.0.1", srv.port))
    if data:
        s.sendall(data)
    return s


def request_bytes(body: bytes, *, version: str = "1.1", headers: str = "", path: str = "/v1/audio/speech") -> bytes:
    head = (f"POST {path} HTTP/{version}\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {KEY}\r\nContent-Length: {len(body)}\r\n{headers}\r\n")
    return head.encode() + body


def exchange(srv: Server, raw: bytes, timeout: float = 30.0) -> tuple[int, dict[str, str], bytes]:
    """Send one request with ``Connection: close`` semantics and read the whole answer."""
    with connect(srv, raw) as s:
        s.settimeout(timeout)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def post(srv: Server, body: bytes | dict, headers: str = "", path: str = "/v1/audio/speech") -> tuple[int, dict]:
    raw = json.dumps(body).encode() if isinstance(body, dict) else body
    status, hdrs, data = exchange(srv, request_bytes(raw, headers=headers + "Connection: close\r\n", path=path))
    if hdrs.get("transfer-encoding") == "chunked":
        return status, {}
    return status, json.loads(data) if data.startswith(b"{") else {}


def closed_within(s: socket.socket, limit: float) -> float | None:
    """Seconds until the server closed ``s`` (EOF or reset), or None if it stayed open ``limit`` seconds."""
    start = time.monotonic()
    s.settimeout(limit)
    try:
        while s.recv(65536):
            pass
    except (ConnectionResetError, BrokenPipeError):
        pass
    except TimeoutError:
        return None
    return time.monotonic() - start


def metric(srv: Server, name: str) -> float:
    text = srv.get("/metrics")[1].decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + "{"))


def rss_bytes(pid: int) -> int:
    return int(re.search(r"VmRSS:\s+(\d+)", Path(f"/proc/{pid}/status").read_text()).group(1)) * 1024


def assert_serves(srv: Server) -> None:
    status, _ = post(srv, {**OK, "response_format": "pcm"})
    assert status == 200


def test_bad_inputs_are_400s_and_never_lock_the_queue(srv: Server) -> None:
    """#2: each used to be recorded as waiting before it failed to encode (a 500), so 128 of them (max_queue)
    made every later request a 429. 200 of them, then a normal request."""
    deep = "[" * 600 + "]" * 600
    bad = [
        (b'{"model": "tts-1", "voice": "alloy", "input": "hi \\ud800"}', "input"),
        (b'{"model": "tts-1", "voice": "alloy", "input": "hi", "extra": {"n": 18446744073709551616}}', "extra"),
        (f'{{"model": "tts-1", "voice": "alloy", "input": "hi", "extra": {{"n": {deep}}}}}'.encode(), "extra"),
    ]
    for i in range(200):
        body, param = bad[i % len(bad)]
        status, err = post(srv, body)
        assert status == 400 and err["error"]["param"] == param, (i, status, err)
    assert_serves(srv)


@pytest.mark.parametrize(
    ("body", "headers", "status", "param"),
    [
        (b'{"model": "tts-1", "voice": "alloy", "input": "hi", "speed": 1' + b"0" * 400 + b"}", "", 400, "speed"),
        (b"[" * 1000 + b"]" * 1000, "", 400, None),
        (b'{"model": "tts-1", "voice": "alloy", "input": "hi", "language": "../../etc"}', "", 400, "language"),
        (b'{"model": "tts-1", "voice": "alloy", "input": "hi", "response_format": ""}', "", 400, "response_format"),
        (b'{"model": "tts-1", "voice": "alloy", "input": "hi", "stream_format": ""}', "", 400, "stream_format"),
        (b"junk that is not gzip", "Content-Encoding: gzip\r\n", 400, None),
    ],
    ids=["speed-400-digits", "json-1000-deep", "language-path", "empty-format", "empty-stream-format", "bad-gzip"],
)
def test_client_mistakes_are_4xx(srv: Server, body: bytes, headers: str, status: int, param: str | None) -> None:
    """#12/#13: these were 500s (or, for language and the empty formats, silently accepted)."""
    got, err = post(srv, body, headers)
    assert got == status, err
    assert err["error"]["param"] == param


def test_good_gzip_body_still_works(srv: Server) -> None:
    status, _ = post(srv, gzip.compress(json.dumps({**OK, "response_format": "pcm"}).encode()),
                     "Content-Encoding: gzip\r\n")
    assert status == 200


def test_non_utf8_authorization_is_a_401(srv: Server) -> None:
    """#12: the key comparison encoded the header back to UTF-8 and raised (a 500)."""
    raw = (b"GET /v1/models HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer \xff\xfe\r\n"
           b"Connection: close\r\n\r\n")
    status, _, body = exchange(srv, raw)
    assert status == 401 and json.loads(body)["error"]["code"] == "invalid_api_key"


def test_expect_continue_over_the_limit_is_refused_at_once(srv: Server) -> None:
    """#13: a 50 MB declared body got '100 Continue' (the client would upload it all to hear 413)."""
    head = (f"POST /v1/audio/speech HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {KEY}\r\nContent-Length: {50 * 1024 * 1024}\r\nExpect: 100-continue\r\n\r\n")
    with connect(srv, head.encode()) as s:
        s.settimeout(10)
        first = s.recv(65536)
    assert first.startswith(b"HTTP/1.1 413"), first[:80]


def test_http10_client_gets_the_whole_audio(srv: Server) -> None:
    """#5: HTTP/1.0 (nginx's default upstream protocol) got a 500 because chunked encoding is forbidden; the
    answer is close-delimited now."""
    status, headers, body = exchange(srv, request_bytes(json.dumps(OK).encode(), version="1.0"))
    assert status == 200
    assert "transfer-encoding" not in headers
    assert body[:4] == b"RIFF" and body[8:16] == b"WAVEfmt "
    channels, rate = struct.unpack("<HI", body[22:28])
    assert channels == 1 and rate == int(headers["x-sample-rate"])
    pcm = np.frombuffer(body[44 : 44 + (len(body) - 44) // 2 * 2], dtype="<i2")
    assert len(pcm) > rate // 4 and np.abs(pcm).max() > 1000  # a quarter second or more of actual speech


def test_idle_and_incomplete_connections_are_closed(srv: Server) -> None:
    """#9: sockets that send nothing, half a head, half a body, or idle after a response, were held for good."""
    half_body = request_bytes(b'{"model": "tts-1", "input": "hi", "voice": "alloy"}')[:-20]
    cases = {
        "nothing": (connect(srv), HEADER_TIMEOUT_S),
        "half head": (connect(srv, b"POST /v1/audio/speech HTTP/1.1\r\nHost: localhost\r\nContent-Ty"),
                      HEADER_TIMEOUT_S),
        "half body": (connect(srv, half_body), BODY_TIMEOUT_S),
        "idle keep-alive": (connect(srv, b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n"), KEEPALIVE_TIMEOUT_S),
    }
    took: dict[str, float | None] = {}

    def watch(name: str, s: socket.socket, limit: float) -> None:
        took[name] = closed_within(s, limit + SLACK_S)

    threads = [threading.Thread(target=watch, args=(name, s, limit)) for name, (s, limit) in cases.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s, _ in cases.values():
        s.close()
    assert all(v is not None for v in took.values()), took
    assert_serves(srv)


def test_past_max_connections_the_oldest_idle_one_makes_room(srv: Server) -> None:
    """#9: at the cap a new client is served at once; the longest-idle connection is the one closed."""
    idle = [connect(srv) for _ in range(MAX_CONNECTIONS)]
    try:
        time.sleep(0.2)
        start = time.monotonic()
        assert srv.get("/health")[0] == 200
        assert time.monotonic() - start < 2.0
        assert closed_within(idle[0], 1.0) is not None  # the oldest: closed long before header_timeout_s
        assert closed_within(idle[-1], 0.2) is None  # the newest: still open
    finally:
        for s in idle:
            s.close()


def test_clients_that_stop_reading_are_cut_and_their_requests_cancelled(srv: Server) -> None:
    """#8: a non-reading client made the frontend buffer its whole answer. Now the write times out (or the
    buffer bound trips), the connection is cut and the worker request cancelled, memory stays flat."""
    (frontend,) = processes(srv, b"vtts.frontend")
    assert_serves(srv)
    before_rss = rss_bytes(frontend)
    before = metric(srv, "vtts_cancelled_total")
    body = json.dumps({"model": "tts-1", "voice": "alloy", "input": LONG, "response_format": "pcm"}).encode()
    clients = [connect(srv, request_bytes(body), rcvbuf=4096) for _ in range(4)]
    try:
        deadline = time.monotonic() + 60
        while metric(srv, "vtts_cancelled_total") < before + len(clients) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert metric(srv, "vtts_cancelled_total") == before + len(clients)  # while the clients are connected
        while metric(srv, "vtts_worker_active_requests") > 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert metric(srv, "vtts_worker_active_requests") == 0
        assert rss_bytes(frontend) - before_rss < 32 * 1024 * 1024
        for s in clients:
            assert closed_within(s, 5.0) is not None  # cut (after whatever the kernel had buffered)
    finally:
        for s in clients:
            s.close()
    assert_serves(srv)


def test_past_max_connections_with_every_one_busy_a_new_one_gets_503_at_once(srv: Server) -> None:
    """#9: when no connection is idle (here: all are sending a body), a new one is refused fast, not hung."""
    half_body = request_bytes(b'{"model": "tts-1", "input": "hi", "voice": "alloy"}')[:-20]
    busy = [connect(srv, half_body) for _ in range(MAX_CONNECTIONS)]
    try:
        time.sleep(0.5)
        with connect(srv) as s:  # the 503 is written at accept, before any request is read
            s.settimeout(2.0)
            first = s.recv(65536)
        assert first.startswith(b"HTTP/1.1 503"), first[:80]
        assert json.loads(first.partition(b"\r\n\r\n")[2])["error"]["code"] == "too_many_connections"
    finally:
        for s in busy:
            s.close()
    time.sleep(0.2)
    assert_serves(srv)
