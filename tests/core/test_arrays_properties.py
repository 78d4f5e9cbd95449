"""Property-based tests (hypothesis) of array files named in requests: whatever bytes a file holds,
opening it either succeeds with a header that matches the data, or raises INVALID_ARGUMENT; never
another error (which would reach the caller as INTERNAL)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from labelloop.core.arrays import open_array
from labelloop.core.errors import InvalidArgument
from labelloop.core.storage import LocalStore
from labelloop.v1 import common_pb2


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStore]:
    yield LocalStore(Path(tmp_path_factory.mktemp("arrays")))


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


ARRAYS = hnp.arrays(
    dtype=st.sampled_from([np.float32, np.float64, np.int64, np.complex64, np.bool_]),
    shape=hnp.array_shapes(min_dims=1, max_dims=3, max_side=6),
)
# A valid .npy cut short, with bytes flipped, or any bytes at all.
FILES = st.one_of(
    ARRAYS.map(npy),
    st.tuples(ARRAYS.map(npy), st.integers(0, 400)).map(lambda t: t[0][: t[1]]),
    st.tuples(ARRAYS.map(npy), st.integers(0, 200), st.integers(0, 255)).map(
        lambda t: t[0][: t[1]] + bytes([t[2]]) + t[0][t[1] + 1 :]
    ),
    st.binary(max_size=300),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=FILES, ndim=st.integers(1, 3))
def test_any_file_opens_or_is_an_invalid_argument(store: LocalStore, data: bytes, ndim: int) -> None:
    store.put_bytes("a/x.npy", data)
    try:
        array = open_array(store, common_pb2.ArrayRef(uri=store.uri("a/x.npy")), "scores", ndim)
    except InvalidArgument as error:
        assert "scores" in str(error) or ".npy" in str(error)
        return
    assert len(array.shape) == ndim and array.dtype.kind in "biuf"
    assert len(data) >= array.offset + int(np.prod(array.shape)) * array.dtype.itemsize
