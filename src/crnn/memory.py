"""Keep freed memory in the process during training (glibc's malloc), so a step does not page-fault its activations.

A CPU training step allocates and frees the same large activation and gradient buffers (MBs each) every
step. glibc's malloc serves a block larger than its *dynamic* mmap threshold with a fresh ``mmap`` and
gives it back with ``munmap`` when freed, and trims the heap's free top above its trim threshold; both
thresholds move with the history of allocations, so two versions of the same loop can end up in different
states. In the bad state every page of those buffers is faulted in (and zeroed by the kernel) again at
every step: on an AMD Zen 4 VM ``crnn train`` of the seed config (batch 64, one thread) took 128,000 minor
page faults per step with crnn's kernels off and 156,000 (600 MB zeroed) with them on, against 2,100 at
commit 8999c23, and its step used 1.6x the CPU time (docs/training_throughput.md, "AMD Zen 4: page faults,
not kernels"). Fixed settings (no mmap for large blocks, no trimming) take it to ~50-800 faults per step
whatever the history.

The cost: memory freed by training stays mapped by the process (its peak resident size is reached at the
first step anyway and stays there while training runs). ``CRNN_MALLOC_TUNE=0`` leaves malloc as it is.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import os
import platform

log = logging.getLogger(__name__)

# glibc's mallopt parameters (malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4


@functools.cache
def keep_freed_memory() -> bool:
    """Tell glibc's malloc to serve every block from its heaps and never give freed memory back to the OS.

    Returns whether it was done (False: not Linux/glibc, turned off with ``CRNN_MALLOC_TUNE=0``, or mallopt
    refused). Settings live in the process's memory, so loader workers forked afterwards inherit them.
    """
    if os.environ.get("CRNN_MALLOC_TUNE", "1") == "0":
        log.info("CRNN_MALLOC_TUNE=0: malloc left as it is (large blocks mmapped, heap trimmed)")
        return False
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        # M_MMAP_MAX 0: large blocks from the heap, not a fresh mmap each time (re-faulted at every step);
        # M_TRIM_THRESHOLD at its maximum: the freed top of the heap is kept for the next step.
        ok = bool(libc.mallopt(M_MMAP_MAX, 0)) and bool(libc.mallopt(M_TRIM_THRESHOLD, 2**31 - 1))
    except (OSError, AttributeError):
        return False
    if ok:
        log.info("malloc: large blocks from the heap, freed memory kept (no page faults on the step's buffers; "
                 "CRNN_MALLOC_TUNE=0 turns this off)")
    return ok
