"""The trainer's warm start and its events: health says SERVING only once the local worker has imported
AutoGluon, the first run then starts at once, and the trainer hears of each change of a run from the
worker itself (its poll and resync intervals are set far beyond the test's bounds)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from labelloop.core.server import Server, channel
from labelloop.core.storage import LocalStore
from labelloop.trainer.catalog import StoreCatalog
from labelloop.trainer.contract import JobState
from labelloop.trainer.executors.local import LocalExecutor
from labelloop.trainer.runs import Trainer
from labelloop.trainer.service import register
from labelloop.trainer.threads import job_threads

from tests.trainer.datasets import local_trainer_settings, write_digits

pytestmark = pytest.mark.slow

QUICK = {"hyperparameters": {"model.names": "[numerical_mlp]", "optim.max_epochs": "1"}}
# What the import of AutoGluon costs at the very least (about 7 s on 2 cores; 10 s and more on a busy
# machine): a run that waited for it would start this late.
IMPORT_AT_LEAST_SECONDS = 3.0
# A status change travels worker -> pipe -> executor -> trainer: milliseconds, even on a busy machine.
EVENT_SECONDS = 1.0


def health(port: int) -> int:
    stub = health_pb2_grpc.HealthStub(channel(f"127.0.0.1:{port}"))
    return stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=5).status


def test_health_waits_for_the_warm_worker_and_runs_follow_its_events(tmp_path: Path) -> None:
    settings = local_trainer_settings(tmp_path)
    store = LocalStore(settings.storage.root)
    fx = write_digits(store, n_pool=40, n_test=10, n_labeled=30)
    started = time.monotonic()
    executor = LocalExecutor.from_settings(settings, store)  # the service's executor: a worker at once
    # Polling and the safety-net resync far beyond the bounds below: only events can meet them.
    trainer = Trainer(store, StoreCatalog(store), executor, poll_seconds=600.0, resync_seconds=600.0)
    server = Server("trainer", settings, register(trainer))
    try:
        server.start(ready=executor.wait_ready)
        assert health(server.port) == health_pb2.HealthCheckResponse.NOT_SERVING  # importing
        while health(server.port) != health_pb2.HealthCheckResponse.SERVING:
            assert time.monotonic() - started < 300, "the worker was not ready within 300 s"
            time.sleep(0.1)
        assert time.monotonic() - started > IMPORT_AT_LEAST_SECONDS  # SERVING waited for the import

        # Every change the trainer records, with the time it recorded it.
        seen: list[tuple[float, JobState, str]] = []
        done = threading.Event()

        def listen(record_name: str) -> None:
            for record in trainer.watch(record_name, heartbeat=600.0):
                seen.append((time.monotonic(), record.state, record.message))
            done.set()

        submitted = time.monotonic()
        record = trainer.create_training_run(f"datasets/{fx.dataset}/snapshots/{fx.snapshot}", QUICK)
        threading.Thread(target=listen, args=(record.name,), daemon=True).start()
        assert done.wait(120), f"the trainer did not see the run finish within 120 s: {seen}"
        final = trainer.get(record.name)
        assert final.state == JobState.SUCCEEDED, final.error_message
        # Not torch's one thread per core: the worker leaves the services a core (threads.py).
        assert final.result["torch_threads"] == job_threads(shared=True), final.result

        # The warm worker took the run at once: no import between submit and running.
        running = [t for t, state, _ in seen if state == JobState.RUNNING]
        assert running and running[0] - submitted < IMPORT_AT_LEAST_SECONDS, seen
        # Its completion reached the trainer within moments of the job's result.json being written.
        result_written = (store.root / record.spec["output_prefix"] / "result.json").stat().st_mtime
        finished_at = seen[-1][0] - time.monotonic() + time.time()  # the watch's time, on the wall clock
        assert seen[-1][1] == JobState.SUCCEEDED
        assert finished_at - result_written < EVENT_SECONDS, (finished_at, result_written)
    finally:
        server.stop(grace=1)
        trainer.close()
        executor.close()
