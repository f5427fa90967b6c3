"""Prometheus metrics of the frontend (one registry per app, so tests can build several apps)."""

from __future__ import annotations

import contextlib

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from vtts import protocol as P

from .pool import GONE

LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0, 30.0)
#: a request that stalled none observes 0 (the first bucket), so the count is every finished request
STALL_BUCKETS = (0.0, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)


class Metrics:
    """Counters and histograms, labelled by model (and worker where the worker reports it)."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        #: speech requests by model and status, plus every 5xx of any route (model "" where none is known)
        self.requests = Counter("vtts_requests_total", "Speech requests and server errors by model and HTTP status",
                                ["model", "status"], registry=r)
        self.ttfa = Histogram("vtts_time_to_first_audio_seconds", "Request arrival to the first audio byte sent",
                              ["model"], buckets=LATENCY_BUCKETS, registry=r)
        self.queue_wait = Histogram("vtts_queue_wait_seconds", "Worker queue wait before the first segment ran",
                                    ["model"], buckets=LATENCY_BUCKETS, registry=r)
        self.audio_seconds = Counter("vtts_audio_seconds_total", "Seconds of audio produced", ["model"], registry=r)
        self.rtf = Histogram("vtts_real_time_factor", "Engine seconds per audio second, per request", ["model"],
                             buckets=(0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0), registry=r)
        self.stall = Histogram("vtts_stall_seconds", "Per request, the longest gap a listener heard (a player "
                               "starting the model's jitter_buffer_s after the first audio), as the worker sent it",
                               ["model"], buckets=STALL_BUCKETS, registry=r)
        self.stalled = Counter("vtts_stalled_requests_total", "Requests whose listener heard at least one gap",
                               ["model"], registry=r)
        self.cuts = Counter("vtts_segment_cuts_total", "Segments cut at a clause so a long step would not block the "
                            "requests waiting behind it or arriving during it (model entry max_cuts, short_steps)",
                            ["model"], registry=r)
        self.active = Gauge("vtts_active_streams", "Requests being streamed", ["model"], registry=r)
        self.rejected = Counter("vtts_rejected_total", "Requests refused for overload or no worker",
                                ["model", "reason"], registry=r)
        self.retries = Counter("vtts_retries_total", "Requests re-routed before they started, by reason",
                               ["model", "reason"], registry=r)
        self.cancelled = Counter("vtts_cancelled_total", "Requests cancelled by the client going away", ["model"],
                                 registry=r)
        self.queue_depth = Gauge("vtts_worker_queue_depth", "Requests waiting in a worker", ["model", "worker"],
                                 registry=r)
        self.worker_active = Gauge("vtts_worker_active_requests", "Requests running in a worker",
                                   ["model", "worker"], registry=r)
        self.worker_rss = Gauge("vtts_worker_rss_bytes", "Resident memory of a worker", ["model", "worker"],
                                registry=r)
        self.voices_stored = Gauge("vtts_voices_stored", "Custom voices in the voice library (all owners)",
                                   registry=r)
        self.voice_bytes = Gauge("vtts_voice_bytes", "Bytes of custom-voice audio stored (all owners)", registry=r)
        # a worker's cumulative counts since it started (gauges: a restarted worker starts from 0)
        self.voice_cache_hits = Gauge("vtts_worker_voice_cache_hits", "Custom-voice feature lookups served from "
                                      "the worker's cache", ["model", "worker"], registry=r)
        self.voice_cache_misses = Gauge("vtts_worker_voice_cache_misses", "Custom-voice features computed by the "
                                        "engine (cache misses)", ["model", "worker"], registry=r)
        self.voice_cache_entries = Gauge("vtts_worker_voice_cache_entries", "Custom voices whose features the "
                                         "worker holds", ["model", "worker"], registry=r)

    def on_status(self, st: P.Status) -> None:
        """Per-worker gauges from a heartbeat; a worker the pool forgot (state "gone") loses its series, so
        replaced workers do not pile up in every scrape."""
        per_worker = (self.queue_depth, self.worker_active, self.worker_rss, self.voice_cache_hits,
                      self.voice_cache_misses, self.voice_cache_entries)
        if st.state == GONE:
            for gauge in per_worker:
                with contextlib.suppress(KeyError):
                    gauge.remove(st.model, st.worker_id)
            return
        self.queue_depth.labels(st.model, st.worker_id).set(st.queued)
        self.worker_active.labels(st.model, st.worker_id).set(st.active)
        self.worker_rss.labels(st.model, st.worker_id).set(st.rss_bytes)
        if st.clones:
            self.voice_cache_hits.labels(st.model, st.worker_id).set(st.voice_cache_hits)
            self.voice_cache_misses.labels(st.model, st.worker_id).set(st.voice_cache_misses)
            self.voice_cache_entries.labels(st.model, st.worker_id).set(st.voice_cache_entries)

    def on_done(self, model: str, done: P.Done) -> None:
        t = done.timings
        audio_s = t.get("audio_s", 0.0)
        self.audio_seconds.labels(model).inc(audio_s)
        self.queue_wait.labels(model).observe(t.get("queue_wait_s", 0.0))
        if audio_s > 0:
            self.rtf.labels(model).observe(t.get("engine_s", 0.0) / audio_s)
        if "stall_s" in t:  # workers that predate stall timings report none
            self.stall.labels(model).observe(t["stall_s"])
            if t.get("stalls", 0.0) > 0:
                self.stalled.labels(model).inc()
        if t.get("cuts", 0.0) > 0:
            self.cuts.labels(model).inc(t["cuts"])

    def render(self) -> bytes:
        return generate_latest(self.registry)
