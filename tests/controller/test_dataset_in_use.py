"""A dataset that experiments still use is not deleted by accident: DeleteDataset is refused, naming
them, until they end; with force it is deleted and they fail cleanly (FAILED for good, saying the
dataset does not exist), never hang."""

from __future__ import annotations

import time
from collections.abc import Callable

import grpc
import pytest
from labelloop.cli.local import LocalCluster
from labelloop.client import LabelLoopClient
from labelloop.v1 import dataset_store_pb2 as ds
from labelloop.v1 import experiments_pb2 as pb

from tests.support.cluster import ingest_tabular_digits


def wait_until(check: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.2)


def delete(client: LabelLoopClient, dataset: str, force: bool = False) -> None:
    client.store.DeleteDataset(ds.DeleteDatasetRequest(name=f"datasets/{dataset}", force=force), timeout=30)


def test_a_dataset_in_use_is_deleted_only_with_force(running: tuple[LocalCluster, LabelLoopClient]) -> None:
    local, client = running
    ingest_tabular_digits(client, local.log_dir.parent / "shared-data", dataset_id="shared", rows=120)
    pool = ds.ListExamplesRequest(parent="datasets/shared", split=ds.SPLIT_POOL, page_size=10)
    ids = [e.example_id for e in client.store.ListExamples(pool, timeout=30).examples]
    common: dict = dict(dataset="shared", batch_size=5, max_rounds=2, seed=1)
    client.create_experiment("idle-user", per_class=2, **common)  # CREATED: it will use the dataset
    client.create_experiment(
        "busy-user", initial_example_ids=ids, external_labelers=True, start=True, **common
    )
    client.create_experiment("done-user", per_class=2, **common)
    client.cancel("done-user")  # an ended experiment does not hold the dataset

    def awaits_labels() -> bool:
        rounds = client.list_rounds("busy-user")
        return bool(rounds) and rounds[0].labels_awaited > 0

    wait_until(awaits_labels, "busy-user waits for its first labels")
    with pytest.raises(grpc.RpcError) as refused:
        delete(client, "shared")
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert (
        "datasets/shared is used by 2 experiment(s) that have not ended: "
        "['experiments/busy-user', 'experiments/idle-user']; cancel or delete them first, or delete "
        "the dataset with force"
    ) in refused.value.details()
    assert client.get_dataset("shared").example_count == 120

    delete(client, "shared", force=True)
    with pytest.raises(grpc.RpcError) as gone:
        client.get_dataset("shared")
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND
    # The running experiment ends at its next read of the dataset; the idle one when started.
    wait_until(lambda: client.get("busy-user").state == pb.EXPERIMENT_STATE_FAILED, "busy-user fails")
    client.start("idle-user")
    wait_until(lambda: client.get("idle-user").state == pb.EXPERIMENT_STATE_FAILED, "idle-user fails")
    for name in ("busy-user", "idle-user"):
        ended = client.get(name)
        assert ended.failure_kind == pb.FAILURE_KIND_PERMANENT, ended.status_message
        assert "datasets/shared does not exist" in ended.status_message
        assert "resuming cannot fix this" in ended.status_message


def test_a_dataset_whose_experiments_ended_deletes_without_force(
    running: tuple[LocalCluster, LabelLoopClient],
) -> None:
    local, client = running
    ingest_tabular_digits(client, local.log_dir.parent / "spare-data", dataset_id="spare", rows=120)
    client.create_experiment("spare-user", dataset="spare", per_class=2, batch_size=5, max_rounds=2, seed=1)
    client.cancel("spare-user")
    delete(client, "spare")
    assert "spare" not in [d.name.removeprefix("datasets/") for d in client.list_datasets()]
