"""Each round's labeling report: consensus labels and annotator quality of the labels the round trains on.

Computed in the SNAPSHOT step, right after the snapshot froze the labels, with the previous round's
model: CROWDLAB (the scorer's AssessLabels, cleanlab's get_label_quality_multiannotator) needs a
model's probabilities for the labeled examples, and the previous model is the newest one that can
give them before this round trains. Like the SCORE step, each example selected by an earlier round
gets the row of the earliest model that had not trained on it (held_out.py) unless the experiment asks
for IN_SAMPLE. The round then trains on CROWDLAB's consensus labels (CreateTrainingRunRequest.
labels_uri). Round 0 (no model yet), a single annotator, or no example with two labels give a
"majority_vote" report from the snapshot itself: the snapshot's labels (what the trainer fits on),
consensus quality = annotator agreement, annotator quality = agreement with the consensus.

Everything is written under layout.labeling_prefix(e, n) with fixed names, so a replay of the step
after a crash rewrites the same files.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pyarrow as pa
from google.protobuf import json_format

from labelloop.controller import held_out
from labelloop.controller.arrays import read_ids
from labelloop.controller.clients import call
from labelloop.controller.context import RoundContext
from labelloop.core import layout, metrics, tables
from labelloop.core.arrays import array_ref, write_ids
from labelloop.core.errors import FailedPrecondition
from labelloop.core.storage import ObjectStore
from labelloop.v1 import common_pb2, dataset_store_pb2, experiments_pb2, labeling_pb2, scorer_pb2

log = logging.getLogger(__name__)

STRING = pa.string()
ANNOTATOR_TYPES = {
    "annotator": STRING,
    "quality": pa.float64(),
    "label_count": pa.int64(),
    "agreement_with_consensus": pa.float64(),
}

CROWDLAB, MAJORITY_VOTE = "crowdlab", "majority_vote"
IN_SAMPLE = experiments_pb2.LABELED_PROBABILITIES_IN_SAMPLE
LABELED = "labeled"  # the labeled rows of the previous model, in the labeling folder


def report_name(experiment_id: str, number: int) -> str:
    return f"experiments/{experiment_id}/rounds/{number}/labelingReport"


def assess_round(
    ctx: RoundContext,
    config: experiments_pb2.ExperimentConfig,
    classes: list[str],
    snapshot: dataset_store_pb2.Snapshot,
    number: int,
) -> tuple[labeling_pb2.LabelingReport, str]:
    """The round's report (also stored as report.json) and the labels to train on: a Parquet URI
    with CROWDLAB's consensus, or "" to train on the snapshot's own labels."""
    store = ctx.store
    prefix = layout.labeling_prefix(ctx.id, number)
    if not snapshot.labeled_count:
        return _finish(ctx, number, _empty_report(ctx.id, number), "")
    annotators = [str(a) for a in store.get_json(store.ref_to_key(snapshot.annotators_uri))]
    matrix = np.asarray(store.get_array(store.ref_to_key(snapshot.labels_multiannotator_uri)), float)
    labels = tables.read_frame(store, store.ref_to_key(snapshot.labels_uri))
    ids = [str(i) for i in labels["example_id"]]
    earlier = ctx.earlier_records(number)
    pool = earlier[-1].array("pool") if earlier else None
    if pool is None or not crowdlab_applies(matrix):
        report = majority_vote(store, prefix, ids, labels, matrix, annotators, classes)
        report.name = report_name(ctx.id, number)
        return _finish(ctx, number, report, "")
    probabilities = _labeled_rows(store, pool, ids, prefix)
    if config.labeled_probabilities != IN_SAMPLE:
        selected = [ref for ref in (r.array(held_out.SELECTED) for r in earlier) if ref is not None]
        probabilities, replaced = held_out.out_of_sample(
            store, probabilities, selected, prefix, ctx.kept_rows
        )
        log.info("CROWDLAB with out-of-sample rows for %d of %d labeled examples", replaced, len(ids))
    response = call(
        ctx.stubs.scorer.AssessLabels,
        scorer_pb2.AssessLabelsRequest(
            labels_multiannotator=common_pb2.ArrayRef(
                uri=snapshot.labels_multiannotator_uri, example_ids_uri=probabilities.example_ids_uri
            ),
            labeled_probabilities=probabilities,
            annotators=annotators,
            classes=classes,
            output_uri=store.uri(prefix),
        ),
        what="assessing labels with CROWDLAB",
        timeout=900,
        interrupted=ctx.interrupted,
    )
    report = labeling_pb2.LabelingReport(
        name=report_name(ctx.id, number),
        method=response.method,
        labeled_count=response.labeled_count,
        annotation_count=response.annotation_count,
        annotator_count=len(response.annotators),
        mean_consensus_quality=response.mean_consensus_quality,
        annotators=response.annotators,
        consensus_uri=response.consensus_uri,
    )
    return _finish(ctx, number, report, response.labels_uri)


def crowdlab_applies(matrix: np.ndarray) -> bool:
    """CROWDLAB's precondition (cleanlab's): 2 annotators with labels, and an example with 2 labels."""
    given = ~np.isnan(matrix)
    return int(given.any(axis=0).sum()) >= 2 and bool((given.sum(axis=1) >= 2).any())


def majority_vote(
    store: ObjectStore,
    prefix: str,
    ids: list[str],
    labels: pd.DataFrame,
    matrix: np.ndarray,
    annotators: list[str],
    classes: list[str],
) -> labeling_pb2.LabelingReport:
    """The snapshot's own consensus, with agreement as its quality; writes consensus.parquet and
    annotators.parquet like AssessLabels does."""
    index = {c: i for i, c in enumerate(classes)}
    winner = np.array([index.get(str(label), -1) for label in labels["label"]], dtype=np.float64)
    given = ~np.isnan(matrix)
    agrees = given & (matrix == winner[:, None])
    counts = given.sum(axis=1)
    agreement = agrees.sum(axis=1) / np.maximum(counts, 1)
    consensus = {
        "example_id": ids,
        "consensus_label": [str(label) for label in labels["label"]],
        "consensus_quality": agreement,
        "annotator_agreement": agreement,
        "annotation_count": counts.astype(np.int64),
    }
    label_counts = given.sum(axis=0)
    with_labels = np.flatnonzero(label_counts)
    rate = agrees.sum(axis=0)[with_labels] / label_counts[with_labels]
    order = np.argsort(rate, kind="stable")  # worst first (quality is the agreement here)
    people = [
        labeling_pb2.AnnotatorQuality(
            annotator=annotators[with_labels[i]],
            quality=float(rate[i]),
            label_count=int(label_counts[with_labels[i]]),
            agreement_with_consensus=float(rate[i]),
        )
        for i in order
    ]
    consensus_key = prefix + "consensus.parquet"
    tables.put_table(store, consensus_key, consensus, {"example_id": STRING, "consensus_label": STRING})
    tables.put_table(store, prefix + "annotators.parquet", annotator_columns(people), ANNOTATOR_TYPES)
    return labeling_pb2.LabelingReport(
        method=MAJORITY_VOTE,
        labeled_count=len(ids),
        annotation_count=int(given.sum()),
        annotator_count=len(people),
        mean_consensus_quality=float(agreement.mean()) if len(ids) else 0.0,
        annotators=people,
        consensus_uri=store.uri(consensus_key),
    )


def annotator_columns(people: list[labeling_pb2.AnnotatorQuality]) -> dict[str, list]:
    """annotators.parquet's columns (types in ANNOTATOR_TYPES), as the scorer's AssessLabels writes it."""
    return {
        "annotator": [p.annotator for p in people],
        "quality": [p.quality for p in people],
        "label_count": [p.label_count for p in people],
        "agreement_with_consensus": [p.agreement_with_consensus for p in people],
    }


def report_to_json(report: labeling_pb2.LabelingReport) -> dict:
    return json_format.MessageToDict(report, preserving_proto_field_name=True)


def report_from_json(data: dict) -> labeling_pb2.LabelingReport:
    return json_format.ParseDict(data, labeling_pb2.LabelingReport())


def latest_report(
    store: ObjectStore, experiment_id: str, current_round: int
) -> tuple[int, labeling_pb2.LabelingReport] | None:
    """The newest round that has a report, and the report; None before round 0's snapshot."""
    for number in range(current_round, -1, -1):
        key = layout.labeling_report_key(experiment_id, number)
        if store.exists(key):
            return number, report_from_json(store.get_json(key))
    return None


