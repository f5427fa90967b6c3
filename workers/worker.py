"""A worker process: one engine instance, a scheduling loop, and a DEALER socket to the frontend.

The loop alternates between draining the socket (new requests join, cancels take effect) and one engine
step, so requests interleave at segment granularity and every segment's audio leaves as soon as it is made.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import resource
import signal
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import zmq

from vtts import protocol as P

from .engine import Engine, EngineError, StepOutput, SynthesisParams
from .registry import engine_class
from .scheduler import QueueFull, Request, Scheduler

log = logging.getLogger("vtts.worker")

HEARTBEAT_S = 1.0
#: output_tokens are counted as 20 ms audio frames (50 per second), see README "Usage counts"
FRAMES_PER_SECOND = 50


@dataclass
class Tracking:
    """Per-request counters the worker reports in ``done``."""

    seq: int = 0
    samples: int = 0
    engine_s: float = 0.0
    first_audio_at: float | None = None
    queue_wait_s: float = 0.0
    usage_tokens: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


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


class Worker:
    """Hosts one engine; speaks the protocol over a DEALER socket."""

    def __init__(self, worker_id: str, model: dict[str, Any], endpoint: str, parent_pid: int | None = None,
                 control: str | None = None):
        self.worker_id = worker_id
        self.model = model
        self.endpoint = endpoint
        self.parent_pid = parent_pid
        self.engine: Engine | None = None
        self.state = "loading"
        self.error = ""
        self.started_at = time.time()
        self.load_seconds = 0.0
        self.stopping = False
        self.ctx = zmq.Context.instance()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.IDENTITY, worker_id.encode())
        self.sock.setsockopt(zmq.LINGER, 1000)
        self.sock.setsockopt(zmq.SNDHWM, 100_000)
        self.sock.setsockopt(zmq.RCVHWM, 100_000)
        self.sock.connect(endpoint)
        #: the supervisor's control socket: it gets the same heartbeats (readiness, load, memory)
        self.ctl: zmq.Socket | None = None
        if control:
            self.ctl = self.ctx.socket(zmq.DEALER)
            self.ctl.setsockopt(zmq.IDENTITY, worker_id.encode())
            self.ctl.setsockopt(zmq.LINGER, 0)
            self.ctl.setsockopt(zmq.SNDHWM, 100)
            self.ctl.connect(control)
        self.last_request_at = 0.0
        self.drain_deadline = 0.0
        self.scheduler: Scheduler | None = None
        self.tracking: dict[str, Tracking] = {}
        self._last_status = 0.0

    # -- messages ------------------------------------------------------------------------------------
    def send(self, msg: P.Message) -> None:
        self.sock.send(P.encode(msg), copy=False)

    def status(self) -> P.Status:
        eng = self.engine
        sched = self.scheduler
        return P.Status(
            worker_id=self.worker_id,
            model=self.model["id"],
            pid=os.getpid(),
            state=self.state,
            engine=self.model["engine"],
            device=self.model.get("device", "cpu"),
            sample_rate=eng.sample_rate if eng is not None else 0,
            voices=[v.__dict__ for v in eng.voices()] if eng is not None else [],
            active=sched.num_active if sched is not None else 0,
            queued=sched.num_waiting if sched is not None else 0,
            max_queue=sched.max_queue if sched is not None else 0,
            rss_bytes=current_rss(),
            error=self.error,
            started_at=self.started_at,
            last_request_at=self.last_request_at,
            python=sys.executable,
            load_seconds=self.load_seconds,
        )

    def send_status(self) -> None:
        st = self.status()
        self.send(st)
        if self.ctl is not None:
            try:
                self.ctl.send(P.encode(st), zmq.NOBLOCK)
            except zmq.Again:  # the supervisor is not reading: heartbeats to it are best effort
                pass
        self._last_status = time.monotonic()

    def begin_drain(self, timeout_s: float = 60.0) -> None:
        """Stop taking requests (the frontend routes elsewhere once it sees "draining"), finish the rest."""
        if not self.stopping:
            self.stopping = True
            self.drain_deadline = time.monotonic() + timeout_s
            if self.state == "ready":
                self.state = "draining"

    # -- lifecycle -----------------------------------------------------------------------------------
    def load(self) -> bool:
        self.send_status()
        t0 = time.monotonic()
        try:
            cls = engine_class(self.model["engine"])
            device = self.model.get("device", "cpu")
            self.engine = cls.load(self.model["model"], device, self.model.get("options"))
        except Exception as exc:  # any load failure is reported, not raised: the frontend shows it
            log.exception("loading %s failed", self.model["id"])
            self.state, self.error = "failed", f"{type(exc).__name__}: {exc}"
            self.send_status()
            return False
        max_batch = int(self.model.get("max_batch") or 0) or self.engine.max_batch
        self.scheduler = Scheduler(max_batch=max_batch, max_queue=int(self.model.get("max_queue", 64)))
        self.load_seconds = time.monotonic() - t0
        self.state = "draining" if self.stopping else "ready"
        self.send_status()
        log.info("worker %s ready: %s on %s", self.worker_id, self.model["id"], self.model.get("device"))
        return True

    def run(self) -> int:
        if not self.load():
            # stay alive briefly so the frontend sees the failure, then exit non-zero for the supervisor
            time.sleep(1.0)
            return 3
        assert self.scheduler is not None and self.engine is not None
        poller = zmq.Poller()
        poller.register(self.sock, zmq.POLLIN)
        announced = self.state
        while not (self.stopping and len(self.scheduler) == 0):
            if self.stopping and time.monotonic() > self.drain_deadline:
                log.warning("drain timed out with %d requests left", len(self.scheduler))
                for rid in list(self.tracking):
                    self.fail(rid, "unavailable", "the worker is shutting down", 503)
                break
            if self.state != announced:
                announced = self.state
                self.send_status()
            busy = len(self.scheduler) > 0
            timeout_ms = 0 if busy else int(HEARTBEAT_S * 1000)
            if dict(poller.poll(timeout_ms)).get(self.sock):
                self.drain_socket()
            self.expire_deadlines()
            items = self.scheduler.schedule()
            if items:
                self.run_step(items)
            if time.monotonic() - self._last_status >= HEARTBEAT_S or (busy and not len(self.scheduler)):
                self.send_status()
                if self.parent_pid and os.getppid() != self.parent_pid:
                    log.warning("parent process died; exiting")
                    return 0
        self.state = "stopping"
        self.send_status()
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
                if self.scheduler is not None and self.scheduler.cancel(msg.id):
                    self.tracking.pop(msg.id, None)
            elif isinstance(msg, P.Control):
                self.on_control(msg)
            elif isinstance(msg, P.Unload):
                self.begin_drain()
                if not msg.drain and self.scheduler is not None:
                    for rid in list(self.tracking):
                        self.fail(rid, "unloading", "the model is being unloaded", 503)

    def on_synthesize(self, msg: P.Synthesize) -> None:
        assert self.engine is not None and self.scheduler is not None
        self.last_request_at = time.time()
        if self.stopping:
            self.send(P.Error(msg.id, "draining", "this worker is draining; retry on another", status=503))
            return
        params = SynthesisParams(msg.voice, msg.speed, msg.language, msg.extra, max_audio_s=msg.max_audio_s)
        try:
            segments = self.engine.prepare(msg.text, params)
        except EngineError as exc:
            self.send(P.Error(msg.id, exc.code, exc.message, exc.param, 400))
            return
        except Exception as exc:
            log.exception("prepare failed")
            self.send(P.Error(msg.id, "engine_error", f"text preparation failed: {exc}", status=500))
            return
        deadline = 0.0
        if msg.deadline:
            deadline = time.monotonic() + max(0.0, msg.deadline - time.time())
        request = Request(msg.id, params, segments, deadline=deadline)
        try:
            self.scheduler.add(request)
        except QueueFull as exc:
            self.send(P.Error(msg.id, "queue_full", f"server is busy: {exc}", status=429))
            return
        except ValueError as exc:
            self.send(P.Error(msg.id, "duplicate_request", str(exc), status=400))
            return
        self.tracking[msg.id] = Tracking(usage_tokens=sum(s.num_tokens for s in segments))
        if not segments:
            self.finish(request)

    def on_control(self, msg: P.Control) -> None:
        """Operations on the loaded engine between steps; today: re-read the pronunciation lexicon."""
        if msg.op != "reload_lexicon":
            self.send(P.ControlReply(msg.id, False, f"unknown operation {msg.op!r}"))
            return
        frontend = getattr(self.engine, "text_frontend", None)
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
            self.send(P.Error(r.id, "timeout", "the request could not start before its deadline", status=503))

    def run_step(self, items: list) -> None:
        assert self.engine is not None and self.scheduler is not None
        t0 = time.perf_counter()
        try:
            outputs: list[StepOutput] = self.engine.step(items)
        except Exception as exc:
            log.exception("engine step failed")
            for item in items:
                self.fail(item.request_id, "engine_error", f"synthesis failed: {exc}", 500)
            return
        elapsed = time.perf_counter() - t0
        share = elapsed / max(1, len(items))
        for out in outputs:
            rid = out.item.request_id
            tr = self.tracking.get(rid)
            req = self.scheduler.get(rid)
            if tr is None or req is None:
                continue  # cancelled while the step ran
            tr.engine_s += share
            if tr.seq == 0 and req.first_scheduled is not None:
                tr.queue_wait_s = req.first_scheduled - req.arrival
            if out.audio.size:
                rate = self.engine.sample_rate
                words = _shift(out.item.state.pop("timestamps", None), tr.samples / rate)
                self.send(P.Audio(rid, tr.seq, rate, to_pcm16(out.audio), timestamps=words))
                if tr.first_audio_at is None:
                    tr.first_audio_at = time.monotonic() - req.arrival
                tr.seq += 1
                tr.samples += int(out.audio.size)
        for req in self.scheduler.update(outputs):
            self.finish(req)

    def finish(self, req: Request) -> None:
        assert self.engine is not None
        tr = self.tracking.pop(req.id, Tracking())
        audio_s = tr.samples / self.engine.sample_rate
        out_tokens = math.ceil(audio_s * FRAMES_PER_SECOND)
        self.send(
            P.Done(
                req.id,
                usage={"input_tokens": tr.usage_tokens, "output_tokens": out_tokens,
                       "total_tokens": tr.usage_tokens + out_tokens},
                timings={"queue_wait_s": tr.queue_wait_s, "engine_s": tr.engine_s,
                         "first_audio_s": tr.first_audio_at or 0.0, "audio_s": audio_s,
                         "segments": float(len(req.segments))},
            )
        )

    def fail(self, rid: str, code: str, message: str, status: int) -> None:
        assert self.scheduler is not None
        self.scheduler.fail(rid)
        self.tracking.pop(rid, None)
        self.send(P.Error(rid, code, message, status=status))

    def close(self) -> None:
        if self.engine:
            self.engine.close()
        if self.ctl is not None:
            self.ctl.close(linger=0)
        self.sock.close(linger=500)


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
    ap.add_argument("--drain-timeout", type=float, default=60.0)
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
