"""LabelingService: annotators lease a round's tasks, submit labels or skip; labels go to the
experiment's annotation log (DatasetStoreService.AppendAnnotations), the one record of labels.

A submission is stored under a request id derived from its lease (one label per lease), so a retry
(same request_id, or none) is stored once and answers the same task, even after a controller restart
between the append and the board's update. Reports and exports are reports.py's.
"""

from __future__ import annotations

import re

import grpc
from google.protobuf import timestamp_pb2

from labelloop.controller.clients import Stubs, call
from labelloop.controller.experiments import Experiments
from labelloop.controller.labeling import reports
from labelloop.controller.labeling.tasks import (
    LABELED,
    SKIPPED,
    Given,
    Lease,
    RoundTasks,
    TaskBoard,
    TaskRecord,
)
from labelloop.core import metrics, names, paging
from labelloop.core.api import TERMINAL_EXPERIMENT_STATES, defined_values
from labelloop.core.errors import FailedPrecondition, InvalidArgument
from labelloop.core.storage import ObjectStore
from labelloop.v1 import dataset_store_pb2, experiments_pb2, labeling_pb2, labeling_pb2_grpc

# How long an image link stays valid: long enough to label a leased task.
IMAGE_URL_SECONDS = 3600
MAX_TASKS_PER_LEASE = 100
# Annotator ids and request ids: printable, no "/" (they appear in names and log entries).
_TEXT_ID = re.compile(r"^[^\s/][^/\x00-\x1f]{0,127}$")


def _timestamp(seconds: float) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(int(seconds * 1e9))
    return stamp


def _check_text(value: str, field: str, example: str) -> str:
    if not value:
        raise InvalidArgument(f"{field} is empty: set it ({example})")
    if not _TEXT_ID.match(value):
        raise InvalidArgument(
            f"{field} {names.shown(value)} is not valid: use 1-128 printable characters without '/'"
        )
    return value


def task_name(tasks: RoundTasks, task: TaskRecord) -> str:
    return f"experiments/{tasks.experiment_id}/rounds/{tasks.round}/tasks/{task.example_id}"


class Tasks:
    """Task records as API messages: features, an image link (or bytes), the prediction."""

    def __init__(self, store: ObjectStore):
        self.store = store

    def message(
        self,
        tasks: RoundTasks,
        task: TaskRecord,
        now: float,
        lease: Lease | None = None,
        image_bytes: bool = False,
    ) -> labeling_pb2.Task:
        message = labeling_pb2.Task(
            name=task_name(tasks, task),
            example_id=task.example_id,
            round=tasks.round,
            state=tasks.state(task, now),  # type: ignore[arg-type]
            features=task.features,
            labels_wanted=tasks.labels_wanted,
            labels_received=task.received(),
            classes=tasks.classes,
        )
        if task.image_key:
            message.image_url = self.store.presigned_url(task.image_key, IMAGE_URL_SECONDS)
            message.image_url_expire_time.CopyFrom(_timestamp(now + IMAGE_URL_SECONDS))
            if image_bytes:
                message.image_bytes = self.store.get_bytes(task.image_key)
        if task.prediction is not None:
            p = task.prediction
            message.prediction.CopyFrom(
                labeling_pb2.Prediction(
                    label=p.label,
                    confidence=p.confidence,
                    score=p.score if p.score is not None else 0.0,
                    model=p.model,
                    probabilities=p.probabilities,
                )
            )
        if lease is not None:  # only the holder sees its lease
            message.lease_id = lease.lease_id
            message.lease_expire_time.CopyFrom(_timestamp(lease.expire))
        return message


