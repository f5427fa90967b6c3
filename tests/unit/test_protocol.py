import msgpack
import pytest

from vtts import protocol as P

EXAMPLES = [
    P.Synthesize(id="r1", text="Hello.", voice="v", speed=1.5, language="en", extra={"k": 1}, deadline=12.5,
                 max_audio_s=30.0, instructions="calm"),
    P.Audio(id="r1", seq=3, sample_rate=22050, pcm=b"\x01\x00\xff\x7f",
            timestamps=[{"word": "hi", "start": 0.1, "end": 0.3}]),
    P.Done(id="r1", usage={"input_tokens": 4, "output_tokens": 9, "total_tokens": 13}, timings={"engine_s": 0.1}),
    P.Error(id="r1", code="voice_not_found", message="no", param="voice", status=400),
    P.Cancel(id="r1"),
    P.Status(worker_id="m-0", model="m", pid=42, state="ready", voices=[{"id": "v", "language": "en-US"}],
             active=2, queued=1, max_queue=8, rss_bytes=1 << 20, step_started_at=1700000000.5,
             device_memory_bytes=3 << 30, capacity=4096),
    P.Admin(id="a1", op="swap", model="m", entry={"id": "m", "engine": "piper"}),
    P.AdminReply(id="a1", ok=False, status=409, code="load_failed", message="no", models=[{"id": "m"}]),
    P.Control(id="c1", op="reload_lexicon"),
    P.ControlReply(id="c1", ok=True, result={"en": 12}),
]


@pytest.mark.parametrize("msg", EXAMPLES, ids=lambda m: m.TYPE)
def test_round_trip_every_type(msg: P.Message) -> None:
    frame = P.encode(msg)
    back = P.decode(frame)
    assert type(back) is type(msg)
    assert back == msg


def test_every_message_type_has_an_example() -> None:
    assert {m.TYPE for m in EXAMPLES} == set(P.MESSAGE_TYPES)


def test_audio_pcm_stays_bytes() -> None:
    back = P.decode(P.encode(P.Audio("r", 0, 16000, bytes(range(256)))))
    assert isinstance(back, P.Audio) and back.pcm == bytes(range(256))


@pytest.mark.parametrize(
    "frame",
    [
        b"\xc1",  # never-used msgpack byte
        msgpack.packb([1, 2, 3]),
        msgpack.packb({"v": 99, "type": "cancel", "id": "x"}),
        msgpack.packb({"v": P.VERSION, "type": "nope"}),
        msgpack.packb({"v": P.VERSION, "type": "cancel"}),  # missing id
    ],
)
def test_bad_frames_raise_protocol_error(frame: bytes) -> None:
    with pytest.raises(P.ProtocolError):
        P.decode(frame)


def test_unknown_fields_from_a_newer_peer_are_ignored() -> None:
    frame = msgpack.packb({"v": P.VERSION, "type": "cancel", "id": "x", "future": True})
    assert P.decode(frame) == P.Cancel("x")


def test_decode_or_log_skips_bad_frames(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    log = logging.getLogger("test")
    assert P.decode_or_log(P.encode(P.Cancel("x")), log, "peer") == P.Cancel("x")
    with caplog.at_level(logging.WARNING):
        assert P.decode_or_log(b"\xc1", log, b"worker-7") is None
    assert "worker-7" in caplog.text


def test_synthesize_carries_the_audio_bound() -> None:
    """``max_audio_s`` reaches the worker (0 = unbounded, the default a peer without the field means)."""
    msg = P.Synthesize(id="r", text="Hi.", voice="v", max_audio_s=900.0)
    assert P.decode(P.encode(msg)) == msg and P.decode(P.encode(msg)).max_audio_s == 900.0
    assert P.Synthesize(id="r", text="Hi.", voice="v").max_audio_s == 0.0
def test_status_new_fields_default_for_an_older_peer() -> None:
    """A worker of an older build sends no step_started_at/device_memory_bytes/capacity: they default."""
    frame = msgpack.packb({"v": P.VERSION, "type": "status", "worker_id": "w", "model": "m", "pid": 1,
                           "state": "ready"})
    st = P.decode(frame)
    assert isinstance(st, P.Status)
    assert (st.step_started_at, st.device_memory_bytes, st.capacity) == (0.0, 0, 0)


def test_enums_travel_as_plain_strings() -> None:
    st = P.decode(P.encode(P.Status("w", "m", 1, P.WorkerState.DRAINING)))
    assert isinstance(st, P.Status) and type(st.state) is str and st.state == P.WorkerState.DRAINING == "draining"
    err = P.decode(P.encode(P.Error("r", P.ErrorCode.QUEUE_FULL, "busy", status=429)))
    assert isinstance(err, P.Error) and err.code == "queue_full"


def test_retryable_is_decided_in_one_place() -> None:
    assert P.is_retryable("draining") and P.is_retryable(P.ErrorCode.WORKER_LOST) and P.is_retryable("unavailable")
    assert not P.is_retryable("queue_full") and not P.is_retryable("invalid_request")
    assert not P.is_retryable(P.ErrorCode.ENGINE_ERROR) and not P.is_retryable(P.ErrorCode.TIMEOUT)
