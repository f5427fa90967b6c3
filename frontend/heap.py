"""Giving freed memory back to the system.

The frontend holds audio for slow clients (up to ``max_buffered_bytes`` each) and drops it when a stream
ends or is cut. glibc keeps freed heap pages mapped (its mmap threshold rises after the first large free,
so later audio buffers come from the heap), so a burst of non-reading clients left the frontend ~30 %
above its warm size for good. ``malloc_trim`` returns the free pages; it is cheap (a walk over free chunks)
and a no-op where glibc is absent.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools


@functools.cache
def _malloc_trim():  # noqa: ANN202 - a ctypes function or None
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        return ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS)
        return None


def trim() -> bool:
    """Return free heap memory to the system; True when glibc did release some."""
    fn = _malloc_trim()
    return bool(fn(0)) if fn is not None else False
