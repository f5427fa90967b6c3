"""The eviction policy and the memory sources, driven by scripted numbers (no GPU needed)."""

import pytest

from vtts.supervisor.memory import (
    MIB,
    CpuMemory,
    DeviceMemory,
    InsufficientMemory,
    Resident,
    plan_evictions,
    system_available_bytes,
)


def res(rid: str, mib: int, last_used: float, busy: bool = False, pinned: bool = False, device: str = "cpu"):
    return Resident(rid, device, mib * MIB, last_used, busy, pinned)


def test_nothing_is_evicted_when_it_fits() -> None:
    assert plan_evictions(100 * MIB, 200 * MIB, "cpu", [res("a", 500, 1.0)]) == []


def test_least_recently_used_goes_first_and_only_as_many_as_needed() -> None:
    residents = [res("new", 100, 30.0), res("old", 100, 10.0), res("mid", 100, 20.0)]
    assert plan_evictions(250 * MIB, 100 * MIB, "cpu", residents) == ["old", "mid"]


def test_busy_and_pinned_models_are_never_evicted() -> None:
    residents = [res("busy", 500, 1.0, busy=True), res("pin", 500, 2.0, pinned=True), res("idle", 100, 3.0)]
    assert plan_evictions(150 * MIB, 100 * MIB, "cpu", residents) == ["idle"]
    with pytest.raises(InsufficientMemory, match="need 400 MiB"):
        plan_evictions(400 * MIB, 100 * MIB, "cpu", residents)


def test_only_models_on_the_same_device_count() -> None:
    residents = [res("gpu-model", 1000, 1.0, device="cuda:0"), res("cpu-model", 100, 2.0)]
    assert plan_evictions(500 * MIB, 450 * MIB, "cuda:0", residents) == ["gpu-model"]
    with pytest.raises(InsufficientMemory):
        plan_evictions(500 * MIB, 0, "cuda:1", residents)


def test_cpu_budget_minus_what_workers_hold() -> None:
    used = {"cpu": 300 * MIB}
    mem = CpuMemory(1000 * MIB, lambda device: used[device])
    assert mem.free_bytes("cpu") == 700 * MIB
    used["cpu"] = 1200 * MIB
    assert mem.free_bytes("cpu") < 0


def test_cpu_without_budget_reads_the_system() -> None:
    free = CpuMemory(0, lambda device: 0).free_bytes("cpu")
    assert 0 < free <= system_available_bytes() * 2


class Scripted:
    def __init__(self, free: dict[str, int]) -> None:
        self.free = free

    def free_bytes(self, device: str) -> int:
        return self.free[device]


def test_device_memory_routes_cpu_to_the_cpu_source() -> None:
    mem = DeviceMemory(Scripted({"cpu": 42}))
    assert mem.free_bytes("cpu") == 42


def test_nvml_source_on_a_gpu_machine() -> None:
    pynvml = pytest.importorskip("pynvml")
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        pytest.skip("no NVIDIA driver here")
    mem = DeviceMemory(Scripted({}), gpu_reserve_bytes=0)
    assert mem.free_bytes("cuda:0") > 0


def test_a_gpu_without_nvidia_library_is_an_unknown_device_not_a_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    """NVML errors (no library, no such index) must reach the admin caller as a named device error."""
    import pynvml

    from vtts.supervisor.memory import UnknownDevice

    def no_library() -> None:
        raise pynvml.NVMLError(pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)

    monkeypatch.setattr(pynvml, "nvmlInit", no_library)
    memory = DeviceMemory(CpuMemory(0, lambda d: 0))
    with pytest.raises(UnknownDevice, match="'cuda:99' does not exist"):
        memory.free_bytes("cuda:99")


def test_a_gpu_index_past_the_count_is_an_unknown_device(monkeypatch: pytest.MonkeyPatch) -> None:
    import pynvml

    from vtts.supervisor.memory import UnknownDevice

    monkeypatch.setattr(pynvml, "nvmlInit", lambda: None)
    monkeypatch.setattr(pynvml, "nvmlDeviceGetCount", lambda: 1)
    memory = DeviceMemory(CpuMemory(0, lambda d: 0))
    with pytest.raises(UnknownDevice, match="'cuda:99' does not exist: this host has 1 GPU"):
        memory.free_bytes("cuda:99")
