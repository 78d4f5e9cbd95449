"""The labeling queue: a round's batch becomes tasks that people lease and label through
LabelingService; the round goes on by the experiment's LabelingRules (rules.py).

The labeler puts the round's tasks on the controller's task board (with each example's features,
image and the round model's prediction), then waits on the annotation log: the log, not the board,
says how many labels an example has, so labels given outside the queue count too. While it waits,
Round.labels_awaited says how many labels are missing; when the round goes on, its remaining tasks
close (labels of leases already given are still taken, and count for the next round).
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Mapping

import pyarrow.parquet as pq

from labelloop.controller.clients import call
from labelloop.controller.context import StopRequested
from labelloop.controller.labelers.base import LabelingContext, LabelRequest
from labelloop.controller.labelers.rules import DeadlinePassed, Decision, Rules, batch_progress, decide
from labelloop.controller.labeling.tasks import RoundTasks, TaskRecord
from labelloop.core import metrics
from labelloop.core.errors import FailedPrecondition
from labelloop.v1 import dataset_store_pb2, experiments_pb2

# Reading the whole annotation log is not free: poll it at most once a second, and without a label
# taken by the queue only this often.
MIN_POLL_SECONDS = 1.0
REREAD_SECONDS = 10.0


class LabelingQueue:
    needs_truth = False
    truth_column = ""

    def __init__(self, settings: experiments_pb2.LabelingQueue):
        self.settings = settings

    @property
    def rules(self) -> Rules:
        return Rules.from_proto(self.settings.rules, "labeling_queue.rules")

    def check(self) -> None:
        self.rules  # noqa: B018 (from_proto raises InvalidArgument naming the field)

    def label(self, request: LabelRequest, context: LabelingContext) -> int:
        rules = self.rules
        board = context.tasks
        if board is None:
            raise FailedPrecondition("this controller runs no labeling queue: start it with LabelingService")
        batch = (request.round, request.first_set)
        if board.batch(context.experiment_id, batch) is None:
            board.open_round(round_tasks(request, context, rules))
        started = context.wait_started()
        taken, read_at = -1, float("-inf")
        while True:
            # The log is read when the queue took a label, and now and then for labels given outside
            # it (AppendAnnotations): reading it is one request per stored label.
            stale = context.clock() - read_at >= REREAD_SECONDS
            fresh = stale or board.labels_taken(context.experiment_id) != taken
            if fresh:
                taken, read_at = board.labels_taken(context.experiment_id), context.clock()
                annotations = context.labels.annotations()
                counts = Counter(a.example_id for a in annotations)
                progress = batch_progress(
                    request.example_ids, request.counts_before, counts, rules.annotators_per_example
                )
                new = {i: counts[i] - request.counts_before.get(i, 0) for i in request.example_ids}
                board.observe(context.experiment_id, batch, new)
                metrics.EXPERIMENT_AWAITING.labels(context.experiment_id).set(progress.labels_awaited)
            decision = decide(progress, rules, context.clock() - started)
            if decision != Decision.WAIT and not fresh:  # decide on the log as it is now
                read_at = float("-inf")
                continue
            if decision == Decision.GO_ON:
                board.close(context.experiment_id, batch)
                context.awaiting(0)
                return len(annotations)
            if decision == Decision.PAUSE:
                raise DeadlinePassed(
                    f"no example of round {request.round}'s {progress.size} was fully labeled within "
                    f"labeling_queue.rules.deadline_seconds={rules.deadline_seconds:g}: the experiment is "
                    "paused; its tasks stay open; ResumeExperiment waits again with a fresh deadline"
                )
            context.awaiting(progress.labels_awaited)
            context.progress(
                f"label: waiting for {progress.labels_awaited} labels "
                f"({len(progress.complete)} of {progress.size} examples done)"
            )
            if context.interrupted():
                raise StopRequested
            context.sleep(max(context.poll_seconds, MIN_POLL_SECONDS))


def round_tasks(request: LabelRequest, context: LabelingContext, rules: Rules) -> RoundTasks:
    """The round's tasks, most useful (lowest score) first, with what an annotator needs to see."""
    predictions = request.predictions()
    rows = example_rows(context, request.example_ids)
    # Whoever labeled an example before (a re-labeled one) is not offered it again.
    before = context.labels.annotators_by_example() if request.relabel else {}
    tasks = []
    for example_id in request.example_ids:
        features, image_key = rows.get(example_id, ({}, ""))
        tasks.append(
            TaskRecord(
                example_id=example_id,
                features=features,
                image_key=image_key,
                prediction=predictions.get(example_id),
                given=sorted(before.get(example_id, set())),
            )
        )

    def usefulness(task: TaskRecord) -> float:
        score = task.prediction.score if task.prediction is not None else None
        return score if score is not None else float("inf")

    tasks.sort(key=usefulness)  # stable: unscored examples keep the batch's order
    return RoundTasks(
        experiment_id=context.experiment_id,
        round=request.round,
        labels_wanted=rules.annotators_per_example,
        lease_seconds=rules.lease_seconds,
        classes=list(context.view.classes),
        tasks=tasks,
        first_set=request.first_set,
    )


def example_rows(context: LabelingContext, ids: list[str]) -> Mapping[str, tuple[dict[str, str], str]]:
    """Features (as text) and image key of each example, from the dataset's examples.parquet."""
    labels = context.labels
    dataset = call(
        labels.stub.GetDataset,
        dataset_store_pb2.GetDatasetRequest(name=labels.dataset),
        what=f"reading {labels.dataset}",
        interrupted=labels.interrupted,
    ).dataset
    columns = [c for c in dataset.feature_columns if c != dataset.label_column]
    wanted = ["example_id", *columns, *([dataset.image_column] if dataset.image_column else [])]
    data = io.BytesIO(labels.store.get_bytes(labels.store.ref_to_key(dataset.examples_uri)))
    table = pq.read_table(data, columns=list(dict.fromkeys(wanted)))
    chosen = set(ids)
    rows: dict[str, tuple[dict[str, str], str]] = {}
    for row in table.to_pylist():
        example_id = str(row["example_id"])
        if example_id in chosen:
            features = {c: "" if row[c] is None else str(row[c]) for c in columns}
            image = str(row[dataset.image_column] or "") if dataset.image_column else ""
            rows[example_id] = (features, image)
    return rows
