"""Annotation logs (idempotent by request id) and the snapshots frozen from them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from labelloop.core.errors import AlreadyExists
from labelloop.core.storage import ObjectStore
from labelloop.store import DatasetStore
from labelloop.store.models import Annotation

from tests.store.conftest import contents


@pytest.fixture
def ids(datasets: DatasetStore, tabular_manifest: Path) -> list[str]:
    """Dataset "tab" (classes a, b, c); its example ids in manifest order."""
    datasets.create_dataset("tab", str(tabular_manifest), label_column="label", split_column="split")
    return list(datasets.read_examples("tab")["example_id"])


def test_append_is_idempotent_by_request_id(
    datasets: DatasetStore, object_store: ObjectStore, ids: list[str]
) -> None:
    request = [Annotation(ids[0], "alice", "a"), Annotation(ids[1], "bob", "b")]
    first = datasets.append_annotations("tab", "exp-1", request, "exp-1-r0")
    assert (first.appended_count, first.duplicate) == (2, False)
    before = contents(object_store)
    retry = datasets.append_annotations("tab", "exp-1", request, "exp-1-r0")
    assert (retry.appended_count, retry.duplicate) == (0, True)
    assert contents(object_store) == before
    # The same request id in another set is a different request.
    assert datasets.append_annotations("tab", "", request, "exp-1-r0").appended_count == 2
    assert len(datasets.list_annotations("tab", "exp-1").items) == 2
    assert len(datasets.list_annotations("tab", "default").items) == 2
    assert [k.split("/")[-1] for k in object_store.list("datasets/tab/annotations/exp-1/")] == [
        "00000001-exp-1-r0.json"
    ]


def test_list_annotations_in_append_order_with_pages(datasets: DatasetStore, ids: list[str]) -> None:
    for n in range(3):
        batch = [Annotation(ids[i], f"ann-{n}", "abc"[i % 3]) for i in range(n * 3, n * 3 + 3)]
        datasets.append_annotations("tab", "s", batch, f"req-{n}")
    page = datasets.list_annotations("tab", "s", page_size=4)
    got = list(page.items)
    while page.next_page_token:
        page = datasets.list_annotations("tab", "s", page_size=4, page_token=page.next_page_token)
        got += page.items
    assert [a.example_id for a in got] == ids[:9]
    assert [a.annotator for a in got] == [f"ann-{n}" for n in range(3) for _ in range(3)]
    times = [a.create_time for a in got]
    assert all(t is not None and t.tzinfo is not None for t in times) and times == sorted(times)
    assert datasets.list_annotations("tab", "never-used").items == []


def test_snapshot_consensus_and_multiannotator_matrix(datasets: DatasetStore, ids: list[str]) -> None:
    e0, e1, e2, e3 = ids[:4]
    datasets.append_annotations(
        "tab", "exp", [
            Annotation(e0, "alice", "a"), Annotation(e0, "bob", "b"), Annotation(e0, "carol", "a"),
            Annotation(e1, "alice", "b"), Annotation(e1, "bob", "c"),  # a tie: the later vote (c) wins
            Annotation(e2, "carol", "a"),
        ], "r0",
    )  # fmt: skip
    # carol changes her mind about e2: only her latest label counts.
    datasets.append_annotations(
        "tab", "exp", [Annotation(e2, "carol", "b"), Annotation(e3, "bob", "c")], "r1"
    )
    snapshot = datasets.create_snapshot("tab", "r2", "exp")
    assert (snapshot.labeled_count, snapshot.annotation_count, snapshot.annotator_count) == (4, 8, 3)
    assert snapshot.name == "datasets/tab/snapshots/r2"

    labels = datasets.read_snapshot_labels("tab", "r2")
    order = sorted([e0, e1, e2, e3])
    assert list(labels["example_id"]) == order
    expected = {e0: ("a", 3), e1: ("c", 2), e2: ("b", 1), e3: ("c", 1)}
    assert [(row.label, row.annotation_count) for row in labels.itertuples()] == [expected[e] for e in order]

    matrix, annotators = datasets.read_labels_multiannotator("tab", "r2")
    assert annotators == ["alice", "bob", "carol"] and matrix.dtype == np.float64
    nan = np.nan
    rows = {e0: [0, 1, 0], e1: [1, 2, nan], e2: [nan, nan, 1], e3: [nan, 2, nan]}
    np.testing.assert_array_equal(matrix, np.array([rows[e] for e in order]))

    # cleanlab accepts it as labels_multiannotator for 3 classes.
    from cleanlab.internal.multiannotator_utils import assert_valid_inputs_multiannotator

    assert_valid_inputs_multiannotator(matrix, pred_probs=np.full((4, 3), 1 / 3))


def test_snapshots_are_immutable_and_creation_is_idempotent(
    datasets: DatasetStore, object_store: ObjectStore, ids: list[str]
) -> None:
    empty = datasets.create_snapshot("tab", "r0", "exp")
    assert (empty.labeled_count, empty.annotation_count) == (0, 0)
    assert datasets.read_labels_multiannotator("tab", "r0")[0].shape == (0, 0)

    datasets.append_annotations("tab", "exp", [Annotation(ids[0], "alice", "a")], "req-1")
    first = datasets.create_snapshot("tab", "r1", "exp")
    datasets.append_annotations("tab", "exp", [Annotation(ids[1], "alice", "b")], "req-2")
    before = contents(object_store)
    again = datasets.create_snapshot("tab", "r1", "exp")  # a retry: same snapshot, nothing rewritten
    assert again == first and again.labeled_count == 1
    assert contents(object_store) == before
    assert datasets.get_snapshot("tab", "r1") == first
    with pytest.raises(AlreadyExists, match="already exists for annotation set 'exp', not 'default'"):
        datasets.create_snapshot("tab", "r1")
    assert datasets.create_snapshot("tab", "r2", "exp").labeled_count == 2

    page = datasets.list_snapshots("tab", page_size=2)
    assert [s.snapshot_id for s in page.items] == ["r0", "r1"]
    rest = datasets.list_snapshots("tab", page_size=2, page_token=page.next_page_token)
    assert [s.snapshot_id for s in rest.items] == ["r2"] and rest.next_page_token == ""
    assert set(object_store.list("datasets/tab/snapshots/r1/")) == {
        f"datasets/tab/snapshots/r1/{name}"
        for name in ("snapshot.json", "labels.parquet", "labels_multiannotator.npy", "annotators.json")
    }

    datasets.delete_dataset("tab")
    assert list(object_store.list("datasets/tab/")) == []


def test_concurrent_appends_and_retries_are_serialised(datasets: DatasetStore, ids: list[str]) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def send(n: int) -> tuple[int, bool]:
        request_id = f"req-{n % 4}"  # each request id is sent twice, at the same time
        result = datasets.append_annotations("tab", "", [Annotation(ids[n % 4], "ann", "a")], request_id)
        return result.appended_count, result.duplicate

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(send, range(8)))
    assert sorted(results) == [(0, True)] * 4 + [(1, False)] * 4
    logged = datasets.list_annotations("tab").items
    assert sorted(a.example_id for a in logged) == sorted(ids[:4])


def test_snapshot_files_serve_a_reader_without_the_store_service(
    datasets: DatasetStore, object_store: ObjectStore, ids: list[str]
) -> None:
    """The trainer may read snapshot.json directly: it names its files and the dataset's classes."""
    datasets.append_annotations("tab", "", [Annotation(ids[0], "alice", "c")], "r")
    snapshot = datasets.create_snapshot("tab", "s1")
    meta = object_store.get_json("datasets/tab/snapshots/s1/snapshot.json")
    assert meta["name"] == "datasets/tab/snapshots/s1" and meta["labels_key"] == snapshot.labels_key
    assert (
        object_store.get_json("datasets/tab/dataset.json")["examples_key"] == "datasets/tab/examples.parquet"
    )
    assert object_store.get_json(snapshot.annotators_key) == ["alice"]
