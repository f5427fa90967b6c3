"""The worker loop in-process: a fake engine, real ZeroMQ sockets, the worker on a thread.

What is checked here cannot be seen from a whole process tree without timing luck: heartbeats during a
step, ``prepare`` beside a running step, one bad item in a batch, and ``release`` on every exit.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zmq

from vtts import protocol as P
from vtts.protocol import FinishReason
from vtts.workers.engine import (
    Engine,
    EngineError,
    RequestContext,
    Segment,
    StepOutput,
    SynthesisParams,
    VoiceInfo,
    WorkItem,
)
from vtts.workers.worker import Worker

WAIT_S = 20.0


class FakeEngine(Engine):
    """Words are segments; a segment named ``gate`` blocks its step until the test opens :attr:`gate`, the
    text ``slowprep`` blocks ``prepare`` until it opens :attr:`prep_gate`, ``slow`` takes 20 ms, ``boom``
    fails its item, ``crash`` raises out of the step."""

    name = "fake"
    max_batch = 4

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.stepping = threading.Event()
        self.batches: list[list[str]] = []
        self.released: list[tuple[str, FinishReason]] = []
        self.prepare_threads_seen: set[str] = set()
        self.preparing = threading.Event()
        self.prep_gate = threading.Event()

    @classmethod
    def load(cls, model_ref: str, device: str = "cpu", options: dict[str, Any] | None = None) -> FakeEngine:
        return cls()

    @property
    def sample_rate(self) -> int:
        return 16000

    def voices(self) -> list[VoiceInfo]:
        return [VoiceInfo("v", "en-US", 16000)]

    def prepare(self, text: str, params: SynthesisParams) -> list[Segment]:
        self.prepare_threads_seen.add(threading.current_thread().name)
        if text == "bad":
            raise EngineError("bad input", param="input")
        if text == "slowprep":
            self.preparing.set()
            assert self.prep_gate.wait(WAIT_S)
        return [Segment(w, w, 1) for w in text.split()]

    def step(self, items: list[WorkItem]) -> list[StepOutput]:
        self.batches.append([i.segment.text for i in items])
        if any(i.segment.text == "crash" for i in items):
            raise RuntimeError("the whole step broke")
        if any(i.segment.text == "gate" for i in items):
            self.stepping.set()
            assert self.gate.wait(WAIT_S)
        if any(i.segment.text == "slow" for i in items):
            time.sleep(0.02)
        out = []
        for i in items:
            error = RuntimeError("this item broke") if i.segment.text == "boom" else None
            words = [{"word": i.segment.text, "start": 0.0, "end": 0.005}]
            out.append(StepOutput(i, np.full(160, 0.1, np.float32), True, words, tokens=2, error=error))
        return out

    def release(self, ctx: RequestContext, reason: FinishReason) -> None:
        self.released.append((ctx.id, reason))

    def capacity(self) -> int | None:
        return 123


class Peer:
    """The frontend's ROUTER and the supervisor's control ROUTER, as the worker sees them."""

    def __init__(self, router: zmq.Socket, control: zmq.Socket, worker: Worker) -> None:
        self.router, self.control, self.worker = router, control, worker
        self.backlog: list[P.Message] = []

    @property
    def engine(self) -> FakeEngine:
        assert isinstance(self.worker.engine, FakeEngine)
        return self.worker.engine

    def send(self, msg: P.Message) -> None:
        self.router.send_multipart([b"w0", P.encode(msg)])

    def wait_delivered(self) -> None:
        """Return once a message sent here sits readable in the worker's socket. Only while the step thread is
        held inside a step (the socket is idle then): ZeroMQ hands a message over on its I/O thread, which a
        loaded machine can delay past the end of the step, and the worker would read it a step later."""
        deadline = time.monotonic() + WAIT_S
        while not self.worker.sock.getsockopt(zmq.EVENTS) & zmq.POLLIN:
            assert time.monotonic() < deadline, "the message never reached the worker's socket"
            time.sleep(0.001)

    def recv(self, sock: zmq.Socket | None = None, timeout: float = WAIT_S) -> P.Message:
        sock = sock or self.router
        assert sock.poll(int(timeout * 1000)), "nothing arrived"
        _, frame = sock.recv_multipart()
        return P.decode(frame)

    def until(self, rid: str, kinds: tuple[type, ...] = (P.Done, P.Error)) -> list[P.Message]:
        """Messages of request ``rid`` up to and including its Done or Error (statuses skipped)."""
        got: list[P.Message] = []
        while True:
            mine = [m for m in self.backlog if getattr(m, "id", None) == rid]
            self.backlog = [m for m in self.backlog if getattr(m, "id", None) != rid]
            for msg in mine or [self.recv()]:
                if getattr(msg, "id", None) != rid:
                    if not isinstance(msg, P.Status):
                        self.backlog.append(msg)  # another request's: kept for its own until()
                    continue
                got.append(msg)
                if isinstance(msg, kinds):
                    return got

    def wait_ready(self) -> None:
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            msg = self.recv()
            if isinstance(msg, P.Status) and msg.state == "ready":
                return
        raise AssertionError("the worker never became ready")


@contextmanager
def running_worker(tmp_path: Path, **model: Any) -> Iterator[Peer]:
    ctx = zmq.Context.instance()
    router, control = ctx.socket(zmq.ROUTER), ctx.socket(zmq.ROUTER)
    router.bind(f"ipc://{tmp_path}/fe")
    control.bind(f"ipc://{tmp_path}/ctl")
    entry = {"id": "m", "engine": f"{__name__}:FakeEngine", "model": "x", "device": "cpu", **model}
    worker = Worker("w0", entry, f"ipc://{tmp_path}/fe", control=f"ipc://{tmp_path}/ctl")

    def main() -> None:
        try:
            worker.run()
        finally:
            worker.close()

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    peer = Peer(router, control, worker)
    try:
        peer.wait_ready()
        yield peer
    finally:
        if worker.engine is not None:
            peer.engine.gate.set()
            peer.engine.prep_gate.set()
        worker.begin_drain(0.5)
        thread.join(WAIT_S)
        router.close(linger=0)
        control.close(linger=0)
    assert not thread.is_alive()


def synth(rid: str, text: str, **kw: Any) -> P.Synthesize:
    return P.Synthesize(id=rid, text=text, voice="v", **kw)


def test_heartbeats_flow_to_both_peers_during_a_long_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A step that outlasts several heartbeat periods must not make the worker look dead, and the heartbeat
    says since when the step runs (the supervisor's watchdog reads it)."""
    monkeypatch.setattr("vtts.workers.worker.HEARTBEAT_S", 0.05)
    with running_worker(tmp_path) as peer:
        peer.send(synth("r1", "gate"))
        assert peer.engine.stepping.wait(WAIT_S)
        before = time.time()
        for sock in (peer.router, peer.control):
            busy: list[P.Status] = []
            while len(busy) < 3:  # the step is still blocked: these can only come from another thread
                msg = peer.recv(sock)
                if isinstance(msg, P.Status) and msg.step_started_at:
                    busy.append(msg)
            assert all(0 < m.step_started_at <= before and m.state == "ready" for m in busy)
        peer.engine.gate.set()
        assert isinstance(peer.until("r1")[-1], P.Done)


