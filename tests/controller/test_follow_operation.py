"""The controller follows a training run through the trainer's WatchOperation stream: it sees the run
finish within moments of the worker finishing, though every poll interval on the way (the controller's
and the trainer's) is set to ten minutes; and a stream that breaks mid-run (the trainer's server goes
away and comes back) is followed again, not turned into a failure."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from labelloop.controller.clients import Stubs
from labelloop.controller.context import RoundContext
from labelloop.controller.entry import Entry
from labelloop.controller.operations import await_operation
from labelloop.controller.records import RecordStore
from labelloop.core.config import Settings
from labelloop.core.server import Server, channel
from labelloop.core.storage import LocalStore
from labelloop.trainer.catalog import StoreCatalog
from labelloop.trainer.executors.local import LocalExecutor
from labelloop.trainer.runs import Trainer
from labelloop.trainer.service import register
from labelloop.v1 import common_pb2, experiments_pb2, trainer_pb2, trainer_pb2_grpc

from tests.support.ports import free_port
from tests.trainer.datasets import Fixture, local_trainer_settings, write_digits

pytestmark = pytest.mark.slow

NEVER = 600.0  # every poll and resync interval: a run seen done sooner was seen by an event
# From the job's result.json to the controller holding the finished operation, on a busy 2-core machine.
SEEN_WITHIN_SECONDS = 1.0
QUICK = trainer_pb2.TrainerConfig(hyperparameters={"model.names": "[numerical_mlp]", "optim.max_epochs": "1"})


@dataclass
class Env:
    store: LocalStore
    fx: Fixture
    trainer: Trainer
    settings: Settings
    stub: trainer_pb2_grpc.TrainerServiceStub


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    root = tmp_path_factory.mktemp("follow")
    settings = local_trainer_settings(root)
    store = LocalStore(settings.storage.root)
    fx = write_digits(store, n_pool=40, n_test=10, n_labeled=30)
    executor = LocalExecutor.from_settings(settings, store)
    assert executor.wait_ready(300)
    trainer = Trainer(store, StoreCatalog(store), executor, poll_seconds=NEVER, resync_seconds=NEVER)
    stub = trainer_pb2_grpc.TrainerServiceStub(channel(f"127.0.0.1:{settings.grpc_port}"))
    yield Env(store, fx, trainer, settings, stub)
    trainer.close()
    executor.close()


def serve(env: Env) -> Server:
    """The trainer's gRPC server on the fixed port (a fresh metrics port: the old one stays bound)."""
    server = Server(
        "trainer", dataclasses.replace(env.settings, metrics_port=free_port()), register(env.trainer)
    )
    server.start()
    return server


def context(env: Env) -> RoundContext:
    experiment = experiments_pb2.Experiment(
        name="experiments/follow", state=experiments_pb2.EXPERIMENT_STATE_RUNNING
    )
    entry = Entry(experiment, [], RecordStore(env.store), threading.Condition())
    stubs = Stubs(store=None, trainer=env.stub, scorer=None, selector=None)  # type: ignore[arg-type]
    return RoundContext(entry, env.store, stubs, poll_seconds=NEVER)


def start_run(env: Env, request_id: str, skip_pool_embeddings: bool = False) -> str:
    request = trainer_pb2.CreateTrainingRunRequest(
        snapshot=f"datasets/{env.fx.dataset}/snapshots/{env.fx.snapshot}",
        config=QUICK,
        output_uri=f"runs/follow-{request_id}/",
        request_id=request_id,
        skip_pool_embeddings=skip_pool_embeddings,
    )
    return env.stub.CreateTrainingRun(request, timeout=30).operation.name


def test_the_controller_sees_a_finished_run_at_once(env: Env) -> None:
    server = serve(env)
    messages: list[str] = []
    outcome: list[tuple[trainer_pb2.Operation | None, float]] = []

    def follow(name: str) -> None:
        outcome.append((await_operation(context(env), name, messages.append), time.time()))

    try:
        name = start_run(env, "at-once", skip_pool_embeddings=True)  # as for a scores-only batch method
        thread = threading.Thread(target=follow, args=(name,), daemon=True)
        thread.start()
        thread.join(120)  # the run takes seconds; a poll every NEVER seconds would still be asleep
    finally:
        server.stop(grace=1)
    assert outcome, "the controller did not see the run finish within 120 s"
    ((done, seen_at),) = outcome
    assert done is not None and done.state == common_pb2.OPERATION_STATE_SUCCEEDED, done
    result_written = (env.store.root / "runs/follow-at-once/result.json").stat().st_mtime
    assert seen_at - result_written < SEEN_WITHIN_SECONDS
    assert messages and all(m.startswith("train ") for m in messages)  # progress on the way
    # Asked to skip them, the run wrote no pool embeddings (the other test's run did).
    assert not done.result.pool_embeddings.uri and done.result.pool_probabilities.uri
    assert not env.store.exists("runs/follow-at-once/pool_embeddings.npy")


def test_a_broken_stream_is_followed_again(env: Env) -> None:
    server = serve(env)
    following = threading.Event()
    outcome: list[trainer_pb2.Operation | None] = []

    def on_progress(message: str) -> None:
        following.set()

    def follow(name: str) -> None:
        outcome.append(await_operation(context(env), name, on_progress))

    name = start_run(env, "broken")
    thread = threading.Thread(target=follow, args=(name,), daemon=True)
    thread.start()
    try:
        assert following.wait(60), "no progress arrived through the stream"
        server.stop(grace=0)  # the stream breaks mid-run; the trainer (and its run) live on
        time.sleep(1.0)
        assert thread.is_alive() and not outcome  # still following, not failed
        server = serve(env)
        thread.join(300)
    finally:
        server.stop(grace=1)
    assert outcome, "the controller stopped following after the stream broke"
    (done,) = outcome
    assert done is not None and done.state == common_pb2.OPERATION_STATE_SUCCEEDED, done
    assert done.name == name
    assert done.result.pool_embeddings.uri  # written by default
