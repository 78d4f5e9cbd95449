"""The controller is SIGKILLed mid-round (while the trainer runs, right after a selection, between
steps) and the trainer once while it trains; both restart: the experiment completes, no step's
effect is repeated, every label is stored once."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from labelloop.cli.local import LocalCluster
from labelloop.client import LabelLoopClient
from labelloop.core.config import StorageConfig
from labelloop.core.server import channel
from labelloop.v1 import common_pb2, trainer_pb2, trainer_pb2_grpc
from labelloop.v1 import experiments_pb2 as pb

from tests.support.cluster import client_for, cluster, fast_trainer, ingest_tabular_digits

pytestmark = pytest.mark.integration


def watch_until(
    client: LabelLoopClient, name: str, check: Callable[[pb.Experiment, pb.Round], bool], timeout: float = 300
) -> pb.Round:
    deadline = time.monotonic() + timeout
    for experiment, current in client.watch(name, timeout=timeout):
        assert experiment.state == pb.EXPERIMENT_STATE_RUNNING, experiment.status_message
        if check(experiment, current):
            return current
        assert time.monotonic() < deadline
    raise AssertionError(f"the watch ended first: {client.get(name)}")


def crash_and_restart(local: LocalCluster) -> None:
    local.kill("controller")
    local.start_service("controller")


def test_controller_crashes_mid_round(tmp_path: Path) -> None:
    storage = StorageConfig(backend="local", root=tmp_path / "store")
    with cluster(tmp_path, storage) as local:
        client = client_for(local)
        ingest_tabular_digits(client, tmp_path / "data", rows=300)
        client.create_experiment(
            "crashy",
            dataset="digits",
            strategy="activelab",
            per_class=3,
            batch_size=15,
            max_rounds=3,
            annotator_count=3,
            noise_rate=0.1,
            trainer=fast_trainer(),
            seed=11,
            start=True,
        )
        # 1. While round 1's model trains.
        training = watch_until(
            client,
            "crashy",
            lambda e, r: r.number == 1 and r.stage == pb.ROUND_STAGE_TRAIN and r.training_operation,
        )
        crash_and_restart(local)
        # 2. Right after round 1's selection was persisted, before or while its labels are stored.
        watch_until(client, "crashy", lambda e, r: r.number == 1 and r.stage == pb.ROUND_STAGE_LABEL)
        crash_and_restart(local)
        # 3. The trainer dies while round 2 trains: its operation fails, the round trains again.
        lost = watch_until(
            client,
            "crashy",
            lambda e, r: r.number == 2 and r.stage == pb.ROUND_STAGE_TRAIN and r.training_operation,
        )
        local.kill("trainer")
        local.start_service("trainer")
        # 4. Between two steps of round 2.
        watch_until(client, "crashy", lambda e, r: r.number == 2 and r.stage == pb.ROUND_STAGE_SCORE, 300)
        crash_and_restart(local)

        experiment = client.wait("crashy", timeout=600)
        assert experiment.state == pb.EXPERIMENT_STATE_SUCCEEDED, experiment.status_message
        rounds = client.list_rounds("crashy")
        assert [r.number for r in rounds] == [0, 1, 2, 3]
        assert [r.labeled_count for r in rounds] == [30, 45, 60, 75]
        assert rounds[1].training_operation == training.training_operation  # reattached, not retrained

        # Every label stored exactly once: 30 initial + 3 batches of 15, one annotator per example.
        annotations = client.list_annotations("digits", "crashy")
        pairs = Counter((a.example_id, a.annotator) for a in annotations)
        assert max(pairs.values()) == 1
        assert len(annotations) == 75 == len({a.example_id for a in annotations})
        assert experiment.labels_used == 75
        for r in rounds[:3]:
            assert len(r.selected_example_ids) == 15
        selected = {i for r in rounds[:3] for i in r.selected_example_ids}
        assert len(selected) == 45 and selected <= {a.example_id for a in annotations}

        # One training run per round: restarts found the existing operations by request id.
        trainer = trainer_pb2_grpc.TrainerServiceStub(channel(local.address("trainer")))
        operations = trainer.ListOperations(
            trainer_pb2.ListOperationsRequest(filter="experiment=crashy", page_size=100), timeout=10
        ).operations
        assert sorted(o.labels["round"] for o in operations) == ["0", "1", "2", "2", "3"]
        (failed,) = [o for o in operations if o.name == lost.training_operation]
        assert failed.state == common_pb2.OPERATION_STATE_FAILED and "restarted" in failed.error.message
        assert rounds[2].training_operation != lost.training_operation
        client.close()
