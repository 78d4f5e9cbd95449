"""core.arrays: example-id lists, ArrayRefs and predicted classes of stored arrays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from labelloop.core.arrays import (
    array_ref,
    open_array,
    predicted_classes,
    predicted_classes_of_rows,
    read_example_ids,
    read_ids,
    write_ids,
)
from labelloop.core.errors import FailedPrecondition, InvalidArgument
from labelloop.core.storage import LocalStore


def test_ids_and_refs_round_trip(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put_array("a.npy", np.zeros((3, 2), dtype=np.float32))
    ref = array_ref(store, "a.npy", (3, 2), np.float32, write_ids(store, "a.json", ["x", "y", "z"]))
    assert (ref.uri, list(ref.shape), ref.dtype) == (store.uri("a.npy"), [3, 2], "float32")
    assert ref.example_ids_uri == store.uri("a.json")
    assert read_ids(store, open_array(store, ref, "probabilities", ndim=2)) == ["x", "y", "z"]


def test_example_id_errors_name_the_array_and_take_the_callers_error_type(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    uri = write_ids(store, "ids.json", [1, 2])
    assert read_example_ids(store, uri, name="pool") == ["1", "2"]
    with pytest.raises(InvalidArgument, match=r"pool has 3 rows but .* lists 2 example ids"):
        read_example_ids(store, uri, name="pool", rows=3)
    store.put_json("bad.json", {"not": "a list"})
    with pytest.raises(FailedPrecondition, match=r"pool\.example_ids_uri must name a JSON list"):
        read_example_ids(store, store.uri("bad.json"), name="pool", error=FailedPrecondition)


def test_predicted_classes_streamed_or_row_by_row(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(5), 1000).astype(np.float32)
    store.put_array("p.npy", probs)
    array = open_array(store, array_ref(store, "p.npy", probs.shape, probs.dtype), "p", ndim=2)
    np.testing.assert_array_equal(predicted_classes(store, array), probs.argmax(axis=1))
    rows = np.array([999, 0, 17])
    np.testing.assert_array_equal(predicted_classes_of_rows(store, array, rows), probs[rows].argmax(axis=1))