def test_a_slow_prepare_does_not_stall_running_requests(tmp_path: Path) -> None:
    """``prepare`` runs on the pool: a request whose preparation blocks does not hold up another's steps."""
    with running_worker(tmp_path) as peer:
        peer.send(synth("a", "gate two three"))
        assert peer.engine.stepping.wait(WAIT_S)
        peer.send(synth("slow", "slowprep"))
        peer.engine.gate.set()
        assert isinstance(peer.until("a")[-1], P.Done)  # while "slow" is still inside prepare
        assert not peer.engine.prep_gate.is_set() and peer.engine.preparing.wait(WAIT_S)
        peer.engine.prep_gate.set()
        assert isinstance(peer.until("slow")[-1], P.Done)
        assert "MainThread" not in peer.engine.prepare_threads_seen


def test_a_failing_item_fails_only_its_request(tmp_path: Path) -> None:
    """Three requests in one step, the middle one's item fails: it gets the error, the others go on."""
    ctx = zmq.Context.instance()
    router = ctx.socket(zmq.ROUTER)
    router.bind(f"ipc://{tmp_path}/fe")
    worker = Worker("w0", {"id": "m", "engine": f"{__name__}:FakeEngine", "model": "x"}, f"ipc://{tmp_path}/fe")
    peer = Peer(router, router, worker)
    try:
        assert worker.load()
        for rid, text in (("a", "one two"), ("b", "boom"), ("c", "three")):
            worker.on_synthesize(synth(rid, text))
        deadline = time.monotonic() + WAIT_S
        while worker._prepared.qsize() < 3:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        worker.collect_prepared()
        assert worker.scheduler is not None
        items = worker.scheduler.schedule()
        worker.run_step(items)
        worker.run_step(worker.scheduler.schedule())
        assert peer.engine.batches == [["one", "boom", "three"], ["two"]]
        results = {rid: peer.until(rid) for rid in ("a", "b", "c")}
    finally:
        worker.close()
        router.close(linger=0)
    assert isinstance(results["b"][-1], P.Error) and results["b"][-1].code == "engine_error"
    for rid in ("a", "c"):
        assert isinstance(results[rid][-1], P.Done) and any(isinstance(m, P.Audio) for m in results[rid])
    done = results["a"][-1]
    assert isinstance(done, P.Done) and done.usage["output_tokens"] == 4  # the tokens the engine reported
    assert sorted(peer.engine.released) == [("a", FinishReason.FINISHED), ("b", FinishReason.FAILED),
                                            ("c", FinishReason.FINISHED)]


