"""Checked access to the arrays an ArrayRef names: header, example ids, probability chunks, predicted
classes; and the ArrayRefs and id lists that describe arrays a service writes.

Shared by the services that read or write arrays (scorer, selector, controller). Every check raises
InvalidArgument (or NotFound from the store) with a message that names the array and says what to fix;
read_example_ids takes another error type for arrays that another service, not the caller, wrote.
"""

from __future__ import annotations

import math
import tokenize
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from labelloop.core.errors import InvalidArgument, LabelLoopError
from labelloop.core.names import shown
from labelloop.core.storage import ObjectStore
from labelloop.v1 import common_pb2

# Probability rows must sum to 1 within this (float32 softmax outputs are off by ~1e-7).
SUM_TOLERANCE = 1e-3
# What numpy's .npy header parser raises on a forged header (it reads the header as Python literals).
_HEADER_ERRORS = (SyntaxError, tokenize.TokenError, TypeError, KeyError, OverflowError, UnicodeDecodeError)
# Rows per chunk when streaming a probability array to find its predicted classes, per 16 columns.
ARGMAX_CHUNK_ROWS = 65536 * 16


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


def _declared_dtype(text: str, name: str) -> np.dtype:
    try:
        return np.dtype(text)
    except (TypeError, ValueError):
        raise InvalidArgument(f"{name}.dtype {shown(text)} is no NumPy dtype name (e.g. float32)") from None


def open_array(store: ObjectStore, ref: common_pb2.ArrayRef, name: str, ndim: int) -> StoredArray:
    """Reads the header of the array behind ref (one small ranged read) and checks its rank."""
    if not ref.uri:
        raise InvalidArgument(f"{name}.uri is empty: set it to the URI of a stored .npy array")
    key = store.ref_to_key(ref.uri)
    try:
        shape, dtype, offset = store.array_header(key)
    except LabelLoopError:
        raise
    except _HEADER_ERRORS as error:  # numpy parses the header as Python literal text
        raise InvalidArgument(f"{ref.uri} is not a .npy array: its header does not parse ({error})") from None
    except Exception as error:
        if _past_the_end(error):  # S3 refuses even the header's range of an empty object
            raise InvalidArgument(f"{ref.uri} is not a .npy array: it is empty") from None
        raise
    if len(shape) != ndim:
        raise InvalidArgument(f"{name} ({ref.uri}) has shape {list(shape)}: it must be {ndim}-D")
    if list(ref.shape) and tuple(ref.shape) != shape:
        raise InvalidArgument(
            f"{name}.shape says {list(ref.shape)} but {ref.uri} holds {list(shape)}: fix or omit the shape"
        )
    if ref.dtype and _declared_dtype(ref.dtype, name) != dtype:
        raise InvalidArgument(
            f"{name}.dtype says {shown(ref.dtype)} but {ref.uri} holds {dtype}: fix or omit the dtype"
        )
    if dtype.hasobject or dtype.kind not in "biuf":
        raise InvalidArgument(f"{name} ({ref.uri}) has dtype {dtype}: store plain numbers (float or int)")
    size = math.prod(shape) * dtype.itemsize  # Python ints: a forged header cannot overflow them
    if size and not _has_byte(store, key, offset + size - 1):  # the data's last byte
        raise InvalidArgument(
            f"{name} ({ref.uri}) is truncated: its header says {list(shape)} {dtype} ({size} bytes of data) "
            "but the file is shorter; store the whole array again"
        )
    return StoredArray(name, ref.uri, key, shape, dtype, offset, ref.example_ids_uri)


def _has_byte(store: ObjectStore, key: str, position: int) -> bool:
    try:
        return len(store.get_range(key, position, 1)) == 1
    except LabelLoopError:
        raise
    except Exception as error:
        if _past_the_end(error):
            return False
        raise


def _past_the_end(error: Exception) -> bool:
    """S3 answers a range that starts past an object's end with InvalidRange (a file just reads less)."""
    return getattr(error, "code", "") == "InvalidRange"


