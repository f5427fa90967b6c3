"""Freed memory goes back to the system (glibc's malloc_trim)."""

from __future__ import annotations

import os

import pytest

from vtts.frontend import heap


def _rss() -> int:
    with open(f"/proc/{os.getpid()}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(heap._malloc_trim() is None, reason="not glibc")
def test_trim_returns_freed_heap_pages() -> None:
    """Many mid-size buffers (below the mmap threshold, like audio chunks) freed except a few that pin
    the heap's top: without a trim the pages stay resident; with it they go back."""
    chunks = [bytearray(64 * 1024) for _ in range(1600)]  # 100 MiB in the heap
    for c in chunks:
        c[::4096] = b"x" * len(c[::4096])  # touch every page
    keep = chunks[-1]
    del chunks
    before = _rss()
    heap.trim()
    assert _rss() < before - 50 * 2**20
    assert keep
