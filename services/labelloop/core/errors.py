"""Domain errors. Services raise these; the server interceptor turns them into gRPC statuses."""

from __future__ import annotations

import grpc


class LabelLoopError(Exception):
    """Base class: carries the gRPC status code the caller should see."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL


class InvalidArgument(LabelLoopError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(LabelLoopError):
    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(LabelLoopError):
    code = grpc.StatusCode.ALREADY_EXISTS


class FailedPrecondition(LabelLoopError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class Unavailable(LabelLoopError):
    code = grpc.StatusCode.UNAVAILABLE


class Cancelled(LabelLoopError):
    code = grpc.StatusCode.CANCELLED
