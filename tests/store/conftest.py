"""Fixtures for the dataset store: a DatasetStore on each backend and small manifests."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from labelloop.core.storage import ObjectStore
from labelloop.sample_data import write_digits_images
from labelloop.store import DatasetStore

IMAGE_COUNT = 24


@pytest.fixture
def datasets(object_store: ObjectStore, tmp_path: Path) -> DatasetStore:
    """The store imports local files from the test's folder only, where its manifests are."""
    return DatasetStore(object_store, import_roots=[tmp_path])


@pytest.fixture
def image_manifest(tmp_path: Path) -> Path:
    """24 digit PNGs (16 px) and manifest.csv with image_path,label."""
    return write_digits_images(tmp_path / "digits", size=16, limit=IMAGE_COUNT)


@pytest.fixture
def tabular_manifest(tmp_path: Path) -> Path:
    """12 rows, two features (one text), labels a/b/c, an explicit split column."""
    frame = pd.DataFrame(
        {
            "x": [float(i) for i in range(12)],
            "colour": ["red", "green", "blue"] * 4,
            "label": ["a", "b", "c"] * 4,
            "split": ["pool"] * 9 + ["test"] * 3,
        }
    )
    path = tmp_path / "tabular" / "manifest.csv"
    path.parent.mkdir(parents=True)
    frame.to_csv(path, index=False)
    return path


def contents(store: ObjectStore) -> dict[str, bytes]:
    """Everything the store holds, key and bytes, to show a failed request changed nothing: neither
    which objects exist nor what any of them says."""
    return {key: store.get_bytes(key) for key in store.list("")}
