"""External labelers: people or other systems label through DatasetStoreService.AppendAnnotations; the
round waits until every selected example has a new label.

With a timeout, the round goes on at the timeout with the examples labeled by then (the rest stay
selected and may be labeled later: their labels count for the next round); with none labeled, the
experiment pauses instead of failing (rules.DeadlinePassed), and ResumeExperiment waits again.
"""

from __future__ import annotations

from collections import Counter

from labelloop.controller.context import StopRequested
from labelloop.controller.labelers.base import LabelingContext, LabelRequest
from labelloop.controller.labelers.rules import DeadlinePassed, Decision, Rules, batch_progress, decide
from labelloop.core import metrics
from labelloop.core.errors import InvalidArgument
from labelloop.v1 import experiments_pb2

# Reading the whole annotation log is not free: poll it at most once a second.
MIN_POLL_SECONDS = 1.0


class ExternalLabelers:
    needs_truth = False
    truth_column = ""

    def __init__(self, settings: experiments_pb2.ExternalLabelers):
        self.settings = settings

    def check(self) -> None:
        if self.settings.timeout_seconds < 0:
            raise InvalidArgument("external_labelers.timeout_seconds must be >= 0 (0 waits forever)")

    def label(self, request: LabelRequest, context: LabelingContext) -> int:
        """Waits until every example has one more annotation than in request.counts_before."""
        ids = request.example_ids
        timeout = self.settings.timeout_seconds
        rules = Rules(deadline_seconds=timeout)  # one label per example, the whole batch
        started = context.wait_started()
        while True:
            annotations = context.labels.annotations()
            counts = Counter(a.example_id for a in annotations)
            progress = batch_progress(ids, request.counts_before, counts, rules.annotators_per_example)
            metrics.EXPERIMENT_AWAITING.labels(context.experiment_id).set(progress.labels_awaited)
            decision = decide(progress, rules, context.clock() - started)
            if decision == Decision.GO_ON:
                context.awaiting(0)
                return len(annotations)
            done = set(progress.complete)
            missing = [i for i in ids if i not in done]
            if decision == Decision.PAUSE:
                raise DeadlinePassed(
                    f"labelers gave no label to any of the {len(ids)} selected examples within "
                    f"{timeout:g}s (e.g. {missing[:3]}): the experiment is paused; add labels with "
                    f"AppendAnnotations to annotation set {context.labels.annotation_set!r} and resume it "
                    "(ResumeExperiment waits again), or raise external_labelers.timeout_seconds "
                    "(0 waits forever)"
                )
            context.awaiting(progress.labels_awaited)
            context.progress(f"label: waiting for {len(missing)} of {len(ids)} labels")
            if context.interrupted():
                raise StopRequested
            context.sleep(max(context.poll_seconds, MIN_POLL_SECONDS))
