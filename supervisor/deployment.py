"""One model's processes as the supervisor tracks them: the serving generation, a swap candidate, and
workers being retired (draining)."""

from __future__ import annotations

import dataclasses
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from vtts import protocol as P
from vtts.config import ModelConfig

from .process import Child


def held_bytes(st: P.Status) -> int:
    """Memory a worker holds where its model lives: device memory on a GPU (what evicting it frees there;
    its RSS is host memory), RSS on the CPU or while the worker cannot tell its device memory."""
    if st.device.startswith("cuda") and st.device_memory_bytes > 0:
        return st.device_memory_bytes
    return st.rss_bytes


@dataclass
class Waiter:
    """An admin request waiting for a model operation to finish."""

    ident: bytes
    request_id: str
    op: str
    deadline: float


@dataclass
class Deployment:
    """Lifecycle state of one model id."""

    entry: ModelConfig
    generation: int = 0
    workers: dict[str, Child] = field(default_factory=dict)
    candidate: dict[str, Child] = field(default_factory=dict)
    candidate_entry: ModelConfig | None = None
    #: worker id -> (child, time after which it is killed)
    retiring: dict[str, tuple[Child, float]] = field(default_factory=dict)
    failed: bool = False
    last_error: str = ""
    exits: deque[float] = field(default_factory=deque)
    footprint_bytes: int = 0
    loaded_at: float = 0.0
    waiters: list[Waiter] = field(default_factory=list)
    #: added through the admin API (not in the config file): forgotten on DELETE or when its first load fails
    added: bool = False
    #: an admin DELETE is draining it: on-demand loads are refused until it is unloaded
    unloading: bool = False
    #: a worker of it reported ready at least once
    was_ready: bool = False
    #: generations handed out so far (serving or candidate): worker ids are never reused while one may live
    generations: int = 0
    candidate_generation: int = 0

    @property
    def id(self) -> str:
        return self.entry.id

    def new_generation(self) -> int:
        """A generation number no worker of this model has had: a reload after an unload, or a swap, gets
        fresh worker ids, so a new worker can never take over (ROUTER_HANDOVER) a draining one's identity."""
        self.generations += 1
        return self.generations - 1

    def worker_id(self, generation: int, replica: int) -> str:
        return f"{self.id}-{replica}" if generation == 0 else f"{self.id}-g{generation}-{replica}"

    def all_children(self) -> list[Child]:
        return [*self.workers.values(), *self.candidate.values(), *(c for c, _ in self.retiring.values())]

    def state(self, statuses: dict[str, P.Status]) -> str:
        """loading | ready | draining | failed | unloaded (a swap in progress reads as the serving state)."""
        if self.failed:
            return "failed"
        if self.workers:
            ready = any(statuses.get(w) and statuses[w].state == "ready" for w in self.workers)
            return "ready" if ready else "loading"
        if self.candidate:
            return "loading"
        return "draining" if self.retiring else "unloaded"

    def busy(self, statuses: dict[str, P.Status]) -> bool:
        """True while any worker holds requests (such a model is never evicted)."""
        return any((st := statuses.get(w)) and (st.active or st.queued) for w in self.workers)

    def last_used(self, statuses: dict[str, P.Status]) -> float:
        times = [statuses[w].last_request_at for w in self.workers if w in statuses]
        return max([t for t in times if t] or [self.loaded_at])

    def resident_bytes(self, statuses: dict[str, P.Status]) -> int:
        """What the serving workers hold on the model's device (:func:`held_bytes`)."""
        return sum(held_bytes(statuses[w]) for w in self.workers if w in statuses)

    def retiring_bytes(self, statuses: dict[str, P.Status]) -> int:
        """What draining workers still hold on the model's device."""
        return sum(held_bytes(statuses[w]) for w in self.retiring if w in statuses)

    def describe(self, statuses: dict[str, P.Status]) -> dict[str, Any]:
        """The /admin/models view of this model."""
        def replica(worker_id: str, child: Child, role: str) -> dict[str, Any]:
            st = statuses.get(worker_id)
            return {
                "worker_id": worker_id, "pid": child.pid, "role": role,
                "state": st.state if st else ("starting" if child.proc else "restarting"),
                "device": st.device if st else self.entry.device,
                "memory_bytes": st.rss_bytes if st else 0,
                "device_memory_bytes": st.device_memory_bytes if st else 0,
                "queue_depth": st.queued if st else 0, "active": st.active if st else 0,
                "python": st.python if st else "", "restarts": child.restarts,
                "error": st.error if st else "",
            }

        replicas = [replica(w, c, "serving") for w, c in self.workers.items()]
        replicas += [replica(w, c, "candidate") for w, c in self.candidate.items()]
        replicas += [replica(w, c, "draining") for w, (c, _) in self.retiring.items()]
        return {
            "id": self.id, "state": self.state(statuses), "generation": self.generation,
            "entry": dataclasses.asdict(self.entry), "replicas": replicas, "last_error": self.last_error,
            "pinned": self.entry.pinned, "footprint_bytes": self.footprint_bytes,
            "last_used": self.last_used(statuses) if self.workers else 0.0,
        }

    def record_exit(self, window_s: float) -> int:
        """Remember an unexpected exit; return how many happened within the window."""
        now = time.monotonic()
        self.exits.append(now)
        while self.exits and now - self.exits[0] > window_s:
            self.exits.popleft()
        return len(self.exits)
