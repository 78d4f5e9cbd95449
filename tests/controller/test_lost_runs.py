"""The policy for training runs the trainer lost (controller/operations.py `retry_lost`): another attempt
under a new request id, a resumable stop after MAX_TRAIN_ATTEMPTS in a row, and after ResumeExperiment
the full number of attempts again (not a stop at the first lost run)."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest
from labelloop.controller import training
from labelloop.controller.operations import retry_lost
from labelloop.controller.records import RoundRecord
from labelloop.core.errors import FailedPrecondition, Unavailable
from labelloop.v1 import common_pb2, experiments_pb2, trainer_pb2


class Context(SimpleNamespace):
    """What retry_lost needs of a RoundContext: a lock, the cancel check and a commit it counts."""

    def __init__(self) -> None:
        super().__init__(lock=threading.Lock(), commits=0)

    def check_cancelled(self) -> None:
        pass

    def commit(self, record: RoundRecord) -> None:
        self.commits += 1


def lose_once(ctx: Context, record: RoundRecord) -> None:
    def next_attempt() -> None:
        record.train_attempt += 1

    retry_lost(ctx, record, None, "training round 1", record.train_attempt, next_attempt)  # type: ignore[arg-type]


def losses_until_stop(ctx: Context, record: RoundRecord) -> int:
    for lost in range(1, 100):
        try:
            lose_once(ctx, record)
        except Unavailable as stop:
            assert "ResumeExperiment" in str(stop)
            return lost
    raise AssertionError("never stopped")


def test_each_go_gets_the_full_number_of_attempts() -> None:
    ctx, record = Context(), RoundRecord(round=experiments_pb2.Round(number=1))
    assert losses_until_stop(ctx, record) == training.MAX_TRAIN_ATTEMPTS
    # ResumeExperiment replays the step: the next run is a new attempt (new request id), and the limit
    # counts afresh.
    assert losses_until_stop(ctx, record) == training.MAX_TRAIN_ATTEMPTS
    assert record.train_attempt == 2 * training.MAX_TRAIN_ATTEMPTS
    assert ctx.commits == 2 * training.MAX_TRAIN_ATTEMPTS


def test_a_run_that_failed_on_its_own_merits_is_not_retried() -> None:
    ctx, record = Context(), RoundRecord(round=experiments_pb2.Round(number=1))
    failed = trainer_pb2.Operation(
        name="operations/x",
        state=common_pb2.OPERATION_STATE_FAILED,
        error={"code": 3, "message": "bad column"},
    )
    with pytest.raises(FailedPrecondition, match="bad column"):
        retry_lost(ctx, record, failed, "training round 1", 0, lambda: None)  # type: ignore[arg-type]
    assert ctx.commits == 0