def test_a_step_that_raises_fails_its_batch_only(tmp_path: Path) -> None:
    with running_worker(tmp_path) as peer:
        peer.send(synth("x", "crash"))
        err = peer.until("x")[-1]
        assert isinstance(err, P.Error) and err.status == 500 and "whole step" in err.message
        peer.send(synth("y", "fine"))
        assert isinstance(peer.until("y")[-1], P.Done)


def test_release_is_called_once_on_every_exit(tmp_path: Path) -> None:
    with running_worker(tmp_path) as peer:
        peer.send(synth("done", "a b"))
        peer.until("done")
        peer.send(synth("failed", "boom"))
        peer.until("failed")
        peer.send(synth("late", "a", deadline=time.time() - 1))
        assert peer.until("late")[-1].code == "timeout"  # type: ignore[union-attr]
        # the cancel is sent while "gate" runs; the "slow" segments after it leave the cancel a second to
        # arrive (it takes microseconds) before the request could finish on its own
        peer.send(synth("cancelled", "gate " + "slow " * 50))
        assert peer.engine.stepping.wait(WAIT_S)
        peer.send(P.Cancel("cancelled"))
        peer.engine.gate.set()
        peer.send(synth("probe", "x"))  # handled after the cancel: its Done means the cancel took effect
        peer.until("probe")
        peer.engine.gate.clear()
        peer.engine.stepping.clear()
        peer.send(synth("drained", "gate b"))
        assert peer.engine.stepping.wait(WAIT_S)
        peer.worker.begin_drain(0.0)  # the drain deadline passes while the step runs
        peer.engine.gate.set()
        assert peer.until("drained")[-1].code == "unavailable"  # type: ignore[union-attr]
        released = list(peer.engine.released)
    assert sorted(released) == sorted([
        ("done", FinishReason.FINISHED), ("failed", FinishReason.FAILED), ("late", FinishReason.EXPIRED),
        ("cancelled", FinishReason.CANCELLED), ("probe", FinishReason.FINISHED), ("drained", FinishReason.DRAINED),
    ])


def test_bad_input_is_a_400_and_nothing_to_release(tmp_path: Path) -> None:
    with running_worker(tmp_path) as peer:
        peer.send(synth("r", "bad"))
        err = peer.until("r")[-1]
        assert isinstance(err, P.Error) and (err.status, err.param) == (400, "input")
        assert peer.engine.released == []


def test_status_carries_capacity_device_memory_and_instructions_reach_prepare(tmp_path: Path) -> None:
    seen: list[SynthesisParams] = []
    with running_worker(tmp_path) as peer:
        original = peer.engine.prepare

        def spy(text: str, params: SynthesisParams) -> list[Segment]:
            seen.append(params)
            return original(text, params)

        peer.engine.prepare = spy  # type: ignore[method-assign]
        peer.send(synth("r", "hi", instructions="whisper it", max_audio_s=12.0))
        peer.until("r")
        st = peer.worker.status()
        assert (st.capacity, st.device_memory_bytes, st.step_started_at) == (123, 0, 0.0)
    assert seen[0].instructions == "whisper it" and seen[0].max_audio_s == 12.0