def read_example_ids(
    store: ObjectStore,
    ids_uri: str,
    *,
    name: str,
    rows: int | None = None,
    error: type[LabelLoopError] = InvalidArgument,
) -> list[str]:
    """The JSON list of example ids at ids_uri, as strings, checked to have `rows` entries if given.

    name: what the ids belong to, for messages. error: InvalidArgument when the caller supplied the
    array, e.g. FailedPrecondition when another service wrote it.
    """
    try:
        ids = store.get_json(store.ref_to_key(ids_uri))
    except (ValueError, UnicodeDecodeError):  # JSONDecodeError is a ValueError
        raise error(
            f"{name}.example_ids_uri {ids_uri} is not JSON: store a JSON list of example ids"
        ) from None
    if not isinstance(ids, list):
        raise error(f"{name}.example_ids_uri must name a JSON list of example ids")
    if rows is not None and len(ids) != rows:
        raise error(
            f"{name} has {rows} rows but {ids_uri} lists {len(ids)} example ids: "
            "they must correspond one to one"
        )
    return [str(i) for i in ids]


def read_ids(store: ObjectStore, array: StoredArray) -> list[str] | None:
    """The array's example ids (None when it has none), checked to match its rows."""
    if not array.example_ids_uri:
        return None
    return read_example_ids(store, array.example_ids_uri, name=array.name, rows=array.rows)


def write_ids(store: ObjectStore, key: str, ids: list[str]) -> str:
    """Stores a JSON list of example ids; returns its URI, for ArrayRef.example_ids_uri."""
    store.put_json(key, ids)
    return store.uri(key)


def array_ref(
    store: ObjectStore, key: str, shape: Sequence[int], dtype: npt.DTypeLike, example_ids_uri: str = ""
) -> common_pb2.ArrayRef:
    """The ArrayRef of an array stored at key."""
    return common_pb2.ArrayRef(
        uri=store.uri(key), shape=list(shape), dtype=np.dtype(dtype).name, example_ids_uri=example_ids_uri
    )


def check_probability_array(array: StoredArray) -> None:
    if array.dtype.kind != "f":
        raise InvalidArgument(
            f"{array.name} ({array.uri}) has dtype {array.dtype}: store probabilities as float32 or float64"
        )
    if array.shape[1] < 1:
        raise InvalidArgument(f"{array.name} ({array.uri}) has no class columns")


def check_probability_rows(rows: np.ndarray, array: StoredArray, start: int) -> np.ndarray:
    """Validates one chunk of probabilities; returns its float64 row sums (reused by the strategies)."""
    sums = _row_sums(rows)  # NaN and inf anywhere in a row show up here
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


def _row_sums(rows: np.ndarray) -> np.ndarray:
    """float64 row sums. float32 rows are summed in float32 first (3x faster; off by about 1e-6 next
    to SUM_TOLERANCE's 1e-3), and the rows whose sum is not clearly valid again in float64, so that
    the verdict, the message and the sums a strategy reuses for suspect rows are float64's."""
    if rows.dtype != np.float32:
        return np.einsum("ij->i", rows, dtype=np.float64)
    sums = np.einsum("ij->i", rows).astype(np.float64)
    suspect = np.flatnonzero(~(np.abs(sums - 1.0) <= SUM_TOLERANCE / 2))  # NaN compares False
    if len(suspect):
        sums[suspect] = np.einsum("ij->i", rows[suspect], dtype=np.float64)
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


def predicted_classes(store: ObjectStore, array: StoredArray) -> np.ndarray:
    """The argmax class of every row of a [rows, classes] array, streamed chunk by chunk."""
    out = np.empty(array.rows, dtype=np.int64)
    chunk = max(1, ARGMAX_CHUNK_ROWS // max(1, array.shape[1]))
    for start, rows in store.iter_array_rows(array.key, chunk):
        out[start : start + len(rows)] = rows.argmax(axis=1)
    return out


def predicted_classes_of_rows(store: ObjectStore, array: StoredArray, rows: np.ndarray) -> np.ndarray:
    """The argmax class of a few rows of a [rows, classes] array, one ranged read each."""
    row_bytes = array.shape[1] * array.dtype.itemsize
    out = np.empty(len(rows), dtype=np.int64)
    for i, row in enumerate(rows.tolist()):
        data = store.get_range(array.key, array.offset + row * row_bytes, row_bytes)
        out[i] = np.frombuffer(data, dtype=array.dtype).argmax()
    return out
