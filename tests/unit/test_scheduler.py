"""Scheduler policy with synthetic requests: no engine involved."""

import numpy as np
import pytest

from vtts.playback import PlaybackMeter
from vtts.protocol import FinishReason
from vtts.workers.engine import RequestContext, Segment, StepOutput, SynthesisParams, WorkItem
from vtts.workers.scheduler import QueueFull, Request, Scheduler, StepRate


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


def step(s: Scheduler, clock: Clock, engine_s: float, audio_s: float = 1.0) -> list[tuple[str, int]]:
    """One single-pass step taking ``engine_s`` on the synthetic clock; each item's segment yields
    ``audio_s`` of audio, sent at the step's end."""
    items = s.schedule()
    clock.t += engine_s
    for i in items:
        s.sent(i.request_id, audio_s)
    s.update([StepOutput(i, np.zeros(1, np.float32), True) for i in items])
    return [(i.request_id, i.index) for i in items]


def test_deadlines_follow_arrival_and_the_listeners_buffer() -> None:
    clock = Clock()
    s = Scheduler(clock=clock, first_audio_target_s=0.3, playback_margin_s=0.2, relaxed_s=5.0)
    r = req("a", 3, 1.0)
    s.add(r)
    assert s.due(r) == pytest.approx(1.3)  # no audio yet: arrival + first-audio target
    s.sent("a", 2.0, at=1.25)
    s.sent("a", 1.5, at=1.5)
    assert r.first_sent == 1.25 and r.audio_sent_s == 3.5
    assert s.due(r) == pytest.approx(1.25 + 3.5 - 0.2)  # buffer runs dry at first send + audio sent
    quiet = Request("b", SynthesisParams(voice="v"), [Segment("b", None, 1)], arrival=1.0, streaming=False)
    s.add(quiet)
    assert s.due(quiet) == pytest.approx(1.3 + 5.0)  # no listener: relaxed


def test_a_running_stream_about_to_run_dry_goes_before_a_new_first_segment() -> None:
    clock = Clock()
    s = Scheduler(clock=clock, first_audio_target_s=0.3, playback_margin_s=0.2)
    s.add(req("a", 3, 0.0))
    assert step(s, clock, 0.5, audio_s=1.0) == [("a", 0)]  # a: 1 s sent at 0.5, dry at 1.5, due 1.3
    clock.t = 1.2
    s.add(req("b", 2, 1.1))  # due 1.4: a is due first and b still gets its first audio by 1.4 + a's step
    assert step(s, clock, 0.1) == [("a", 1)]
    assert step(s, clock, 0.1) == [("b", 0)]


def test_a_new_request_gets_its_first_audio_first_when_the_streams_have_slack() -> None:
    clock = Clock()
    s = Scheduler(clock=clock, first_audio_target_s=0.3, playback_margin_s=0.2)
    s.add(req("a", 3, 0.0))
    step(s, clock, 0.1, audio_s=5.0)  # a's listener has 5 s of audio: due at 4.9
    s.add(req("b", 2, clock.t))
    assert step(s, clock, 0.1) == [("b", 0)]
    assert clock.t - 0.1 <= s.get("b").arrival + 0.3  # b started within its target


def test_ties_go_to_first_audio() -> None:
    clock = Clock()
    s = Scheduler(clock=clock, first_audio_target_s=0.3, playback_margin_s=0.0)
    s.add(req("a", 2, 0.0))
    step(s, clock, 0.0, audio_s=1.0)  # a: sent at 0, due 1.0
    s.add(req("b", 2, 0.7))  # due 0.7 + 0.3 = 1.0: the same
    assert step(s, clock, 0.1) == [("b", 0)]


