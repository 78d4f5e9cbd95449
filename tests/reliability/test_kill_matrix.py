"""Each service SIGKILLed at each step of a round, and the trainer's worker killed as by the OOM killer:
the experiment finishes (stopping resumably at worst, then resumed) with every label stored exactly once.
An orphaned worker (its trainer SIGKILLed alone) exits by itself.

Rounds 0-4 have six steps each; at round r, step s, the service SERVICES[(r + s) % 5] is killed, so over
five rounds every service meets every step once (a Latin square: 30 kills, one experiment). The kill
lands when the controller first shows that step, or a later one when the step was too short to see.
tests/integration/test_crash_recovery.py kills the controller at exact points inside steps instead.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from labelloop.cli.local import SERVICES
from labelloop.core.config import StorageConfig

from tests.reliability.harness import (
    STAGES,
    Fault,
    alive,
    assert_finished_exactly,
    create,
    kill_service,
    kill_worker,
    run_with_faults,
    workers,
)
from tests.support.cluster import client_for, cluster, ingest_tabular_digits

pytestmark = pytest.mark.integration

MAX_ROUNDS = 5  # rounds 0-4 carry the square; round 5 (the last) loses its worker while it trains
REAP_SECONDS = 10.0


def test_every_service_killed_at_every_step_and_the_worker_killed(tmp_path: Path) -> None:
    storage = StorageConfig(backend="local", root=tmp_path / "store")
    with cluster(tmp_path, storage) as local:
        client = client_for(local)
        ingest_tabular_digits(client, tmp_path / "data", rows=300)
        faults = [
            Fault(number, stage, f"kill {service}", kill_service(local, service))
            for number in range(5)
            for index, stage in enumerate(STAGES)
            for service in [SERVICES[(number + index) % len(SERVICES)]]
        ]
        faults.append(Fault(5, "train", "kill the trainer's worker", kill_worker(local)))
        create(client, "matrix", MAX_ROUNDS)
        outcome = run_with_faults(client, "matrix", faults, timeout=900)
        assert_finished_exactly(client, "matrix", outcome, MAX_ROUNDS)
        assert {(f.what, f.stage) for f in faults} == {
            (f"kill {s}", stage) for s in SERVICES for stage in STAGES
        } | {("kill the trainer's worker", "train")}
        client.close()


def test_an_orphaned_worker_exits(tmp_path: Path) -> None:
    """The trainer SIGKILLed alone (not its process group): its worker must not outlive it."""
    storage = StorageConfig(backend="local", root=tmp_path / "store")
    with cluster(tmp_path, storage, services=("trainer",)) as local:
        trainer = local.processes["trainer"]
        (worker,) = workers(trainer.pid)
        os.kill(trainer.pid, signal.SIGKILL)
        trainer.wait(10)
        deadline = time.monotonic() + REAP_SECONDS
        while alive(worker) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not alive(worker), f"worker {worker} outlived its trainer by {REAP_SECONDS}s"
