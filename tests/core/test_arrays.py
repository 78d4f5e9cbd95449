"""core.arrays: example-id lists, ArrayRefs and predicted classes of stored arrays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from labelloop.core.arrays import (
    StoredArray,
    array_ref,
    check_probability_rows,
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


def _stored(rows: np.ndarray) -> StoredArray:
    uri = "file:///probs.npy"
    return StoredArray("unlabeled_probabilities", uri, "probs.npy", rows.shape, rows.dtype, 128, "")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_probability_rows_near_the_tolerance_get_float64_verdicts(dtype: type) -> None:
    """float32 rows are summed in float32 first; rows near SUM_TOLERANCE (1e-3) are judged on float64
    sums, so the verdict is the same for both dtypes and the sums returned are float64's."""
    rng = np.random.default_rng(0)
    rows = rng.dirichlet(np.ones(100), 1000)
    rows[10] *= 1.00099  # just inside: accepted
    rows[20] *= 0.99905
    good = rows.astype(dtype)
    sums = check_probability_rows(good, _stored(good), 0)
    assert sums.dtype == np.float64
    assert np.allclose(sums, good.sum(axis=1, dtype=np.float64), rtol=0, atol=1e-6)
    assert abs(sums[10] - good[10].sum(dtype=np.float64)) < 1e-12  # a suspect row: summed in float64
    bad = rows.copy()
    bad[500] *= 1.0011
    with pytest.raises(InvalidArgument, match=r"row 1500 sums to 1\.0011, not 1"):
        check_probability_rows(bad.astype(dtype), _stored(bad), 1000)


def test_a_float32_sum_that_overflows_is_named_by_its_float64_sum() -> None:
    rows = np.full((3, 4), 0.25, dtype=np.float32)
    rows[1] = 3e38  # finite values whose float32 sum is inf
    with pytest.raises(InvalidArgument, match=r"row 1 sums to 1\.2e\+39"):
        check_probability_rows(rows, _stored(rows), 0)
    rows[2, 3] = np.nan
    rows[1] = 0.25
    with pytest.raises(InvalidArgument, match="row 2 has NaN or infinite values"):
        check_probability_rows(rows, _stored(rows), 0)
