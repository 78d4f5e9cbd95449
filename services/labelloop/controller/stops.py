"""Why an experiment stopped, recorded so that ResumeExperiment knows whether it can bring it back:
a fault (storage or a service unreachable, a disk full) can go away; a config error cannot."""

from __future__ import annotations

from labelloop.controller.clients import Interrupted
from labelloop.core.faults import describe, is_transient
from labelloop.v1 import experiments_pb2

FAILED = experiments_pb2.EXPERIMENT_STATE_FAILED
FAULT = experiments_pb2.FAILURE_KIND_FAULT
PERMANENT = experiments_pb2.FAILURE_KIND_PERMANENT

FAULT_HINT = "ResumeExperiment replays the step in progress once the cause is gone"
PERMANENT_HINT = "resuming cannot fix this: create a new experiment with a fixed config"


class StoppedOnFault(Interrupted):
    """The experiment's record could not be written for longer than the retries last: the runner
    stops, and the experiment is recorded FAILED (a fault, resumable) once storage answers."""


def record_failure(experiment: experiments_pb2.Experiment, error: BaseException | None) -> None:
    """Marks a FAILED experiment as stopped on a fault or for good, and says which in its message.

    The round runner's fail() should call this with the error that ended the run; until it does,
    Entry.commit calls it with the error being handled when a FAILED experiment is committed.
    """
    if experiment.failure_kind:
        return
    fault = error is not None and is_transient(error)
    experiment.failure_kind = FAULT if fault else PERMANENT
    hint = f"stopped on a fault: {FAULT_HINT}" if fault else PERMANENT_HINT
    experiment.status_message = f"{experiment.status_message} ({hint})" if experiment.status_message else hint


def stop_on_fault(experiment: experiments_pb2.Experiment, error: BaseException) -> None:
    """Marks the experiment FAILED on a storage fault that outlasted the retries."""
    experiment.state = FAILED
    experiment.failure_kind = FAULT
    experiment.status_message = (
        f"stopped on a fault: the experiment's record could not be written ({describe(error)}); {FAULT_HINT}"
    )
