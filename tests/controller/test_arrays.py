"""Array plumbing: the pool's probabilities split into unlabeled and labeled rows, chunk by chunk,
test accuracy, and the round records that make steps resumable."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from labelloop.controller import arrays
from labelloop.controller.records import RecordStore, RoundRecord
from labelloop.core import paging
from labelloop.core.errors import InvalidArgument
from labelloop.core.storage import LocalStore
from labelloop.v1 import common_pb2, experiments_pb2


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "store")


def write_pool(
    store: LocalStore, count: int = 23, classes: int = 4
) -> tuple[common_pb2.ArrayRef, np.ndarray]:
    rng = np.random.default_rng(0)
    probabilities = rng.dirichlet(np.ones(classes), size=count).astype(np.float32)
    store.put_array("run/pool_probabilities.npy", probabilities)
    store.put_json("run/pool_example_ids.json", [f"e{i:02d}" for i in range(count)])
    ref = common_pb2.ArrayRef(
        uri=store.uri("run/pool_probabilities.npy"),
        shape=[count, classes],
        dtype="float32",
        example_ids_uri=store.uri("run/pool_example_ids.json"),
    )
    return ref, probabilities


@pytest.mark.parametrize("chunk_rows", [1, 5, 100])
def test_split_pool_keeps_every_row_once_in_the_right_order(store: LocalStore, chunk_rows: int) -> None:
    ref, probabilities = write_pool(store)
    labeled_ids = ["e17", "e03", "e09", "e00"]  # the snapshot's labels_multiannotator order
    split = arrays.split_pool(store, ref, labeled_ids, "round/", with_labeled=True, chunk_rows=chunk_rows)

    unlabeled_ids = store.get_json(store.key_of(split.unlabeled.example_ids_uri))
    assert unlabeled_ids == [f"e{i:02d}" for i in range(23) if f"e{i:02d}" not in labeled_ids]
    unlabeled = store.get_array(store.key_of(split.unlabeled.uri))
    np.testing.assert_array_equal(unlabeled, probabilities[[int(i[1:]) for i in unlabeled_ids]])
    assert list(split.unlabeled.shape) == [19, 4] and split.unlabeled.dtype == "float32"

    assert split.labeled is not None
    labeled = store.get_array(store.key_of(split.labeled.uri))
    np.testing.assert_array_equal(labeled, probabilities[[17, 3, 9, 0]])
    assert store.get_json(store.key_of(split.labeled.example_ids_uri)) == labeled_ids


def test_split_pool_without_labeled_rows(store: LocalStore) -> None:
    ref, _ = write_pool(store)
    split = arrays.split_pool(store, ref, ["e01"], "round/", with_labeled=False)
    assert split.labeled is None
    assert not store.exists("round/labeled_probabilities.npy")
    assert list(split.unlabeled.shape) == [22, 4]


def test_split_pool_rejects_labels_outside_the_pool(store: LocalStore) -> None:
    ref, _ = write_pool(store)
    with pytest.raises(Exception, match="no row in"):
        arrays.split_pool(store, ref, ["e01", "ghost"], "round/", with_labeled=True)


def test_accuracy_counts_argmax_hits_over_known_truth(store: LocalStore) -> None:
    ref, probabilities = write_pool(store, count=10, classes=3)
    classes = ["x", "y", "z"]
    truth = {f"e{i:02d}": classes[int(probabilities[i].argmax())] for i in range(10)}
    truth["e00"] = classes[(int(probabilities[0].argmax()) + 1) % 3]  # one miss
    del truth["e01"]  # unknown: not counted
    assert arrays.accuracy(store, ref, truth, classes, chunk_rows=3) == pytest.approx(8 / 9)


def test_round_records_round_trip(store: LocalStore) -> None:
    records = RecordStore(store)
    experiment = experiments_pb2.Experiment(
        name="experiments/e1", state=experiments_pb2.EXPERIMENT_STATE_RUNNING
    )
    records.save_experiment(experiment)
    record = RoundRecord(
        round=experiments_pb2.Round(name="experiments/e1/rounds/0", number=0, stage_seconds={"train": 1.5}),
        train_attempt=2,
        relabel_ids=["a"],
        annotations_before=30,
    )
    record.set_array("pool", common_pb2.ArrayRef(uri="file:///x.npy", shape=[3, 2], dtype="float32"))
    records.save_round("e1", record)
    assert list(records.experiment_ids()) == ["e1"]
    assert records.load_experiment("e1") == experiment
    (loaded,) = records.load_rounds("e1", 3)
    assert loaded.round == record.round and loaded.train_attempt == 2 and loaded.annotations_before == 30
    assert loaded.array("pool") == record.array("pool") and loaded.array("missing") is None


def test_paging_walks_every_item_once() -> None:
    items = list(range(7))
    seen, token = [], ""
    while True:
        page, token = paging.paginate("things", items, 3, token)
        seen.extend(page)
        if not token:
            break
    assert seen == items
    with pytest.raises(InvalidArgument, match="was not returned by this listing"):
        paging.paginate("other", items, 3, paging.paginate("things", items, 3, "")[1])
