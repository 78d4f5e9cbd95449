"""Following a trainer operation (a training run, or round 0's embedding run) until it is done, and
the policy for one that the trainer lost: another attempt under a new request id, up to a limit."""

from __future__ import annotations

import logging
from collections.abc import Callable

from labelloop.controller import training
from labelloop.controller.clients import call
from labelloop.controller.context import RoundContext
from labelloop.controller.records import RoundRecord
from labelloop.controller.training import is_lost, progress_text
from labelloop.core.errors import FailedPrecondition, NotFound, Unavailable
from labelloop.v1 import experiments_pb2, trainer_pb2

log = logging.getLogger(__name__)

CANCELLED = experiments_pb2.EXPERIMENT_STATE_CANCELLED


def await_operation(
    ctx: RoundContext, name: str, progress: Callable[[str], None], verb: str = "train"
) -> trainer_pb2.Operation | None:
    """Polls the operation until it is done, showing "{verb} 45%: ..." as progress; None if the
    trainer lost it. A pause lets it finish; a cancel stops waiting (StopRequested)."""
    while True:
        ctx.check_cancelled()
        try:
            operation = call(
                ctx.stubs.trainer.GetOperation,
                trainer_pb2.GetOperationRequest(name=name),
                what=f"reading {name}",
                interrupted=lambda: ctx.experiment.state == CANCELLED,
            ).operation
        except NotFound:
            return None
        if operation.state in training.DONE:
            return operation
        progress(progress_text(operation, verb))
        ctx.sleep(ctx.poll_seconds)


def retry_lost(
    ctx: RoundContext,
    record: RoundRecord,
    operation: trainer_pb2.Operation | None,
    what: str,
    attempt: int,
    next_attempt: Callable[[], None],
) -> None:
    """After an operation that did not succeed: raises FailedPrecondition when it failed on its own
    merits; otherwise calls `next_attempt` (which bumps the record's attempt counter) and commits.
    When `attempt` was the last, it still prepares the next attempt, then raises Unavailable: the
    experiment stops on a fault that ResumeExperiment retries with a fresh run. Lock taken here."""
    ctx.check_cancelled()
    why = "the trainer lost the operation" if operation is None else operation.error.message
    name = "" if operation is None else operation.name
    if not is_lost(operation):
        raise FailedPrecondition(
            f"{what} failed: {why or 'no reason given'}" + (f" (operation {name})" if name else "")
        )
    log.warning("%s lost (%s); retrying as attempt %d", what, why, attempt + 1)
    with ctx.lock:
        next_attempt()
        record.round.progress_message = f"retrying {what}: {why}"
        ctx.commit(record)
    if attempt + 1 >= training.MAX_TRAIN_ATTEMPTS:
        raise Unavailable(
            f"{what}: the trainer lost {attempt + 1} runs in a row ({why}); once the trainer is healthy, "
            "ResumeExperiment starts another run"
        )
