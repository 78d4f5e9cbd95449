"""The local executor with a real worker process: FIFO, cancel, a crashed worker, a failing job."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from labelloop.core.config import Settings, StorageConfig
from labelloop.core.storage import LocalStore
from labelloop.trainer import operations as ops
from labelloop.trainer.catalog import StoreCatalog
from labelloop.trainer.contract import JobState, JobStatus
from labelloop.trainer.executors.local import LocalExecutor
from labelloop.trainer.runs import Trainer

from tests.trainer.datasets import write_digits, write_snapshot

QUICK = {"hyperparameters": {"model.names": "[numerical_mlp]", "optim.max_epochs": "1"}}
# Long enough to be cancelled or killed mid-fit; never runs to the end in these tests (no early stop).
LONG = {
    "hyperparameters": {
        "model.names": "[numerical_mlp]",
        "optim.max_epochs": "100000",
        "optim.patience": "100000",
        "env.batch_size": "2",
    }
}


def wait_for(
    executor: LocalExecutor, job_id: str, done: Callable[[JobStatus], bool], timeout: float = 180
) -> JobStatus:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = executor.status(job_id)
        if done(status):
            return status
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} still {executor.status(job_id)} after {timeout}s")


def fitting(status: JobStatus) -> bool:
    return status.state == JobState.RUNNING and "fitting" in status.message


def worker_pids() -> list[int]:
    """The executor's live worker processes, as the operating system sees this process's children."""
    return [
        p.pid for p in multiprocessing.active_children() if p.name == "labelloop-trainer-worker" and p.pid
    ]


def test_a_restarted_trainer_fails_the_runs_its_old_worker_had(tmp_path: Path) -> None:
    """The local executor cannot reattach: a job dies with the previous trainer's worker process."""
    settings = Settings(storage=StorageConfig(backend="local", root=tmp_path / "store"))
    store = LocalStore(settings.storage.root)
    fx = write_digits(store, n_pool=10, n_test=2, n_labeled=4)
    spec = fx.spec("op-1", "runs/op-1/", QUICK)
    record = ops.OperationRecord(
        id="op-1", kind="train", request_id="r1", state=JobState.RUNNING, spec=spec.to_dict()
    )
    ops.save(store, record)
    executor = LocalExecutor(settings, store)
    trainer = Trainer(store, StoreCatalog(store), executor)
    try:
        failed = trainer.get(record.name)
        assert failed.state == JobState.FAILED and "cannot reattach" in failed.error_message
        assert ops.load_all(store)[0].state == JobState.FAILED  # saved: a second restart agrees
        assert worker_pids() == []  # nothing was resubmitted
    finally:
        trainer.close()
        executor.close()


@pytest.mark.slow
def test_fifo_cancel_crash_and_failure(tmp_path: Path) -> None:
    settings = Settings(
        storage=StorageConfig(backend="local", root=tmp_path / "store"), cache_dir=tmp_path / "cache"
    )
    store = LocalStore(settings.storage.root)
    fx = write_digits(store, n_pool=40, n_test=10, n_labeled=30)
    executor = LocalExecutor(settings, store)
    try:
        executor.submit(fx.spec("long", "runs/long/", LONG))
        executor.submit(fx.spec("queued", "runs/queued/", QUICK))
        executor.submit(fx.spec("quick", "runs/quick/", QUICK))
        assert executor.status("quick").state == JobState.PENDING

        # A pending job is cancelled without touching the worker.
        executor.cancel("queued")
        assert executor.status("queued").state == JobState.CANCELLED

        # Cancelling the running job kills the worker and leaves no result.
        wait_for(executor, "long", fitting)
        (first_worker,) = worker_pids()
        executor.cancel("long")
        assert executor.status("long").state == JobState.CANCELLED
        assert not store.exists("runs/long/result.json")

        # The next job in line runs on a fresh worker.
        status = wait_for(executor, "quick", lambda s: s.state.done)
        assert status.state == JobState.SUCCEEDED, status.error
        assert status.result["n_pool"] == 40 and store.exists("runs/quick/result.json")
        assert worker_pids() not in ([], [first_worker])
        assert not store.exists("runs/queued/result.json")

        # A job that raises fails with its reason; the worker lives on.
        write_snapshot(store, fx.dataset, "one", fx.labels.assign(label="4"))
        executor.submit(
            fx.spec(
                "bad", "runs/bad/", QUICK, labels_key=f"datasets/{fx.dataset}/snapshots/one/labels.parquet"
            )
        )
        status = wait_for(executor, "bad", lambda s: s.state.done)
        assert status.state == JobState.FAILED and status.error.startswith("FailedPrecondition:")
        assert "at least 2 classes" in status.error

        # A worker that dies takes its job down with it, with the reason.
        executor.submit(fx.spec("doomed", "runs/doomed/", LONG))
        wait_for(executor, "doomed", fitting)
        (worker,) = worker_pids()
        os.kill(worker, signal.SIGKILL)
        status = wait_for(executor, "doomed", lambda s: s.state.done, timeout=30)
        assert status.state == JobState.FAILED and "died" in status.error and "signal 9" in status.error
        assert status.error.startswith("Unavailable:")  # a fault that can go away: trained again
    finally:
        executor.close()
    assert worker_pids() == []
