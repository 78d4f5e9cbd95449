"""CROWDLAB: consensus labels, their quality and each annotator's quality for a labeled set
(cleanlab.multiannotator.get_label_quality_multiannotator), read from and written to the object store.

`crowdlab` is the math: one call of cleanlab with LabelLoop's settings, its two tables renamed to the
columns of the API. `LabelAssessor.assess` checks a request's arrays, runs it and publishes three
Parquet files under the request's folder: consensus.parquet (one row per example), labels.parquet
(example_id, label: what the trainer fits on) and annotators.parquet (worst annotator first).

Settings: consensus_method "best_quality" (the label CROWDLAB rates highest, cleanlab's default) and
calibrate_probs=True: the probabilities come from models of an active-learning loop, trained on few
labels and over-confident, which cleanlab recommends calibrating against the annotators' labels.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from cleanlab.multiannotator import get_label_quality_multiannotator

from labelloop.core import tables
from labelloop.core.arrays import check_probability_array, open_array, read_ids, read_probabilities
from labelloop.core.errors import InvalidArgument
from labelloop.core.metrics import SCORER_ASSESS_SECONDS
from labelloop.core.storage import ObjectStore
from labelloop.scorer.inputs import read_labels
from labelloop.v1 import labeling_pb2, scorer_pb2

log = logging.getLogger(__name__)

METHOD = "crowdlab"
CONSENSUS_FILE, LABELS_FILE, ANNOTATORS_FILE = "consensus.parquet", "labels.parquet", "annotators.parquet"


@dataclass(frozen=True)
class Assessment:
    # consensus_label (class index), consensus_quality, annotator_agreement, annotation_count; row order
    # of labels_multiannotator.
    consensus: pd.DataFrame
    # quality, agreement_with_consensus, label_count, indexed by annotator column; worst first.
    annotators: pd.DataFrame


def crowdlab(labels_multiannotator: np.ndarray, probabilities: np.ndarray) -> Assessment:
    """cleanlab's CROWDLAB on float class indices (NaN = no label) and one model's probabilities.

    Needs at least 2 annotator columns with labels and one example with 2 labels (cleanlab's own
    precondition); ties left after cleanlab's tie-breaks (equal probabilities, equal annotator
    agreement) are broken by numpy's global random state, as in cleanlab.
    """
    info = get_label_quality_multiannotator(
        labels_multiannotator,
        probabilities,
        consensus_method="best_quality",
        quality_method="crowdlab",
        calibrate_probs=True,
        return_detailed_quality=False,
        return_annotator_stats=True,
        verbose=False,
    )
    quality = info["label_quality"]
    consensus = pd.DataFrame(
        {
            "consensus_label": quality["consensus_label"].to_numpy(dtype=np.int64),
            "consensus_quality": quality["consensus_quality_score"].to_numpy(dtype=np.float64),
            "annotator_agreement": quality["annotator_agreement"].to_numpy(dtype=np.float64),
            "annotation_count": quality["num_annotations"].to_numpy(dtype=np.int64),
        }
    )
    stats = info["annotator_stats"]
    annotators = pd.DataFrame(
        {
            "quality": stats["annotator_quality"].to_numpy(dtype=np.float64),
            "agreement_with_consensus": stats["agreement_with_consensus"].to_numpy(dtype=np.float64),
            "label_count": stats["num_examples_labeled"].to_numpy(dtype=np.int64),
        },
        index=stats.index,
    )
    return Assessment(consensus, annotators)


def crowdlab_applies(labels_multiannotator: np.ndarray) -> bool:
    """True when CROWDLAB can run: 2 annotators with labels, and some example with 2 labels."""
    given = ~np.isnan(labels_multiannotator)
    return int(given.any(axis=0).sum()) >= 2 and bool((given.sum(axis=1) >= 2).any())


class LabelAssessor:
    def __init__(self, store: ObjectStore):
        self.store = store

    def assess(self, request: scorer_pb2.AssessLabelsRequest) -> scorer_pb2.AssessLabelsResponse:
        started = time.perf_counter()
        if not request.output_uri:
            raise InvalidArgument("output_uri is empty: set it to a folder URI in the object store")
        prefix = self.store.ref_to_key(request.output_uri).rstrip("/") + "/"
        labels_array = open_array(self.store, request.labels_multiannotator, "labels_multiannotator", ndim=2)
        ids = read_ids(self.store, labels_array)
        if ids is None:
            raise InvalidArgument(
                "labels_multiannotator.example_ids_uri is empty: name the examples of its rows"
            )
        probs_array = open_array(self.store, request.labeled_probabilities, "labeled_probabilities", ndim=2)
        check_probability_array(probs_array)
        if probs_array.rows != labels_array.rows:
            raise InvalidArgument(
                f"labeled_probabilities has {probs_array.rows} rows but labels_multiannotator has "
                f"{labels_array.rows}: rows must be the same examples in the same order"
            )
        classes = list(request.classes)
        if len(classes) != probs_array.shape[1]:
            raise InvalidArgument(
                f"classes lists {len(classes)} names but labeled_probabilities has {probs_array.shape[1]} "
                "columns: name every class, in column order"
            )
        annotators = list(request.annotators)
        if len(annotators) != labels_array.shape[1] or len(set(annotators)) != len(annotators):
            raise InvalidArgument(
                f"annotators lists {len(annotators)} ids ({len(set(annotators))} distinct) but "
                f"labels_multiannotator has {labels_array.shape[1]} columns: give one distinct id per column"
            )
        raw = self.store.get_array(labels_array.key)
        if raw.dtype.kind == "f":  # annotators without any label here are left out (cleanlab rejects them)
            annotators = [a for a, kept in zip(annotators, ~np.isnan(raw).all(axis=0), strict=True) if kept]
        labels = read_labels(self.store, labels_array, len(classes))
        if not crowdlab_applies(labels):
            raise InvalidArgument(
                "CROWDLAB needs labels from at least 2 annotators and one example with 2 labels; "
                "with fewer, take the majority vote (the snapshot's labels)"
            )
        probabilities = read_probabilities(self.store, probs_array, chunk_rows=65536)
        assessment = crowdlab(labels, probabilities)
        return self._publish(prefix, ids, annotators, classes, labels, assessment, started)

    def _publish(
        self,
        prefix: str,
        ids: list[str],
        annotators: list[str],
        classes: Sequence[str],
        labels: np.ndarray,
        assessment: Assessment,
        started: float,
    ) -> scorer_pb2.AssessLabelsResponse:
        consensus = assessment.consensus
        names = np.asarray(classes, dtype=object)[consensus["consensus_label"].to_numpy()]
        table = pd.DataFrame(
            {
                "example_id": pd.Series(ids, dtype=object),
                "consensus_label": pd.Series(names, dtype=object),
                "consensus_quality": consensus["consensus_quality"],
                "annotator_agreement": consensus["annotator_agreement"],
                "annotation_count": consensus["annotation_count"],
            }
        )
        stats = assessment.annotators
        people = pd.DataFrame(
            {
                "annotator": pd.Series([annotators[int(i)] for i in stats.index], dtype=object),
                "quality": stats["quality"].to_numpy(),
                "label_count": stats["label_count"].to_numpy(),
                "agreement_with_consensus": stats["agreement_with_consensus"].to_numpy(),
            }
        )
        consensus_key, labels_key = prefix + CONSENSUS_FILE, prefix + LABELS_FILE
        annotators_key = prefix + ANNOTATORS_FILE
        tables.put_frame(self.store, consensus_key, table)
        tables.put_frame(self.store, labels_key, table[["example_id"]].assign(label=table["consensus_label"]))
        tables.put_frame(self.store, annotators_key, people)
        SCORER_ASSESS_SECONDS.observe(time.perf_counter() - started)
        log.info(
            "CROWDLAB on %d examples, %d annotators into %s", len(ids), len(people), self.store.uri(prefix)
        )
        return scorer_pb2.AssessLabelsResponse(
            method=METHOD,
            labeled_count=len(ids),
            annotation_count=int((~np.isnan(labels)).sum()),
            mean_consensus_quality=float(table["consensus_quality"].mean()),
            annotators=[
                labeling_pb2.AnnotatorQuality(
                    annotator=str(name),
                    quality=float(q),
                    label_count=int(n),
                    agreement_with_consensus=float(agree),
                )
                for name, q, n, agree in zip(
                    people["annotator"].tolist(),
                    people["quality"].tolist(),
                    people["label_count"].tolist(),
                    people["agreement_with_consensus"].tolist(),
                    strict=True,
                )
            ],
            consensus_uri=self.store.uri(consensus_key),
            labels_uri=self.store.uri(labels_key),
            annotators_uri=self.store.uri(annotators_key),
        )
