"""core.tables reads Parquet objects into the same frames pandas.read_parquet gives, and writes columns
that read back as the frame pandas would have written."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from labelloop.core import tables
from labelloop.core.errors import NotFound
from labelloop.core.storage import LocalStore


def _frames() -> list[pd.DataFrame]:
    rng = np.random.default_rng(0)
    return [
        pd.DataFrame(
            {
                "example_id": [f"ex-{i}" for i in range(50)],
                "label": rng.choice(["cat", "dog", None], 50),
                "annotation_count": rng.integers(1, 5, 50),
                "quality": rng.random(50),
                "flag": rng.random(50) > 0.5,
                "pixel": np.where(rng.random(50) > 0.9, np.nan, rng.random(50)).astype(np.float32),
            }
        ),
        pd.DataFrame({"example_id": pd.Series([], dtype=object), "label": pd.Series([], dtype=object)}),
        pd.DataFrame({"x": [1, 2, 3]}, index=pd.Index(["a", "b", "c"], name="id")),  # a stored index
    ]


@pytest.mark.parametrize("frame", _frames(), ids=["labels", "empty", "with-index"])
def test_frames_equal_pandas_read_parquet(tmp_path: Path, frame: pd.DataFrame) -> None:
    store = LocalStore(tmp_path)
    buffer = io.BytesIO()
    frame.to_parquet(buffer)
    store.put_bytes("t.parquet", buffer.getvalue())
    expected = pd.read_parquet(io.BytesIO(buffer.getvalue()))
    pd.testing.assert_frame_equal(tables.read_frame(store, "t.parquet"), expected)
    first = [str(frame.columns[0])]
    pd.testing.assert_frame_equal(
        tables.read_frame(store, "t.parquet", columns=first),
        pd.read_parquet(io.BytesIO(buffer.getvalue()), columns=first),
    )


def test_a_missing_table_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        tables.read_frame(LocalStore(tmp_path), "absent.parquet")


@pytest.mark.parametrize("frame", _frames()[:2], ids=["labels", "empty"])
def test_columns_written_read_back_as_the_frame_pandas_wrote(tmp_path: Path, frame: pd.DataFrame) -> None:
    store = LocalStore(tmp_path)
    columns = {
        name: frame[name].tolist() if frame[name].dtype == object else frame[name].to_numpy()
        for name in frame
    }
    tables.put_table(store, "t.parquet", columns, {"example_id": pa.string(), "label": pa.string()})
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    pd.testing.assert_frame_equal(tables.read_frame(store, "t.parquet"), pd.read_parquet(buffer))
