"""Following a trainer operation (a training run, or round 0's embedding run) until it is done, and
the policy for one that the trainer lost: another attempt under a new request id, up to a limit.

The controller follows a run through the trainer's WatchOperation stream: the trainer sends each change
as it happens, so a finished run is seen at once, with no polling. A stream that breaks (the trainer
restarts, a connection drops) is not a failure: one GetOperation (with the usual retries) catches up
with what happened meanwhile, and a new stream follows on after a short backoff.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import grpc

from labelloop.controller import training
from labelloop.controller.clients import as_domain_error, call
from labelloop.controller.context import RoundContext
from labelloop.controller.records import RoundRecord
from labelloop.controller.training import is_lost, progress_text
from labelloop.core.errors import FailedPrecondition, NotFound, Unavailable
from labelloop.v1 import experiments_pb2, trainer_pb2, trainer_pb2_grpc

log = logging.getLogger(__name__)

CANCELLED = experiments_pb2.EXPERIMENT_STATE_CANCELLED
# One stream's deadline: a quiet stream is re-opened after it, so that a connection that died without
# a word, or a cancel the trainer never heard of, is noticed within this time.
WATCH_SECONDS = 30.0
# Between a broken stream and the next one: doubles from the first to the last.
BACKOFF_SECONDS = (0.2, 5.0)
# Codes of a stream that broke rather than answered: another stream may do better.
BROKEN = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    }
)


def await_operation(
    ctx: RoundContext,
    name: str,
    progress: Callable[[str], None],
    verb: str = "train",
    seen: Callable[[trainer_pb2.Operation], None] = lambda operation: None,
) -> trainer_pb2.Operation | None:
    """Follows the operation until it is done, showing "{verb} 45%: ..." as progress (and handing
    each state to `seen`, e.g. for its epoch); None if the trainer lost it. A pause lets it finish; a
    cancel stops waiting (StopRequested)."""

    def show(operation: trainer_pb2.Operation) -> None:
        seen(operation)
        progress(progress_text(operation, verb))

    return follow_operation(
        ctx.stubs.trainer,
        name,
        show,
        check_cancelled=ctx.check_cancelled,
        cancelled=lambda: ctx.experiment.state == CANCELLED,
        sleep=ctx.sleep,
    )


def follow_operation(
    trainer: trainer_pb2_grpc.TrainerServiceStub,
    name: str,
    progress: Callable[[trainer_pb2.Operation], None],
    *,
    check_cancelled: Callable[[], None] = lambda: None,
    cancelled: Callable[[], bool] = lambda: False,
    sleep: Callable[[float], None] = time.sleep,
    watch_seconds: float = WATCH_SECONDS,
) -> trainer_pb2.Operation | None:
    """The operation once done, from its WatchOperation stream, re-opened (with a GetOperation to
    catch up and a backoff) whenever it breaks; None when the trainer does not know it (NOT_FOUND).
    check_cancelled() raises to stop waiting; cancelled() stops the retries of an unreachable trainer."""
    delay = BACKOFF_SECONDS[0]
    while True:
        check_cancelled()
        broke = True  # a stream that ends before the run did (the trainer shutting down) broke too
        try:
            request = trainer_pb2.WatchOperationRequest(name=name)
            for response in trainer.WatchOperation(request, timeout=watch_seconds):
                operation = response.operation
                if operation.state in training.DONE:
                    return operation
                progress(operation)
                delay = BACKOFF_SECONDS[0]  # it answers again
                check_cancelled()
        except grpc.RpcError as error:
            code = error.code()
            if code == grpc.StatusCode.NOT_FOUND:
                return None
            if code not in BROKEN:
                raise as_domain_error(error, f"watching {name}") from None
            broke = code != grpc.StatusCode.DEADLINE_EXCEEDED  # a quiet stream's end is no break
            if broke:
                log.info("the stream of %s broke (%s); following it again", name, code.name)
        # Whatever happened while no stream was open: a run may have ended meanwhile.
        try:
            operation = call(
                trainer.GetOperation,
                trainer_pb2.GetOperationRequest(name=name),
                what=f"reading {name}",
                interrupted=cancelled,
            ).operation
        except NotFound:
            return None
        if operation.state in training.DONE:
            return operation
        progress(operation)
        if broke:
            sleep(delay)
            delay = min(delay * 2, BACKOFF_SECONDS[1])


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
    # Counted per go: a resumed experiment (its counter at a multiple of the limit) gets the full limit
    # again, rather than stopping at its first lost run.
    if (attempt + 1) % training.MAX_TRAIN_ATTEMPTS == 0:
        raise Unavailable(
            f"{what}: the trainer lost {training.MAX_TRAIN_ATTEMPTS} runs in a row ({why}); once the "
            "trainer is healthy, "
            "ResumeExperiment starts another run"
        )
