"""How many threads the native libraries (OpenMP, BLAS) may use: what the function's memory
buys in vCPUs. Lambda gives one vCPU per 1,769 MB, up to 6; OpenMP's default is every CPU the
host shows, and a first predict then spins up threads it cannot run (77-360 ms instead of
about 4 ms here). Called before numpy or scikit-learn load: they read these once, at load.
Imports nothing but the standard library."""

from __future__ import annotations

import os
from collections.abc import MutableMapping

VCPU_MB = 1769
MAX_VCPUS = 6
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def threads_for(memory_mb: int) -> int:
    """Whole vCPUs this much memory buys on Lambda (at least one)."""
    return max(1, min(MAX_VCPUS, memory_mb // VCPU_MB))


def limit_threads(env: MutableMapping[str, str] = os.environ) -> int:
    """Set the thread variables from AWS_LAMBDA_FUNCTION_MEMORY_SIZE, unless the function's
    configuration sets them itself; the number of threads."""
    memory = env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "")
    threads = threads_for(int(memory)) if memory.isdigit() else 1
    for name in THREAD_VARIABLES:
        env.setdefault(name, str(threads))
    return int(env["OMP_NUM_THREADS"])
