"""Parquet tables read from the object store: one reader for the tables every round reads.

pyarrow's ParquetFile over the stored bytes, not pandas.read_parquet: pandas goes through pyarrow's
dataset API, about 1 ms more for a small table such as a snapshot's labels, read several times a
round by the controller, the trainer and its worker. The frames are the same (checked in tests).
"""

from __future__ import annotations

from collections.abc import Sequence

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
