"""Scheduler policy with synthetic requests: no engine involved."""

import numpy as np
import pytest

from vtts.workers.engine import Segment, StepOutput, SynthesisParams, WorkItem
from vtts.workers.scheduler import QueueFull, Request, Scheduler


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def req(rid: str, n: int, arrival: float, deadline: float = 0.0) -> Request:
    segs = [Segment(f"{rid}{i}", None, 1) for i in range(n)]
    return Request(rid, SynthesisParams(voice="v"), segs, arrival=arrival, deadline=deadline)


def run_single_pass(s: Scheduler) -> list[tuple[str, int]]:
    """One step as a single-pass engine would do it; returns (request, segment index) run."""
    items = s.schedule()
    s.update([StepOutput(i, np.zeros(1, np.float32), True) for i in items])
    return [(i.request_id, i.index) for i in items]


def test_first_segments_outrank_later_segments_of_running_requests() -> None:
    s = Scheduler(max_batch=1, clock=Clock())
    s.add(req("a", 3, 0.0))
    assert run_single_pass(s) == [("a", 0)]
    s.add(req("b", 2, 1.0))
    s.add(req("c", 2, 2.0))
    order = [run_single_pass(s)[0] for _ in range(5)]
    assert order[:2] == [("b", 0), ("c", 0)]
    assert sorted(order[2:]) == [("a", 1), ("b", 1), ("c", 1)]


def test_round_robin_among_running_requests_is_fair() -> None:
    s = Scheduler(max_batch=1, clock=Clock())
    for i, rid in enumerate("abc"):
        s.add(req(rid, 4, float(i)))
    served = [run_single_pass(s)[0][0] for _ in range(12)]
    # after the three first segments, each request is served once per round
    for k in range(3, 12, 3):
        assert sorted(served[k : k + 3]) == ["a", "b", "c"]
    assert len(s) == 0


def test_segments_of_a_request_run_in_order_one_at_a_time() -> None:
    s = Scheduler(max_batch=4, clock=Clock())
    s.add(req("a", 3, 0.0))
    seen = []
    while len(s):
        items = s.schedule()
        assert len([i for i in items if i.request_id == "a"]) == 1
        seen += [i.index for i in items]
        s.update([StepOutput(i, np.zeros(1, np.float32), True) for i in items])
    assert seen == [0, 1, 2]


def test_batches_fill_up_to_max_batch() -> None:
    s = Scheduler(max_batch=3, clock=Clock())
    for i in range(5):
        s.add(req(f"r{i}", 1, float(i)))
    assert [i.request_id for i in s.schedule()] == ["r0", "r1", "r2"]


def test_iterative_items_keep_their_slot_until_finished() -> None:
    s = Scheduler(max_batch=2, clock=Clock())
    s.add(req("a", 1, 0.0))
    s.add(req("b", 1, 1.0))
    s.add(req("c", 1, 2.0))
    first = s.schedule()
    assert [i.request_id for i in first] == ["a", "b"]
    # a finishes, b needs more steps: c joins between steps
    empty = np.zeros(0, np.float32)
    s.update([StepOutput(first[0], empty, True), StepOutput(first[1], empty, False)])
    second = s.schedule()
    assert [i.request_id for i in second] == ["b", "c"]
    assert second[0] is first[1]


def test_queue_bound_counts_only_waiting_requests() -> None:
    s = Scheduler(max_batch=1, max_queue=2, clock=Clock())
    s.add(req("a", 2, 0.0))
    s.add(req("b", 2, 1.0))
    with pytest.raises(QueueFull):
        s.add(req("c", 1, 2.0))
    run_single_pass(s)  # a starts: one slot frees
    s.add(req("c", 1, 2.0))
    assert s.num_waiting == 2 and s.num_active == 1


def test_duplicate_ids_are_refused() -> None:
    s = Scheduler()
    s.add(req("a", 1, 0.0))
    with pytest.raises(ValueError):
        s.add(req("a", 1, 0.0))


def test_cancel_drops_remaining_work_and_discards_in_flight_output() -> None:
    s = Scheduler(max_batch=1, clock=Clock())
    s.add(req("a", 5, 0.0))
    items = s.schedule()
    assert s.cancel("a")
    assert s.update([StepOutput(items[0], np.zeros(1, np.float32), True)]) == []
    assert s.schedule() == [] and len(s) == 0
    assert not s.cancel("a")


def test_deadline_expires_only_requests_that_have_not_started() -> None:
    clock = Clock()
    s = Scheduler(max_batch=1, clock=clock)
    s.add(req("a", 2, 0.0, deadline=5.0))
    s.add(req("b", 1, 0.0, deadline=5.0))
    run_single_pass(s)  # a starts
    clock.t = 6.0
    late = s.expire()
    assert [r.id for r in late] == ["b"]
    assert s.get("a") is not None


def test_completed_requests_are_reported_once() -> None:
    s = Scheduler(max_batch=2, clock=Clock())
    s.add(req("a", 1, 0.0))
    items = s.schedule()
    done = s.update([StepOutput(items[0], np.zeros(1, np.float32), True)])
    assert [r.id for r in done] == ["a"]
    assert s.update([StepOutput(items[0], np.zeros(1, np.float32), True)]) == []


def test_work_item_carries_params_and_segment() -> None:
    s = Scheduler()
    s.add(req("a", 1, 0.0))
    (item,) = s.schedule()
    assert isinstance(item, WorkItem) and item.segment.text == "a0" and item.params.voice == "v"
