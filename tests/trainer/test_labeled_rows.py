"""The training frame: the labeled pool examples with their snapshot labels, in the examples' order;
labels of test examples and of ids the dataset lacks are left out."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from labelloop.core import tables
from labelloop.core.errors import FailedPrecondition
from labelloop.core.storage import LocalStore
from labelloop.trainer import data
from labelloop.trainer.contract import JobKind, JobSpec

EXAMPLES = pd.DataFrame(
    {
        "example_id": ["e0", "e1", "e2", "e3", "e4", "e5"],
        "split": ["pool", "test", "pool", "pool", "test", "pool"],
        "label": ["truth"] * 6,  # the dataset's own ground truth column: never a model input
        "x": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0],
    }
)


def spec_with_labels(store: LocalStore, ids: list[str], labels: list[str]) -> JobSpec:
    tables.put_table(store, "labels.parquet", {"example_id": ids, "label": labels})
    return JobSpec(
        job_id="j",
        kind=JobKind.TRAIN,
        examples_key="examples.parquet",
        output_prefix="out/",
        classes=["a", "b"],
        feature_columns=["x"],
        labels_key="labels.parquet",
    )


def test_labeled_pool_rows_in_example_order(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    # Snapshot order differs from the examples'; e1 is a test example, "ghost" no example at all.
    spec = spec_with_labels(store, ["e5", "e1", "e0", "ghost", "e3"], ["b", "a", "a", "b", "b"])
    frame = data.labeled_rows(spec, store, EXAMPLES)
    assert frame["example_id"].tolist() == ["e0", "e3", "e5"]
    assert frame[data.LABEL].tolist() == ["a", "b", "b"]
    assert frame["x"].tolist() == [0.0, 3.0, 5.0]
    assert list(frame.columns) == ["example_id", "x", data.LABEL]


def test_labels_of_test_examples_alone_are_no_training_set(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    spec = spec_with_labels(store, ["e1", "e4"], ["a", "b"])
    with pytest.raises(FailedPrecondition, match="no labeled examples of this dataset's pool"):
        data.labeled_rows(spec, store, EXAMPLES)
