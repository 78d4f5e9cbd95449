"""How a failed job's error becomes its operation's code: faults that can go away are UNAVAILABLE (the
controller trains again, then stops resumably), errors of the request keep their own code, the rest is
INTERNAL."""

from __future__ import annotations

import errno

import grpc
import pytest
from labelloop.core.errors import FailedPrecondition
from labelloop.trainer.job import failure_message
from labelloop.trainer.runs import _error_code


@pytest.mark.parametrize(
    "error, code",
    [
        (ConnectionRefusedError("S3 at 127.0.0.1:8333 refused"), grpc.StatusCode.UNAVAILABLE),
        (OSError(errno.ENOSPC, "No space left on device"), grpc.StatusCode.UNAVAILABLE),
        (FailedPrecondition("the snapshot has no labels"), grpc.StatusCode.FAILED_PRECONDITION),
        (ValueError("a bug"), grpc.StatusCode.INTERNAL),
    ],
)
def test_a_job_failure_keeps_whether_it_can_go_away(error: Exception, code: grpc.StatusCode) -> None:
    message = failure_message(error)
    assert message.endswith(str(error))
    assert _error_code(message) == code.value[0]
