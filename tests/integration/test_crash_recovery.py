"""The controller crashes in every stage, at the worst moment: after the step's requests to the other
services, before its record is written (LABELLOOP_CONTROLLER_CRASH_AT makes it SIGKILL itself there,
so no crash point depends on the timing of a watch). The trainer is killed once while it trains.
After each crash the services restart: the experiment completes, no step's effect is repeated, every
label is stored once."""

from __future__ import annotations

import signal
import time
from collections import Counter
from pathlib import Path

import grpc
import pytest
from labelloop.cli.local import LocalCluster
from labelloop.client import LabelLoopClient
from labelloop.controller.context import CRASH_AT_ENV
from labelloop.core import layout
from labelloop.core.config import StorageConfig
from labelloop.core.server import channel
from labelloop.core.storage import ObjectStore, open_store
from labelloop.v1 import common_pb2, trainer_pb2, trainer_pb2_grpc
from labelloop.v1 import experiments_pb2 as pb

from tests.support.cluster import client_for, cluster, fast_trainer, ingest_tabular_digits

pytestmark = pytest.mark.integration

EXPERIMENT = "crashy"
# "{round}:{stage}": every stage once (round 0's snapshot stores the initial labels), the last round's
# final step, and round 2's training, during which the trainer is killed too.
CRASH_POINTS = [
    "0:snapshot",
    "1:train",
    "1:evaluate",
    "1:score",
    "1:select",
    "1:label",
    "2:train",
    "3:evaluate",
]
TRAINER_KILLED_AT = "2:train"


def wait_for_crash(local: LocalCluster, client: LabelLoopClient, point: str, timeout: float = 300) -> None:
    """Waits for the controller to kill itself at `point`; fails fast if the experiment ends first."""
    process = local.processes["controller"]
    deadline = time.monotonic() + timeout
    while process.poll() is None:
        assert time.monotonic() < deadline, f"the controller did not reach {point} within {timeout}s"
        try:
            state = client.get(EXPERIMENT).state
        except grpc.RpcError:
            state = pb.EXPERIMENT_STATE_RUNNING  # it is going down right now
        assert state == pb.EXPERIMENT_STATE_RUNNING, client.get(EXPERIMENT).status_message
        time.sleep(0.2)
    assert process.returncode == -signal.SIGKILL, local.log_tail("controller")


def persisted_stage(store: ObjectStore, number: int) -> str:
    return store.get_json(layout.round_key(EXPERIMENT, number))["round"]["stage"]


def trainer_operations(local: LocalCluster) -> list[trainer_pb2.Operation]:
    trainer = trainer_pb2_grpc.TrainerServiceStub(channel(local.address("trainer")))
    request = trainer_pb2.ListOperationsRequest(filter=f"experiment={EXPERIMENT}", page_size=100)
    return list(trainer.ListOperations(request, timeout=10).operations)


def test_controller_crashes_in_every_stage(tmp_path: Path) -> None:
    storage = StorageConfig(backend="local", root=tmp_path / "store")
    local = cluster(tmp_path, storage)
    local.extra_env[CRASH_AT_ENV] = CRASH_POINTS[0]
    with local:
        client = client_for(local)
        store = open_store(storage)
        ingest_tabular_digits(client, tmp_path / "data", rows=300)
        client.create_experiment(
            EXPERIMENT,
            dataset="digits",
            strategy="activelab",
            per_class=3,
            batch_size=15,
            max_rounds=3,
            annotator_count=3,
            noise_rate=0.1,
            trainer=fast_trainer(),
            seed=11,
        )
        try:
            client.start(EXPERIMENT)
        except grpc.RpcError as error:  # the controller may die before it answers; Start was persisted
            assert error.code() == grpc.StatusCode.UNAVAILABLE, error

        lost: trainer_pb2.Operation | None = None
        for n, point in enumerate(CRASH_POINTS):
            wait_for_crash(local, client, point)
            number, stage = point.split(":")
            # The step's effects happened (labels, snapshot, run, scores) but its record did not move on.
            assert persisted_stage(store, int(number)) == f"ROUND_STAGE_{stage.upper()}", point
            assert local.log_path("controller").read_text().count(f"{CRASH_AT_ENV}=") == n + 1
            if point == TRAINER_KILLED_AT:
                (lost,) = [o for o in trainer_operations(local) if o.labels["round"] == number]
                assert lost.state in (common_pb2.OPERATION_STATE_PENDING, common_pb2.OPERATION_STATE_RUNNING)
                local.kill("trainer")
                local.start_service("trainer")
            if n + 1 < len(CRASH_POINTS):
                # It may reach the next point before it reports healthy: wait_for_crash waits instead.
                local.extra_env[CRASH_AT_ENV] = CRASH_POINTS[n + 1]
                local.start_service("controller", wait=False)
            else:
                del local.extra_env[CRASH_AT_ENV]
                local.start_service("controller")

        experiment = client.wait(EXPERIMENT, timeout=600)
        assert experiment.state == pb.EXPERIMENT_STATE_SUCCEEDED, experiment.status_message
        rounds = client.list_rounds(EXPERIMENT)
        assert [r.number for r in rounds] == [0, 1, 2, 3]
        assert [r.labeled_count for r in rounds] == [30, 45, 60, 75]

        # Every label stored exactly once: 30 initial + 3 batches of 15, one annotator per example.
        annotations = client.list_annotations("digits", EXPERIMENT)
        pairs = Counter((a.example_id, a.annotator) for a in annotations)
        assert max(pairs.values()) == 1
        assert len(annotations) == 75 == len({a.example_id for a in annotations})
        assert experiment.labels_used == 75
        for r in rounds[:3]:
            assert len(r.selected_example_ids) == 15
        selected = {i for r in rounds[:3] for i in r.selected_example_ids}
        assert len(selected) == 45 and selected <= {a.example_id for a in annotations}

        # One training run per round: restarts found the existing runs by request id (round 1's run,
        # created just before the crash, was reattached, not started again); round 2's run was lost
        # with the trainer and trained again.
        operations = trainer_operations(local)
        assert sorted(o.labels["round"] for o in operations) == ["0", "1", "2", "2", "3"]
        (round_one,) = [o for o in operations if o.labels["round"] == "1"]
        assert rounds[1].training_operation == round_one.name
        assert lost is not None
        (failed,) = [o for o in operations if o.name == lost.name]
        assert failed.state == common_pb2.OPERATION_STATE_FAILED and "restarted" in failed.error.message
        assert rounds[2].training_operation != lost.name
        client.close()
