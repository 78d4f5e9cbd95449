"""When a batch labeled by people is done: the LabelingRules every people-facing labeler shares.

A round goes on once its quorum of examples has all the labels it wants; at its deadline it goes on
with the examples labeled so far, or pauses the experiment when none is (DeadlinePassed). Labels that
arrive later stay in the annotation log and count for the next round's snapshot.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum

from labelloop.core.errors import InvalidArgument, LabelLoopError
from labelloop.v1 import experiments_pb2

DEFAULT_LEASE_SECONDS = 600.0


class DeadlinePassed(LabelLoopError):
    """The deadline passed with no example of the batch fully labeled: the experiment pauses (not fails);
    ResumeExperiment waits again with a fresh deadline."""


class Decision(Enum):
    WAIT = "wait"
    GO_ON = "go_on"  # enough labels: the round goes on
    PAUSE = "pause"  # the deadline passed with nothing labeled


@dataclass(frozen=True)
class Rules:
    annotators_per_example: int = 1
    lease_seconds: float = DEFAULT_LEASE_SECONDS
    quorum: float = 1.0
    deadline_seconds: float = 0.0  # 0 waits forever

    @classmethod
    def from_proto(cls, rules: experiments_pb2.LabelingRules, field: str) -> Rules:
        """Defaults applied and every value checked; InvalidArgument names the field to fix."""
        if rules.annotators_per_example < 0:
            raise InvalidArgument(f"{field}.annotators_per_example must be >= 1 (0 means 1)")
        if not math.isfinite(rules.lease_seconds) or rules.lease_seconds < 0:
            raise InvalidArgument(f"{field}.lease_seconds must be a positive number of seconds (0 means 600)")
        if not (0 <= rules.quorum <= 1):
            raise InvalidArgument(f"{field}.quorum must be a fraction in (0, 1] (0 means 1: the whole batch)")
        if not math.isfinite(rules.deadline_seconds) or rules.deadline_seconds < 0:
            raise InvalidArgument(f"{field}.deadline_seconds must be >= 0 (0 waits forever)")
        return cls(
            annotators_per_example=rules.annotators_per_example or 1,
            lease_seconds=rules.lease_seconds or DEFAULT_LEASE_SECONDS,
            quorum=rules.quorum or 1.0,
            deadline_seconds=rules.deadline_seconds,
        )


@dataclass(frozen=True)
class BatchProgress:
    complete: list[str]  # examples with all the labels they want
    labels_awaited: int  # labels still wanted over the whole batch
    size: int


def batch_progress(
    example_ids: Sequence[str],
    counts_before: Mapping[str, int],
    counts_now: Mapping[str, int],
    labels_per_example: int,
) -> BatchProgress:
    """How far a batch is: new labels per example are counted against the snapshot's counts."""
    complete, awaited = [], 0
    for example_id in example_ids:
        new = counts_now.get(example_id, 0) - counts_before.get(example_id, 0)
        if new >= labels_per_example:
            complete.append(example_id)
        else:
            awaited += labels_per_example - max(new, 0)
    return BatchProgress(complete=complete, labels_awaited=awaited, size=len(example_ids))


def decide(progress: BatchProgress, rules: Rules, waited_seconds: float) -> Decision:
    """WAIT until the quorum is met; at the deadline GO_ON with what is labeled, or PAUSE with nothing."""
    if progress.size == 0 or len(progress.complete) >= math.ceil(rules.quorum * progress.size - 1e-9):
        return Decision.GO_ON
    if rules.deadline_seconds and waited_seconds >= rules.deadline_seconds:
        return Decision.GO_ON if progress.complete else Decision.PAUSE
    return Decision.WAIT
