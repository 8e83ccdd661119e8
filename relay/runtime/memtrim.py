"""Give the memory freed after a burst of connections back to the system (glibc's malloc_trim).

A flood of strangers makes the relay allocate and free many buffers of many sizes (reads,
partial messages, TLS state). Python frees them all, but while a show runs, the media's
own buffers keep landing among the holes, and glibc returns only the top of its heap:
measured on a live show after a flood of ~840 connections, RSS stayed 5 MB (10 %) over
the baseline, and grew again with the next flood. malloc_trim(0) also returns the free
pages in the middle of the heap (madvise), which brought RSS back to within 4 % after two
floods. It costs 1 to 4 ms and runs only after a burst has passed (app.py), never on the
media path.

On a C library without malloc_trim (musl), this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from typing import Any

__all__ = ["malloc_trim", "rss_kb"]


def _load() -> Any:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


_trim = _load()


def malloc_trim() -> bool:
    """Return free heap memory to the system; False if the C library cannot."""
    if _trim is None:
        return False
    _trim(0)
    return True


def rss_kb() -> int | None:
    """This process's resident set size in kB (Linux), or None."""
    try:
        with open("/proc/self/statm") as file:
            pages = int(file.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE") // 1024
