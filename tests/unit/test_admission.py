"""Admission by streaming capacity, with synthetic workers and done timings."""

import math

import pytest

from vtts import protocol as P
from vtts.frontend.admission import MIN_SAMPLES, StreamAdmission
from vtts.frontend.pool import WorkerInfo


def worker(wid: str, streams: int) -> WorkerInfo:
    w = WorkerInfo(P.Status(worker_id=wid, model="m", pid=1, state="ready"))
    w.streams = {f"{wid}-{i}" for i in range(streams)}
    return w


def done(audio_s: float, engine_s: float) -> P.Done:
    return P.Done("x", timings={"audio_s": audio_s, "engine_s": engine_s})


def test_a_replica_takes_streams_up_to_headroom_times_its_speed() -> None:
    a = StreamAdmission(headroom=0.5)
    for _ in range(MIN_SAMPLES):
        a.record("w0", done(10.0, 1.0))  # 10× real time when busy
    assert a.speed("w0") == pytest.approx(10.0)
    assert a.streams_allowed([worker("w0", 0)]) == pytest.approx(5.0)
    assert a.admits([worker("w0", 4)])
    assert not a.admits([worker("w0", 5)])
    a.record("w1", done(1.0, 1.0))
    assert a.admits([worker("w0", 5), worker("w1", 9)])  # w1 not measured yet: its first requests measure it


def test_the_speed_follows_recent_requests() -> None:
    a = StreamAdmission(headroom=1.0)
    for _ in range(50):
        a.record("w0", done(10.0, 1.0))
    for _ in range(50):
        a.record("w0", done(2.0, 1.0))  # the machine got busy
    assert a.speed("w0") == pytest.approx(2.0, rel=0.05)
    a.record("w0", done(0.0, 0.0))  # nothing to learn from
    a.record("w0", done(math.nan, 1.0))
    assert a.speed("w0") == pytest.approx(2.0, rel=0.05)


def test_a_slow_replica_still_serves_one_stream_and_off_admits_all() -> None:
    a = StreamAdmission(headroom=0.8)
    for _ in range(MIN_SAMPLES):
        a.record("w0", done(0.5, 1.0))  # slower than real time
    assert a.admits([worker("w0", 0)]) and not a.admits([worker("w0", 1)])
    a.forget("w0")
    assert a.speed("w0") is None
    off = StreamAdmission()
    for _ in range(MIN_SAMPLES):
        off.record("w0", done(0.5, 1.0))
    assert not off.enabled and off.admits([worker("w0", 1000)])
    with pytest.raises(ValueError):
        StreamAdmission(headroom=-1.0)
