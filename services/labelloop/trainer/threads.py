"""How many threads torch computes with in a trainer job.

torch's default is one intra-op thread per core of the host. That ignores a container's CPU quota,
and the local executor's worker shares its machine with the trainer and the other services. An
OpenMP team waits at every barrier for its slowest thread, so whenever another process takes one of
its cores, each operation stalls for a scheduler time slice: on 2 cores with one busy process
beside it, the tabular benchmark's MLP took 2.4 s to fit instead of 0.6 s and 0.65 s to predict
instead of 0.12 s, while with 1 thread it took 0.6 s and 0.12 s busy or idle. The thread count
changes no prediction beyond float rounding (the same model either way).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path

# Overrides the default below; a positive integer.
ENV = "LABELLOOP_TRAINER_THREADS"
# cgroup v2's CPU limit of this process's container: "<quota> <period>" or "max <period>".
CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def quota_cpus(cpu_max: Path = CPU_MAX) -> int | None:
    """The CPUs a cgroup quota allows, rounded up ("150000 100000" -> 2); None when unlimited or unknown."""
    try:
        quota, period = cpu_max.read_text().split()[:2]
        if quota == "max":
            return None
        return max(1, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError, ZeroDivisionError):
        return None


def usable_cpus(cpu_max: Path = CPU_MAX) -> int:
    """The CPUs this process may run on (its affinity) within its container's quota."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    quota = quota_cpus(cpu_max)
    return min(cpus, quota) if quota else cpus


def job_threads(*, shared: bool, env: Mapping[str, str] = os.environ, cpu_max: Path = CPU_MAX) -> int:
    """LABELLOOP_TRAINER_THREADS when set, else the usable CPUs, less one when the job shares its machine
    with the services (the local executor's worker): a core left to them keeps the team from stalling."""
    text = env.get(ENV, "").strip()
    if text:
        if not text.isdigit() or int(text) < 1:
            raise ValueError(f"{ENV}={text!r}: set a positive number of threads, or unset it for the default")
        return int(text)
    cpus = usable_cpus(cpu_max)
    return max(1, cpus - 1) if shared else cpus


def use(threads: int) -> None:
    """torch's intra-op threads for the rest of this process (the worker's jobs, or the pod's job)."""
    import torch

    torch.set_num_threads(threads)


def current() -> int:
    """The intra-op threads torch computes with now: what a job's result reports."""
    import torch

    return int(torch.get_num_threads())
