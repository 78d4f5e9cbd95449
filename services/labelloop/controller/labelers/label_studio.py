"""Label Studio as the labeler: each round's batch becomes tasks of a Label Studio project (with the
round model's prediction), and the round goes on by the experiment's LabelingRules as annotations
come back.

Annotations come back by periodic reconciliation (the source of truth: every reconcile_seconds, and
at once when a webhook arrives, since Label Studio sends each webhook only once with a 1 s timeout).
The connector is controller/label_studio/; the token is read from the controller's environment.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import Counter
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import urlparse

from labelloop.controller.clients import call
from labelloop.controller.context import StopRequested
from labelloop.controller.label_studio.content import labeling_config, read_examples
from labelloop.controller.label_studio.project import Project, api_token
from labelloop.controller.label_studio.reconcile import Reconciler
from labelloop.controller.label_studio.tasks import model_version, round_tasks
from labelloop.controller.label_studio.webhook import WAKEUPS
from labelloop.controller.labelers.base import LabelingContext, LabelRequest
from labelloop.controller.labelers.rules import DeadlinePassed, Decision, Rules, batch_progress, decide
from labelloop.core import metrics
from labelloop.core.errors import FailedPrecondition, InvalidArgument, Unavailable
from labelloop.v1 import dataset_store_pb2, experiments_pb2

log = logging.getLogger(__name__)

DEFAULT_RECONCILE_SECONDS = 10.0
# CreateExperiment checks the URL, token and project with requests this short: a refusal is quick.
CHECK_TIMEOUT_SECONDS = 5.0
TITLE_LENGTH = 50  # Label Studio's limit on project titles
T = TypeVar("T")


class LabelStudioLabeler:
    needs_truth = False
    truth_column = ""

    def __init__(self, settings: experiments_pb2.LabelStudioProject):
        self.settings = settings
        self._project: Project | None = None
        self._reconciler: Reconciler | None = None

    @property
    def reconcile_seconds(self) -> float:
        return self.settings.reconcile_seconds or DEFAULT_RECONCILE_SECONDS

    def check(self) -> None:
        """The settings, then the URL, token and project with two quick requests: a mistake a user can
        fix is refused at CreateExperiment rather than found rounds later."""
        settings = self.settings
        Rules.from_proto(settings.rules, "label_studio.rules")
        _check_url(settings.url, "label_studio.url", required=True)
        _check_url(settings.webhook_url, "label_studio.webhook_url", required=False)
        if not math.isfinite(settings.reconcile_seconds) or settings.reconcile_seconds < 0:
            raise InvalidArgument("label_studio.reconcile_seconds must be >= 0 (0 means 10)")
        if settings.project_id < 0:
            raise InvalidArgument("label_studio.project_id must be >= 0 (0 creates a project)")
        try:
            import label_studio_sdk  # noqa: F401
        except ImportError:
            raise FailedPrecondition(
                "this controller cannot reach Label Studio: install label-studio-sdk with it "
                "(pip install 'labelloop[labelstudio]')"
            ) from None
        project = Project(
            settings.url, api_token(settings.api_token_env), settings.project_id, CHECK_TIMEOUT_SECONDS
        )
        try:
            project.probe()
        except Unavailable as error:  # at creation, an unreachable server is the user's to fix
            raise FailedPrecondition(str(error)) from None

    def label(self, request: LabelRequest, context: LabelingContext) -> int:
        rules = Rules.from_proto(self.settings.rules, "label_studio.rules")
        project = self._retrying(lambda: self._connect(context), context)
        reconciler = self._reconciler_for(project, context)
        ids = list(request.example_ids)
        self._retrying(lambda: self._import(project, request, context), context)
        started = context.wait_started()
        wakeup = WAKEUPS.event(project.project_id)
        while True:
            if context.interrupted():
                raise StopRequested
            wakeup.clear()
            trouble = ""
            try:
                stored = reconciler.run(project.annotations(context.experiment_id))
                if stored:
                    log.info("stored %d annotations from Label Studio", stored)
            except Unavailable as error:  # Label Studio down for a while: labels wait there
                trouble = f" ({error})"
            annotations = context.labels.annotations()
            counts = Counter(a.example_id for a in annotations)
            progress = batch_progress(ids, request.counts_before, counts, rules.annotators_per_example)
            context.awaiting(progress.labels_awaited)
            metrics.EXPERIMENT_AWAITING.labels(context.experiment_id).set(progress.labels_awaited)
            decision = decide(progress, rules, context.clock() - started)
            if decision == Decision.GO_ON:
                return len(annotations)
            if decision == Decision.PAUSE:
                raise DeadlinePassed(
                    f"no example of the batch got its {rules.annotators_per_example} label(s) in Label "
                    f"Studio project {project.project_id} within {rules.deadline_seconds:g}s: label its "
                    f"tasks at {project.url}/projects/{project.project_id}, then ResumeExperiment"
                )
            context.progress(
                f"label: waiting for {progress.labels_awaited} labels in Label Studio project "
                f"{project.project_id} ({len(progress.complete)} of {progress.size} examples done){trouble}"
            )
            self._wait(wakeup, context)

    def _connect(self, context: LabelingContext) -> Project:
        if self._project is not None:
            return self._project
        settings = self.settings
        project = Project(settings.url, api_token(settings.api_token_env), settings.project_id)
        dataset = self._dataset(context)
        layout, _ = read_examples(context.labels.store, dataset, [])
        title = f"LabelLoop {context.experiment_id}"[:TITLE_LENGTH]
        overlap = Rules.from_proto(settings.rules, "label_studio.rules").annotators_per_example
        project.ensure(context.experiment_id, title, labeling_config(context.view.classes, layout), overlap)
        if settings.webhook_url:
            try:
                project.ensure_webhook(settings.webhook_url)
            except FailedPrecondition as error:  # e.g. its SSRF protection: reconciliation still works
                log.warning("Label Studio refused the webhook (reconciliation goes on without): %s", error)
        self._project = project
        return project

    def _reconciler_for(self, project: Project, context: LabelingContext) -> Reconciler:
        if self._reconciler is None:
            self._reconciler = Reconciler(
                context.experiment_id,
                project.project_id,
                context.view.classes,
                context.labels,
                lambda: self._retrying(project.user_emails, context),
            )
        return self._reconciler

    def _import(self, project: Project, request: LabelRequest, context: LabelingContext) -> None:
        """Imports the batch's tasks that the project does not have yet (a replay imports none)."""
        number = request.round
        have = project.task_keys(context.experiment_id)
        missing = [i for i in request.example_ids if (i, request.request_id) not in have]
        if not missing:
            return
        predictions = request.predictions()
        layout, rows = read_examples(context.labels.store, self._dataset(context), missing)
        if unknown := [i for i in missing if i not in rows]:
            raise FailedPrecondition(f"examples {unknown[:5]} of the batch are not in {context.view.name}")
        tasks = round_tasks(
            context.labels.store,
            context.experiment_id,
            number,
            request.request_id,
            layout,
            rows,
            missing,
            predictions,
        )
        project.import_tasks(tasks)
        if predictions:  # Label Studio accepts only a version that some prediction already has
            project.use_model_version(model_version(context.experiment_id, number))
        log.info(
            "imported %d tasks of round %d into Label Studio project %d",
            len(tasks),
            number,
            project.project_id,
        )

    def _dataset(self, context: LabelingContext) -> dataset_store_pb2.Dataset:
        return call(
            context.labels.stub.GetDataset,
            dataset_store_pb2.GetDatasetRequest(name=context.labels.dataset),
            what=f"reading {context.labels.dataset}",
            interrupted=context.interrupted,
        ).dataset

    def _retrying(self, step: Callable[[], T], context: LabelingContext) -> T:
        """Runs a step until Label Studio answers; meanwhile the round says why it waits."""
        while True:
            try:
                return step()
            except Unavailable as error:
                log.warning("%s", error)
                context.progress(f"label: {error}")
                self._wait(None, context)

    def _wait(self, wakeup: threading.Event | None, context: LabelingContext) -> None:
        """Until a webhook wakes the project (wakeup) or reconcile_seconds pass; a pause or cancel is
        noticed within a second."""
        end = context.clock() + self.reconcile_seconds
        while (left := end - context.clock()) > 0:
            if context.interrupted():
                raise StopRequested
            if wakeup is None:
                context.sleep(min(left, 1.0))
            elif wakeup.wait(min(left, 1.0)):
                return


def _check_url(url: str, field: str, required: bool) -> None:
    if not url and not required:
        return
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise InvalidArgument(
            f"{field}={url!r} is not an http(s) URL: give it as the controller reaches it, "
            "e.g. http://label-studio:8080"
        )
