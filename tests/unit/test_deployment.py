"""What the supervisor counts as a model's memory: device memory on a GPU, RSS on the CPU (issue 13).

Synthetic heartbeats on a supervisor that starts no process: a torch worker holds gigabytes on its GPU and
little host memory, so budgeting a GPU by RSS would evict the wrong models or refuse loads that fit."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from vtts import config as cfg
from vtts import protocol as P
from vtts.supervisor.deployment import held_bytes
from vtts.supervisor.memory import MIB, InsufficientMemory
from vtts.supervisor.process import Child
from vtts.supervisor.supervisor import Supervisor

GIB = 1024 * MIB


def _status(wid: str, device: str, rss: int, device_memory: int = 0, state: str = "ready") -> P.Status:
    return P.Status(worker_id=wid, model=wid.rsplit("-", 1)[0], pid=0, state=state, device=device,
                    rss_bytes=rss, device_memory_bytes=device_memory)


def test_held_bytes_is_device_memory_on_a_gpu_and_rss_elsewhere() -> None:
    assert held_bytes(_status("g-0", "cuda:0", rss=GIB // 2, device_memory=4 * GIB)) == 4 * GIB
    assert held_bytes(_status("g-0", "cuda", rss=GIB // 2, device_memory=4 * GIB)) == 4 * GIB
    # a GPU worker that cannot tell (no NVML, another PID namespace): its RSS, as before
    assert held_bytes(_status("g-0", "cuda:1", rss=GIB // 2)) == GIB // 2
    assert held_bytes(_status("c-0", "cpu", rss=GIB, device_memory=3 * GIB)) == GIB


class Scripted:
    """Free bytes per device, as the test sets them."""

    def __init__(self, free: dict[str, int]) -> None:
        self.free = free

    def free_bytes(self, device: str) -> int:
        return self.free[device]


@pytest.fixture
def sup(tmp_path: Path) -> Iterator[Supervisor]:
    config = cfg.parse({
        "server": {"run_dir": str(tmp_path / "run"), "cpu_memory_budget_mb": 4096},
        "models": [
            {"id": "g", "engine": "piper", "model": "x", "device": "cuda:0", "replicas": 2},
            {"id": "c", "engine": "piper", "model": "x", "device": "cpu"},
            {"id": "new", "engine": "piper", "model": "x", "device": "cuda:0", "preload": False,
             "memory_mb": 3072},
        ],
    })
    s = Supervisor(config)
    for dep in (s.deployments["g"], s.deployments["c"]):
        for replica in range(dep.entry.replicas):
            wid = dep.worker_id(0, replica)
            dep.workers[wid] = Child(wid, [])  # never started: signals to it are no-ops
    try:
        yield s
    finally:
        s.control.close(linger=0)
        s.ctx.term()


def test_a_gpu_model_holds_its_workers_device_memory(sup: Supervisor) -> None:
    for wid in ("g-0", "g-1"):
        sup.on_status(_status(wid, "cuda:0", rss=300 * MIB, device_memory=2 * GIB))
    sup.on_status(_status("c-0", "cpu", rss=500 * MIB))
    assert sup._held_bytes(sup.deployments["g"]) == 4 * GIB
    assert sup._used_bytes("cuda:0") == 4 * GIB
    assert sup._used_bytes("cpu") == 500 * MIB  # the GPU workers' host memory is not the CPU budget's
    assert sup.deployments["g"].footprint_bytes == 2 * GIB  # measured per replica, on its device
    assert sup.memory.free_bytes("cpu") == 4096 * MIB - 500 * MIB


def test_a_draining_gpu_worker_still_counts_its_device_memory(sup: Supervisor) -> None:
    dep = sup.deployments["g"]
    for wid in ("g-0", "g-1"):
        sup.on_status(_status(wid, "cuda:0", rss=300 * MIB, device_memory=2 * GIB))
    sup._unload(dep)
    assert not dep.workers and sup._used_bytes("cuda:0") == 4 * GIB


def test_evicting_for_a_gpu_load_counts_what_eviction_frees_on_the_gpu(sup: Supervisor) -> None:
    """1 GiB free, 3 GiB wanted: the idle GPU model holds 4 GiB there (but 0.6 GiB of RSS). Counted by RSS
    it could not make room and the load was refused."""
    sup.memory = Scripted({"cuda:0": GIB, "cpu": 4 * GIB})  # type: ignore[assignment]
    for wid in ("g-0", "g-1"):
        sup.on_status(_status(wid, "cuda:0", rss=300 * MIB, device_memory=2 * GIB))
    sup._make_room(sup.deployments["new"], sup.deployments["new"].entry)
    assert not sup.deployments["g"].workers and set(sup.deployments["g"].retiring) == {"g-0", "g-1"}
    assert sup.deployments["c"].workers  # another device's model is never a candidate


def test_a_gpu_load_that_cannot_fit_even_after_eviction_is_refused(sup: Supervisor) -> None:
    sup.memory = Scripted({"cuda:0": GIB, "cpu": 4 * GIB})  # type: ignore[assignment]
    for wid in ("g-0", "g-1"):
        sup.on_status(_status(wid, "cuda:0", rss=4 * GIB, device_memory=512 * MIB))
    with pytest.raises(InsufficientMemory):
        sup._make_room(sup.deployments["new"], sup.deployments["new"].entry)
    assert sup.deployments["g"].workers  # nothing was evicted for a load that fails anyway