def test_bursts_of_new_requests_do_not_make_running_streams_stall() -> None:
    """Five requests arrive together every 5 s; a first segment (a clause, 0.5 s of audio) takes 0.075 s,
    a later one (1 s of audio) 0.15 s: the engine has room to spare. Serving every first segment before
    any running stream's next one (the old policy) left 4 of 20 listeners with a gap; earliest deadline
    first leaves none, and still gives every first audio within its target plus one step."""
    clock = Clock()
    s = Scheduler(max_batch=1, clock=clock, first_audio_target_s=0.5, playback_margin_s=0.2)
    meters: dict[str, PlaybackMeter] = {}
    first_audio: dict[str, float] = {}
    n = 0
    while clock.t < 20.0 or len(s):
        while clock.t < 20.0 and n < 5 * (clock.t // 5 + 1):
            s.add(req(f"r{n}", 6, clock.t))
            n += 1
        items = s.schedule()
        if not items:
            clock.t += 0.05
            continue
        first = items[0].index == 0
        clock.t += 0.075 if first else 0.15
        for i in items:
            s.sent(i.request_id, 0.5 if first else 1.0)
            meters.setdefault(i.request_id, PlaybackMeter(0.2)).add(clock.t, 0.5 if first else 1.0)
            first_audio.setdefault(i.request_id, clock.t - s.get(i.request_id).arrival)
        s.update([StepOutput(i, np.zeros(1, np.float32), True) for i in items])
    assert n == 20 and len(meters) == n  # every request finished: none starved
    assert max(m.longest for m in meters.values()) == 0.0
    assert max(first_audio.values()) <= 0.5 + 0.15 + 1e-9


def test_a_non_streamed_request_yields_to_streams_but_is_not_starved() -> None:
    clock = Clock()
    s = Scheduler(clock=clock, first_audio_target_s=0.3, playback_margin_s=0.2, relaxed_s=2.0)
    s.add(Request("whole", SynthesisParams(voice="v"), [Segment("w", None, 1)], arrival=0.0, streaming=False))
    n = 0
    served: list[str] = []
    while "whole" in s:
        s.add(req(f"s{n}", 1, clock.t))  # a new stream every step, for ever
        n += 1
        served += [rid for rid, _ in step(s, clock, 0.2)]
        assert clock.t < 5.0
    assert served[0] == "s0" and "whole" in served


def test_streams_are_served_in_turn_by_their_buffers() -> None:
    clock = Clock()
    s = Scheduler(max_batch=1, clock=clock)
    for i, rid in enumerate("abc"):
        s.add(req(rid, 4, float(i) * 0.01))
    served = [step(s, clock, 0.1)[0][0] for _ in range(12)]
    # equal audio per segment: each request is served once per round
    for k in range(0, 12, 3):
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


class Budget:
    """A fake engine with a token budget: an item holds its prompt (``num_tokens``) once started and one
    more token per step; preempting it gives everything back."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.held: dict[str, int] = {}
        self.released: list[tuple[str, FinishReason]] = []
        self.preempted: list[str] = []

    def capacity(self) -> int:
        return self.budget - sum(self.held.values())

    def cost(self, item: WorkItem) -> int:
        return 1 if item.request_id in self.held else item.segment.num_tokens + 1

    def preempt(self, item: WorkItem) -> None:
        self.preempted.append(item.request_id)
        del self.held[item.request_id]

    def release(self, ctx: RequestContext, reason: FinishReason) -> None:
        self.released.append((ctx.id, reason))
        self.held.pop(ctx.id, None)

    def step(self, items: list[WorkItem], steps_to_finish: int) -> list[StepOutput]:
        outs = []
        for i in items:
            self.held[i.request_id] = self.held.get(i.request_id, 0) + self.cost(i)
            i.state["steps"] = i.state.get("steps", 0) + 1
            done = i.state["steps"] >= steps_to_finish
            if done:
                del self.held[i.request_id]
            outs.append(StepOutput(i, np.zeros(1, np.float32), done))
        return outs


def prompt_req(rid: str, tokens: int, arrival: float) -> Request:
    return Request(rid, SynthesisParams(voice="v"), [Segment(rid, None, tokens)], arrival=arrival)


def test_release_is_called_exactly_once_on_every_way_out() -> None:
    clock = Clock()
    eng = Budget(1000)
    s = Scheduler(max_batch=4, clock=clock, engine=eng)  # type: ignore[arg-type]
    for i, rid in enumerate(["fin", "can", "fail", "late", "left"]):
        s.add(Request(rid, SynthesisParams(voice="v"), [Segment(rid, None, 1)], arrival=float(i),
                      deadline=1.0 if rid == "late" else 0.0))
    items = {i.request_id: i for i in s.schedule()}
    assert set(items) == {"fin", "can", "fail", "late"}
    s.update([StepOutput(items["fin"], np.zeros(1, np.float32), True)])
    s.update([StepOutput(items["fin"], np.zeros(1, np.float32), True)])  # a repeat is ignored
    assert s.cancel("can") and not s.cancel("can")
    assert s.fail("fail") is not None and s.fail("fail") is None
    clock.t = 5.0
    assert s.expire() == []  # "late" started before its deadline
    s.close(FinishReason.STOPPING)
    s.close(FinishReason.STOPPING)
    assert sorted(eng.released) == sorted([("fin", FinishReason.FINISHED), ("can", FinishReason.CANCELLED),
                                           ("fail", FinishReason.FAILED), ("late", FinishReason.STOPPING),
                                           ("left", FinishReason.STOPPING)])


def test_expired_requests_are_released() -> None:
    clock = Clock()
    eng = Budget(10)
    s = Scheduler(clock=clock, engine=eng)  # type: ignore[arg-type]
    s.add(Request("a", SynthesisParams(voice="v"), [Segment("a", None, 1)], arrival=0.0, deadline=1.0))
    clock.t = 2.0
    assert [r.id for r in s.expire()] == ["a"]
    assert eng.released == [("a", FinishReason.EXPIRED)]


def test_admission_stops_at_the_engines_capacity() -> None:
    eng = Budget(12)
    s = Scheduler(max_batch=8, clock=Clock(), engine=eng)  # type: ignore[arg-type]
    for i in range(3):
        s.add(prompt_req(f"r{i}", 4, float(i)))  # each needs 5 to start
    assert [i.request_id for i in s.schedule()] == ["r0", "r1"]


def test_a_request_larger_than_the_budget_still_runs_alone() -> None:
    eng = Budget(3)
    s = Scheduler(max_batch=8, clock=Clock(), engine=eng)  # type: ignore[arg-type]
    s.add(prompt_req("big", 10, 0.0))
    s.add(prompt_req("small", 1, 1.0))
    assert [i.request_id for i in s.schedule()] == ["big"]


def test_the_youngest_running_request_is_preempted_and_resumes_later() -> None:
    eng = Budget(12)
    s = Scheduler(max_batch=8, clock=Clock(), engine=eng)  # type: ignore[arg-type]
    s.add(prompt_req("old", 4, 0.0))
    s.add(prompt_req("young", 4, 1.0))
    order: list[list[str]] = []
    while len(s):
        items = s.schedule()
        order.append([i.request_id for i in items])
        s.update(eng.step(items, steps_to_finish=4))
        assert sum(eng.held.values()) <= eng.budget
    assert order[0] == ["old", "young"]  # 5 + 5 of 12
    assert eng.preempted == ["young"] and s.preemptions == 1
    assert "young" not in order[2] and order[-1] == ["young"]  # resumed once "old" gave its tokens back
    assert sorted(r for r, _ in eng.released) == ["old", "young"]
    # the preempted item kept its own progress: 4 steps in all, not restarted
    assert sum(b.count("young") for b in order) == 4


def test_deadlines_order_admission_into_a_budgeted_running_batch() -> None:
    """An autoregressive engine's budget fits one more request: the stream about to run dry joins before a
    newer request's first segment, and the running item keeps its slot."""
    clock = Clock()
    eng = Budget(14)
    s = Scheduler(max_batch=8, clock=clock, engine=eng, first_audio_target_s=0.3,  # type: ignore[arg-type]
                  playback_margin_s=0.2)
    s.add(Request("stream", SynthesisParams(voice="v"), [Segment("s", None, 4) for _ in range(2)], arrival=0.0))
    (item,) = s.schedule()
    s.update(eng.step([item], steps_to_finish=1))  # its first segment done
    s.sent("stream", 0.4, at=0.0)  # due at 0.2
    s.add(prompt_req("long", 4, 0.0))  # running, holds 5 of 14 after its first step
    assert [i.request_id for i in s.schedule()] == ["stream", "long"]
    s.cancel("stream")
    clock.t = 0.1
    s.add(prompt_req("new", 4, 0.1))  # due 0.4
    s.add(Request("late", SynthesisParams(voice="v"), [Segment("l", None, 4)], arrival=0.1))
    s.get("late").first_sent, s.get("late").audio_sent_s = 0.0, 0.3  # pretend: due at 0.1
    batch = [i.request_id for i in s.schedule()]
    assert batch[0] == "long" and batch[1] == "late" and "new" not in batch  # 1 + 5 fits the 9 left; 5 more does not


def test_under_overload_first_audio_goes_first_and_streams_take_turns() -> None:
    """Once a listener has run dry, deadlines would rank every late stream ahead of every new request (first
    audio p50 3.7 s at 32 clients on a 22x engine): then new requests go first and the streams share what is
    left, least recently served first."""
    clock = Clock()
    s = Scheduler(max_batch=1, clock=clock, first_audio_target_s=0.3, playback_margin_s=0.2)
    for rid in "abc":
        s.add(req(rid, 6, 0.0))
    assert [step(s, clock, 0.1, audio_s=0.5)[0][0] for _ in range(3)] == ["a", "b", "c"]
    clock.t = 2.0  # every listener has run dry: overload
    assert s.stalled(s.get("a")) and s.stalled(s.get("c"))
    s.add(req("new", 2, 1.95))  # due 2.25, later than every stream's passed deadline
    assert step(s, clock, 0.1) == [("new", 0)]
    # then the streams in turn (least recently served first), the new one last: it was served just now
    assert [step(s, clock, 0.1)[0][0] for _ in range(4)] == ["a", "b", "c", "new"]


def test_overload_ends_when_every_listener_has_audio_again() -> None:
    clock = Clock()
    s = Scheduler(max_batch=1, clock=clock, first_audio_target_s=0.3, playback_margin_s=0.2)
    s.add(req("a", 3, 0.0))
    s.add(req("b", 3, 0.0))
    step(s, clock, 0.1, audio_s=10.0)  # a: plenty of audio
    step(s, clock, 0.1, audio_s=0.5)  # b: runs dry at 0.7
    clock.t = 0.6
    s.add(req("c", 2, 0.6))  # due 0.9; b is due 0.5 (dry 0.7 less the margin) and not dry yet: deadlines rule
    assert not any(s.stalled(r) for r in (s.get("a"), s.get("b")))
    assert step(s, clock, 0.05) == [("b", 1)]
    assert step(s, clock, 0.05) == [("c", 0)]


# -- segment sizing: cuts for the streams waiting behind ---------------------------------------------

def clause_split(segment: Segment, max_tokens: int) -> tuple[Segment, Segment] | None:
    """A synthetic engine's split: a clause boundary every 10 tokens; the head ends at the last boundary
    within ``max_tokens``, else the first; ``tokens`` is the list of words, so nothing may go missing."""
    words = segment.tokens
    bounds = list(range(10, len(words), 10))
    if not bounds:
        return None
    fits = [b for b in bounds if b <= max_tokens]
    cut = fits[-1] if fits else bounds[0]
    return Segment(segment.text, words[:cut], cut), Segment(segment.text, words[cut:], len(words) - cut)


def long_req(rid: str, arrival: float, sizes: tuple[int, ...] = (10, 100, 100)) -> Request:
    segs = [Segment(f"{rid}{i}", [f"{rid}{i}w{k}" for k in range(n)], n) for i, n in enumerate(sizes)]
    return Request(rid, SynthesisParams(voice="v"), segs, arrival=arrival)


def cutting(clock: Clock, spt: float = 0.01, **kw) -> Scheduler:
    kw = {"max_cuts": 1, "min_cut_tokens": 10, **kw}
    return Scheduler(clock=clock, first_audio_target_s=0.3, playback_margin_s=0.2, split=clause_split,
                     seconds_per_token=lambda: spt, **kw)


def started(s: Scheduler, clock: Clock, rid: str = "a") -> Request:
    """A stream of 3 segments (10, 100, 100 tokens) whose first segment made 0.5 s of audio in 0.1 s: its
    next segment is due at 0.4."""
    r = long_req(rid, clock.t)
    s.add(r)
    assert step(s, clock, 0.1, audio_s=0.5) == [(rid, 0)]
    return r


def test_a_later_segment_longer_than_the_waiting_slack_is_cut_at_a_clause() -> None:
    clock = Clock()
    s = cutting(clock)
    a = started(s, clock)  # due at 0.4; its next segment takes 1.0 s to make
    clock.t = 0.2
    # its first audio is due at 0.51, so its 1-token step (0.01 s) at 0.5: slack 0.3 s, 30 tokens at 0.01 s each
    s.add(req("b", 1, arrival=0.21))
    b_due = s.due(s.get("b"))
    (item,) = s.schedule()
    assert item.request_id == "a" and item.segment.num_tokens == 30  # the head that fits the slack
    assert [seg.num_tokens for seg in a.segments] == [10, 30, 70, 100]
    assert s.cuts == 1 and s.due(s.get("b")) == b_due  # the others' deadlines do not move
    # nothing is lost: the pieces say the original segment's words, in order
    assert a.segments[1].tokens + a.segments[2].tokens == [f"a1w{k}" for k in range(100)]


def test_nothing_is_cut_when_nobody_waits_or_the_slack_suffices() -> None:
    clock = Clock()
    s = cutting(clock)
    a = started(s, clock)
    (item,) = s.schedule()  # alone: nobody is blocked by a long step
    assert item.segment.num_tokens == 100 and s.cuts == 0
    s.update([StepOutput(item, np.zeros(1, np.float32), True)])
    s.sent("a", 5.0)
    clock.t = 1.0
    quiet = Request("q", SynthesisParams(voice="v"), [Segment("q", None, 1)], arrival=1.0, streaming=False)
    s.add(quiet)  # no listener: due 5.3 s later, slack enough for a's 1 s step
    s.sent("a", 0.0)
    (item,) = s.schedule()
    assert item.request_id == "a" and item.segment.num_tokens == 100 and s.cuts == 0
    assert [seg.num_tokens for seg in a.segments] == [10, 100, 100]


def test_nothing_is_cut_for_a_request_already_late() -> None:
    """Under overload the stream waiting behind has run dry already: a cut would save no deadline and cost
    one more step's fixed cost, so the running stream's segment goes whole."""
    clock = Clock()
    s = cutting(clock, max_cuts=2)
    a = started(s, clock, "a")
    d = long_req("d", clock.t)
    s.add(d)
    while d.first_sent is None:
        step(s, clock, 0.1, audio_s=0.5)
    clock.t = 5.0  # both listeners ran dry long ago: streams take turns
    before, whole = s.cuts, {r.id: r.segments[r.cursor].num_tokens for r in (a, d)}
    assert min(whole.values()) >= 2 * 10  # each could still be cut (the minimum is 10, one cut left)
    (item,) = s.schedule()
    assert item.segment.num_tokens == whole[item.request_id] and s.cuts == before


def test_a_first_segment_is_never_cut() -> None:
    clock = Clock()
    s = cutting(clock)
    s.add(long_req("a", 0.0, sizes=(100, 100)))
    s.add(req("b", 1, arrival=0.0))
    items = s.schedule()
    assert [(i.request_id, i.segment.num_tokens) for i in items] == [("a", 100)] and s.cuts == 0


def test_cuts_never_go_below_the_minimum_and_stop_at_max_cuts() -> None:
    clock = Clock()
    s = cutting(clock, min_cut_tokens=40)
    a = started(s, clock)
    clock.t = 0.2
    s.add(req("b", 1, arrival=0.2))
    (item,) = s.schedule()  # the slack fits 30 tokens, but no part may be under 40: cut at 40
    assert item.segment.num_tokens == 40 and [x.num_tokens for x in a.segments] == [10, 40, 60, 100]
    s.update([StepOutput(item, np.zeros(1, np.float32), True)])
    s.sent("a", 1.0)
    clock.t = 0.25
    s.add(req("c", 1, arrival=0.25))
    assert run_single_pass(s) == [("b", 0)]  # b's first audio is due first
    s.add(req("d", 1, arrival=0.3))
    (item,) = s.schedule()
    # a's tail (60) was cut once already (max_cuts=1): it runs whole; 60 < 2 x 40 could not be cut anyway
    assert (item.request_id, item.segment.num_tokens) in {("a", 60), ("c", 1)}
    assert [x.num_tokens for x in a.segments] == [10, 40, 60, 100] and s.cuts == 1


def test_max_cuts_two_cuts_a_tail_again() -> None:
    clock = Clock()
    s = cutting(clock, max_cuts=2)
    a = started(s, clock)
    clock.t = 0.2
    s.add(req("b", 1, arrival=0.21))  # its step due at 0.5 (first audio at 0.51)
    assert run_single_pass(s) == [("a", 1)]
    assert [x.num_tokens for x in a.segments] == [10, 30, 70, 100]
    clock.t = 0.3
    s.add(req("c", 1, arrival=0.3))  # b waits still (due 0.5: slack 0.2); a, due 0.4, goes first
    assert run_single_pass(s) == [("a", 2)]  # the tail is cut again: depth 2
    assert [x.num_tokens for x in a.segments] == [10, 30, 20, 50, 100] and s.cuts == 2
    assert run_single_pass(s) == [("a", 3)]  # the last piece (depth 2) runs whole
    assert [x.num_tokens for x in a.segments] == [10, 30, 20, 50, 100] and s.cuts == 2
    assert [w for x in a.segments[1:4] for w in x.tokens] == [f"a1w{k}" for k in range(100)]


def test_a_refused_or_failing_split_runs_the_segment_whole() -> None:
    clock = Clock()
    for split in (lambda seg, n: None, lambda seg, n: (_ for _ in ()).throw(RuntimeError("boom")),
                  lambda seg, n: (Segment("", [], 5), Segment("", [], 95))):  # under the minimum: refused
        s = Scheduler(clock=clock, split=split, seconds_per_token=lambda: 0.01, max_cuts=1, min_cut_tokens=10)
        clock.t = 0.0
        a = started(s, clock)
        clock.t = 0.2
        s.add(req("b", 1, arrival=0.2))
        (item,) = s.schedule()
        assert item.segment.num_tokens == 100 and len(a.segments) == 3 and s.cuts == 0


def test_cutting_changes_no_order_when_it_cuts_nothing() -> None:
    """Same arrivals, with cutting off, and on with an unknown rate or plenty of slack: the same steps."""
    def trace(s: Scheduler, clock: Clock) -> list[tuple[str, int]]:
        runs: list[tuple[str, int]] = []
        for k, rid in enumerate("abcdef"):
            s.add(long_req(rid, clock.t, sizes=(10, 100, 100, 100)))
            runs += step(s, clock, 0.1 + 0.05 * k, audio_s=2.0)
        while len(s):
            runs += step(s, clock, 0.3, audio_s=2.0)
        return runs

    off = trace(Scheduler(clock=(c := Clock())), c)
    assert trace(cutting(c := Clock(), spt=0.0), c) == off  # no measured rate yet
    assert trace(cutting(c := Clock(), spt=1e-6), c) == off  # every step fits the slack
    assert trace(Scheduler(clock=(c := Clock()), split=clause_split, seconds_per_token=lambda: 0.01), c) == off


def two_streams_with_audio_to_spare(s: Scheduler, clock: Clock) -> tuple[Request, Request]:
    """Streams a and b, each past its first segment (10 tokens) with 5 s of audio buffered: nobody is late,
    nobody waits for first audio."""
    a, b = both_started(s, clock)
    s.sent("a", 5.0)
    s.sent("b", 5.0)
    return a, b


def both_started(s: Scheduler, clock: Clock) -> tuple[Request, Request]:
    """Streams a and b (10, 100, 100 tokens) arriving at 0, their first segments made in 0.1 s each (0.5 s
    of audio): a's next segment is due at 0.4, b's at 0.5."""
    a, b = long_req("a", clock.t), long_req("b", clock.t)
    s.add(a)
    s.add(b)
    assert step(s, clock, 0.1, audio_s=0.5) + step(s, clock, 0.1, audio_s=0.5) == [("a", 0), ("b", 0)]
    return a, b


def test_short_steps_keep_a_later_step_within_a_newcomers_reserve() -> None:
    """With other streams in flight and nobody late, a request may arrive during any step: due 0.3 s after
    it arrives, it needs its own first segment (10 tokens = 0.1 s here), so no later step may run over 0.2 s
    (20 tokens), though the stream waiting behind could wait 5 s."""
    clock = Clock()
    s = cutting(clock, short_steps=True)
    a, _ = two_streams_with_audio_to_spare(s, clock)
    assert s.first_tokens() == 10
    (item,) = s.schedule()
    assert (item.request_id, item.segment.num_tokens) == ("a", 20)
    assert [seg.num_tokens for seg in a.segments] == [10, 20, 80, 100] and s.cuts == 1
    # off (the scheduler's default), the same streams run the segment whole
    off = cutting(c := Clock())
    two_streams_with_audio_to_spare(off, c)
    (item,) = off.schedule()
    assert (item.request_id, item.segment.num_tokens) == ("a", 100) and off.cuts == 0


def test_short_steps_cut_nothing_alone_late_or_when_a_first_segment_outlasts_the_target() -> None:
    # alone: no other stream's client is about to send a request
    clock = Clock()
    s = cutting(clock, short_steps=True)
    a = started(s, clock)
    s.sent("a", 5.0)
    (item,) = s.schedule()
    assert item.segment.num_tokens == 100 and s.cuts == 0
    # the stream itself is late (its next segment was due at 0.4): its whole segment beats two steps
    clock = Clock()
    s = cutting(clock, short_steps=True)
    a, b = both_started(s, clock)
    s.sent("b", 5.0)
    clock.t = 0.45
    assert s.due(a) < clock.t < a.first_sent + a.audio_sent_s  # late, not yet dry: deadlines still rule
    (item,) = s.schedule()
    assert (item.request_id, item.segment.num_tokens) == ("a", 100) and s.cuts == 0
    # a first segment takes 0.4 s (10 tokens at 0.04 s), over the 0.3 s target: no reserve can help
    clock = Clock()
    s = cutting(clock, spt=0.04, short_steps=True)
    two_streams_with_audio_to_spare(s, clock)
    (item,) = s.schedule()
    assert item.segment.num_tokens == 100 and s.cuts == 0


def test_a_first_segment_is_due_early_enough_for_its_audio_to_arrive_by_the_target() -> None:
    """With a measured rate, first audio (not the step's start) is what the target bounds: a 20-token first
    segment at 0.01 s a token starts 0.2 s before the target; one longer than the target starts at once, and
    without a rate (or an engine that cannot cut, whose rate is not a segment's) the target is the start."""
    clock = Clock()
    s = cutting(clock)
    short, long_ = long_req("a", 1.0, sizes=(20, 100)), long_req("b", 1.0, sizes=(50, 100))
    assert s.due(short) == pytest.approx(1.0 + 0.3 - 0.2) and s.due(long_) == pytest.approx(1.0)
    assert cutting(clock, spt=0.0).due(short) == pytest.approx(1.3)
    assert Scheduler(clock=clock, first_audio_target_s=0.3, seconds_per_token=lambda: 0.01).due(short) == 1.3
    # a short first segment arriving later than a long one can go first: both are served by their target
    s.add(long_req("x", 1.0, sizes=(25, 100)))
    s.add(long_req("y", 1.02, sizes=(5, 100)))
    assert run_single_pass(s) == [("x", 0)]  # x due 1.05, y 1.27
    s2 = cutting(clock)
    s2.add(long_req("x", 1.0, sizes=(5, 100)))
    s2.add(long_req("y", 1.02, sizes=(25, 100)))
    assert run_single_pass(s2) == [("y", 0)]  # y due 1.07, x 1.25


def test_max_cuts_is_bounded() -> None:
    with pytest.raises(ValueError):
        Scheduler(max_cuts=3)


def test_step_rate_is_a_weighted_mean_of_measured_steps() -> None:
    rate = StepRate(weight=0.5)
    assert rate() == 0.0
    rate.observe(0, 1.0)  # nothing to learn from
    rate.observe(100, 1.0)
    assert rate() == pytest.approx(0.01)
    rate.observe(100, 3.0)
    assert rate() == pytest.approx(0.02)