class LabelingServicer(labeling_pb2_grpc.LabelingServiceServicer):
    def __init__(self, experiments: Experiments, board: TaskBoard, stubs: Stubs):
        self.experiments, self.board, self.stubs = experiments, board, stubs
        self.tasks = Tasks(board.store)

    def _queue_experiment(self, parent: str) -> tuple[str, experiments_pb2.Experiment]:
        (experiment_id,) = names.parse(parent, "experiments")
        experiment = self.experiments.get(parent)
        labeler = experiment.config.WhichOneof("labeler")
        if labeler != "labeling_queue":
            raise FailedPrecondition(
                f"{parent} is labeled by {labeler or 'no labeler'}, not a labeling queue: only "
                "experiments created with config.labeling_queue hand out tasks"
            )
        if experiment.state in TERMINAL_EXPERIMENT_STATES:
            self.board.close_experiment(experiment_id)  # nothing to hand out once it ended
        return experiment_id, experiment

    def _held(self, name: str, lease_id: str, annotator: str) -> tuple[Given, experiments_pb2.Experiment]:
        experiment_id, number_text, example_id = names.parse(name, "experiments", "rounds", "tasks")
        if not number_text.isdigit():
            raise InvalidArgument(f"task {names.shown(name)}: the round must be a number")
        _check_text(annotator, "annotator", "the id you leased the task with")
        if not lease_id:
            raise InvalidArgument("lease_id is empty: pass the lease_id LeaseTasks returned with the task")
        experiment = self.experiments.get(f"experiments/{experiment_id}")
        return self.board.held(experiment_id, int(number_text), example_id, lease_id, annotator), experiment

    def LeaseTasks(self, request: labeling_pb2.LeaseTasksRequest, context: grpc.ServicerContext):
        _check_text(request.annotator, "annotator", "a stable id per person or program, e.g. 'alice'")
        if not 0 <= request.max_tasks <= MAX_TASKS_PER_LEASE:
            raise InvalidArgument(
                f"max_tasks={request.max_tasks}: ask for 1 to {MAX_TASKS_PER_LEASE} tasks (0 means 1)"
            )
        experiment_id, _ = self._queue_experiment(request.parent)
        given = self.board.lease(experiment_id, request.annotator, request.max_tasks or 1)
        now = self.board.clock()
        tasks = [
            self.tasks.message(g.round, g.task, now, g.lease, request.include_image_bytes) for g in given
        ]
        return labeling_pb2.LeaseTasksResponse(tasks=tasks, labels_awaited=self.board.awaited(experiment_id))

    def SubmitLabel(self, request: labeling_pb2.SubmitLabelRequest, context: grpc.ServicerContext):
        given, experiment = self._held(request.task, request.lease_id, request.annotator)
        if request.request_id:
            _check_text(request.request_id, "request_id", "one per submission; a retry reuses it")
        if request.label not in given.round.classes:
            raise InvalidArgument(
                f"label {names.shown(request.label)} is not one of the dataset's classes "
                f"{given.round.classes}: submit one of them (the task lists them in `classes`)"
            )
        lease = given.lease
        if lease.state == SKIPPED:
            raise FailedPrecondition(
                f"annotator {request.annotator!r} skipped {request.task}: a skipped task cannot be labeled"
            )
        if lease.state == LABELED:
            if lease.request_id != request.request_id:
                raise FailedPrecondition(
                    f"{request.task} was already labeled under this lease (request_id "
                    f"{lease.request_id!r}): a label is final; a retry must reuse its request_id"
                )
            return labeling_pb2.SubmitLabelResponse(task=self._message(given))
        annotation = dataset_store_pb2.Annotation(
            example_id=given.task.example_id, annotator=request.annotator, label=request.label
        )
        response = call(
            self.stubs.store.AppendAnnotations,
            dataset_store_pb2.AppendAnnotationsRequest(
                parent=experiment.config.dataset,
                annotation_set=experiment.annotation_set,
                annotations=[annotation],
                request_id=f"task-{lease.lease_id}",  # one label per lease: a retry is stored once
            ),
            what="storing the label",
            retry_seconds=10,
        )
        metrics.LABELS_RECEIVED.labels(experiment.annotation_set).inc(response.appended_count)
        self.board.mark_labeled(given, request.request_id)
        return labeling_pb2.SubmitLabelResponse(task=self._message(given))

    def SkipTask(self, request: labeling_pb2.SkipTaskRequest, context: grpc.ServicerContext):
        given, _ = self._held(request.task, request.lease_id, request.annotator)
        self.board.skip(given, request.reason)
        return labeling_pb2.SkipTaskResponse(task=self._message(given))

    def _message(self, given: Given) -> labeling_pb2.Task:
        return self.tasks.message(given.round, given.task, self.board.clock())

    def ListTasks(self, request: labeling_pb2.ListTasksRequest, context: grpc.ServicerContext):
        (experiment_id,) = names.parse(request.parent, "experiments")
        if self.experiments.get(request.parent).state in TERMINAL_EXPERIMENT_STATES:
            self.board.close_experiment(experiment_id)  # its open tasks show CLOSED
        if request.state and request.state not in defined_values(labeling_pb2.TaskState):
            raise InvalidArgument(f"state={request.state} is not a TaskState: leave it unset for all")
        if request.round < -1:
            raise InvalidArgument(f"round={request.round}: give a round number, or -1 for every round")
        now = self.board.clock()
        found = [
            (tasks, task)
            for tasks, task in self.board.tasks(experiment_id)
            if request.round in (-1, tasks.round) and request.state in (0, tasks.state(task, now))
        ]
        scope = f"{request.parent}/tasks/{request.round}/{request.state}"
        page, token = paging.paginate(scope, found, request.page_size, request.page_token)
        return labeling_pb2.ListTasksResponse(
            tasks=[self.tasks.message(tasks, task, now) for tasks, task in page], next_page_token=token
        )

    def GetLabelingReport(
        self, request: labeling_pb2.GetLabelingReportRequest, context: grpc.ServicerContext
    ):
        return reports.labeling_report(self.experiments, request)

    def ExportLabels(self, request: labeling_pb2.ExportLabelsRequest, context: grpc.ServicerContext):
        return reports.export_labels(self.experiments, request)
