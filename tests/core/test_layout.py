"""The object-store layout, key by key, as docs/architecture.md lists it: the store writes these keys
and the trainer and the controller read them, so a changed key is a changed contract."""

from __future__ import annotations

import pytest
from labelloop.core import layout

ROUND = "experiments/{e}/rounds/{n}/"


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (layout.dataset_key("{d}"), "datasets/{d}/dataset.json"),
        (layout.examples_key("{d}"), "datasets/{d}/examples.parquet"),
        (layout.files_prefix("{d}"), "datasets/{d}/files/"),
        (layout.annotations_prefix("{d}", "{set}"), "datasets/{d}/annotations/{set}/"),
        (layout.snapshots_prefix("{d}"), "datasets/{d}/snapshots/"),
        (layout.snapshot_key("{d}", "{s}"), "datasets/{d}/snapshots/{s}/snapshot.json"),
        (layout.snapshot_labels_key("{d}", "{s}"), "datasets/{d}/snapshots/{s}/labels.parquet"),
        (
            layout.snapshot_multiannotator_key("{d}", "{s}"),
            "datasets/{d}/snapshots/{s}/labels_multiannotator.npy",
        ),
        (layout.snapshot_annotators_key("{d}", "{s}"), "datasets/{d}/snapshots/{s}/annotators.json"),
        (layout.operation_key("{op}"), "operations/{op}.json"),
        (layout.experiment_key("{e}"), "experiments/{e}/experiment.json"),
        (layout.round_key("{e}", "{n}"), "experiments/{e}/rounds/{n}.json"),  # type: ignore[arg-type]
        (layout.round_prefix("{e}", "{n}"), ROUND),  # type: ignore[arg-type]
        (layout.model_prefix(ROUND), ROUND + "model/"),
        (layout.probabilities_key(ROUND, "pool"), ROUND + "pool_probabilities.npy"),
        (layout.example_ids_key(ROUND, "test"), ROUND + "test_example_ids.json"),
        (layout.scores_prefix(ROUND), ROUND + "scores/"),
        (layout.predictions_key("predictions/{p}/", "csv"), "predictions/{p}/predictions.csv"),
        (layout.upload_key("{u}", "new.parquet"), "uploads/{u}/new.parquet"),
    ],
)
def test_keys(key: str, expected: str) -> None:
    assert key == expected


def test_every_folder_is_inside_its_parent() -> None:
    assert layout.dataset_prefix("d").startswith(layout.DATASETS_PREFIX)
    assert layout.snapshot_prefix("d", "s").startswith(layout.dataset_prefix("d"))
    assert layout.round_prefix("e", 1).startswith(layout.experiment_prefix("e"))
    assert layout.operation_key("op").startswith(layout.OPERATIONS_PREFIX)
    assert layout.experiment_prefix("e").startswith(layout.EXPERIMENTS_PREFIX)
