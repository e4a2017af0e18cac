"""Process memory policy for coding on the CPU: keep freed activation buffers for reuse.

One P-frame allocates and frees about 2 GB of activations at 448x256. By default glibc's malloc serves every block
above a threshold that starts at 128 KiB with a fresh ``mmap`` and returns freed heap tops to the kernel, so most
activations land on new pages that the kernel must fault in and zero: measured at 448x256, 1.1-2.1 M minor page
faults and 3-5 s of system time per six frames. Raising the threshold to glibc's maximum (32 MiB) and never
trimming the heap keeps such buffers in the process for the next frame: P-frame estimate 2.22 s instead of 2.44 s
(best of 3 each, 2 threads; bench/benchmarks/codec_speed), the same values and the same peak RSS. Serving every
block from the heap (no mmap at all) would save the remaining faults too (2.14 s; at 1920x1024 43 s instead of
80 s), but heap fragmentation then raised the 1920x1024 peak from 7.2 GB to 11.1 GB; blocks over 32 MiB (full-
resolution tensors of 1080p) therefore still come from and go back to the kernel.
"""
from __future__ import annotations

import ctypes
import sys

M_TRIM_THRESHOLD = -1     # glibc mallopt parameters (malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_MAX = 32 << 20   # glibc's upper bound on 64-bit systems
_INT_MAX = 2 ** 31 - 1


def keep_freed_memory() -> bool:
    """Ask glibc's malloc to keep freed blocks under 32 MiB for reuse (process-wide, idempotent). Returns False
    where there is no glibc ``mallopt`` (macOS, Windows, musl), which changes nothing else."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX)) and bool(mallopt(M_TRIM_THRESHOLD, _INT_MAX))
