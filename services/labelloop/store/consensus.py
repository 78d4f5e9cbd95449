"""Turns an annotation log into a snapshot's labeled set: consensus labels and cleanlab's
labels_multiannotator matrix."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from labelloop.core import tables
from labelloop.core.votes import latest_votes, majority
from labelloop.store.models import Annotation


@dataclass(frozen=True)
class LabeledSet:
    labels: bytes  # labels.parquet: example_id, label, annotation_count; sorted by example_id
    labels_multiannotator: np.ndarray  # float64 [n_labeled, n_annotators], NaN where missing
    annotators: list[str]  # sorted; one per matrix column


def consensus(annotations: Sequence[Annotation], classes: Sequence[str]) -> LabeledSet:
    """Majority vote over each annotator's latest label of an example (core/votes.py).

    annotations are in append order. annotation_count is the number of votes (distinct
    annotators), matching the non-NaN cells of the matrix row.
    """
    votes = latest_votes((a.example_id, a.annotator, a.label) for a in annotations)
    example_ids = sorted(votes)
    annotators = sorted({annotator for example_votes in votes.values() for annotator in example_votes})
    column = {annotator: i for i, annotator in enumerate(annotators)}
    class_index = {label: i for i, label in enumerate(classes)}
    matrix = np.full((len(example_ids), len(annotators)), np.nan, dtype=np.float64)
    winners, counts = [], []
    for row, example_id in enumerate(example_ids):
        example_votes = votes[example_id]
        winners.append(majority(example_votes)[0])
        counts.append(len(example_votes))
        for annotator, (label, _) in example_votes.items():
            matrix[row, column[annotator]] = class_index[label]
    labels = tables.parquet_bytes(
        {"example_id": example_ids, "label": winners, "annotation_count": counts},
        {"example_id": pa.string(), "label": pa.string(), "annotation_count": pa.int64()},
    )
    return LabeledSet(labels=labels, labels_multiannotator=matrix, annotators=annotators)
