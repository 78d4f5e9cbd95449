"""External labelers: people or other systems label through DatasetStoreService.AppendAnnotations; the
round waits until every selected example has a new label."""

from __future__ import annotations

from collections import Counter

from labelloop.controller.context import StopRequested
from labelloop.controller.labelers.base import LabelingContext, LabelRequest
from labelloop.core import metrics
from labelloop.core.errors import FailedPrecondition, InvalidArgument
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
        started = context.wait_started()
        while True:
            annotations = context.labels.annotations()
            counts = Counter(a.example_id for a in annotations)
            missing = [i for i in ids if counts[i] <= request.counts_before.get(i, 0)]
            metrics.EXPERIMENT_AWAITING.labels(context.experiment_id).set(len(missing))
            if not missing:
                return len(annotations)
            waited = context.clock() - started
            if timeout and waited > timeout:
                raise FailedPrecondition(
                    f"labelers gave no label to {len(missing)} of {len(ids)} selected examples within "
                    f"{timeout:g}s (e.g. {missing[:3]}): add them with AppendAnnotations to annotation set "
                    f"{context.labels.annotation_set!r}, or raise external_labelers.timeout_seconds "
                    "(0 waits forever)"
                )
            context.progress(f"label: waiting for {len(missing)} of {len(ids)} labels")
            if context.interrupted():
                raise StopRequested
            context.sleep(max(context.poll_seconds, MIN_POLL_SECONDS))
