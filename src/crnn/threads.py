"""How many inference threads to use by default: the cores this process may run on that are not busy.

onnxruntime's and torch's own defaults take every core of the machine. On a shared or busy machine
that oversubscribes the cores, and a thread pool that waits for its slowest thread then runs
several times slower than one thread would (measured: 2-4x, docs/deploy.md).
"""

from __future__ import annotations

import math
import os
from pathlib import Path


def available_cores() -> int:
    """Cores this process may use: its CPU affinity, capped by a cgroup v2 CPU quota (containers)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cores)


def default_threads() -> int:
    """Available cores minus those other processes keep busy (the 1-minute load average), at least 1."""
    cores = available_cores()
    try:
        busy = math.floor(os.getloadavg()[0])
    except (AttributeError, OSError):
        busy = 0
    return max(1, min(cores, cores - busy))


def n_threads(n: int) -> str:
    """``"1 thread"``, ``"4 threads"``: for log lines and reports."""
    return f"{n} thread{'' if n == 1 else 's'}"


def cpu_summary() -> str:
    """This CPU's model name and the SIMD/matrix extensions that decide training speed (AVX-512, VNNI, BF16, AMX)."""
    try:
        info = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return "unknown"
    lines = info.splitlines()
    model = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")), "?")
    flags = set(next((ln.split(":", 1)[1].split() for ln in lines if ln.startswith("flags")), []))
    keep = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile") if f in flags]
    return f"{model} ({available_cores()} usable cores; {' '.join(keep) or 'no AVX2'})"
