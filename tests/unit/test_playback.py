"""The listener model shared by the worker's stall timings and ``vtts bench``."""

import pytest

from vtts.playback import PlaybackMeter


def test_audio_that_arrives_ahead_of_playback_never_stalls() -> None:
    m = PlaybackMeter(0.2)
    for k in range(10):
        m.add(k * 0.5, 1.0)  # 1 s of audio every 0.5 s
    assert (m.longest, m.stalls, m.total) == (0.0, 0, 0.0)


def test_a_gap_longer_than_the_buffer_is_a_stall() -> None:
    m = PlaybackMeter(0.2)
    m.add(0.0, 1.0)  # plays 0.2..1.2
    m.add(1.0, 1.0)  # in time: plays 1.2..2.2
    m.add(2.7, 0.5)  # dry from 2.2 to 2.7
    m.add(3.0, 1.0)  # in time again (dry at 3.2)
    m.add(5.0, 1.0)  # dry from 4.2 to 5.0
    assert m.stalls == 2
    assert m.longest == pytest.approx(0.8)
    assert m.total == pytest.approx(1.3)


def test_the_jitter_buffer_absorbs_a_late_second_chunk() -> None:
    late = [(0.0, 0.5), (0.65, 1.0)]
    with_buffer, without = PlaybackMeter(0.2), PlaybackMeter(0.0)
    for at, secs in late:
        with_buffer.add(at, secs)
        without.add(at, secs)
    assert with_buffer.stalls == 0
    assert without.stalls == 1 and without.longest == pytest.approx(0.15)


def test_empty_chunks_are_ignored() -> None:
    m = PlaybackMeter(0.0)
    m.add(0.0, 0.0)
    m.add(5.0, 1.0)  # the first real audio: playback starts here
    assert m.stalls == 0
