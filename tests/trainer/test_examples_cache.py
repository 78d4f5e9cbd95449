"""The warm worker parses a dataset's examples table once for all the rounds that read it, and never
serves a table whose stored bytes have changed."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from labelloop.core.storage import LocalStore
from labelloop.trainer import data


def _put(store: LocalStore, frame: pd.DataFrame) -> None:
    buffer = io.BytesIO()
    frame.to_parquet(buffer)
    store.put_bytes("datasets/d/examples.parquet", buffer.getvalue())


def test_the_examples_table_is_parsed_once_until_its_bytes_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalStore(tmp_path)
    parses: list[int] = []
    real = data.tables.frame_of

    def counting(*args: Any, **kwargs: Any) -> pd.DataFrame:
        parses.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(data.tables, "frame_of", counting)
    first = pd.DataFrame({"example_id": ["a", "b"], "split": ["pool", "test"], "x": [1.0, 2.0]})
    _put(store, first)
    got = data._read_examples(store, "datasets/d/examples.parquet")
    got["x"] = 0.0  # a caller's change must not reach the next round
    again = data._read_examples(store, "datasets/d/examples.parquet")
    pd.testing.assert_frame_equal(again, first)
    assert len(parses) == 1

    # The dataset deleted and created again under the same name: new bytes, parsed again.
    second = first.assign(x=[5.0, 6.0])
    _put(store, second)
    pd.testing.assert_frame_equal(data._read_examples(store, "datasets/d/examples.parquet"), second)
    assert len(parses) == 2


def test_a_large_table_is_not_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = LocalStore(tmp_path)
    monkeypatch.setattr(data, "PARSED_EXAMPLES_BYTES", 10)
    monkeypatch.setattr(data, "_parsed_examples", None)
    _put(store, pd.DataFrame({"example_id": ["a"], "split": ["pool"]}))
    data._read_examples(store, "datasets/d/examples.parquet")
    assert data._parsed_examples is None
