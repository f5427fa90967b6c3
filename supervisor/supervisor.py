"""The supervisor: starts the frontend and one worker per model replica, restarts what dies, carries out
the admin API's load / unload / hot swap, decides what fits in memory, and stops everything on SIGTERM.
It never touches audio.

It binds a control ROUTER socket: workers send it their ``status`` heartbeats (so it knows readiness,
load and memory without asking the frontend), and the frontend sends it ``admin`` operations. A worker
whose heartbeats stop, or whose engine step runs too long, is killed and restarted (the watchdog): the
frontend cannot do that, and a hung process would otherwise look "ready" forever.

SIGHUP (a closed terminal) stops everything cleanly, like SIGTERM.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

import zmq

from vtts import protocol as P
from vtts.config import Config, ConfigError, ModelConfig, model_names, name_clash, parse_model

from .deployment import Deployment, Waiter, held_bytes
from .memory import (
    DEFAULT_FOOTPRINT,
    MIB,
    CpuMemory,
    DeviceMemory,
    InsufficientMemory,
    Resident,
    UnknownDevice,
    plan_evictions,
)
from .process import BACKOFF_MAX_S, Child

log = logging.getLogger("vtts.supervisor")

POLL_MS = 100
#: signals that stop the supervisor cleanly (SIGHUP: the terminal it ran in was closed)
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class Supervisor:
    """Owns process lifetimes. ``run()`` blocks until a signal asks it to stop."""

    def __init__(self, config: Config, python: str = sys.executable) -> None:
        self.config = config
        self.python = python
        self._own_run_dir = not config.server.run_dir
        self.run_dir = Path(config.server.run_dir or tempfile.mkdtemp(prefix="vtts-"))
        self.run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # 0700 when we create it
        self.config_path = self.run_dir / "config.json"
        self.endpoint = f"ipc://{self.run_dir / 'workers.sock'}"
        self.control_endpoint = f"ipc://{self.run_dir / 'control.sock'}"
        self.frontend: Child | None = None
        self.deployments: dict[str, Deployment] = {m.id: Deployment(m) for m in config.models}
        self.statuses: dict[str, P.Status] = {}
        #: worker id -> when its last heartbeat arrived (monotonic), for the watchdog
        self.heard: dict[str, float] = {}
        self._last_check = time.monotonic()
        self.stopping = False
        s = config.server
        self.memory = DeviceMemory(CpuMemory(s.cpu_memory_budget_mb * MIB, self._used_bytes),
                                   s.gpu_memory_reserve_mb * MIB)
        self.ctx = zmq.Context()
        self.control = self.ctx.socket(zmq.ROUTER)
        self.control.setsockopt(zmq.LINGER, 0)
        self.control.setsockopt(zmq.ROUTER_HANDOVER, 1)

    # -- children ------------------------------------------------------------------------------------
    def _write_config(self) -> None:
        """The frontend's config file, written anew before every frontend start (a file deleted from the
        run directory must not turn the next frontend crash into a restart loop), readable by us only: it
        holds the API and admin keys."""
        self.run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.config_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)  # an existing file keeps its mode on open
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(self.config.to_dict(), f)

    def _start_frontend(self) -> None:
        assert self.frontend is not None
        self._write_config()
        self.frontend.start()

    def _frontend(self) -> Child:
        argv = [self.python, "-m", "vtts.frontend", "--config", str(self.config_path), "--endpoint",
                self.endpoint, "--control", self.control_endpoint, "--parent-pid", str(os.getpid())]
        return Child("frontend", argv)

    def _worker(self, entry: ModelConfig, worker_id: str) -> Child:
        argv = [entry.python or self.python, "-m", "vtts.workers", "--id", worker_id, "--endpoint", self.endpoint,
                "--control", self.control_endpoint, "--model", json.dumps(dataclasses.asdict(entry)),
                "--parent-pid", str(os.getpid()), "--log-level", self.config.server.log_level,
                "--drain-timeout", str(self.config.server.drain_timeout_s)]
        return Child(f"worker {worker_id}", argv)

    def _spawn(self, dep: Deployment, entry: ModelConfig, generation: int) -> dict[str, Child]:
        children = {}
        for replica in range(entry.replicas):
            worker_id = dep.worker_id(generation, replica)
            self.statuses.pop(worker_id, None)
            child = self._worker(entry, worker_id)
            try:
                child.start()
            except OSError as exc:  # e.g. a model's python interpreter that does not exist
                for c in children.values():
                    c.signal(signal.SIGKILL)
                raise ConfigError(f"cannot start a worker for {entry.id!r} with {child.argv[0]!r}: {exc}") from exc
            children[worker_id] = child
        return children

    def start(self) -> None:
        """Bind the control socket, start the frontend, then the workers of every preloaded model."""
        self.control.bind(self.control_endpoint)
        self.frontend = self._frontend()
        self._start_frontend()
        for dep in self.deployments.values():
            if dep.entry.preload:
                self._load(dep, evict=False)

    # -- model operations ----------------------------------------------------------------------------
    def _footprint(self, dep: Deployment, entry: ModelConfig) -> int:
        if entry.memory_mb:
            return entry.memory_mb * MIB
        return dep.footprint_bytes or DEFAULT_FOOTPRINT

    def _held_bytes(self, dep: Deployment) -> int:
        """What a loaded model holds: its declared footprint per replica, or what its workers measure if more
        (device memory on a GPU, RSS on the CPU: :func:`~.deployment.held_bytes`)."""
        declared = dep.entry.memory_mb * MIB * len(dep.workers)
        return max(declared, dep.resident_bytes(self.statuses))

    def _used_bytes(self, device: str) -> int:
        """Memory our workers hold on ``device``, draining ones included (they have not let go yet)."""
        total = 0
        for dep in self.deployments.values():
            if dep.entry.device == device:
                total += self._held_bytes(dep)
                total += dep.retiring_bytes(self.statuses)
        return total

    def _make_room(self, dep: Deployment, entry: ModelConfig) -> None:
        """Evict least-recently-used idle models on the device until ``entry`` fits (raises if it cannot)."""
        need = self._footprint(dep, entry) * entry.replicas
        free = self.memory.free_bytes(entry.device)
        residents = [
            Resident(d.id, d.entry.device, self._held_bytes(d) or self._footprint(d, d.entry) * len(d.workers),
                     d.last_used(self.statuses), d.busy(self.statuses), d.entry.pinned)
            for d in self.deployments.values() if d is not dep and d.workers
        ]
        for victim in plan_evictions(need, free, entry.device, residents):
            log.info("evicting idle model %s to make room for %s", victim, entry.id)
            self._unload(self.deployments[victim])

    def _load(self, dep: Deployment, evict: bool = True) -> None:
        if dep.workers or dep.candidate:
            return
        if evict:
            self._make_room(dep, dep.entry)
        generation = dep.new_generation()
        dep.workers = self._spawn(dep, dep.entry, generation)
        dep.generation = generation
        dep.failed, dep.last_error, dep.unloading = False, "", False
        dep.exits.clear()
        dep.loaded_at = time.time()

    def _unload(self, dep: Deployment) -> None:
        """Stop routing (workers announce "draining" on SIGTERM), let in-flight work finish, bounded. A
        failed model just stops being failed: it holds no workers."""
        deadline = time.monotonic() + self.config.server.drain_timeout_s
        for worker_id, child in [*dep.workers.items(), *dep.candidate.items()]:
            child.signal(signal.SIGTERM)
            dep.retiring[worker_id] = (child, deadline)
        dep.workers, dep.candidate, dep.candidate_entry = {}, {}, None
        dep.failed = False

    def _swap(self, dep: Deployment, entry: ModelConfig) -> None:
        if dep.candidate:
            raise _OpError(409, "swap_in_progress", f"a swap of {dep.id!r} is already in progress")
        self._make_room(dep, entry)
        generation = dep.new_generation()
        dep.candidate = self._spawn(dep, entry, generation)
        dep.candidate_entry, dep.candidate_generation = entry, generation

    def _promote(self, dep: Deployment) -> None:
        """The swap candidate is ready: route to it, drain the old generation."""
        assert dep.candidate_entry is not None
        old = dep.workers
        deadline = time.monotonic() + self.config.server.drain_timeout_s
        dep.workers, dep.entry = dep.candidate, dep.candidate_entry
        dep.generation = dep.candidate_generation
        dep.candidate, dep.candidate_entry = {}, None
        dep.failed, dep.last_error = False, ""
        dep.exits.clear()
        dep.loaded_at = time.time()
        for worker_id, child in old.items():
            child.signal(signal.SIGTERM)
            dep.retiring[worker_id] = (child, deadline)
        log.info("swapped %s to generation %d", dep.id, dep.generation)
        self._answer_swaps(dep)

    def _abort_swap(self, dep: Deployment, why: str) -> None:
        for child in dep.candidate.values():
            child.signal(signal.SIGKILL)
            if child.proc:
                child.proc.wait()
        dep.candidate, dep.candidate_entry = {}, None
        dep.last_error = why
        log.warning("swap of %s failed: %s", dep.id, why)
        self._answer_swaps(dep, why)

    # -- admin messages ------------------------------------------------------------------------------
    def models_view(self) -> list[dict]:
        return [d.describe(self.statuses) for d in self.deployments.values()]

    def reply(self, ident: bytes, request_id: str, ok: bool = True, status: int = 200, code: str = "",
              message: str = "") -> None:
        msg = P.AdminReply(request_id, ok, status, code, message, self.models_view())
        try:
            self.control.send_multipart([ident, P.encode(msg)], zmq.NOBLOCK)
        except zmq.ZMQError as exc:
            log.warning("could not answer admin request %s: %s", request_id, exc)

    def on_admin(self, ident: bytes, msg: P.Admin) -> None:
        """Carry out one admin operation. Whatever goes wrong becomes an error reply: an admin request must
        never take down the supervisor, and with it every process it owns."""
        try:
            self._admin(ident, msg)
        except _OpError as exc:
            self.reply(ident, msg.id, False, exc.status, exc.code, exc.message)
        except UnknownDevice as exc:
            self.reply(ident, msg.id, False, 400, "invalid_device", str(exc))
        except ConfigError as exc:
            self.reply(ident, msg.id, False, 400, "invalid_model", str(exc))
        except InsufficientMemory as exc:
            self.reply(ident, msg.id, False, 503, "insufficient_memory", str(exc))
        except Exception as exc:
            log.exception("admin operation %s %r failed", msg.op, msg.model)
            self.reply(ident, msg.id, False, 503, "admin_failed", f"{msg.op} failed: {type(exc).__name__}: {exc}")

    def _check_names(self, entry: ModelConfig) -> None:
        """409 when the entry's id or aliases would take over another model's (or OpenAI's) names."""
        taken = {name: d.id for d in self.deployments.values() if d.id != entry.id for name in model_names(d.entry)}
        clash = name_clash(entry, taken, self.config.server.openai_model_aliases)
        if clash:
            raise _OpError(409, "name_taken", clash)

    def _admin(self, ident: bytes, msg: P.Admin) -> None:
        if msg.op == "list":
            self.reply(ident, msg.id)
            return
        entry = None
        if msg.entry:
            data = dict(msg.entry)
            data.setdefault("id", msg.model)
            entry = parse_model(data, max_replicas=self.config.server.max_replicas)
            self._check_names(entry)
            if msg.model and entry.id != msg.model:
                raise _OpError(400, "id_mismatch", f"entry id {entry.id!r} does not match {msg.model!r}")
        model_id = msg.model or (entry.id if entry else "")
        dep = self.deployments.get(model_id)
        wait = self.config.server.load_timeout_s
        if msg.op in ("load", "ensure"):
            if dep is None:
                if entry is None or msg.op == "ensure":
                    raise _OpError(404, "model_not_found", f"no configured model {model_id!r}")
                dep = Deployment(entry, added=True)
                self._load(dep)  # raises (nothing registered) when the device does not exist or it cannot fit
                self.deployments[model_id] = dep
            elif entry is not None and entry != dep.entry:
                raise _OpError(409, "model_exists", f"{model_id!r} exists with another entry; use PUT to swap")
            if dep.failed and msg.op == "ensure":
                raise _OpError(503, "model_failed", f"{model_id!r} failed: {dep.last_error}")
            if dep.unloading and msg.op == "ensure":
                raise _OpError(503, "model_unloading", f"{model_id!r} is being unloaded; retry shortly")
            self._load(dep)
        elif msg.op == "unload":
            if dep is None:
                raise _OpError(404, "model_not_found", f"no configured model {model_id!r}")
            self._unload(dep)
            dep.unloading = True
            wait = self.config.server.drain_timeout_s + 5
        elif msg.op == "swap":
            if dep is None:
                raise _OpError(404, "model_not_found", f"no configured model {model_id!r}; use POST to load")
            if entry is None:
                raise _OpError(400, "missing_entry", "a swap needs the new model entry")
            self._swap(dep, entry)
        else:
            raise _OpError(400, "unknown_op", f"unknown admin operation {msg.op!r}")
        dep.waiters.append(Waiter(ident, msg.id, msg.op, time.monotonic() + wait))
        self._resolve_waiters(dep)

    def _resolve_waiters(self, dep: Deployment) -> None:
        """Answer the admin requests whose operation has finished (swaps are answered by promote/abort).

        An unload is finished when its draining workers are gone. A model added through the admin API is
        then forgotten (id and aliases), and so is one whose first load failed: neither holds ``/ready``."""
        now = time.monotonic()
        if dep.candidate and any(w.op == "swap" and now > w.deadline for w in dep.waiters):
            self._abort_swap(dep, "the new model did not become ready in time")
        state = dep.state(self.statuses)
        idle = not (dep.workers or dep.candidate or dep.retiring)
        unloading = dep.unloading
        if dep.unloading and not dep.retiring:
            dep.unloading = False
            if dep.added and idle:
                self.deployments.pop(dep.id, None)
        if dep.added and state == "failed" and not dep.was_ready and idle:
            self.deployments.pop(dep.id, None)
        keep = []
        for w in dep.waiters:
            if w.op == "swap":
                keep.append(w)
            elif w.op == "unload" and not dep.retiring:
                self.reply(w.ident, w.request_id)
            elif w.op in ("load", "ensure") and unloading:
                self.reply(w.ident, w.request_id, False, 503, "model_unloading", f"{dep.id!r} is being unloaded")
            elif w.op in ("load", "ensure") and state == "ready":
                self.reply(w.ident, w.request_id)
            elif w.op in ("load", "ensure") and state == "failed":
                self.reply(w.ident, w.request_id, False, 409 if w.op == "load" else 503, "load_failed",
                           f"{dep.id!r} did not load: {dep.last_error}")
            elif now > w.deadline:
                self.reply(w.ident, w.request_id, False, 503, "timeout", f"{w.op} of {dep.id!r} timed out")
            else:
                keep.append(w)
        dep.waiters = keep

    def _answer_swaps(self, dep: Deployment, error: str = "") -> None:
        for w in [w for w in dep.waiters if w.op == "swap"]:
            if error:
                self.reply(w.ident, w.request_id, False, 409, "load_failed", f"the new model did not load: {error}")
            else:
                self.reply(w.ident, w.request_id)
        dep.waiters = [w for w in dep.waiters if w.op != "swap"]

    # -- watching ------------------------------------------------------------------------------------
    def drain_control(self) -> None:
        while True:
            try:
                ident, frame = self.control.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            except ValueError:
                continue
            msg = P.decode_or_log(frame, log, ident)
            if isinstance(msg, P.Status):
                self.on_status(msg)
            elif isinstance(msg, P.Admin):
                self.on_admin(ident, msg)

    def on_status(self, st: P.Status) -> None:
        old = self.statuses.get(st.worker_id)
        if old is not None and old.pid == st.pid and st.seq and st.seq < old.seq:
            return  # overtaken on the worker's other socket (see Status.seq)
        self.statuses[st.worker_id] = st
        self.heard[st.worker_id] = time.monotonic()
        for dep in self.deployments.values():
            if st.worker_id in dep.workers or st.worker_id in dep.candidate:
                if st.state == "ready":
                    dep.was_ready = dep.was_ready or st.worker_id in dep.workers
                    dep.footprint_bytes = max(dep.footprint_bytes, held_bytes(st))
                if st.state == "failed":
                    dep.last_error = st.error or "the model failed to load"

    def check(self) -> None:
        """Reap exited children, restart or give up, kill retirees past their deadline, advance swaps."""
        now = time.monotonic()
        if now - self._last_check > self.config.server.heartbeat_timeout_s / 2:
            # we were paused (SIGSTOP, a frozen VM): the silence was ours, not the workers'
            self.heard = dict.fromkeys(self.heard, now)
        self._last_check = now
        if self.frontend and not self.stopping:
            self._keep_alive(self.frontend, now)
        for dep in list(self.deployments.values()):
            for worker_id, (child, deadline) in list(dep.retiring.items()):
                if child.poll() is not None or child.proc is None:
                    del dep.retiring[worker_id]
                    self.statuses.pop(worker_id, None)
                    self.heard.pop(worker_id, None)
                elif now > deadline:
                    log.warning("%s did not drain in time; killing it", child.name)
                    child.signal(signal.SIGKILL)
            if dep.candidate:
                self._check_candidate(dep)
            for worker_id, child in list(dep.workers.items()):
                self._check_worker(dep, worker_id, child, now)
            self._resolve_waiters(dep)

    def _keep_alive(self, child: Child, now: float) -> None:
        if child.proc is not None:
            code = child.poll()
            if code is not None:
                delay = child.schedule_restart()
                log.warning("%s exited with code %s; restarting in %.1f s", child.name, code, delay)
        elif now >= child.next_start:
            try:
                self._start_frontend()
            except OSError as exc:  # the run directory vanished, the disk is full: try again later
                log.error("cannot start the frontend: %s; retrying in %.0f s", exc, BACKOFF_MAX_S)
                child.next_start = now + BACKOFF_MAX_S

    def _check_candidate(self, dep: Deployment) -> None:
        for worker_id, child in dep.candidate.items():
            st = self.statuses.get(worker_id)
            if child.poll() is not None or (st and st.state == "failed"):
                self._abort_swap(dep, (st.error if st else "") or f"worker exited with code {child.poll()}")
                return
        if all((st := self.statuses.get(w)) and st.state == "ready" for w in dep.candidate):
            self._promote(dep)

    def _check_worker(self, dep: Deployment, worker_id: str, child: Child, now: float) -> None:
        if child.proc is None:
            if now >= child.next_start and not self.stopping:
                try:
                    child.start()
                except OSError as exc:  # its interpreter was removed since: retrying will not help
                    dep.failed, dep.last_error = True, f"cannot restart {child.name}: {exc}"
                    log.error("%s", dep.last_error)
                    dep.workers.pop(worker_id, None)
            return
        code = child.poll()
        if code is None:
            self._watchdog(worker_id, child, now)
            return
        st = self.statuses.pop(worker_id, None)
        load_failed = st is not None and st.state == "failed"
        if load_failed:
            dep.last_error = st.error or "the model failed to load"
        exits = dep.record_exit(self.config.server.restart_window_s)
        # a load failure (missing files, bad reference) does not go away by retrying
        if load_failed or exits >= self.config.server.max_restarts:
            dep.failed = True
            dep.last_error = dep.last_error or f"worker exited with code {code}"
            log.error("%s exited %d times within %.0f s: marking %s failed (%s)", child.name, exits,
                      self.config.server.restart_window_s, dep.id, dep.last_error)
            for other in dep.workers.values():
                other.signal(signal.SIGKILL)
            dep.workers = {}
            return
        delay = child.schedule_restart()
        log.warning("%s exited with code %s; restarting in %.1f s", child.name, code, delay)

    def _watchdog(self, worker_id: str, child: Child, now: float) -> None:
        """SIGKILL a worker that is alive but hung, so it is restarted like a crashed one (its streams fail
        at once: the frontend sees the process gone). Hung means: it said "ready" and then sent no heartbeat
        for ``heartbeat_timeout_s``, or its current engine step began over ``worker_stall_timeout_s`` ago.
        Loading workers are left alone here: a load may legitimately block for long."""
        st = self.statuses.get(worker_id)
        if st is None or st.pid != child.pid:
            return
        s = self.config.server
        silent = now - max(self.heard.get(worker_id, 0.0), child.started_at)
        step_s = time.time() - st.step_started_at if st.step_started_at else 0.0
        if st.state == "ready" and silent > s.heartbeat_timeout_s:
            why = f"sent no heartbeat for {silent:.0f} s"
        elif step_s > s.worker_stall_timeout_s:
            why = f"has been in one engine step for {step_s:.0f} s"
        else:
            return
        log.error("%s %s; killing it (it will be restarted)", child.name, why)
        child.signal(signal.SIGKILL)
        self.heard[worker_id] = now  # not again while the kill takes effect

    # -- main loop -----------------------------------------------------------------------------------
    def run(self) -> int:
        """Start everything, supervise until SIGTERM/SIGINT/SIGHUP, then stop."""
        def on_signal(signum: int, frame: object) -> None:
            if not self.stopping:
                log.info("received %s; shutting down", signal.Signals(signum).name)
            self.stopping = True

        for sig in STOP_SIGNALS:
            signal.signal(sig, on_signal)
        poller = zmq.Poller()
        poller.register(self.control, zmq.POLLIN)
        try:
            self.start()
            while not self.stopping:
                if poller.poll(POLL_MS):
                    self.drain_control()
                self.check()
        finally:
            self.shutdown()
        return 0

    def shutdown(self) -> None:
        """SIGTERM the frontend (no new requests), then the workers (they finish what they hold);
        SIGKILL whatever is left after ``shutdown_timeout_s``."""
        self.stopping = True
        order = [self.frontend] if self.frontend else []
        for dep in self.deployments.values():
            order += dep.all_children()
        for child in order:
            child.signal(signal.SIGTERM)
        deadline = time.monotonic() + self.config.server.shutdown_timeout_s
        while time.monotonic() < deadline and any(c.proc and c.poll() is None for c in order):
            time.sleep(0.05)
        for child in order:
            if child.proc and child.poll() is None:
                log.warning("%s did not stop in time; killing it", child.name)
                child.signal(signal.SIGKILL)
                child.proc.wait()
        self.control.close(linger=0)
        self.ctx.term()
        if self._own_run_dir:
            shutil.rmtree(self.run_dir, ignore_errors=True)
        else:  # a directory the operator chose stays, without the keys
            self.config_path.unlink(missing_ok=True)
        log.info("all processes stopped")


class _OpError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
