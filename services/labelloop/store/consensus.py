"""Turns an annotation log into a snapshot's labeled set: consensus labels and cleanlab's
labels_multiannotator matrix."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from labelloop.store.models import Annotation


@dataclass(frozen=True)
class LabeledSet:
    labels: pd.DataFrame  # example_id, label, annotation_count; sorted by example_id
    labels_multiannotator: np.ndarray  # float64 [n_labeled, n_annotators], NaN where missing
    annotators: list[str]  # sorted; one per matrix column


def consensus(annotations: Sequence[Annotation], classes: Sequence[str]) -> LabeledSet:
    """Majority vote over each annotator's latest label of an example.

    annotations are in append order. A tie goes to the label voted most recently, so the
    result is deterministic and follows the newest opinion. annotation_count is the number
    of votes (distinct annotators), matching the non-NaN cells of the matrix row.
    """
    # (example, annotator) -> (label, position): a later annotation replaces an earlier one.
    latest: dict[tuple[str, str], tuple[str, int]] = {}
    for position, annotation in enumerate(annotations):
        latest[(annotation.example_id, annotation.annotator)] = (annotation.label, position)
    votes: dict[str, dict[str, tuple[str, int]]] = {}
    for (example_id, annotator), vote in latest.items():
        votes.setdefault(example_id, {})[annotator] = vote

    example_ids = sorted(votes)
    annotators = sorted({annotator for _, annotator in latest})
    column = {annotator: i for i, annotator in enumerate(annotators)}
    class_index = {label: i for i, label in enumerate(classes)}
    matrix = np.full((len(example_ids), len(annotators)), np.nan, dtype=np.float64)
    winners, counts = [], []
    for row, example_id in enumerate(example_ids):
        example_votes = votes[example_id]
        tally = Counter(label for label, _ in example_votes.values())
        last_vote = {label: max(p for lb, p in example_votes.values() if lb == label) for label in tally}
        winners.append(max(tally, key=lambda label: (tally[label], last_vote[label])))
        counts.append(len(example_votes))
        for annotator, (label, _) in example_votes.items():
            matrix[row, column[annotator]] = class_index[label]
    labels = pd.DataFrame(
        {
            "example_id": pd.Series(example_ids, dtype=object),
            "label": pd.Series(winners, dtype=object),
            "annotation_count": pd.Series(counts, dtype="int64"),
        }
    )
    return LabeledSet(labels=labels, labels_multiannotator=matrix, annotators=annotators)
