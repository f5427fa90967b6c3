"""How much memory a device has free, behind one small interface, and the eviction policy on top of it.

The same policy code serves GPUs (free memory from NVML) and the CPU (a configured budget minus what our
workers use, or the system's available memory), and is unit-tested with a scripted source.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger("vtts.supervisor.memory")

MIB = 1024 * 1024
#: footprint assumed for a replica that declares none and has never been measured
DEFAULT_FOOTPRINT = 512 * MIB


class MemorySource(Protocol):
    """Free bytes on a device ("cpu", "cuda:0")."""

    def free_bytes(self, device: str) -> int: ...


def system_available_bytes() -> int:
    """MemAvailable from /proc/meminfo: what the kernel can give without swapping."""
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    raise OSError("MemAvailable not found in /proc/meminfo")


class CpuMemory:
    """CPU memory: ``budget - used_by_our_workers`` when a budget is set, else the system's available."""

    def __init__(self, budget_bytes: int, used_bytes: Callable[[str], int]) -> None:
        self.budget_bytes = budget_bytes
        self.used_bytes = used_bytes

    def free_bytes(self, device: str) -> int:
        if self.budget_bytes:
            return self.budget_bytes - self.used_bytes(device)
        return system_available_bytes()


class UnknownDevice(ValueError):
    """The device named by a model entry does not exist on this host (or cannot be queried)."""


class NvmlMemory:
    """GPU memory from NVML (pynvml), minus a reserve left for other processes. Every NVML failure (no
    driver, no such index) becomes :class:`UnknownDevice`: a bad entry must never take the supervisor down."""

    def __init__(self, reserve_bytes: int = 0) -> None:
        try:
            import pynvml

            pynvml.nvmlInit()
            self.count = int(pynvml.nvmlDeviceGetCount())
        except Exception as exc:  # ImportError, NVMLError_LibraryNotFound, NVMLError_DriverNotLoaded, ...
            raise UnknownDevice(f"no GPU can be used on this host (NVIDIA's management library: {exc})") from exc
        self._nvml = pynvml
        self.reserve_bytes = reserve_bytes

    def free_bytes(self, device: str) -> int:
        index = int(device.partition(":")[2] or 0)
        if index >= self.count:
            raise UnknownDevice(f"device {device!r} does not exist: this host has {self.count} GPU(s)")
        try:
            handle = self._nvml.nvmlDeviceGetHandleByIndex(index)
            return int(self._nvml.nvmlDeviceGetMemoryInfo(handle).free) - self.reserve_bytes
        except Exception as exc:  # NVMLError_*: the GPU fell off the bus, lost permissions, ...
            raise UnknownDevice(f"device {device!r} cannot be queried: {exc}") from exc


class DeviceMemory:
    """Routes a device name to its source: "cpu" to the CPU source, "cuda*" to NVML (opened lazily)."""

    def __init__(self, cpu: MemorySource, gpu_reserve_bytes: int = 0) -> None:
        self.cpu = cpu
        self.gpu_reserve_bytes = gpu_reserve_bytes
        self._gpu: MemorySource | None = None

    def free_bytes(self, device: str) -> int:
        if device == "cpu":
            return self.cpu.free_bytes(device)
        if self._gpu is None:
            try:
                self._gpu = NvmlMemory(self.gpu_reserve_bytes)
            except UnknownDevice as exc:
                raise UnknownDevice(f"device {device!r} does not exist: {exc}") from exc
        return self._gpu.free_bytes(device if ":" in device else "cuda:0")


@dataclass
class Resident:
    """A loaded model as the eviction policy sees it."""

    id: str
    device: str
    bytes: int
    last_used: float
    busy: bool
    pinned: bool


class InsufficientMemory(Exception):
    """Even after evicting every idle, unpinned model the new one does not fit."""


def plan_evictions(need: int, free: int, device: str, residents: Iterable[Resident]) -> list[str]:
    """Ids to evict, least recently used first, so that ``need`` bytes fit on ``device``.

    Models with in-flight requests and pinned models are never chosen. Raises
    :class:`InsufficientMemory` when no choice frees enough."""
    if need <= free:
        return []
    candidates = sorted(
        (r for r in residents if r.device == device and not r.busy and not r.pinned), key=lambda r: r.last_used
    )
    chosen: list[str] = []
    for r in candidates:
        chosen.append(r.id)
        free += r.bytes
        if need <= free:
            return chosen
    raise InsufficientMemory(
        f"{device}: need {need // MIB} MiB, {max(free, 0) // MIB} MiB free after evicting every idle unpinned model"
    )
