"""The embeddings a SelectBatch request names, opened, checked against the scores' rows and read on
demand (batch.base.Embeddings): a pool of a million 1,280-d float32 rows is 5 GB, so only the rows a
batch selector asks for are kept in memory, and the array is streamed chunk by chunk when it needs
many of them.

An embedding array either has the scores' rows (same examples, same order) or is any array whose
example ids include every scored example, e.g. the round's one pool array holding unlabeled and
labeled examples: each scored example's row is then found by its id (`row_map`), so the caller never
writes a split copy of the pool's embeddings.
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


def open_by_id(
    store: ObjectStore, ref: common_pb2.ArrayRef, name: str, ids: list[str] | None, what: str = "the scores"
) -> tuple[StoredArray, list[str] | None, np.ndarray | None]:
    """Opens a float [rows, dim] embedding array for the examples `ids` (None: all its rows).

    Returns the array, its own example ids and, unless its rows are exactly `ids`, the row of each of
    `ids` in it (int64). An array without example ids must have exactly the rows of `ids`."""
    array = open_array(store, ref, name, ndim=2)
    if array.dtype.kind != "f":
        raise InvalidArgument(f"{name} ({array.uri}) has dtype {array.dtype}: store embeddings as float")
    if array.shape[1] < 1:
        raise InvalidArgument(f"{name} ({array.uri}) has no columns")
    own_ids = read_ids(store, array)
    if ids is None or own_ids == ids:
        return array, own_ids, None
    if own_ids is None:
        if array.rows != len(ids):
            raise InvalidArgument(
                f"{name} has {array.rows} rows but {what} have {len(ids)}: rows must be the same examples "
                "in the same order, or set its example_ids_uri so rows are found by example id"
            )
        return array, None, None
    position = {example_id: row for row, example_id in enumerate(own_ids)}
    if len(position) != len(own_ids):
        raise InvalidArgument(f"{name} ({array.uri}) names an example twice in its example ids")
    row_map = np.fromiter((position.get(i, -1) for i in ids), dtype=np.int64, count=len(ids))
    if (row_map < 0).any():
        first = int(np.flatnonzero(row_map < 0)[0])
        raise InvalidArgument(
            f"{name} has no row for example {ids[first]!r} (row {first} of {what}): give the embeddings "
            "of every example, in the same order or named by the array's example ids"
        )
    return array, own_ids, row_map


def read_rows(store: ObjectStore, array: StoredArray, rows: np.ndarray) -> np.ndarray:
    """Some rows of a stored embedding array (any order), float32, checked finite."""
    return StoredEmbeddings(store, array, row_map=np.asarray(rows, dtype=np.int64)).read(np.arange(len(rows)))


def read_all(store: ObjectStore, array: StoredArray) -> np.ndarray:
    """A whole (small, e.g. labeled) embedding array as float32, checked finite."""
    out = np.empty(array.shape, dtype=np.float32)
    for start, rows in _chunks(store, array, 0, array.rows):
        out[start : start + len(rows)] = rows
    return out


class StoredEmbeddings:
    """The rows of a request: the unlabeled rows of a stored array, then (when labeled rows compete)
    the labeled examples' embeddings, which are few and held in memory. With `row_map`, request row i
    is the stored array's row row_map[i] (the array holds other examples too); else row i."""

    def __init__(
        self,
        store: ObjectStore,
        unlabeled: StoredArray,
        labeled: np.ndarray | None = None,
        row_map: np.ndarray | None = None,
    ):
        self.store = store
        self.unlabeled = unlabeled
        self.row_map = row_map
        self.unlabeled_rows = unlabeled.rows if row_map is None else len(row_map)
        # The caller checks that both have the same columns.
        self.labeled = labeled if labeled is not None else np.zeros((0, unlabeled.shape[1]), np.float32)

    @property
    def rows(self) -> int:
        return self.unlabeled_rows + len(self.labeled)

    @property
    def dim(self) -> int:
        return int(self.unlabeled.shape[1])

    def read(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.int64)
        out = np.empty((len(rows), self.dim), dtype=np.float32)
        inside = rows < self.unlabeled_rows
        out[~inside] = self.labeled[rows[~inside] - self.unlabeled_rows]
        out[inside] = self._stored(rows[inside] if self.row_map is None else self.row_map[rows[inside]])
        return out

    def _stored(self, wanted: np.ndarray) -> np.ndarray:
        """Rows of the stored array, in the given order."""
        unique, where = np.unique(wanted, return_inverse=True)
        few = len(unique) <= max(RANGED_READ_LIMIT, self.unlabeled.rows * RANGED_READ_FRACTION)
        values = self._ranged(unique) if few else self._streamed(unique)
        return values[where]

    def chunks(self, stop: int) -> Iterator[tuple[int, np.ndarray]]:
        unlabeled_stop = min(stop, self.unlabeled_rows)
        if self.row_map is None:
            yield from _chunks(self.store, self.unlabeled, 0, unlabeled_stop)
        else:
            yield from self._mapped_chunks(unlabeled_stop)
        labeled_stop = stop - self.unlabeled_rows
        if labeled_stop > 0:
            yield self.unlabeled_rows, self.labeled[:labeled_stop]

    def _mapped_chunks(self, stop: int) -> Iterator[tuple[int, np.ndarray]]:
        """Request rows 0..stop-1 in chunks. Rows mapped in ascending order (the unlabeled rows of a
        pool array keep its order) are one ranged read of the span they cover; others are read
        like any rows."""
        assert self.row_map is not None
        array = self.unlabeled
        row_bytes = array.shape[1] * array.dtype.itemsize
        chunk_rows = max(1, CHUNK_BYTES // row_bytes)
        for first in range(0, stop, chunk_rows):
            mapped = self.row_map[first : min(stop, first + chunk_rows)]
            low, high = int(mapped.min()), int(mapped.max()) + 1
            if (np.diff(mapped) > 0).all() and high - low <= 2 * len(mapped):
                data = self.store.get_range(
                    array.key, array.offset + low * row_bytes, (high - low) * row_bytes
                )
                span = np.frombuffer(data, dtype=array.dtype).reshape(high - low, self.dim)
                yield first, _checked(span[mapped - low], array, low, mapped - low)
            else:
                yield first, self._stored(mapped)

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
