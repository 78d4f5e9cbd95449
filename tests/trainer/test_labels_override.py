"""CreateTrainingRunRequest.labels_uri: the labels to fit on instead of the snapshot's must name
exactly the snapshot's labeled examples, and a bad file is an error that says what to fix."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest
from labelloop.core.errors import InvalidArgument, NotFound
from labelloop.core.storage import LocalStore
from labelloop.trainer.labels import override_labels_key

SNAPSHOT = "datasets/d/snapshots/s"
FROZEN = "datasets/d/snapshots/s/labels.parquet"


def put(store: LocalStore, key: str, frame: pd.DataFrame) -> str:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    store.put_bytes(key, buffer.getvalue())
    return store.uri(key)


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    store = LocalStore(tmp_path)
    put(store, FROZEN, pd.DataFrame({"example_id": ["a", "b", "c"], "label": ["x", "x", "y"]}))
    return store


def test_accepts_other_labels_for_the_same_examples(store: LocalStore) -> None:
    uri = put(
        store, "e/labels.parquet", pd.DataFrame({"example_id": ["c", "a", "b"], "label": ["x", "y", "y"]})
    )
    assert override_labels_key(store, SNAPSHOT, FROZEN, uri) == "e/labels.parquet"


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (pd.DataFrame({"example_id": ["a", "b"], "label": ["x", "y"]}), "1 of it are missing (e.g. ['c'])"),
        (
            pd.DataFrame({"example_id": ["a", "b", "c", "z"], "label": ["x"] * 4}),
            "1 are not in it (e.g. ['z'])",
        ),
        (
            pd.DataFrame({"example_id": ["a", "b", "c"], "consensus": ["x"] * 3}),
            "lacks the columns ['label']",
        ),
        (pd.DataFrame({"example_id": ["a", "a", "b", "c"], "label": ["x"] * 4}), "lists example 'a' twice"),
        (pd.DataFrame({"example_id": ["a", "b", "c"], "label": ["x", None, "y"]}), "rows without a label"),
    ],
)
def test_rejects(store: LocalStore, frame: pd.DataFrame, message: str) -> None:
    uri = put(store, "e/bad.parquet", frame)
    with pytest.raises(InvalidArgument) as info:
        override_labels_key(store, SNAPSHOT, FROZEN, uri)
    assert message in str(info.value)


def test_missing_or_unreadable(store: LocalStore) -> None:
    with pytest.raises(NotFound, match="does not exist"):
        override_labels_key(store, SNAPSHOT, FROZEN, store.uri("e/none.parquet"))
    store.put_bytes("e/text.parquet", b"example_id,label\na,x\n")
    with pytest.raises(InvalidArgument, match="not a readable Parquet file"):
        override_labels_key(store, SNAPSHOT, FROZEN, store.uri("e/text.parquet"))
    with pytest.raises(InvalidArgument, match="labels_uri"):
        override_labels_key(store, SNAPSHOT, FROZEN, "s3://elsewhere/x.parquet")
