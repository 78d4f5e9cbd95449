"""The embeddings a SelectBatch request names, opened, checked against the scores' rows and read on
demand (batch.base.Embeddings): a pool of a million 1,280-d float32 rows is 5 GB, so only the rows a
batch selector asks for are kept in memory, and the array is streamed chunk by chunk when it needs
many of them.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from labelloop.core.arrays import StoredArray, open_array, read_ids
from labelloop.core.errors import InvalidArgument
from labelloop.core.storage import ObjectStore
from labelloop.v1 import common_pb2

# Chunks of about 64 MB when streaming an embedding array.
CHUNK_BYTES = 64 << 20
# Rows are read with ranged reads (consecutive rows merged) up to this many, or up to this fraction
# of the array (a million-row pool: 15,625); more stream the whole array once.
RANGED_READ_LIMIT = 4096
RANGED_READ_FRACTION = 1 / 64


def open_embeddings(
    store: ObjectStore, ref: common_pb2.ArrayRef, name: str, rows: int | None, ids: list[str] | None
) -> StoredArray:
    """Opens a float [rows, dim] embedding array; checks it has `rows` rows and, when both lists
    exist, the same example ids as the scores (`ids`) in the same order."""
    array = open_array(store, ref, name, ndim=2)
    if array.dtype.kind != "f":
        raise InvalidArgument(f"{name} ({array.uri}) has dtype {array.dtype}: store embeddings as float")
    if array.shape[1] < 1:
        raise InvalidArgument(f"{name} ({array.uri}) has no columns")
    if rows is not None and array.rows != rows:
        raise InvalidArgument(
            f"{name} has {array.rows} rows but the scores have {rows}: rows must be the same examples "
            "in the same order"
        )
    own_ids = read_ids(store, array)
    if ids is not None and own_ids is not None and own_ids != ids:
        first = next(i for i, (a, b) in enumerate(zip(own_ids, ids, strict=True)) if a != b)
        raise InvalidArgument(
            f"{name} row {first} is example {own_ids[first]!r} but the scores' row {first} is "
            f"{ids[first]!r}: rows must be the same examples in the same order"
        )
    return array


def read_all(store: ObjectStore, array: StoredArray) -> np.ndarray:
    """A whole (small, e.g. labeled) embedding array as float32, checked finite."""
    out = np.empty(array.shape, dtype=np.float32)
    for start, rows in _chunks(store, array, 0, array.rows):
        out[start : start + len(rows)] = rows
    return out


class StoredEmbeddings:
    """The rows of a request: the stored unlabeled array, then (when labeled rows compete) the
    labeled examples' embeddings, which are few and held in memory."""

    def __init__(self, store: ObjectStore, unlabeled: StoredArray, labeled: np.ndarray | None = None):
        self.store = store
        self.unlabeled = unlabeled
        # The caller checks that both have the same columns.
        self.labeled = labeled if labeled is not None else np.zeros((0, unlabeled.shape[1]), np.float32)

    @property
    def rows(self) -> int:
        return self.unlabeled.rows + len(self.labeled)

    @property
    def dim(self) -> int:
        return int(self.unlabeled.shape[1])

    def read(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.int64)
        out = np.empty((len(rows), self.dim), dtype=np.float32)
        inside = rows < self.unlabeled.rows
        out[~inside] = self.labeled[rows[~inside] - self.unlabeled.rows]
        wanted = rows[inside]
        unique, where = np.unique(wanted, return_inverse=True)
        few = len(unique) <= max(RANGED_READ_LIMIT, self.unlabeled.rows * RANGED_READ_FRACTION)
        values = self._ranged(unique) if few else self._streamed(unique)
        out[inside] = values[where]
        return out

    def chunks(self, stop: int) -> Iterator[tuple[int, np.ndarray]]:
        yield from _chunks(self.store, self.unlabeled, 0, min(stop, self.unlabeled.rows))
        labeled_stop = stop - self.unlabeled.rows
        if labeled_stop > 0:
            yield self.unlabeled.rows, self.labeled[:labeled_stop]

    def _ranged(self, rows: np.ndarray) -> np.ndarray:
        """Sorted unique rows, one ranged read per run of consecutive rows."""
        array = self.unlabeled
        row_bytes = array.shape[1] * array.dtype.itemsize
        out = np.empty((len(rows), self.dim), dtype=np.float32)
        breaks = np.flatnonzero(np.diff(rows) != 1) + 1
        for run in np.split(np.arange(len(rows)), breaks):
            if not len(run):
                continue
            first = int(rows[run[0]])
            data = self.store.get_range(array.key, array.offset + first * row_bytes, len(run) * row_bytes)
            values = np.frombuffer(data, dtype=array.dtype).reshape(len(run), self.dim)
            out[run] = _checked(values, array, first)
        return out

    def _streamed(self, rows: np.ndarray) -> np.ndarray:
        """Sorted unique rows, picked from the array streamed chunk by chunk."""
        out = np.empty((len(rows), self.dim), dtype=np.float32)
        for start, chunk in _chunks(self.store, self.unlabeled, 0, self.unlabeled.rows, check=False):
            lo, hi = np.searchsorted(rows, [start, start + len(chunk)])
            if hi > lo:
                local = rows[lo:hi] - start
                out[lo:hi] = _checked(chunk[local], self.unlabeled, start, local)
        return out


def _chunks(
    store: ObjectStore, array: StoredArray, start: int, stop: int, check: bool = True
) -> Iterator[tuple[int, np.ndarray]]:
    """float32 chunks of rows start..stop-1 (start a multiple of the chunk size or 0)."""
    row_bytes = array.shape[1] * array.dtype.itemsize
    chunk_rows = max(1, CHUNK_BYTES // row_bytes)
    for first in range(start, stop, chunk_rows):
        count = min(stop, first + chunk_rows) - first
        data = store.get_range(array.key, array.offset + first * row_bytes, count * row_bytes)
        values = np.frombuffer(data, dtype=array.dtype).reshape(count, array.shape[1])
        yield first, (_checked(values, array, first) if check else values.astype(np.float32))


def _checked(
    values: np.ndarray, array: StoredArray, first: int, local: np.ndarray | None = None
) -> np.ndarray:
    """float32 rows, refused if any is not finite (a NaN would silently break the clustering)."""
    out = values.astype(np.float32)
    bad = np.flatnonzero(~np.isfinite(out).all(axis=1))
    if len(bad):
        row = first + int(bad[0] if local is None else local[bad[0]])
        raise InvalidArgument(f"{array.name} ({array.uri}) row {row} has NaN or infinite values")
    return out
