"""The threads a trainer job computes with: the CPUs it may use (affinity within a cgroup quota), one
left to the services when it shares their machine, or LABELLOOP_TRAINER_THREADS. The worker applies
them (tests/trainer/test_warm_worker.py checks a job's reported `torch_threads`)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from labelloop.trainer.threads import ENV, job_threads, quota_cpus, usable_cpus


def cpu_max(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cpu.max"
    path.write_text(text + "\n")
    return path


@pytest.mark.parametrize(
    ("text", "cpus"),
    [("200000 100000", 2), ("150000 100000", 2), ("50000 100000", 1), ("max 100000", None), ("", None)],
)
def test_quota_cpus_reads_cgroup_v2(tmp_path: Path, text: str, cpus: int | None) -> None:
    assert quota_cpus(cpu_max(tmp_path, text)) == cpus


def test_no_cgroup_file_means_no_quota(tmp_path: Path) -> None:
    assert quota_cpus(tmp_path / "absent") is None


def test_threads_follow_affinity_and_quota(tmp_path: Path) -> None:
    cores = len(os.sched_getaffinity(0))
    unlimited = cpu_max(tmp_path, "max 100000")
    assert usable_cpus(unlimited) == cores
    # A pod's job has its quota to itself; the local worker leaves a core to the services beside it.
    assert job_threads(shared=False, env={}, cpu_max=unlimited) == cores
    assert job_threads(shared=True, env={}, cpu_max=unlimited) == max(1, cores - 1)
    one_cpu = cpu_max(tmp_path, "100000 100000")
    assert job_threads(shared=False, env={}, cpu_max=one_cpu) == 1
    assert job_threads(shared=True, env={}, cpu_max=one_cpu) == 1  # never 0


def test_the_setting_overrides_and_is_checked(tmp_path: Path) -> None:
    assert job_threads(shared=True, env={ENV: "3"}, cpu_max=cpu_max(tmp_path, "100000 100000")) == 3
    for bad in ("0", "-2", "two"):
        with pytest.raises(ValueError, match=ENV):
            job_threads(shared=True, env={ENV: bad})
