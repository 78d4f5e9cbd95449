"""The runner's side of labeling: what a labeler is handed (the round model's predictions of the
batch, the labeling context), and the pause when a labeling deadline passed with nothing labeled.

A missed deadline pauses the experiment instead of failing it: labels already given stay usable, and
ResumeExperiment waits again with a fresh deadline.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np

from labelloop.controller.arrays import read_ids
from labelloop.controller.context import RoundContext
from labelloop.controller.dataset import DatasetView
from labelloop.controller.labelers import LabelingContext
from labelloop.controller.labeling.tasks import ExamplePrediction, shared_board
from labelloop.controller.labelset import LabelSet
from labelloop.controller.records import RoundRecord
from labelloop.core import metrics
from labelloop.core.storage import ObjectStore
from labelloop.v1 import common_pb2, experiments_pb2

log = logging.getLogger(__name__)

RUNNING = experiments_pb2.EXPERIMENT_STATE_RUNNING
PAUSED = experiments_pb2.EXPERIMENT_STATE_PAUSED


def labeling_context(
    ctx: RoundContext,
    record: RoundRecord,
    labels: LabelSet,
    view: DatasetView,
    progress: Callable[[str], None],
) -> LabelingContext:
    def wait_started() -> float:
        with ctx.lock:
            if not record.label_wait_started:
                record.label_wait_started = ctx.clock()
                ctx.commit(record)
            return record.label_wait_started

    def awaiting(count: int) -> None:
        with ctx.lock:
            if record.round.labels_awaited != count:
                record.round.labels_awaited = count
                ctx.touch()  # watchers see "waiting for labels" at once; the step's commit keeps it

    return LabelingContext(
        experiment_id=ctx.id,
        labels=labels,
        view=view,
        wait_started=wait_started,
        progress=progress,
        interrupted=ctx.interrupted,
        clock=ctx.clock,
        sleep=ctx.sleep,
        poll_seconds=ctx.poll_seconds,
        awaiting=awaiting,
        tasks=shared_board(ctx.store),
    )


def pause_for_labels(ctx: RoundContext, message: str) -> None:
    """Pauses a running experiment whose labeling deadline passed; on resume the wait starts over."""
    log.warning("experiment paused: %s", message)
    with ctx.lock:
        if ctx.experiment.state != RUNNING:
            return
        record = ctx.round(ctx.experiment.current_round)
        changed = []
        if record is not None:
            record.label_wait_started = 0.0  # a fresh deadline after ResumeExperiment
            changed.append(record)
        ctx.experiment.state = PAUSED
        ctx.experiment.status_message = message
        ctx.commit(*changed)
    metrics.EXPERIMENT_STATE.labels(ctx.id).set(0)


def batch_predictions(
    store: ObjectStore, record: RoundRecord, experiment_name: str, classes: list[str], ids: list[str]
) -> dict[str, ExamplePrediction]:
    """The round model's top class, confidence, probabilities and score of each batch example."""
    pool = record.array("pool")
    if pool is None or not pool.uri:
        return {}
    model = f"{experiment_name}/rounds/{record.round.number}"
    wanted = set(ids)
    rows = {i: n for n, i in enumerate(read_ids(store, pool)) if i in wanted}
    probabilities = store.get_array(store.ref_to_key(pool.uri))
    scores = _scores(store, record, wanted)
    found = {}
    for example_id, row in rows.items():
        values = np.asarray(probabilities[row], dtype=float)
        top = int(np.argmax(values))
        found[example_id] = ExamplePrediction(
            label=classes[top],
            confidence=float(values[top]),
            score=scores.get(example_id),
            model=model,
            probabilities={c: float(v) for c, v in zip(classes, values, strict=True)},
        )
    return found


def _scores(store: ObjectStore, record: RoundRecord, wanted: set[str]) -> dict[str, float]:
    found: dict[str, float] = {}
    for scores_name, rows_name in (("unlabeled_scores", "unlabeled"), ("labeled_scores", "labeled")):
        scores, rows = record.array(scores_name), record.array(rows_name)
        if scores is None or not scores.uri:
            continue
        ids_of: common_pb2.ArrayRef | None = scores if scores.example_ids_uri else rows
        if ids_of is None or not ids_of.example_ids_uri:
            continue
        values = store.get_array(store.ref_to_key(scores.uri))
        for example_id, value in zip(read_ids(store, ids_of), values.tolist(), strict=True):
            if example_id in wanted:
                found[example_id] = float(value)
    return found
