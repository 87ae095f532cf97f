"""glibc malloc tuning for the server process: keep large request buffers in the heap instead of mapping and
unmapping them per request.

A 600 KB binary-tensor body passes through several buffers of that size (the HTTP layer's, the body, outputs).
With glibc's defaults, blocks of 128 KB and more are `mmap`ed fresh and returned to the kernel when freed (or the
heap top is trimmed), so every request pays page faults to map and zero them again: measured here as ~1 ms of
kernel CPU per 600 KB request, more than the rest of the HTTP path. With 32 MiB mmap and trim
thresholds, freed buffers are reused; the cost is that up to 32 MiB of freed memory per malloc arena may stay
resident (RSS), which the overload benchmark's RSS figure shows. Set INFERLOAD_MALLOC_TUNING=false to keep the
defaults. No effect (and no error) outside glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger("server")

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024  # glibc's largest allowed value (64-bit)
TRIM_THRESHOLD_BYTES = 32 * 1024 * 1024


def tune_malloc(mmap_threshold: int = MMAP_THRESHOLD_BYTES, trim_threshold: int = TRIM_THRESHOLD_BYTES) -> bool:
    """Set glibc's mmap and trim thresholds for this process. True if both were applied."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    ok = mallopt(M_MMAP_THRESHOLD, mmap_threshold) == 1 and mallopt(M_TRIM_THRESHOLD, trim_threshold) == 1
    if not ok:
        log.info("malloc tuning not applied (not glibc, or values refused)")
    return ok
