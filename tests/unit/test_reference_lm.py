"""The reference autoregressive engine under the worker's scheduler: what any LM engine must get right.

Audio is compared exactly: tokens decide it, and the engine's float64 arithmetic keeps batched, unbatched
and recomputed logits close enough that every sampled token is the same.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch")

from vtts.protocol import FinishReason  # noqa: E402
from vtts.workers.engine import EngineError, SynthesisParams  # noqa: E402
from vtts.workers.engines.reference_lm import ReferenceLM  # noqa: E402
from vtts.workers.offline import generate, synthesize  # noqa: E402
from vtts.workers.registry import engine_class  # noqa: E402
from vtts.workers.scheduler import Request, Scheduler  # noqa: E402

TEXTS = [
    "Hello there.", "A second, somewhat longer sentence follows here.", "Short.", "Numbers like 42 too!",
    "What about questions?", "Two sentences. In one request.", "x", "The quick brown fox jumps.",
]


def load(**options: Any) -> ReferenceLM:
    engine = engine_class("reference-lm").load("tiny", "cpu", {"max_new_tokens": 16, **options})
    assert isinstance(engine, ReferenceLM)
    return engine


def params(seed: int, **extra: Any) -> SynthesisParams:
    return SynthesisParams(voice="tone", extra={"seed": seed, **extra})


def request_set(engine: ReferenceLM, n: int) -> list[tuple[SynthesisParams, list[Any]]]:
    out = []
    for i in range(n):
        p = params(i)
        out.append((p, engine.prepare(TEXTS[i % len(TEXTS)], p)))
    return out


def run(engine: ReferenceLM, requests: list[tuple[SynthesisParams, list[Any]]], max_batch: int) -> list[np.ndarray]:
    chunks: list[list[np.ndarray]] = [[] for _ in requests]
    for index, out in generate(engine, requests, max_batch=max_batch):
        chunks[index].append(out.audio)
    return [np.concatenate(c) for c in chunks]


def test_audio_is_the_same_alone_and_in_a_batch_of_16() -> None:
    engine = load()
    requests = request_set(engine, 16)
    alone = [run(engine, [r], max_batch=1)[0] for r in requests]
    batched = run(engine, requests, max_batch=16)
    assert all(a.size for a in alone)
    for a, b in zip(alone, batched, strict=True):
        assert np.array_equal(a, b)
    assert len({a.tobytes() for a in alone}) > 8  # the requests really differ


def test_a_batch_of_16_decodes_in_one_forward_call() -> None:
    engine = load(max_new_tokens=40)
    sched = Scheduler(max_batch=16, engine=engine)
    for i, (p, segments) in enumerate(request_set(engine, 16)):
        sched.add(Request(str(i), p, segments[:1], arrival=float(i)))
    items = sched.schedule()
    sched.update(engine.step(items))  # every request's prefill
    assert engine.prefill_calls == 16
    items = sched.schedule()
    running = [i for i in items if engine.cost(i) == 1]
    before = engine.decode_calls
    sched.update(engine.step(items))
    assert len(running) == len(items) > 8 and engine.decode_calls == before + 1


def test_requests_join_and_leave_between_decoding_steps() -> None:
    engine = load(max_new_tokens=24, chunk_tokens=1)
    pa, pb = params(1), params(2)
    a, b = engine.prepare("First request.", pa), engine.prepare("Second one.", pb)
    alone_a, alone_b = synthesize(engine, "First request.", pa), synthesize(engine, "Second one.", pb)
    sched = Scheduler(max_batch=4, engine=engine)
    sched.add(Request("a", pa, a, arrival=0.0))
    audio: dict[str, list[np.ndarray]] = {"a": [], "b": []}
    batches: list[list[str]] = []
    step = 0
    while len(sched):
        if step == 3:
            sched.add(Request("b", pb, b, arrival=1.0))  # b joins a running a
        items = sched.schedule()
        batches.append(sorted(i.request_id for i in items))
        outs = engine.step(items)
        for o in outs:
            audio[o.item.request_id].append(o.audio)
        sched.update(outs)
        step += 1
    assert batches[:3] == [["a"]] * 3 and batches[3] == ["a", "b"]
    assert batches[-1] == ["b"] or batches[-1] == ["a"]  # one of them left while the other went on
    assert any(len(bt) == 1 for bt in batches[4:])
    assert np.array_equal(np.concatenate(audio["a"]), alone_a)
    assert np.array_equal(np.concatenate(audio["b"]), alone_b)


def test_preemption_under_a_small_budget_changes_no_output() -> None:
    roomy = load(max_new_tokens=24)
    requests = request_set(roomy, 6)
    expected = run(roomy, requests, max_batch=6)
    tight = load(max_new_tokens=24, kv_budget_tokens=120)
    sched = Scheduler(max_batch=6, engine=tight)
    for i, (p, segments) in enumerate(request_set(tight, 6)):
        sched.add(Request(str(i), p, segments, arrival=float(i)))
    chunks: list[list[np.ndarray]] = [[] for _ in range(6)]
    while len(sched):
        outs = tight.step(sched.schedule())
        assert tight.kv_tokens <= 120 or len(outs) == 1
        for o in outs:
            chunks[int(o.item.request_id)].append(o.audio)
        sched.update(outs)
    assert sched.preemptions > 0
    for got, want in zip(chunks, expected, strict=True):
        assert np.array_equal(np.concatenate(got), want)
    assert tight.kv_tokens == 0 and tight.live_requests == 0


def test_kv_memory_and_live_requests_return_to_zero_after_200_mixed_exits() -> None:
    """200 requests that finish, are cancelled mid-decode, time out before starting or fail mid-decode."""

    class Clock:
        t = 0.0

        def __call__(self) -> float:
            return self.t

    engine = load(max_new_tokens=12)
    released: dict[str, list[FinishReason]] = {}
    original = engine.release

    def count(ctx: Any, reason: FinishReason) -> None:
        released.setdefault(ctx.id, []).append(reason)
        original(ctx, reason)

    engine.release = count  # type: ignore[method-assign]
    clock = Clock()
    sched = Scheduler(max_batch=16, max_queue=200, engine=engine, clock=clock)
    rng = random.Random(0)
    fates = {}
    for i in range(200):
        fate = rng.choice(["finish", "cancel", "timeout", "fail"])
        extra = {"fail_after": rng.randint(1, 6)} if fate == "fail" else {}
        p = params(i, **extra)
        deadline = 1.0 if fate == "timeout" else 0.0
        sched.add(Request(str(i), p, engine.prepare(TEXTS[i % len(TEXTS)], p), arrival=float(i), deadline=deadline))
        fates[str(i)] = fate
    steps = 0
    while len(sched):
        steps += 1
        if steps == 2:
            clock.t = 2.0  # the timeouts that have not started by now expire
            sched.expire()
        outs = engine.step(sched.schedule())
        for o in outs:
            rid = o.item.request_id
            if o.error is not None:
                sched.fail(rid)
            elif fates[rid] == "cancel" and o.item.context and o.item.context.state.get("out"):
                sched.cancel(rid)  # mid-decode
        sched.update(outs)
        assert steps < 10_000
    assert len(released) == 200 and all(len(r) == 1 for r in released.values())
    reasons = {r[0] for r in released.values()}
    assert {FinishReason.FINISHED, FinishReason.CANCELLED, FinishReason.FAILED, FinishReason.EXPIRED} <= reasons
    assert engine.live_requests == 0 and engine.kv_tokens == 0 and engine.kv_bytes == 0


def test_same_seed_same_audio_other_seed_or_instructions_other_audio() -> None:
    engine = load()
    one = synthesize(engine, "Hello there.", params(5))
    assert np.array_equal(one, synthesize(engine, "Hello there.", params(5)))
    assert not np.array_equal(one, synthesize(engine, "Hello there.", params(6)))
    told = SynthesisParams(voice="tone", extra={"seed": 5}, instructions="Speak slowly.")
    assert not np.array_equal(one, synthesize(engine, "Hello there.", told))
    greedy = params(1, temperature=0)
    assert np.array_equal(synthesize(engine, "Hi.", greedy), synthesize(engine, "Hi.", params(2, temperature=0)))


@pytest.mark.parametrize(
    ("extra", "param"),
    [({"nope": 1}, "extra.nope"), ({"seed": "1"}, "extra.seed"), ({"temperature": -1}, "extra.temperature"),
     ({"top_p": 2}, "extra.top_p"), ({"top_k": 1.5}, "extra.top_k"),
     ({"repetition_penalty": 0}, "extra.repetition_penalty")],
)
def test_bad_knobs_are_refused_naming_them(extra: dict[str, Any], param: str) -> None:
    with pytest.raises(EngineError) as err:
        load().prepare("Hi.", SynthesisParams(voice="tone", extra=extra))
    assert err.value.param == param


def test_a_segment_past_the_budget_is_refused_up_front() -> None:
    with pytest.raises(EngineError):
        load(kv_budget_tokens=20).prepare("This sentence is far longer than twenty tokens.", params(1))
