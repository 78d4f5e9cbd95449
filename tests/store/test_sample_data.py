"""Bundled data sets written as manifests the store ingests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from labelloop import sample_data
from labelloop.core.storage import LocalStore
from labelloop.store import DatasetStore
from PIL import Image


def test_digits_images_manifest(tmp_path: Path) -> None:
    manifest = sample_data.write_digits_images(tmp_path, size=24, limit=5)
    frame = pd.read_csv(manifest, dtype=str)
    assert list(frame.columns) == ["image_path", "label"] and list(frame["label"]) == [
        "0",
        "1",
        "2",
        "3",
        "4",
    ]
    image = Image.open(tmp_path / frame["image_path"].iloc[3])
    assert image.size == (24, 24) and image.mode == "RGB"
    assert np.asarray(image).max() > 200  # scaled from 0-16 up to 0-255


def test_tabular_manifests_ingest(tmp_path: Path) -> None:
    datasets = DatasetStore(LocalStore(tmp_path / "store"), import_roots=[tmp_path])
    expected = {
        "digits": (sample_data.write_digits_tabular, 1797, 64, [str(d) for d in range(10)]),
        "cancer": (sample_data.write_breast_cancer_tabular, 569, 30, ["benign", "malignant"]),
        "wine": (sample_data.write_wine_tabular, 178, 13, ["class_0", "class_1", "class_2"]),
    }
    for name, (write, rows, features, classes) in expected.items():
        manifest = write(tmp_path / name)
        info = datasets.create_dataset(name, str(manifest), label_column="label", test_fraction=0.2, seed=0)
        assert (info.example_count, len(info.feature_columns), info.classes) == (rows, features, classes)
        examples = datasets.read_examples(name)
        # Stratified: the test split has (nearly) the class mix of the whole set.
        whole = examples["label"].value_counts(normalize=True)
        test = examples.loc[examples["split"] == "test", "label"].value_counts(normalize=True)
        assert (test - whole).abs().max() < 0.03
