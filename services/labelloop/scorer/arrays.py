"""Checked access to the arrays an ArrayRef names: header, example ids, probability chunks.

Shared by the scorer and the selector. Every check raises InvalidArgument (or NotFound from the
store) with a message that names the array and says what to fix.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from labelloop.core.errors import InvalidArgument
from labelloop.core.storage import ObjectStore
from labelloop.v1 import common_pb2

# Probability rows must sum to 1 within this (float32 softmax outputs are off by ~1e-7).
SUM_TOLERANCE = 1e-3


@dataclass(frozen=True)
class StoredArray:
    """An ArrayRef resolved against the store: where it is and what the .npy header says."""

    name: str  # the request field, for error messages
    uri: str
    key: str
    shape: tuple[int, ...]
    dtype: np.dtype
    offset: int  # byte offset of the data in the .npy
    example_ids_uri: str

    @property
    def rows(self) -> int:
        return self.shape[0]


def open_array(store: ObjectStore, ref: common_pb2.ArrayRef, name: str, ndim: int) -> StoredArray:
    """Reads the header of the array behind ref (one small ranged read) and checks its rank."""
    if not ref.uri:
        raise InvalidArgument(f"{name}.uri is empty: set it to the URI of a stored .npy array")
    key = store.ref_to_key(ref.uri)
    shape, dtype, offset = store.array_header(key)
    if len(shape) != ndim:
        raise InvalidArgument(f"{name} ({ref.uri}) has shape {list(shape)}: it must be {ndim}-D")
    if list(ref.shape) and tuple(ref.shape) != shape:
        raise InvalidArgument(
            f"{name}.shape says {list(ref.shape)} but {ref.uri} holds {list(shape)}: fix or omit the shape"
        )
    return StoredArray(name, ref.uri, key, shape, dtype, offset, ref.example_ids_uri)


def read_ids(store: ObjectStore, array: StoredArray) -> list[str] | None:
    """The array's example ids (None when it has none), checked to match its rows."""
    if not array.example_ids_uri:
        return None
    ids = store.get_json(store.ref_to_key(array.example_ids_uri))
    if not isinstance(ids, list):
        raise InvalidArgument(f"{array.name}.example_ids_uri must name a JSON list of example ids")
    if len(ids) != array.rows:
        raise InvalidArgument(
            f"{array.name} has {array.rows} rows but {array.example_ids_uri} lists {len(ids)} example ids: "
            "they must correspond one to one"
        )
    return [str(i) for i in ids]


def check_probability_array(array: StoredArray) -> None:
    if array.dtype.kind != "f":
        raise InvalidArgument(
            f"{array.name} ({array.uri}) has dtype {array.dtype}: store probabilities as float32 or float64"
        )
    if array.shape[1] < 1:
        raise InvalidArgument(f"{array.name} ({array.uri}) has no class columns")


def check_probability_rows(rows: np.ndarray, array: StoredArray, start: int) -> np.ndarray:
    """Validates one chunk of probabilities; returns its float64 row sums (reused by the strategies)."""
    sums = np.einsum("ij->i", rows, dtype=np.float64)  # NaN and inf anywhere in a row show up here
    bad = np.flatnonzero(~np.isfinite(sums))
    if len(bad):
        raise InvalidArgument(
            f"{array.name} ({array.uri}) row {start + bad[0]} has NaN or infinite values: "
            "the model must output finite probabilities"
        )
    if len(rows) and rows.min() < 0:
        row = start + int(np.flatnonzero((rows < 0).any(axis=1))[0])
        raise InvalidArgument(f"{array.name} ({array.uri}) row {row} has negative probabilities")
    off = np.flatnonzero(np.abs(sums - 1.0) > SUM_TOLERANCE)
    if len(off):
        raise InvalidArgument(
            f"{array.name} ({array.uri}) row {start + off[0]} sums to {sums[off[0]]:.6g}, not 1: "
            "pass normalised probabilities (e.g. apply softmax)"
        )
    return sums


def iter_probabilities(
    store: ObjectStore, array: StoredArray, chunk_rows: int
) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """(first_row, rows, row_sums) chunks of a probability array, each validated."""
    for start, rows in store.iter_array_rows(array.key, chunk_rows):
        yield start, rows, check_probability_rows(rows, array, start)


def read_probabilities(store: ObjectStore, array: StoredArray, chunk_rows: int) -> np.ndarray:
    """A whole (small, e.g. labeled) probability array, read and validated chunk by chunk."""
    out = np.empty(array.shape, dtype=array.dtype)
    for start, rows, _ in iter_probabilities(store, array, chunk_rows):
        out[start : start + len(rows)] = rows
    return out
