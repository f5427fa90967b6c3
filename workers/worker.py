"""A worker process: one engine instance, a scheduling loop, and DEALER sockets to the frontend.

Three kinds of threads, so none can stall another:

* the step thread (the main one) alternates between draining the socket (new requests join, cancels take
  effect) and one engine step, so requests interleave at segment granularity and every segment's audio
  leaves as soon as it is made;
* a small pool runs ``prepare`` (G2P, tokenizers, reference-audio features), so a long text does not stall
  a running batch;
* the heartbeat thread sends ``status`` on its own sockets (ZeroMQ sockets are not thread-safe) to the
  frontend and the supervisor, so heartbeats keep flowing during a long step or a long load.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import queue
import resource
import signal
import sys
import threading
import time
from collections import OrderedDict
from concurrent import futures
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import zmq

from vtts import protocol as P
from vtts.playback import DEFAULT_JITTER_S, PlaybackMeter
from vtts.protocol import ErrorCode, FinishReason, WorkerState

from .engine import Engine, EngineError, StepOutput, SynthesisParams, WorkItem
from .registry import engine_class
from .scheduler import (
    DEFAULT_FIRST_AUDIO_TARGET_S,
    DEFAULT_MAX_CUTS,
    DEFAULT_MAX_QUEUE,
    DEFAULT_PLAYBACK_MARGIN_S,
    DEFAULT_RELAXED_S,
    QueueFull,
    Request,
    Scheduler,
    StepRate,
)

log = logging.getLogger("vtts.worker")

HEARTBEAT_S = 1.0
#: the least time between two statuses, however often the step thread pokes
MIN_STATUS_GAP_S = 0.02
#: output_tokens are counted as 20 ms audio frames (50 per second) unless the engine reports the speech
#: tokens it emitted, see README "Usage counts"
FRAMES_PER_SECOND = 50
#: how long the step loop waits on its socket when idle: it notices the drain deadline and a dead parent
#: this often (a prepared request wakes it at once, through a pipe)
IDLE_POLL_S = 0.1
#: custom voices whose engine features a worker keeps (least recently used dropped first)
VOICE_CACHE_SIZE = 64
#: requests read from the socket between two steps are prepared on the pool while the next step waits this
#: long at most, so that they can join it: read after the step in progress, one prepared a moment too late
#: would wait for a whole second step (Piper's prepare takes about 1 ms; a slow one costs the batch this
#: much once)
PREPARE_WAIT_S = 0.01
#: the longest a Synthesize's transit (its ``sent_at`` to being read here) counts toward its deadline: a
#: wall clock that jumps must not make a request look minutes old
MAX_TRANSIT_S = 10.0


class VoiceCache:
    """Engine features per (voice id, version), bounded, least recently used out first. Thread-safe: prepare
    threads fill it, the step thread's ``forget_voice`` empties it. A worker process starts with it empty, so a
    hot swap (new processes) starts cold."""

    def __init__(self, size: int = VOICE_CACHE_SIZE) -> None:
        self.size = size
        self.hits = 0
        self.misses = 0
        self._items: OrderedDict[tuple[str, int], Any] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, engine: Engine, ref: dict[str, Any]) -> tuple[np.ndarray, Any]:
        """(the reference's float32 audio, its features), computing the features on a miss."""
        audio = np.frombuffer(ref.get("pcm") or b"", dtype="<i2").astype(np.float32) / 32768.0
        key = (str(ref.get("id", "")), int(ref.get("version", 0)))
        with self._lock:
            if key in self._items:
                self.hits += 1
                self._items.move_to_end(key)
                return audio, self._items[key]
        features = engine.voice_features({"audio": audio, "sample_rate": int(ref.get("sample_rate", 0)),
                                          "transcript": ref.get("transcript"), "language": ref.get("language")})
        with self._lock:
            self.misses += 1
            self._items[key] = features
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return audio, features

    def forget(self, voice_id: str) -> int:
        """Drop every version of a voice; how many entries went."""
        with self._lock:
            keys = [k for k in self._items if k[0] == voice_id]
            for k in keys:
                del self._items[k]
        return len(keys)


@dataclass
class Tracking:
    """Per-request counters the worker reports in ``done``."""

    seq: int = 0
    samples: int = 0
    engine_s: float = 0.0
    first_audio_at: float | None = None
    queue_wait_s: float = 0.0
    usage_tokens: int = 0
    #: speech tokens the engine reported emitting (0 = it reports none: count audio frames)
    emitted_tokens: int = 0
    #: gaps a listener would hear, from the times this worker sent the audio
    playback: PlaybackMeter | None = None


def to_pcm16(audio: np.ndarray) -> bytes:
    """float32 [-1, 1] → 16-bit little-endian bytes."""
    return (np.clip(audio, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


def current_rss() -> int:
    """Resident set size in bytes (Linux /proc; falls back to the peak from getrusage)."""
    try:
        with open(f"/proc/{os.getpid()}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


_nvml: Any = None


def device_memory_bytes(device: str) -> int:
    """Memory this process holds on ``device``: torch's caching allocator when torch has initialized CUDA
    (what the process reserved, cached blocks included), else NVML's per-process figure; 0 on CPU or when
    neither can tell (no driver, another PID namespace)."""
    global _nvml
    if not device.startswith("cuda"):
        return 0
    index = int(device.partition(":")[2] or 0)
    torch = sys.modules.get("torch")
    try:
        if torch is not None and torch.cuda.is_initialized():
            return int(torch.cuda.memory_reserved(index))
        if _nvml is None:
            import pynvml

            pynvml.nvmlInit()
            _nvml = pynvml
        visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")
        if index < len(visible) and visible[index].strip().isdigit():
            index = int(visible[index])  # NVML counts physical devices
        handle = _nvml.nvmlDeviceGetHandleByIndex(index)
        for proc in _nvml.nvmlDeviceGetComputeRunningProcesses(handle):
            if proc.pid == os.getpid():
                return int(proc.usedGpuMemory or 0)
    except Exception:  # NVML missing or failing must never stop heartbeats
        _nvml = _nvml or False
    return 0


class Heartbeat:
    """Sends the worker's :class:`~vtts.protocol.Status` every ``HEARTBEAT_S`` (and when poked) from its own
    thread and its own DEALER sockets, identity ``<worker_id>/hb``: the frontend and the supervisor key
    workers by ``Status.worker_id``, and requests keep going to the step thread's socket."""

    def __init__(self, worker: Worker, endpoints: list[str]) -> None:
        self.worker = worker
        self.endpoints = endpoints
        self._wake = threading.Event()
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def poke(self) -> None:
        """Send a status now (state or load changed)."""
        self._wake.set()

    def stop(self) -> None:
        """Send one last status and close the sockets."""
        self._stop = True
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        socks = []
        for endpoint in self.endpoints:
            sock = self.worker.ctx.socket(zmq.DEALER)
            sock.setsockopt(zmq.IDENTITY, f"{self.worker.worker_id}/hb".encode())
            sock.setsockopt(zmq.LINGER, 500)
            sock.setsockopt(zmq.SNDHWM, 100)
            sock.connect(endpoint)
            socks.append(sock)
        try:
            while True:
                stop = self._stop
                frame = P.encode(self.worker.status())
                for sock in socks:
                    try:
                        sock.send(frame, zmq.NOBLOCK)
                    except zmq.Again:  # a peer that is not reading: heartbeats to it are best effort
                        pass
                sent_at = time.monotonic()
                if stop:
                    return
                self._wake.wait(HEARTBEAT_S)
                self._wake.clear()
                # a burst of pokes makes one status; a lone poke (turned idle) goes out at once, since the
                # supervisor reads "busy" from it when it picks a model to evict
                gap = MIN_STATUS_GAP_S - (time.monotonic() - sent_at)
                if gap > 0 and not self._stop:
                    time.sleep(gap)
        except Exception:  # pragma: no cover - a bug here would silently kill liveness: say so
            log.exception("heartbeat thread failed")
        finally:
            for sock in socks:
                sock.close()


class Worker:
    """Hosts one engine; speaks the protocol over a DEALER socket."""

    def __init__(self, worker_id: str, model: dict[str, Any], endpoint: str, parent_pid: int | None = None,
                 control: str | None = None):
        self.worker_id = worker_id
        self.model = model
        self.endpoint = endpoint
        self.parent_pid = parent_pid
        self.device = str(model.get("device", "cpu"))
        self.engine: Engine | None = None
        self.state = WorkerState.LOADING
        self.error = ""
        self.started_at = time.time()
        self._status_seq = 0
        self._seq_lock = threading.Lock()
        self.stopping = False
        self.ctx = zmq.Context.instance()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.IDENTITY, worker_id.encode())
        self.sock.setsockopt(zmq.LINGER, 1000)
        self.sock.setsockopt(zmq.SNDHWM, 100_000)
        self.sock.setsockopt(zmq.RCVHWM, 100_000)
        self.sock.connect(endpoint)
        self.last_request_at = 0.0
        self.drain_deadline = 0.0
        self.scheduler: Scheduler | None = None
        self.tracking: dict[str, Tracking] = {}
        #: what the heartbeat thread reports, published by the step thread: (active, queued, capacity)
        self._load = (0, 0, 0)
        self._voices: list[dict[str, Any]] = []
        #: time.time() the running engine step began, 0.0 between steps
        self.step_started_at = 0.0
        self._prepare_pool: ThreadPoolExecutor | None = None
        #: the player the stall timings assume (model entry ``jitter_buffer_s``)
        self.jitter_buffer_s = DEFAULT_JITTER_S
        #: ids whose ``prepare`` runs, mapped to whether they were cancelled meanwhile
        self._preparing: dict[str, bool] = {}
        #: prepares submitted by this drain of the socket (the next step waits briefly for them)
        self._fresh: list[futures.Future[None]] = []
        self._prepared: queue.SimpleQueue[tuple[P.Synthesize, float, float, Any]] = queue.SimpleQueue()
        #: replies computed on a prepare thread (speaker embeddings), sent by the step thread (zmq sockets
        #: are not thread-safe)
        self._replies: queue.SimpleQueue[P.Message] = queue.SimpleQueue()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self.heartbeat = Heartbeat(self, [endpoint, *([control] if control else [])])
        self.voice_cache = VoiceCache()
        #: the engine's measured seconds per token, for segment sizing (workers/scheduler.py)
        self.step_rate = StepRate()

    # -- messages ------------------------------------------------------------------------------------
    def send(self, msg: P.Message) -> None:
        self.sock.send(P.encode(msg), copy=False)

    def status(self) -> P.Status:
        """The heartbeat; called from the heartbeat thread, so it reads only what the step thread publishes."""
        active, queued, capacity = self._load
        eng = self.engine
        with self._seq_lock:
            self._status_seq += 1
            seq = self._status_seq
        return P.Status(
            seq=seq,
            worker_id=self.worker_id,
            model=self.model["id"],
            pid=os.getpid(),
            state=self.state,
            engine=self.model["engine"],
            device=self.device,
            sample_rate=eng.sample_rate if eng is not None and self._voices else 0,
            voices=self._voices,
            active=active,
            queued=queued,
            max_queue=self.scheduler.max_queue if self.scheduler is not None else 0,
            rss_bytes=current_rss(),
            error=self.error,
            started_at=self.started_at,
            last_request_at=self.last_request_at,
            python=sys.executable,
            step_started_at=self.step_started_at,
            device_memory_bytes=device_memory_bytes(self.device),
            capacity=capacity,
            clones=bool(eng is not None and eng.clones),
            needs_transcript=bool(eng is not None and eng.needs_transcript),
            verifies_speakers=bool(eng is not None and eng.verifies_speakers),
            voice_cache_hits=self.voice_cache.hits,
            voice_cache_misses=self.voice_cache.misses,
            voice_cache_entries=len(self.voice_cache),
        )

    def publish(self) -> None:
        """Refresh the load figures the heartbeat reports; poke it when they changed."""
        sched, eng = self.scheduler, self.engine
        if sched is None or eng is None:
            return
        free = eng.capacity()
        capacity = max(0, sched.max_batch - sched.num_active) if free is None else int(free)
        load = (sched.num_active, sched.num_waiting + len(self._preparing), capacity)
        if (sum(load[:2]) == 0) != (sum(self._load[:2]) == 0):  # became idle or busy: say so now
            self.heartbeat.poke()
        self._load = load

    def set_state(self, state: WorkerState) -> None:
        if state != self.state:
            self.state = state
            self.heartbeat.poke()

    def begin_drain(self, timeout_s: float = 30.0) -> None:
        """Stop taking requests (the frontend routes elsewhere once it sees "draining"), finish the rest."""
        if not self.stopping:
            self.stopping = True
            self.drain_deadline = time.monotonic() + timeout_s
            if self.state == WorkerState.READY:
                self.set_state(WorkerState.DRAINING)

    # -- lifecycle -----------------------------------------------------------------------------------
    def load(self) -> bool:
        # the step thread's socket speaks first, so the frontend can route to it once "ready" arrives
        self.send(self.status())
        self.heartbeat.start()
        try:
            cls = engine_class(self.model["engine"])
            self.engine = cls.load(self.model["model"], self.device, self.model.get("options"))
        except Exception as exc:  # any load failure is reported, not raised: the frontend shows it
            log.exception("loading %s failed", self.model["id"])
            self.error = f"{type(exc).__name__}: {exc}"
            self.set_state(WorkerState.FAILED)
            return False
        max_batch = int(self.model.get("max_batch") or 0) or self.engine.max_batch
        max_queue = int(self.model.get("max_queue") or DEFAULT_MAX_QUEUE)
        m = self.model
        self.scheduler = Scheduler(
            max_batch=max_batch, max_queue=max_queue, engine=self.engine,
            first_audio_target_s=float(m.get("first_audio_target_s", DEFAULT_FIRST_AUDIO_TARGET_S)),
            playback_margin_s=float(m.get("playback_margin_s", DEFAULT_PLAYBACK_MARGIN_S)),
            relaxed_s=float(m.get("relaxed_deadline_s", DEFAULT_RELAXED_S)),
            # segment sizing: only engines that can cut a segment (Engine.split overridden) take part
            split=self.engine.split if type(self.engine).split is not Engine.split else None,
            seconds_per_token=self.step_rate, max_cuts=int(m.get("max_cuts", DEFAULT_MAX_CUTS)),
            min_cut_tokens=self.engine.min_cut_tokens, short_steps=bool(m.get("short_steps", True)))
        self.jitter_buffer_s = float(m.get("jitter_buffer_s", DEFAULT_JITTER_S))
        self._prepare_pool = ThreadPoolExecutor(max(1, self.engine.prepare_threads), thread_name_prefix="prepare")
        self._voices = [v.__dict__ for v in self.engine.voices()]
        self.publish()
        self.set_state(WorkerState.DRAINING if self.stopping else WorkerState.READY)
        log.info("worker %s ready: %s on %s", self.worker_id, self.model["id"], self.device)
        return True

    def run(self) -> int:
        if not self.load():
            # stay alive briefly so the frontend sees the failure, then exit non-zero for the supervisor
            time.sleep(1.0)
            return 3
        assert self.scheduler is not None and self.engine is not None
        poller = zmq.Poller()
        poller.register(self.sock, zmq.POLLIN)
        poller.register(self._wake_r, zmq.POLLIN)
        last_check = time.monotonic()
        while not (self.stopping and len(self.scheduler) == 0 and not self._preparing):
            if self.stopping and time.monotonic() > self.drain_deadline:
                log.warning("drain timed out with %d requests left", len(self.scheduler) + len(self._preparing))
                self.abandon_all(FinishReason.DRAINED, "the worker is shutting down")
                break
            busy = len(self.scheduler) > 0
            events = dict(poller.poll(0 if busy else int(IDLE_POLL_S * 1000)))
            if events.get(self.sock):
                self.drain_socket()
                if self._fresh and busy:  # let what just arrived join the next step (PREPARE_WAIT_S)
                    futures.wait(self._fresh, timeout=PREPARE_WAIT_S)
                self._fresh.clear()
            if events.get(self._wake_r):
                os.read(self._wake_r, 4096)
            self.collect_prepared()
            self.send_replies()
            self.expire_deadlines()
            items = self.scheduler.schedule()
            if items:
                self.run_step(items)
            self.publish()
            if time.monotonic() - last_check >= HEARTBEAT_S:
                last_check = time.monotonic()
                if self.parent_pid and os.getppid() != self.parent_pid:
                    log.warning("parent process died; exiting")
                    return 0
        self.drain_socket()  # what arrived since the last step is refused (503, retryable), not left unanswered
        self.set_state(WorkerState.STOPPING)
        return 0

    def drain_socket(self) -> None:
        while True:
            try:
                frame = self.sock.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            msg = P.decode_or_log(frame, log, "the frontend")
            if isinstance(msg, P.Synthesize):
                self.on_synthesize(msg)
            elif isinstance(msg, P.Cancel):
                self.on_cancel(msg.id)
            elif isinstance(msg, P.Control):
                self.on_control(msg)

    def on_cancel(self, rid: str) -> None:
        if rid in self._preparing:
            self._preparing[rid] = True
        elif self.scheduler is not None and self.scheduler.cancel(rid):
            self.tracking.pop(rid, None)

    def on_synthesize(self, msg: P.Synthesize) -> None:
        """Admit the request to ``prepare`` on the pool; it joins the scheduler when its segments are ready."""
        assert self.engine is not None and self.scheduler is not None and self._prepare_pool is not None
        self.last_request_at = time.time()
        if self.stopping:
            self.send(P.Error(msg.id, ErrorCode.DRAINING, "this worker is draining; retry on another", status=503))
            return
        if msg.id in self.scheduler or msg.id in self._preparing:
            self.send(P.Error(msg.id, ErrorCode.DUPLICATE_REQUEST, f"duplicate request id {msg.id!r}", status=400))
            return
        waiting = self.scheduler.num_waiting + len(self._preparing)
        if waiting >= self.scheduler.max_queue:
            self.send(P.Error(msg.id, ErrorCode.QUEUE_FULL, f"server is busy: {waiting} requests already waiting",
                              status=429))
            return
        deadline = 0.0
        if msg.deadline:
            deadline = time.monotonic() + max(0.0, msg.deadline - time.time())
        self._preparing[msg.id] = False
        # its deadline counts from when the frontend sent it: it may have waited in the socket for a whole step
        transit = min(MAX_TRANSIT_S, max(0.0, time.time() - msg.sent_at)) if msg.sent_at else 0.0
        self._fresh.append(self._prepare_pool.submit(self._prepare, msg, time.monotonic() - transit, deadline))

    def _prepare(self, msg: P.Synthesize, arrival: float, deadline: float) -> None:
        """On a pool thread: the engine's ``prepare``; the result (segments or the exception) goes back to
        the step thread."""
        assert self.engine is not None
        try:
            reference = None
            if msg.reference:
                if not self.engine.clones:
                    raise EngineError(f"model {self.model['id']!r} cannot speak custom voices", "voice",
                                      "voice_not_supported")
                audio, features = self.voice_cache.get(self.engine, msg.reference)
                reference = {k: v for k, v in msg.reference.items() if k != "pcm"}
                reference.update(audio=audio, features=features)
            params = SynthesisParams(voice=msg.voice, speed=msg.speed, language=msg.language, extra=msg.extra,
                                     max_audio_s=msg.max_audio_s, instructions=msg.instructions, reference=reference)
            result: Any = (params, self.engine.prepare(msg.text, params))
        except Exception as exc:
            result = exc
        self._prepared.put((msg, arrival, deadline, result))
        with contextlib.suppress(BlockingIOError):  # a full pipe wakes the loop just as well
            os.write(self._wake_w, b"\0")  # wake the step loop if it waits on its socket

    def _speaker_embedding(self, msg: P.Control) -> None:
        """On a pool thread: the engine's speaker vector of 16-bit PCM; the reply goes out from the step thread."""
        assert self.engine is not None
        try:
            rate = int(msg.args.get("sample_rate") or 0)
            pcm = msg.args.get("pcm")
            if rate <= 0 or not isinstance(pcm, bytes) or len(pcm) < 2:
                raise EngineError("speaker_embedding needs 'pcm' (16-bit mono bytes) and 'sample_rate'")
            audio = np.frombuffer(pcm[: len(pcm) // 2 * 2], "<i2").astype(np.float32) / 32768.0
            vector = np.asarray(self.engine.speaker_embedding(audio, rate), np.float32).reshape(-1)
            if not vector.size or not np.isfinite(vector).all():
                raise EngineError("the speaker model gave no usable vector")
            reply = P.ControlReply(msg.id, True, result={"embedding": vector.tolist()})
        except Exception as exc:  # the engine's refusal or failure goes back as the reply's message
            reply = P.ControlReply(msg.id, False, f"speaker embedding failed: {exc}")
        self._replies.put(reply)
        with contextlib.suppress(BlockingIOError):
            os.write(self._wake_w, b"\0")

    def send_replies(self) -> None:
        while True:
            try:
                self.send(self._replies.get_nowait())
            except queue.Empty:
                return

    def collect_prepared(self) -> None:
        assert self.scheduler is not None
        while True:
            try:
                msg, arrival, deadline, result = self._prepared.get_nowait()
            except queue.Empty:
                return
            if self._preparing.pop(msg.id, False):
                continue  # cancelled while it was being prepared: it never reached the engine's steps
            if isinstance(result, EngineError):
                self.send(P.Error(msg.id, result.code, result.message, result.param, 400))
                continue
            if isinstance(result, Exception):
                log.error("prepare failed", exc_info=result)
                self.send(P.Error(msg.id, ErrorCode.ENGINE_ERROR, f"text preparation failed: {result}", status=500))
                continue
            params, segments = result
            request = Request(msg.id, params, segments, arrival=arrival, deadline=deadline, streaming=msg.streaming)
            if not segments:  # nothing to run: done without reaching the engine's steps
                self.finish(request)
                continue
            try:
                self.scheduler.add(request)
            except QueueFull as exc:
                self.send(P.Error(msg.id, ErrorCode.QUEUE_FULL, f"server is busy: {exc}", status=429))
                continue
            self.tracking[msg.id] = Tracking(usage_tokens=sum(s.num_tokens for s in segments),
                                             playback=PlaybackMeter(self.jitter_buffer_s))

    def on_control(self, msg: P.Control) -> None:
        """Operations on the loaded engine between steps: re-read the pronunciation lexicon; forget a
        deleted custom voice's cached features; embed a speaker (on the prepare pool, so a running batch
        does not wait for it)."""
        if msg.op == "forget_voice":
            dropped = self.voice_cache.forget(str(msg.args.get("voice", "")))
            self.send(P.ControlReply(msg.id, True, result={"dropped": dropped}))
            self.heartbeat.poke()
            return
        if msg.op == "speaker_embedding":
            if self.engine is None or not self.engine.verifies_speakers or self._prepare_pool is None:
                self.send(P.ControlReply(msg.id, False, f"model {self.model['id']!r} has no speaker model"))
                return
            self._prepare_pool.submit(self._speaker_embedding, msg)
            return
        if msg.op != "reload_lexicon":
            self.send(P.ControlReply(msg.id, False, f"unknown operation {msg.op!r}"))
            return
        frontend = self.engine.text_frontend if self.engine is not None else None
        if frontend is None:
            self.send(P.ControlReply(msg.id, False, f"engine {self.model['engine']!r} has no text frontend"))
            return
        try:
            counts = frontend.reload()
        except (OSError, ValueError) as exc:  # the old entries stay loaded
            self.send(P.ControlReply(msg.id, False, f"lexicon not reloaded: {exc}"))
            return
        self.send(P.ControlReply(msg.id, True, result={"entries": counts}))

    def expire_deadlines(self) -> None:
        assert self.scheduler is not None
        for r in self.scheduler.expire():
            self.tracking.pop(r.id, None)
            self.send(P.Error(r.id, ErrorCode.TIMEOUT, "the request could not start before its deadline", status=503))

    def run_step(self, items: list[WorkItem]) -> None:
        assert self.engine is not None and self.scheduler is not None
        t0 = time.perf_counter()
        self.step_started_at = time.time()
        try:
            outputs: list[StepOutput] = self.engine.step(items)
        except Exception as exc:  # the engine's state for this batch is unknown: fail it, not the others
            log.exception("engine step failed")
            for item in items:
                self.fail_with(item.request_id, exc)
            return
        finally:
            self.step_started_at = 0.0
        elapsed = time.perf_counter() - t0
        share = elapsed / max(1, len(items))
        if outputs and all(o.finished for o in outputs):  # whole segments made: a measure of the engine's speed
            self.step_rate.observe(sum(i.segment.num_tokens for i in items), elapsed)
        for out in outputs:
            rid = out.item.request_id
            tr = self.tracking.get(rid)
            req = self.scheduler.get(rid)
            if tr is None or req is None:
                continue  # cancelled while the step ran
            if out.error is not None:
                log.warning("request %s failed in the engine: %s", rid, out.error)
                self.fail_with(rid, out.error)
                continue
            tr.engine_s += share
            tr.emitted_tokens += out.tokens
            if tr.seq == 0 and req.first_scheduled is not None:
                tr.queue_wait_s = req.first_scheduled - req.arrival
            if out.audio.size:
                rate = self.engine.sample_rate
                stamps = _shift(out.timestamps, tr.samples / rate)
                self.send(P.Audio(rid, tr.seq, rate, to_pcm16(out.audio), timestamps=stamps))
                sent_at = time.monotonic()
                self.scheduler.sent(rid, out.audio.size / rate, sent_at)
                if tr.playback is not None:
                    tr.playback.add(sent_at, out.audio.size / rate)
                if tr.first_audio_at is None:
                    tr.first_audio_at = sent_at - req.arrival
                tr.seq += 1
                tr.samples += int(out.audio.size)
        for req in self.scheduler.update(o for o in outputs if o.error is None):
            self.finish(req)

    def finish(self, req: Request) -> None:
        assert self.engine is not None
        self.publish()  # the idle status leaves before the Done a client could answer with a new request
        tr = self.tracking.pop(req.id, Tracking())
        audio_s = tr.samples / self.engine.sample_rate
        out_tokens = tr.emitted_tokens or math.ceil(audio_s * FRAMES_PER_SECOND)
        self.send(
            P.Done(
                req.id,
                usage={"input_tokens": tr.usage_tokens, "output_tokens": out_tokens,
                       "total_tokens": tr.usage_tokens + out_tokens},
                timings={"queue_wait_s": tr.queue_wait_s, "engine_s": tr.engine_s,
                         "first_audio_s": tr.first_audio_at or 0.0, "audio_s": audio_s,
                         "segments": float(len(req.segments)),
                         # segments cut for the streams waiting behind (segment sizing)
                         "cuts": float(req.cuts),
                         # the longest gap (and how many) a listener with a jitter_buffer_s player would
                         # hear, from when this worker sent each chunk
                         "stall_s": tr.playback.longest if tr.playback else 0.0,
                         "stalls": float(tr.playback.stalls if tr.playback else 0)},
            )
        )

    def fail_with(self, rid: str, exc: Exception) -> None:
        """Fail one request for an engine exception: the client's fault (400) for an EngineError."""
        if isinstance(exc, EngineError):
            self.fail(rid, exc.code, exc.message, 400, exc.param)
        else:
            self.fail(rid, ErrorCode.ENGINE_ERROR, f"synthesis failed: {exc}", 500)

    def fail(self, rid: str, code: str, message: str, status: int, param: str | None = None) -> None:
        assert self.scheduler is not None
        self.scheduler.fail(rid)
        self.tracking.pop(rid, None)
        self.send(P.Error(rid, code, message, param, status=status))

    def abandon_all(self, reason: FinishReason, message: str) -> None:
        """End every request the worker holds with a retryable error (drain timed out)."""
        assert self.scheduler is not None
        for r in self.scheduler.close(reason):
            self.tracking.pop(r.id, None)
            self.send(P.Error(r.id, ErrorCode.UNAVAILABLE, message, status=503))
        for rid in list(self._preparing):
            self._preparing[rid] = True
            self.send(P.Error(rid, ErrorCode.UNAVAILABLE, message, status=503))

    def close(self) -> None:
        """Release what is left (exactly once, as the worker stops), then the engine and the sockets."""
        if self._prepare_pool is not None:
            self._prepare_pool.shutdown(wait=True, cancel_futures=True)
        if self.scheduler is not None:
            self.scheduler.close(FinishReason.STOPPING)
        if self.engine:
            self.engine.close()
        self.heartbeat.stop()
        self.sock.close(linger=500)
        os.close(self._wake_r)
        os.close(self._wake_w)


def _shift(words: list[dict[str, Any]] | None, offset: float) -> list[dict[str, Any]]:
    """Chunk-relative word timings → relative to the start of the request's audio."""
    return [{**w, "start": w["start"] + offset, "end": w["end"] + offset} for w in words or []]


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``python -m vtts.workers --id ID --endpoint ipc://... --model JSON``."""
    ap = argparse.ArgumentParser(prog="vtts-worker")
    ap.add_argument("--id", required=True)
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--model", required=True, help="the model entry as JSON")
    ap.add_argument("--control", help="the supervisor's control endpoint")
    ap.add_argument("--parent-pid", type=int, default=0)
    ap.add_argument("--drain-timeout", type=float, default=30.0)
    ap.add_argument("--log-level", default="info")
    args = ap.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format=f"%(asctime)s worker[{args.id}] %(levelname)s %(message)s")
    worker = Worker(args.id, json.loads(args.model), args.endpoint, args.parent_pid or None, args.control)

    def on_term(signum: int, frame: Any) -> None:
        worker.begin_drain(args.drain_timeout)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)  # a closed terminal: drain and stop, as on SIGTERM
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor decides; Ctrl-C reaches the whole group
    try:
        return worker.run()
    finally:
        worker.close()


if __name__ == "__main__":
    sys.exit(main())
