"""select_batch on stored score arrays (both backends), and SelectorService over real gRPC."""

from __future__ import annotations

import grpc
import numpy as np
import pytest
from labelloop.core.errors import InvalidArgument, NotFound
from labelloop.core.metrics import SELECTOR_REGISTRY as REGISTRY
from labelloop.core.storage import LocalStore, ObjectStore
from labelloop.selector.selection import select_batch
from labelloop.v1 import common_pb2 as c
from labelloop.v1 import selector_pb2 as pb

from tests.scorer.data import put_array


def stored(store: ObjectStore, name: str, scores: list[float], prefix: str) -> c.ArrayRef:
    return put_array(store, f"{name}.npy", np.array(scores), [f"{prefix}{i}" for i in range(len(scores))])


def ids(batch) -> list[str]:
    return [e.example_id for e in batch]


def test_lowest_first_excluding_pending_and_relabel(object_store: ObjectStore) -> None:
    unlabeled = stored(object_store, "u", [0.5, 0.1, 0.3, 0.9, 0.2], "u")
    labeled = stored(object_store, "l", [0.05, 0.8], "l")

    batch = select_batch(object_store, unlabeled, 3, labeled_scores=labeled)
    assert ids(batch) == ["u1", "u4", "u2"]  # labeled ignored without allow_relabel
    assert [e.score for e in batch] == [0.1, 0.2, 0.3]
    assert all(not e.relabel and e.predicted_class == -1 for e in batch)

    batch = select_batch(
        object_store, unlabeled, 3, labeled_scores=labeled, allow_relabel=True, exclude_example_ids=["u1"]
    )
    assert ids(batch) == ["l0", "u4", "u2"]
    assert [e.relabel for e in batch] == [True, False, False]


def test_fewer_candidates_than_batch_returns_what_there_is(tmp_path) -> None:
    store = LocalStore(tmp_path)
    unlabeled = stored(store, "u", [0.4, 0.2, 0.3], "u")
    assert ids(select_batch(store, unlabeled, 10, exclude_example_ids=["u2"])) == ["u1", "u0"]
    assert select_batch(store, unlabeled, 10, exclude_example_ids=["u0", "u1", "u2"]) == []


def test_ties_are_deterministic_per_seed(tmp_path) -> None:
    store = LocalStore(tmp_path)
    unlabeled = stored(store, "u", [0.5] * 50 + [0.1], "u")
    first = ids(select_batch(store, unlabeled, 5, seed=7))
    assert first[0] == "u50" and first == ids(select_batch(store, unlabeled, 5, seed=7))
    others = {tuple(ids(select_batch(store, unlabeled, 5, seed=s))) for s in range(10)}
    assert len(others) > 1


def test_max_per_class_uses_predicted_classes(object_store: ObjectStore) -> None:
    unlabeled = stored(object_store, "u", [0.1, 0.2, 0.3, 0.4, 0.5], "u")
    probs = np.eye(3)[[0, 0, 0, 1, 2]] * 0.8 + 0.2 / 3
    probs_ref = put_array(object_store, "p.npy", probs)
    batch = select_batch(object_store, unlabeled, 4, max_per_class=2, unlabeled_probabilities=probs_ref)
    assert ids(batch) == ["u0", "u1", "u3", "u4"]
    assert [e.predicted_class for e in batch] == [0, 0, 1, 2]
    # Without the cap the classes are still reported (read row by row).
    assert [
        e.predicted_class for e in select_batch(object_store, unlabeled, 3, unlabeled_probabilities=probs_ref)
    ] == [0, 0, 0]


def test_bad_requests(tmp_path) -> None:
    store = LocalStore(tmp_path)
    unlabeled = stored(store, "u", [0.1, 0.2], "u")
    with pytest.raises(InvalidArgument, match="batch_size"):
        select_batch(store, unlabeled, 0)
    with pytest.raises(InvalidArgument, match="max_per_class needs"):
        select_batch(store, unlabeled, 1, max_per_class=1)
    with pytest.raises(InvalidArgument, match="NaN"):
        select_batch(store, stored(store, "nan", [0.1, float("nan")], "n"), 1)
    with pytest.raises(InvalidArgument, match="example_ids_uri"):
        select_batch(store, put_array(store, "noids.npy", np.zeros(2)), 1)
    with pytest.raises(InvalidArgument, match="rows"):
        select_batch(
            store, unlabeled, 1, unlabeled_probabilities=put_array(store, "p3.npy", np.ones((3, 2)) / 2)
        )
    with pytest.raises(NotFound):
        select_batch(store, c.ArrayRef(uri=store.uri("missing.npy")), 1)


def test_service_selects_and_counts(service) -> None:
    store, stub = service
    unlabeled = stored(store, "u", [0.3, 0.1, 0.2], "u")
    labeled = stored(store, "l", [0.0], "l")
    before = REGISTRY.get_sample_value("labelloop_selector_selected_examples_total") or 0
    reply = stub.SelectBatch(
        pb.SelectBatchRequest(
            unlabeled_scores=unlabeled, labeled_scores=labeled, allow_relabel=True, batch_size=2
        ),
        timeout=10,
    )
    assert [(e.example_id, e.relabel, e.predicted_class) for e in reply.examples] == [
        ("l0", True, -1),
        ("u1", False, -1),
    ]
    assert REGISTRY.get_sample_value("labelloop_selector_selected_examples_total") == before + 2


@pytest.mark.parametrize(
    ("changes", "code", "message"),
    [
        ({"batch_size": 0}, grpc.StatusCode.INVALID_ARGUMENT, "batch_size is 0"),
        ({"max_per_class": 1}, grpc.StatusCode.INVALID_ARGUMENT, "max_per_class needs"),
        (
            {"unlabeled_scores": c.ArrayRef(uri="s3://elsewhere/x.npy")},
            grpc.StatusCode.INVALID_ARGUMENT,
            "not inside this store",
        ),
        ({"unlabeled_scores": c.ArrayRef(uri="missing")}, grpc.StatusCode.NOT_FOUND, "does not exist"),
        ({"batch_method": 7}, grpc.StatusCode.INVALID_ARGUMENT, "batch_method 7 is not a batch method"),
    ],
)
def test_service_bad_requests(service, changes: dict, code: grpc.StatusCode, message: str) -> None:
    store, stub = service
    fields = {"unlabeled_scores": stored(store, "ok", [0.1], "o"), "batch_size": 1, **changes}
    with pytest.raises(grpc.RpcError) as info:
        stub.SelectBatch(pb.SelectBatchRequest(**fields), timeout=10)
    assert info.value.code() == code, info.value.details()
    assert message in info.value.details()
