"""Reconciliation: Label Studio's annotations into the experiment's annotation log, each exactly once.

Each annotation becomes one AppendAnnotations whose request id derives from the annotation's id, so a
connector killed between storing and remembering sends it again and the store keeps it once. An
(example, annotator) pair already in the log is not sent again: the log holds one label per pair (a
person labeling the same example's second task, on re-labeling, adds nothing new).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from labelloop.controller.label_studio.project import StudioAnnotation
from labelloop.controller.labelset import Label, LabelSet

log = logging.getLogger(__name__)

ANNOTATOR_PREFIX = "labelstudio:"


def annotator_id(email: str) -> str:
    """A Label Studio user as a LabelLoop annotator: "labelstudio:{email}"."""
    return f"{ANNOTATOR_PREFIX}{email.strip().lower()}"


def annotation_request_id(experiment: str, project_id: int, annotation_id: int) -> str:
    return f"{experiment}-ls{project_id}-a{annotation_id}"


@dataclass
class Reconciler:
    experiment: str
    project_id: int
    classes: Sequence[str]
    labels: LabelSet
    emails: Callable[[], dict[int, str]]  # Label Studio user id -> email, read when one is unknown
    # Annotation ids settled in this process (stored, already in the log, or not a label).
    settled: set[int] = field(default_factory=set)
    _users: dict[int, str] = field(default_factory=dict)

    def run(self, annotations: Sequence[StudioAnnotation]) -> int:
        """Stores the annotations not stored yet; returns how many it stored."""
        fresh = [a for a in annotations if a.annotation_id not in self.settled]
        if not fresh:
            return 0
        in_log = {(a.example_id, a.annotator) for a in self.labels.annotations()}
        stored = 0
        for annotation in sorted(fresh, key=lambda a: a.annotation_id):
            label = self._label(annotation)
            if label is not None and (label.example_id, label.annotator) not in in_log:
                request_id = annotation_request_id(self.experiment, self.project_id, annotation.annotation_id)
                self.labels.append([label], request_id)
                in_log.add((label.example_id, label.annotator))
                stored += 1
            self.settled.add(annotation.annotation_id)
        return stored

    def _label(self, annotation: StudioAnnotation) -> Label | None:
        if annotation.cancelled:
            return None  # skipped: the task stays open for someone else
        if len(annotation.choices) != 1 or annotation.choices[0] not in self.classes:
            log.warning(
                "Label Studio annotation %d of %s is not one of the classes (%s): not stored",
                annotation.annotation_id,
                annotation.example_id,
                list(annotation.choices),
            )
            return None
        return Label(annotation.example_id, self._annotator(annotation.user_id), annotation.choices[0])

    def _annotator(self, user_id: int) -> str:
        if user_id not in self._users:
            self._users = self.emails()
        return annotator_id(self._users.get(user_id) or f"user-{user_id}")