def test_queue_bound_counts_requests_still_being_prepared(tmp_path: Path) -> None:
    with running_worker(tmp_path, max_queue=2) as peer:
        for rid, text in (("slow", "slowprep"), ("a", "x"), ("b", "x")):
            peer.send(synth(rid, text))
        err = peer.until("b")[-1]
        assert isinstance(err, P.Error) and err.status == 429
        peer.engine.prep_gate.set()
        assert isinstance(peer.until("a")[-1], P.Done)


def test_done_carries_usage_and_timings_and_audio_is_in_order(tmp_path: Path) -> None:
    """One Audio per segment, numbered from 0, word timings moved onto the request's timeline; usage counts
    the segments' tokens in and the engine's reported tokens out."""
    with running_worker(tmp_path) as peer:
        peer.send(synth("r", "one two three"))
        msgs = peer.until("r")
    audio = [m for m in msgs if isinstance(m, P.Audio)]
    done = msgs[-1]
    assert [a.seq for a in audio] == [0, 1, 2] and all(len(a.pcm) == 320 and a.sample_rate == 16000 for a in audio)
    assert [(w["word"], w["start"]) for a in audio for w in a.timestamps] == [("one", 0.0), ("two", 0.01),
                                                                               ("three", 0.02)]
    assert isinstance(done, P.Done)
    assert done.usage == {"input_tokens": 3, "output_tokens": 6, "total_tokens": 9}
    assert done.timings["segments"] == 3.0 and done.timings["audio_s"] == pytest.approx(0.03)


def test_a_duplicate_request_id_is_a_400_and_the_first_goes_on(tmp_path: Path) -> None:
    with running_worker(tmp_path) as peer:
        peer.send(synth("r", "gate two"))
        assert peer.engine.stepping.wait(WAIT_S)
        peer.send(synth("r", "again"))  # handled after the "gate" step, while "two" is still to run
        peer.wait_delivered()
        peer.engine.gate.set()
        msgs = peer.until("r", (P.Done,))
    errors = [m for m in msgs if isinstance(m, P.Error)]
    assert [(e.code, e.status) for e in errors] == [(P.ErrorCode.DUPLICATE_REQUEST, 400)]
    assert sum(isinstance(m, P.Audio) for m in msgs) == 2 and peer.engine.batches == [["gate"], ["two"]]


def test_draining_refuses_new_requests_retryably_and_finishes_the_running_ones(tmp_path: Path) -> None:
    with running_worker(tmp_path) as peer:
        peer.send(synth("a", "gate two"))
        assert peer.engine.stepping.wait(WAIT_S)
        peer.worker.begin_drain(WAIT_S)
        assert peer.worker.status().state == "draining"  # the frontend stops routing here
        peer.send(synth("b", "x"))
        peer.wait_delivered()
        peer.engine.gate.set()
        refused = peer.until("b")[-1]
        assert isinstance(peer.until("a")[-1], P.Done)
    assert isinstance(refused, P.Error) and refused.status == 503 and P.is_retryable(refused.code)
    assert peer.engine.released == [("a", FinishReason.FINISHED)]


def test_a_request_that_arrives_during_the_last_step_of_a_drain_is_refused(tmp_path: Path) -> None:
    """The drained loop ends as soon as its last request finishes; what reached the socket during that last
    step still gets its retryable 503 (the frontend retries it elsewhere) instead of no answer at all."""
    with running_worker(tmp_path) as peer:
        peer.send(synth("a", "gate"))
        assert peer.engine.stepping.wait(WAIT_S)
        peer.worker.begin_drain(WAIT_S)
        peer.send(synth("b", "x"))
        peer.wait_delivered()
        peer.engine.gate.set()
        assert isinstance(peer.until("a")[-1], P.Done)
        refused = peer.until("b")[-1]
    assert isinstance(refused, P.Error) and refused.status == 503 and P.is_retryable(refused.code)


