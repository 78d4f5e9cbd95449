"""One classification of errors as faults that can go away or permanent ones, checked on real errors:
an S3 server that is not there, a full disk, a wrong request; and the retry built on it."""

from __future__ import annotations

import errno

import grpc
import pytest
import urllib3
from labelloop.core.config import StorageConfig
from labelloop.core.errors import FailedPrecondition, InvalidArgument, NotFound, Unavailable
from labelloop.core.faults import describe, is_transient, retry
from labelloop.core.storage import S3Store
from minio import Minio

from tests.support.ports import free_port
from tests.support.seaweedfs import S3Server


def _error(action) -> BaseException:  # type: ignore[no-untyped-def]
    with pytest.raises(Exception) as info:
        action()
    return info.value


def test_an_unreachable_s3_server_is_a_fault() -> None:
    """The error minio raises when nothing listens where the S3 server should be (no retries here,
    so the test need not wait for them)."""
    client = Minio(f"127.0.0.1:{free_port()}", "key", "secret", secure=False,
                   http_client=urllib3.PoolManager(retries=0))  # fmt: skip
    refused = _error(lambda: client.get_object("bucket", "key"))
    assert type(refused).__module__.startswith("urllib3")
    assert is_transient(refused), describe(refused)


def test_s3_answers_about_the_request_are_not_faults(s3_server: S3Server) -> None:
    config = StorageConfig(
        backend="s3", endpoint=s3_server.endpoint, bucket="faults",
        access_key=s3_server.access_key, secret_key=s3_server.secret_key,
    )  # fmt: skip
    store = S3Store(config)
    assert not is_transient(_error(lambda: store.get_bytes("missing")))  # NotFound
    no_bucket = _error(lambda: store.client.get_object("no-such-bucket-here", "key"))
    assert type(no_bucket).__name__ == "S3Error" and not is_transient(no_bucket)


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (OSError(errno.ENOSPC, "No space left on device"), True),
        (OSError(errno.EROFS, "Read-only file system"), True),
        (OSError(errno.ENOENT, "No such file"), False),
        (ConnectionRefusedError(), True),
        (TimeoutError(), True),
        (Unavailable("the store did not answer"), True),
        (InvalidArgument("bad"), False),
        (FailedPrecondition("no ground truth"), False),
        (NotFound("gone"), False),
        (KeyError("x"), False),
    ],
)
def test_classification(error: BaseException, transient: bool) -> None:
    assert is_transient(error) is transient


def test_a_cause_decides_when_the_error_itself_does_not() -> None:
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as disk:
            raise RuntimeError("could not write the record") from disk
    except RuntimeError as error:
        assert is_transient(error)


def test_retry_retries_faults_until_the_deadline_and_never_permanent_errors() -> None:
    calls: list[float] = []
    slept: list[float] = []

    def flaky() -> str:
        calls.append(0)
        if len(calls) < 3:
            raise ConnectionResetError("reset")
        return "done"

    assert retry(flaky, deadline_seconds=10, sleep=slept.append) == "done"
    assert (len(calls), slept) == (3, [0.2, 0.4])

    def wrong() -> None:
        calls.append(0)
        raise InvalidArgument("never retried")

    calls.clear()
    with pytest.raises(InvalidArgument):
        retry(wrong, deadline_seconds=10, sleep=slept.append)
    assert len(calls) == 1

    def down() -> None:
        raise grpc_unavailable()

    with pytest.raises(Unavailable):
        retry(down, deadline_seconds=0)


def grpc_unavailable() -> Unavailable:
    return Unavailable(f"{grpc.StatusCode.UNAVAILABLE.name}: the service did not answer")
