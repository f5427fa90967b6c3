"""Frontend metrics fed by the workers' Done timings."""

from vtts import protocol as P
from vtts.frontend.metrics import Metrics


def sample(m: Metrics, name: str, **labels: str) -> float | None:
    return m.registry.get_sample_value(name, labels)


def test_stalls_reach_the_histogram_and_the_stalled_counter() -> None:
    m = Metrics()
    m.on_done("m", P.Done("a", timings={"audio_s": 3.0, "engine_s": 0.3, "stall_s": 0.0, "stalls": 0.0}))
    m.on_done("m", P.Done("b", timings={"audio_s": 3.0, "engine_s": 0.3, "stall_s": 0.7, "stalls": 2.0}))
    m.on_done("m", P.Done("c", timings={"audio_s": 1.0}))  # a worker that reports no stalls: not counted
    assert sample(m, "vtts_stall_seconds_count", model="m") == 2
    assert sample(m, "vtts_stall_seconds_sum", model="m") == 0.7
    assert sample(m, "vtts_stall_seconds_bucket", model="m", le="0.0") == 1
    assert sample(m, "vtts_stall_seconds_bucket", model="m", le="0.5") == 1
    assert sample(m, "vtts_stall_seconds_bucket", model="m", le="1.0") == 2
    assert sample(m, "vtts_stalled_requests_total", model="m") == 1


def test_segment_cuts_are_counted() -> None:
    m = Metrics()
    m.on_done("m", P.Done("a", timings={"audio_s": 3.0, "cuts": 2.0}))
    m.on_done("m", P.Done("b", timings={"audio_s": 3.0, "cuts": 0.0}))
    m.on_done("m", P.Done("c", timings={"audio_s": 1.0}))  # a worker that predates cuts
    assert sample(m, "vtts_segment_cuts_total", model="m") == 2
    assert b"vtts_stall_seconds" in m.render()