def test_a_request_cancelled_while_it_is_prepared_never_runs(tmp_path: Path) -> None:
    with running_worker(tmp_path) as peer:
        peer.send(synth("p", "slowprep"))
        assert peer.engine.preparing.wait(WAIT_S)
        peer.send(P.Cancel("p"))
        deadline = time.monotonic() + WAIT_S
        while not peer.worker._preparing.get("p"):  # the step thread marked it cancelled
            assert time.monotonic() < deadline
            time.sleep(0.01)
        peer.engine.prep_gate.set()
        while peer.worker._preparing:  # the prepared result was collected, and dropped
            assert time.monotonic() < deadline
            time.sleep(0.01)
        peer.send(synth("probe", "y"))
        peer.until("probe")  # anything sent for "p" came before this and waits in the backlog
        assert not [m for m in peer.backlog if getattr(m, "id", None) == "p"]  # nothing was ever sent for it
    assert ["slowprep"] not in peer.engine.batches
    assert ("p", FinishReason.CANCELLED) not in peer.engine.released  # never admitted: nothing to release


def test_control_operations_answer_even_when_they_cannot_run(tmp_path: Path) -> None:
    with running_worker(tmp_path) as peer:
        peer.send(P.Control("c1", "format_disk"))
        reply = peer.until("c1", (P.ControlReply,))[-1]
        assert isinstance(reply, P.ControlReply) and not reply.ok and "unknown operation" in reply.message
        peer.send(P.Control("c2", "reload_lexicon"))
        reply = peer.until("c2", (P.ControlReply,))[-1]
        assert isinstance(reply, P.ControlReply) and not reply.ok and "no text frontend" in reply.message