def _labeled_rows(
    store: ObjectStore, pool: common_pb2.ArrayRef, ids: list[str], prefix: str
) -> common_pb2.ArrayRef:
    """The previous model's rows of the labeled examples, in the snapshot's row order."""
    position = {example_id: i for i, example_id in enumerate(read_ids(store, pool))}
    missing = [i for i in ids if i not in position]
    if missing:
        raise FailedPrecondition(
            f"{len(missing)} labeled examples have no row in {pool.uri}, e.g. {missing[:3]}: "
            "only pool examples can be labeled"
        )
    rows = held_out.gather_rows(store, pool, np.array([position[i] for i in ids], dtype=np.int64))
    key = layout.probabilities_key(prefix, LABELED)
    store.put_array(key, rows)
    ids_uri = write_ids(store, layout.example_ids_key(prefix, LABELED), ids)
    return array_ref(store, key, rows.shape, rows.dtype, ids_uri)


def _empty_report(experiment_id: str, number: int) -> labeling_pb2.LabelingReport:
    return labeling_pb2.LabelingReport(name=report_name(experiment_id, number), method=MAJORITY_VOTE)


def _finish(
    ctx: RoundContext, number: int, report: labeling_pb2.LabelingReport, labels_uri: str
) -> tuple[labeling_pb2.LabelingReport, str]:
    ctx.store.put_json(layout.labeling_report_key(ctx.id, number), report_to_json(report))
    experiment = ctx.id
    metrics.LABELING_ANNOTATORS.labels(experiment).set(report.annotator_count)
    metrics.LABELING_MEAN_CONSENSUS_QUALITY.labels(experiment).set(report.mean_consensus_quality)
    if report.annotators:
        metrics.LABELING_MIN_ANNOTATOR_QUALITY.labels(experiment).set(
            min(a.quality for a in report.annotators)
        )
    for annotator in report.annotators:
        metrics.LABELING_ANNOTATOR_QUALITY.labels(experiment).observe(annotator.quality)
    log.info(
        "round %d labeling report: %s over %d examples, %d annotators, mean consensus quality %.3f",
        number, report.method, report.labeled_count, report.annotator_count, report.mean_consensus_quality,
    )  # fmt: skip
    return report, labels_uri
