"""Parquet tables in the object store: one reader and one writer for the tables every round uses.

pyarrow's ParquetFile over the stored bytes, not pandas.read_parquet: pandas goes through pyarrow's
dataset API, about 1 ms more for a small table such as a snapshot's labels, read several times a
round by the controller, the trainer and its worker. The frames are the same (checked in tests).
Writes go from columns straight to pyarrow: a DataFrame's to_parquet costs about 1.5 ms more for a
round's small tables (a snapshot's labels, a labeling report's consensus and annotators). Tables that
are built as DataFrames anyway (an ingest, CROWDLAB's report, an export) go through frame_bytes.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from labelloop.core.storage import ObjectStore


def read_arrow(data: bytes, columns: Sequence[str] | None = None) -> pa.Table:
    """The table of Parquet bytes (only `columns` when given)."""
    parquet = pq.ParquetFile(pa.BufferReader(data))
    return parquet.read(columns=list(columns) if columns is not None else None, use_pandas_metadata=True)


def frame_of(data: bytes, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Parquet bytes as a DataFrame, as pandas.read_parquet gives it."""
    return read_arrow(data, columns).to_pandas()


def read_frame(store: ObjectStore, key: str, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """A stored Parquet object as a DataFrame (NotFound when it is absent)."""
    return frame_of(store.get_bytes(key), columns)


def parquet_bytes(columns: Mapping[str, Any], types: Mapping[str, pa.DataType] | None = None) -> bytes:
    """Columns (lists or numpy arrays, in order) as Parquet bytes. `types` fixes a column's type where
    its values cannot tell it (an empty list, a column of None)."""
    types = types or {}
    table = pa.table({name: pa.array(values, types.get(name)) for name, values in columns.items()})
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()


def put_table(
    store: ObjectStore, key: str, columns: Mapping[str, Any], types: Mapping[str, pa.DataType] | None = None
) -> None:
    store.put_bytes(key, parquet_bytes(columns, types))


def frame_bytes(frame: pd.DataFrame) -> bytes:
    """A DataFrame as Parquet bytes, without its index."""
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def put_frame(store: ObjectStore, key: str, frame: pd.DataFrame) -> None:
    store.put_bytes(key, frame_bytes(frame))