class SpeakerEngine(FakeEngine):
    """FakeEngine with a speaker model: the vector is the audio's (mean, RMS, rate / 16 kHz), computed on the
    thread that :attr:`embed_threads` records."""

    verifies_speakers = True

    def __init__(self) -> None:
        super().__init__()
        self.embed_threads: set[str] = set()

    def speaker_embedding(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        self.embed_threads.add(threading.current_thread().name)
        if audio.size < sample_rate // 2:
            raise EngineError("too short to tell a speaker")
        return np.array([audio.mean(), np.sqrt(np.mean(audio ** 2)), sample_rate / 16000], np.float32)


def test_speaker_embedding_runs_on_the_prepare_pool_and_refusals_are_replies(tmp_path: Path) -> None:
    pcm = (np.full(16000, 0.25) * 32767).astype("<i2").tobytes()
    with running_worker(tmp_path, engine=f"{__name__}:SpeakerEngine") as peer:
        assert peer.worker.status().verifies_speakers
        peer.send(P.Control("e1", "speaker_embedding", {"pcm": pcm, "sample_rate": 16000}))
        reply = peer.until("e1", (P.ControlReply,))[-1]
        assert isinstance(reply, P.ControlReply) and reply.ok
        assert np.allclose(reply.result["embedding"], [0.25, 0.25, 1.0], atol=1e-3)
        assert all(name.startswith("prepare") for name in peer.engine.embed_threads)  # type: ignore[attr-defined]
        peer.send(P.Control("e2", "speaker_embedding", {"pcm": pcm[:2000], "sample_rate": 16000}))
        reply = peer.until("e2", (P.ControlReply,))[-1]
        assert isinstance(reply, P.ControlReply) and not reply.ok and "too short" in reply.message
        peer.send(P.Control("e3", "speaker_embedding", {"sample_rate": 16000}))
        reply = peer.until("e3", (P.ControlReply,))[-1]
        assert isinstance(reply, P.ControlReply) and not reply.ok and "'pcm'" in reply.message
    (tmp_path / "plain").mkdir()
    with running_worker(tmp_path / "plain") as peer:
        assert not peer.worker.status().verifies_speakers
        peer.send(P.Control("e4", "speaker_embedding", {"pcm": pcm, "sample_rate": 16000}))
        reply = peer.until("e4", (P.ControlReply,))[-1]
        assert isinstance(reply, P.ControlReply) and not reply.ok and "no speaker model" in reply.message


def test_an_engine_without_a_budget_reports_free_batch_slots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the frontend routes by: max_batch minus the requests running, for engines that have no budget."""
    monkeypatch.setattr(FakeEngine, "capacity", lambda self: None)
    with running_worker(tmp_path, max_batch=3) as peer:
        assert peer.worker.status().capacity == 3
        peer.send(synth("r", "gate two"))
        assert peer.engine.stepping.wait(WAIT_S)
        peer.worker.publish()  # the step thread publishes between steps; this one is blocked in the gate
        assert peer.worker.status().capacity == 2
        peer.engine.gate.set()
        peer.until("r")


@pytest.mark.parametrize("n", [1, 3])
def test_single_pass_engines_retry_a_failing_batch_item_by_item(n: int) -> None:
    """SinglePassEngine turns a batch exception into per-item errors: only the bad segment fails."""
    from vtts.workers.engine import SinglePassEngine

    class Eng(SinglePassEngine):
        sample_rate = 16000  # type: ignore[assignment]

        @classmethod
        def load(cls, model_ref: str, device: str = "cpu", options: dict[str, Any] | None = None) -> Eng:
            return cls()

        def voices(self) -> list[VoiceInfo]:
            return []

        def prepare(self, text: str, params: SynthesisParams) -> list[Segment]:
            return []

        def synthesize(self, segments: list[Segment], params: list[SynthesisParams]) -> list[np.ndarray]:
            if any(s.text == "bad" for s in segments):
                raise ValueError("bad segment")
            return [np.ones(4, np.float32) for _ in segments]

    p = SynthesisParams(voice="v")
    texts = ["ok", "bad", "ok"][:n] if n > 1 else ["bad"]
    items = [WorkItem(str(i), 0, Segment(t, None, 1), p) for i, t in enumerate(texts)]
    outs = Eng().step(items)
    assert [o.error is not None for o in outs] == [t == "bad" for t in texts]
    assert all(o.finished for o in outs)


def test_device_memory_comes_from_torch_once_it_holds_the_device(monkeypatch: pytest.MonkeyPatch) -> None:
    """A torch engine's worker reports what torch's allocator reserved on its device; a CPU worker 0."""
    import sys
    import types

    from vtts.workers import worker as W

    cuda = types.SimpleNamespace(is_initialized=lambda: True,
                                 memory_reserved=lambda index: 7 << 20 if index == 1 else 0)
    monkeypatch.setitem(sys.modules, "torch", types.SimpleNamespace(cuda=cuda))
    assert W.device_memory_bytes("cuda:1") == 7 << 20
    assert W.device_memory_bytes("cpu") == 0


def test_device_memory_is_0_when_nvml_cannot_tell(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from vtts.workers import worker as W

    monkeypatch.delitem(sys.modules, "torch", raising=False)
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import fails like a host without NVIDIA's library
    monkeypatch.setattr(W, "_nvml", None)
    assert W.device_memory_bytes("cuda:0") == 0


def test_voice_cache_computes_once_per_version_is_bounded_and_forgets() -> None:
    """Features are computed once per (voice, version); a new version recomputes; the LRU bound holds;
    ``forget`` drops every version of a voice (what deleting a voice sends to each worker)."""
    from vtts.workers.worker import VoiceCache

    class Counting:
        calls = 0

        def voice_features(self, ref: dict) -> int:
            Counting.calls += 1
            return int(ref["audio"].size)

    eng = Counting()
    cache = VoiceCache(size=2)
    ref = {"id": "voice_a", "version": 1, "pcm": b"\x01\x00" * 10, "sample_rate": 16000}
    audio, feats = cache.get(eng, ref)
    assert feats == 10 and audio.dtype == np.float32 and Counting.calls == 1
    cache.get(eng, ref)
    assert (cache.hits, cache.misses, Counting.calls) == (1, 1, 1)
    cache.get(eng, {**ref, "version": 2})
    assert Counting.calls == 2 and len(cache) == 2
    cache.get(eng, {**ref, "id": "voice_b"})
    assert len(cache) == 2  # the least recently used entry went
    assert cache.forget("voice_a") == 1 and len(cache) == 1


def test_done_reports_the_gap_a_listener_heard_and_pacing_reaches_the_scheduler(tmp_path: Path) -> None:
    """The first chunk (10 ms of audio) is sent, then the next step is held 0.3 s: a listener with no
    jitter buffer hears a gap of about that, once. The model entry's pacing fields and the request's
    ``streaming`` flag reach the scheduler."""
    with running_worker(tmp_path, jitter_buffer_s=0.0, first_audio_target_s=0.7, playback_margin_s=0.1,
                        relaxed_deadline_s=9.0) as peer:
        sched = peer.worker.scheduler
        assert sched is not None
        assert (sched.first_audio_target_s, sched.playback_margin_s, sched.relaxed_s) == (0.7, 0.1, 9.0)
        peer.send(synth("r", "a gate", streaming=False))
        assert peer.engine.stepping.wait(WAIT_S)
        request = sched.get("r")
        assert request is not None and not request.streaming and request.audio_sent_s == pytest.approx(0.01)
        time.sleep(0.3)
        peer.engine.gate.set()
        done = peer.until("r")[-1]
        assert isinstance(done, P.Done)
        assert done.timings["stalls"] == 1.0
        assert 0.28 <= done.timings["stall_s"] < WAIT_S


class CuttingEngine(FakeEngine):
    """A FakeEngine that can cut its segments (it never finds a boundary)."""

    min_cut_tokens = 7

    def split(self, segment: Segment, max_tokens: int) -> tuple[Segment, Segment] | None:
        return None


def test_segment_sizing_reaches_the_scheduler_only_for_engines_that_cut(tmp_path: Path) -> None:
    """The model entry's ``max_cuts`` and the engine's split and minimum reach the scheduler, and the measured
    step rate feeds it; an engine that cannot cut takes no part. Done says how many segments were cut."""
    with running_worker(tmp_path, engine=f"{__name__}:CuttingEngine", max_cuts=2) as peer:
        sched = peer.worker.scheduler
        assert sched is not None and sched.split is not None
        assert (sched.max_cuts, sched.min_cut_tokens, sched.short_steps) == (2, 7, True)
        peer.send(synth("r", "slow two"))
        done = peer.until("r")[-1]
        assert isinstance(done, P.Done) and done.timings["cuts"] == 0.0
        assert sched.seconds_per_token is not None and sched.seconds_per_token() > 0
    with running_worker(tmp_path) as peer:
        sched = peer.worker.scheduler
        assert sched is not None and sched.split is None and sched.max_cuts == 0
    with running_worker(tmp_path, engine=f"{__name__}:CuttingEngine", short_steps=False) as peer:
        assert peer.worker.scheduler is not None and peer.worker.scheduler.short_steps is False


def test_a_request_read_after_a_step_joins_the_very_next_step(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A request that arrives during a step is read from the socket only when the step ends; its prepare
    (on the pool) is waited for briefly, so it joins the next step instead of the one after it (without the
    wait it missed it four times in five here). The bound is raised so a loaded machine cannot miss it."""
    monkeypatch.setattr("vtts.workers.worker.PREPARE_WAIT_S", 5.0)
    with running_worker(tmp_path) as peer:
        peer.send(synth("a", "gate w2 w3"))
        assert peer.engine.stepping.wait(WAIT_S)
        peer.send(synth("n", "n1"))
        peer.wait_delivered()  # n waits in the socket while the step runs
        peer.engine.gate.set()
        assert isinstance(peer.until("n")[-1], P.Done) and isinstance(peer.until("a")[-1], P.Done)
        assert peer.engine.batches[0] == ["gate"] and "n1" in peer.engine.batches[1]


def test_a_requests_deadline_counts_from_when_the_frontend_sent_it(tmp_path: Path) -> None:
    """The worker reads a request only between steps: its queue wait (and its playback deadline) count from
    the frontend's ``sent_at``, bounded so that a clock jump cannot make it look minutes old."""
    with running_worker(tmp_path) as peer:
        waits = {}
        for rid, sent_at in (("now", 0.0), ("half", time.time() - 0.5), ("ancient", time.time() - 1e6)):
            peer.send(synth(rid, "w", sent_at=sent_at))
            done = peer.until(rid)[-1]
            assert isinstance(done, P.Done)
            waits[rid] = done.timings["queue_wait_s"]
        assert waits["now"] < 0.4 and 0.5 <= waits["half"] < 0.9
        assert 10.0 <= waits["ancient"] < 10.4  # MAX_TRANSIT_S
