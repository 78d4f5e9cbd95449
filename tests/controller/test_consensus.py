"""The labeling report without CROWDLAB: the snapshot's majority vote, its agreement as quality, and when
CROWDLAB applies instead (cleanlab's precondition)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
from labelloop.controller.consensus import crowdlab_applies, majority_vote
from labelloop.core.storage import LocalStore

NAN = np.nan


def test_majority_vote_report(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    # Rows: examples a, b, c (the snapshot's order); columns: annotators ann, bob, cy.
    matrix = np.array([[0, 0, 1], [1, NAN, NAN], [2, 1, NAN]], dtype=np.float64)
    labels = pd.DataFrame(
        {"example_id": ["a", "b", "c"], "label": ["x", "y", "y"], "annotation_count": [3, 1, 2]}
    )
    report = majority_vote(
        store, "r/", ["a", "b", "c"], labels, matrix, ["ann", "bob", "cy"], ["x", "y", "z"]
    )

    assert report.method == "majority_vote"
    assert (report.labeled_count, report.annotation_count, report.annotator_count) == (3, 6, 3)
    assert report.mean_consensus_quality == (2 / 3 + 1 + 1 / 2) / 3
    # ann agrees on a and b, not c; bob on a and c; cy on nothing: worst first.
    assert [(a.annotator, a.quality, a.label_count) for a in report.annotators] == [
        ("cy", 0.0, 1),
        ("ann", 2 / 3, 3),
        ("bob", 1.0, 2),
    ]
    consensus = pd.read_parquet(io.BytesIO(store.get_bytes("r/consensus.parquet")))
    assert list(consensus["consensus_label"]) == ["x", "y", "y"]
    assert list(consensus["annotator_agreement"]) == [2 / 3, 1.0, 0.5]
    assert list(consensus["annotation_count"]) == [3, 1, 2]
    people = pd.read_parquet(io.BytesIO(store.get_bytes("r/annotators.parquet")))
    assert list(people["annotator"]) == ["cy", "ann", "bob"]


def test_crowdlab_applies_with_two_annotators_and_an_overlap() -> None:
    assert crowdlab_applies(np.array([[0, 1], [1, NAN]]))
    assert not crowdlab_applies(np.array([[0, NAN], [NAN, 1]]))  # two annotators, no example twice
    assert not crowdlab_applies(np.array([[0, NAN], [1, NAN]]))  # one annotator with labels
