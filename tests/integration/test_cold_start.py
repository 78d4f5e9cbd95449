"""End to end with the label-efficiency defaults on tabular digits (a linear probe: fast): a typical
first set chosen without labels (the trainer embeds the pool, the selector takes typical examples),
then budget-aware scores with diverse batches and out-of-sample probabilities for labeled examples,
two simulated annotators with their own accuracies. The controller crashes inside the new steps
(after the embedding run was requested, after the first set was selected) and the replay repeats
no effect: one embedding run, the same first set, every label stored once."""

from __future__ import annotations

import signal
import time
from collections import Counter
from pathlib import Path

import grpc
import pytest
from labelloop.cli.local import LocalCluster
from labelloop.client import LabelLoopClient, trainer_config
from labelloop.controller.context import CRASH_AT_ENV
from labelloop.core import layout
from labelloop.core.config import StorageConfig
from labelloop.core.server import channel
from labelloop.core.storage import open_store
from labelloop.v1 import common_pb2, trainer_pb2, trainer_pb2_grpc
from labelloop.v1 import experiments_pb2 as pb

from tests.support.cluster import client_for, cluster, ingest_tabular_digits

pytestmark = pytest.mark.integration

INITIAL, BATCH = 20, 15


def create(client: LabelLoopClient, experiment_id: str, max_rounds: int, seed: int = 4) -> None:
    client.create_experiment(
        experiment_id,
        dataset="digits",
        initial_count=INITIAL,
        initial_selection="typical",
        strategy="budget-aware",
        batch_method="diverse",
        batch_size=BATCH,
        max_rounds=max_rounds,
        annotator_accuracies=[0.9, 0.95],
        trainer=trainer_config(mode="linear-probe", num_gpus=0),
        seed=seed,
    )


def wait_for_crash(
    local: LocalCluster, client: LabelLoopClient, experiment: str, timeout: float = 300
) -> None:
    process = local.processes["controller"]
    deadline = time.monotonic() + timeout
    while process.poll() is None:
        assert time.monotonic() < deadline, f"the controller did not crash within {timeout}s"
        try:
            current = client.get(experiment)
            assert current.state == pb.EXPERIMENT_STATE_RUNNING, current.status_message
        except grpc.RpcError:
            pass  # it is going down right now
        time.sleep(0.2)
    assert process.returncode == -signal.SIGKILL, local.log_tail("controller")


def embedding_operations(local: LocalCluster, experiment: str) -> list[trainer_pb2.Operation]:
    trainer = trainer_pb2_grpc.TrainerServiceStub(channel(local.address("trainer")))
    request = trainer_pb2.ListOperationsRequest(
        filter=f"experiment={experiment} AND purpose=initial-embeddings", page_size=100
    )
    return list(trainer.ListOperations(request, timeout=10).operations)


def test_typical_start_diverse_batches_and_crashes_in_the_new_steps(tmp_path: Path) -> None:
    storage = StorageConfig(backend="local", root=tmp_path / "store")
    local = cluster(tmp_path, storage)
    local.extra_env[CRASH_AT_ENV] = "0:embed"
    with local:
        client = client_for(local)
        store = open_store(storage)
        ingest_tabular_digits(client, tmp_path / "data", rows=300)
        create(client, "cold", max_rounds=2)
        try:
            client.start("cold")
        except grpc.RpcError as error:  # it may die before it answers; Start was persisted
            assert error.code() == grpc.StatusCode.UNAVAILABLE, error

        # Crash 1: the embedding run was requested, its operation not yet recorded.
        wait_for_crash(local, client, "cold")
        record = store.get_json(layout.round_key("cold", 0))
        assert not record.get("embedding_operation") and not record.get("initial_ids")
        assert len(embedding_operations(local, "cold")) == 1
        # Crash 2: the first set was selected, not yet recorded.
        local.extra_env[CRASH_AT_ENV] = "0:initial"
        local.start_service("controller", wait=False)
        wait_for_crash(local, client, "cold")
        record = store.get_json(layout.round_key("cold", 0))
        assert record["embedding_operation"] and "initial_embeddings" in record["arrays"]
        assert not record.get("initial_ids")
        assert not client.list_annotations("digits", "cold")  # nothing labeled yet
        del local.extra_env[CRASH_AT_ENV]
        local.start_service("controller")

        experiment = client.wait("cold", timeout=600)
        assert experiment.state == pb.EXPERIMENT_STATE_SUCCEEDED, experiment.status_message
        rounds = client.list_rounds("cold")
        assert [r.number for r in rounds] == [0, 1, 2]
        assert [r.labeled_count for r in rounds] == [INITIAL, INITIAL + BATCH, INITIAL + 2 * BATCH]
        assert not rounds[2].selected_example_ids  # the last round trains and evaluates only
        assert all(0.3 < r.test_accuracy <= 1.0 for r in rounds), [r.test_accuracy for r in rounds]
        assert {"initial_embed", "initial_select", "embed"} <= set(rounds[0].stage_seconds)

        # One embedding run: the replay found it by its request id.
        (embedding,) = embedding_operations(local, "cold")
        assert embedding.state == common_pb2.OPERATION_STATE_SUCCEEDED
        assert store.get_json(layout.round_key("cold", 0))["embedding_operation"] == embedding.name

        # Every label stored once: the first set, then two batches, none selected twice.
        annotations = client.list_annotations("digits", "cold")
        assert len(annotations) == INITIAL + 2 * BATCH == experiment.labels_used
        assert max(Counter(a.example_id for a in annotations).values()) == 1
        assert {a.annotator for a in annotations} == {"oracle-0", "oracle-1"}
        initial = store.get_json(layout.round_key("cold", 0))["initial_ids"]
        batches = [list(r.selected_example_ids) for r in rounds[:2]]
        assert len(set(initial)) == INITIAL and all(len(set(b)) == BATCH for b in batches)
        assert not set(initial) & set(batches[0]) and not set(batches[0]) & set(batches[1])
        assert {a.example_id for a in annotations} == set(initial) | set(batches[0]) | set(batches[1])

        # Diverse batches read the round's one pool embeddings array (no split copies written);
        # out-of-sample rows were kept for the selected examples and used in round 1's scoring.
        for number in (0, 1):
            folder = layout.round_prefix("cold", number)
            split_copies = [layout.embeddings_key(folder, part) for part in ("unlabeled", "labeled")]
            assert not [k for k in split_copies if store.exists(k)]
            assert store.exists(layout.embeddings_key(folder, "pool"))  # the trainer's one array
            assert store.get_json(layout.example_ids_key(folder, "selected")) == batches[number]
        held = store.get_json(layout.round_key("cold", 1))["arrays"]["labeled_out_of_sample"]
        assert [int(n) for n in held["shape"]] == [INITIAL + BATCH, 10]  # int64s are JSON strings

        # The same seed picks the same first set and the same first batch (no crash this time).
        create(client, "twin", max_rounds=1)
        client.start("twin")
        twin = client.wait("twin", timeout=600)
        assert twin.state == pb.EXPERIMENT_STATE_SUCCEEDED, twin.status_message
        assert store.get_json(layout.round_key("twin", 0))["initial_ids"] == initial
        assert list(client.list_rounds("twin")[0].selected_example_ids) == batches[0]
        client.close()
