"""Which errors are faults that can go away (retry, or resume later) and which are permanent: the one
place that classifies them, used by every server (a storage outage answers UNAVAILABLE, not
INTERNAL) and by the controller (an experiment stopped on a fault can be resumed).
"""

from __future__ import annotations

import errno
import time
from collections.abc import Callable
from typing import TypeVar

import grpc

from labelloop.core.errors import LabelLoopError

T = TypeVar("T")

TRANSIENT_CODES = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
    }
)
# A full, read-only or failing disk, or a busy resource: an operator can fix these without a code change.
TRANSIENT_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EROFS, errno.EIO, errno.EDQUOT, errno.EAGAIN, errno.EBUSY, errno.ENOMEM}
)
# S3 error codes that mean "the server is struggling", not "your request is wrong".
TRANSIENT_S3_CODES = frozenset(
    {"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "RequestTimeTooSkewed"}
)


def _transient_here(error: BaseException) -> bool | None:
    """This error's own verdict, without its causes; None when it says nothing."""
    if isinstance(error, LabelLoopError):
        return error.code in TRANSIENT_CODES
    if isinstance(error, grpc.RpcError) and hasattr(error, "code"):
        return error.code() in TRANSIENT_CODES
    if isinstance(error, (ConnectionError, TimeoutError)):
        return True
    if isinstance(error, OSError) and error.errno is not None:
        return error.errno in TRANSIENT_ERRNOS
    module = type(error).__module__
    if module.startswith("urllib3"):  # connection refused or reset, retries exhausted, timeouts
        return True
    if module.startswith("minio"):
        code = getattr(error, "code", None)
        if code is not None:  # S3Error: the server answered
            return code in TRANSIENT_S3_CODES
        return type(error).__name__ == "ServerError"  # a 5xx without an S3 error body
    return None


def is_transient(error: BaseException) -> bool:
    """True for a fault that can go away on its own or by an operator's hand (storage or a service
    unreachable, a disk full or read-only); False for errors that retrying cannot fix."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        verdict = _transient_here(current)
        if verdict is not None:
            return verdict
        current = current.__cause__ or current.__context__
    return False


def describe(error: BaseException, limit: int = 300) -> str:
    """A one-line account of an error for a status message, cut to `limit` characters."""
    text = f"{type(error).__name__}: {error}".replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def retry(
    action: Callable[[], T],
    deadline_seconds: float,
    on_retry: Callable[[BaseException, float], None] = lambda error, delay: None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Runs action, retrying transient faults with exponential backoff until deadline_seconds have
    passed; the last fault (or any permanent error) is raised."""
    deadline = time.monotonic() + deadline_seconds
    delay = 0.2
    while True:
        try:
            return action()
        except Exception as error:
            if not is_transient(error) or time.monotonic() + delay > deadline:
                raise
            on_retry(error, delay)
            sleep(delay)
            delay = min(delay * 2, 5.0)
