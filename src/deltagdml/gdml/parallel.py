"""How many cores a job may use, and BLAS thread control around threaded numpy work."""

from __future__ import annotations

import os


def available_threads() -> int:
    """Cores this process may use: OMP_NUM_THREADS if set (Snakemake sets it to the
    rule's threads), else the CPU affinity of the process."""
    value = os.environ.get("OMP_NUM_THREADS", "")
    if value.isdigit() and int(value) > 0:
        return int(value)
    return len(os.sched_getaffinity(0))
