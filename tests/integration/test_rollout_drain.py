"""The promises the Helm chart builds on, checked on a real server while 16 clients stream.

- The HPA's load metric (the chart's default ``autoscaling.loadMetric.name``, scraped from ``/metrics``) counts
  exactly the streams in flight.
- SIGTERM (what the kubelet sends after preStop, on a rollout or a scale-down) lets every stream end with its
  ``done`` event, then the whole tree exits by itself, inside ``shutdown_timeout_s`` (which the chart's
  terminationGracePeriodSeconds covers).
"""

from __future__ import annotations

import http.client
import json
import re
import signal
import threading
import time
from pathlib import Path

import yaml

from tests.integration.conftest import start_server

CLIENTS = 16
SHUTDOWN_S = 90.0
CONFIG = f"""
[server]
drain_timeout_s = {SHUTDOWN_S}
shutdown_timeout_s = {SHUTDOWN_S}

[[models]]
id = "joe"
engine = "piper"
model = "en_US-joe-medium"
options = {{ warmup = false }}
"""
CHART_VALUES = Path(__file__).resolve().parents[2] / "deploy" / "helm" / "vtts" / "values.yaml"
TEXT = ("The morning train leaves the station at half past seven. It stops at every village along the river. "
        "The journey ends in the city after two hours.")


class Stream(threading.Thread):
    """One SSE speech request; records whether it got audio, then its done event (a complete stream)."""

    def __init__(self, port: int, started: threading.Semaphore) -> None:
        super().__init__(daemon=True)
        self.port, self.started = port, started
        self.deltas = 0
        self.done: dict | None = None
        self.error = ""

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        try:
            body = json.dumps({"model": "joe", "voice": "alloy", "input": TEXT, "response_format": "pcm",
                               "stream_format": "sse"})
            conn.request("POST", "/v1/audio/speech", body, {"Content-Type": "application/json"})
            resp = conn.getresponse()
            if resp.status != 200:
                self.error = f"status {resp.status}: {resp.read()[:200]!r}"
                return
            for line in resp:
                if not line.startswith(b"data: "):
                    continue
                event = json.loads(line[6:])
                if event["type"] == "speech.audio.delta":
                    self.deltas += 1
                    if self.deltas == 1:
                        self.started.release()
                elif event["type"] == "speech.audio.done":
                    self.done = event
                else:
                    self.error = json.dumps(event)[:300]
        except (OSError, http.client.HTTPException, ValueError) as exc:
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            conn.close()


def test_sigterm_during_16_streams_completes_every_stream_then_exits(tmp_path) -> None:
    (tmp_path / "vtts.toml").write_text(CONFIG)
    srv = start_server(["--config", str(tmp_path / "vtts.toml")], tmp_path)
    try:
        started = threading.Semaphore(0)
        streams = [Stream(srv.port, started) for _ in range(CLIENTS)]
        for s in streams:
            s.start()
        for _ in range(CLIENTS):  # every client has audio before the signal: all 16 are mid-stream
            assert started.acquire(timeout=120), [s.error for s in streams if s.error]
        assert all(s.done is None for s in streams), "a stream ended before SIGTERM: the text is too short"
        load_metric = yaml.safe_load(CHART_VALUES.read_text())["autoscaling"]["loadMetric"]["name"]
        status, scrape = srv.get("/metrics")
        assert status == 200
        samples = re.findall(rf"^{load_metric}{{[^}}]*}} (\S+)$", scrape.decode(), re.M)
        assert samples and sum(float(v) for v in samples) == CLIENTS
        t0 = time.monotonic()
        srv.proc.send_signal(signal.SIGTERM)
        srv.proc.wait(timeout=SHUTDOWN_S + 30)
        exited_after = time.monotonic() - t0
        print(f"the tree exited {exited_after:.1f} s after SIGTERM")
        for s in streams:
            s.join(timeout=30)
        failures = [s.error or f"no done event after {s.deltas} deltas" for s in streams if s.done is None]
        assert failures == [], failures
        assert all(s.done["usage"]["output_tokens"] > 0 for s in streams)
        assert exited_after < SHUTDOWN_S, "processes were killed at shutdown_timeout_s instead of draining"
        assert "did not stop in time" not in srv.logs(20000)
    finally:
        _, left = srv.stop()
    assert not left
