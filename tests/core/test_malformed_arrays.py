"""Malformed array files named in a request get INVALID_ARGUMENT saying what is wrong, not INTERNAL:
a truncated .npy, an object or complex dtype, a file that is no .npy, ids that are not JSON."""

from __future__ import annotations

import io

import numpy as np
import pytest
from labelloop.core.arrays import open_array, read_example_ids
from labelloop.core.errors import FailedPrecondition, InvalidArgument
from labelloop.core.storage import ObjectStore
from labelloop.v1 import common_pb2


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def ref(store: ObjectStore, key: str, data: bytes) -> common_pb2.ArrayRef:
    store.put_bytes(key, data)
    return common_pb2.ArrayRef(uri=store.uri(key))


def test_a_whole_array_opens(object_store: ObjectStore) -> None:
    array = open_array(object_store, ref(object_store, "a/ok.npy", npy(np.eye(3))), "probabilities", 2)
    assert (array.shape, array.dtype) == ((3, 3), np.dtype("float64"))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (npy(np.eye(40))[:-8], "is truncated: its header says [40, 40] float64 (12800 bytes of data)"),
        (npy(np.eye(40))[:200], "is truncated"),
        (npy(np.ones((2, 2), dtype=np.complex64)), "has dtype complex64: store plain numbers"),
        (b"not an array at all", "is not a .npy array"),
        (b"", "is not a .npy array"),
    ],
)
def test_malformed_arrays_are_invalid_arguments(object_store: ObjectStore, data: bytes, message: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        open_array(object_store, ref(object_store, "a/bad.npy", data), "probabilities", 2)
    assert message in str(info.value)
    assert "probabilities" in str(info.value) or ".npy" in str(info.value)


def test_ids_that_are_not_json_get_the_callers_error_type(object_store: ObjectStore) -> None:
    object_store.put_bytes("a/ids.json", b"\xff{not json")
    uri = object_store.uri("a/ids.json")
    with pytest.raises(InvalidArgument, match="is not JSON: store a JSON list of example ids"):
        read_example_ids(object_store, uri, name="probabilities")
    with pytest.raises(FailedPrecondition, match="is not JSON"):
        read_example_ids(object_store, uri, name="probabilities", error=FailedPrecondition)


@pytest.mark.parametrize(
    ("dtype", "message"),
    [
        ("int64", "probabilities.dtype says 'int64' but"),
        ("no-such-type", "is no NumPy dtype name"),
    ],
)
def test_a_dtype_that_is_not_the_stored_one_is_refused(
    object_store: ObjectStore, dtype: str, message: str
) -> None:
    stored = ref(object_store, "a/eye.npy", npy(np.eye(3)))
    stored.dtype = dtype
    with pytest.raises(InvalidArgument, match=message):
        open_array(object_store, stored, "probabilities", 2)
    stored.dtype = "float64"  # the stored one: fine
    assert open_array(object_store, stored, "probabilities", 2).dtype == np.dtype("float64")
