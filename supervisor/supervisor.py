"""The supervisor: starts the frontend and one worker per model replica, restarts what dies, and stops
everything on SIGTERM within the configured timeout. It never touches audio."""

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

from vtts.config import Config, ModelConfig

from .process import Child

log = logging.getLogger("vtts.supervisor")

POLL_S = 0.1


class Supervisor:
    """Owns process lifetimes. ``run()`` blocks until a signal asks it to stop."""

    def __init__(self, config: Config, python: str = sys.executable) -> None:
        self.config = config
        self.python = python
        self._own_run_dir = not config.server.run_dir
        self.run_dir = Path(config.server.run_dir or tempfile.mkdtemp(prefix="vtts-"))
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.endpoint = f"ipc://{self.run_dir / 'workers.sock'}"
        self.children: dict[str, Child] = {}
        self.stopping = False

    # -- children ------------------------------------------------------------------------------------
    def _frontend(self) -> Child:
        config_path = self.run_dir / "config.json"
        config_path.write_text(json.dumps(self.config.to_dict()), encoding="utf-8")
        argv = [self.python, "-m", "vtts.frontend", "--config", str(config_path), "--endpoint", self.endpoint,
                "--parent-pid", str(os.getpid())]
        return Child("frontend", argv)

    def _worker(self, model: ModelConfig, replica: int) -> Child:
        worker_id = f"{model.id}-{replica}"
        model_json = json.dumps(dataclasses.asdict(model))
        argv = [model.python or self.python, "-m", "vtts.workers", "--id", worker_id, "--endpoint", self.endpoint,
                "--model", model_json, "--parent-pid", str(os.getpid()), "--log-level", self.config.server.log_level]
        return Child(f"worker {worker_id}", argv)

    def start(self) -> None:
        """Start the frontend first (it binds the socket the workers connect to), then every worker."""
        front = self._frontend()
        self.children["frontend"] = front
        front.start()
        for model in self.config.models:
            for i in range(model.replicas):
                child = self._worker(model, i)
                self.children[child.name] = child
                child.start()

    def check(self) -> None:
        """Reap exited children and restart them after their backoff."""
        now = time.monotonic()
        for child in self.children.values():
            if child.proc is not None:
                code = child.poll()
                if code is not None:
                    delay = child.schedule_restart()
                    log.warning("%s exited with code %s; restarting in %.1f s", child.name, code, delay)
            elif now >= child.next_start and not self.stopping:
                child.start()

    # -- main loop -----------------------------------------------------------------------------------
    def run(self) -> int:
        """Start everything, supervise until SIGTERM/SIGINT, then stop."""
        def on_signal(signum: int, frame: object) -> None:
            if not self.stopping:
                log.info("received %s; shutting down", signal.Signals(signum).name)
            self.stopping = True

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        self.start()
        try:
            while not self.stopping:
                self.check()
                time.sleep(POLL_S)
        finally:
            self.shutdown()
        return 0

    def shutdown(self) -> None:
        """SIGTERM the frontend (no new requests), then the workers (they finish what they hold);
        SIGKILL whatever is left after ``shutdown_timeout_s``."""
        self.stopping = True
        front = self.children.get("frontend")
        order = [front] if front else []
        order += [c for c in self.children.values() if c is not front]
        for child in order:
            child.signal(signal.SIGTERM)
        deadline = time.monotonic() + self.config.server.shutdown_timeout_s
        while time.monotonic() < deadline and any(c.poll() is None for c in order if c.proc):
            time.sleep(POLL_S)
        for child in order:
            if child.proc and child.poll() is None:
                log.warning("%s did not stop in time; killing it", child.name)
                child.signal(signal.SIGKILL)
                child.proc.wait()
        if self._own_run_dir:
            shutil.rmtree(self.run_dir, ignore_errors=True)
        log.info("all processes stopped")
