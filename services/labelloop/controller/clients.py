"""Stubs for the services the controller drives, and a retrying call for idempotent requests."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc

from labelloop.core.channels import CallerCredentials, channel
from labelloop.core.config import Settings
from labelloop.core.errors import AlreadyExists, FailedPrecondition, LabelLoopError, NotFound, Unavailable
from labelloop.core.faults import TRANSIENT_CODES, describe, retry
from labelloop.v1 import (
    dataset_store_pb2_grpc,
    scorer_pb2_grpc,
    selector_pb2_grpc,
    trainer_pb2_grpc,
)

log = logging.getLogger(__name__)

# Every request the controller sends is idempotent (request ids, fixed snapshot ids, deterministic
# outputs), so any fault core/faults.py calls transient is retried: a restart, an overload, an abort.
RETRYABLE = TRANSIENT_CODES


class Interrupted(Exception):
    """The caller stopped waiting for an unreachable service (its experiment was paused or cancelled)."""


@dataclass
class Stubs:
    store: dataset_store_pb2_grpc.DatasetStoreServiceStub
    trainer: trainer_pb2_grpc.TrainerServiceStub
    scorer: scorer_pb2_grpc.ScorerServiceStub
    selector: selector_pb2_grpc.SelectorServiceStub

    @classmethod
    def connect(cls, settings: Settings) -> Stubs:
        """Stubs that present this service's own credentials (TLS, mTLS certificate, service token)."""
        credentials = CallerCredentials.of(settings.security)

        def to(service: str) -> grpc.Channel:
            return channel(settings.address_of(service), credentials)

        return cls(
            store=dataset_store_pb2_grpc.DatasetStoreServiceStub(to("store")),
            trainer=trainer_pb2_grpc.TrainerServiceStub(to("trainer")),
            scorer=scorer_pb2_grpc.ScorerServiceStub(to("scorer")),
            selector=selector_pb2_grpc.SelectorServiceStub(to("selector")),
        )


def call(
    method: Callable[..., Any],
    request: Any,
    *,
    what: str,
    timeout: float = 60.0,
    retry_seconds: float = 300.0,
    interrupted: Callable[[], bool] = lambda: False,
) -> Any:
    """Calls a unary RPC, retrying while the service is unreachable; errors become domain errors.

    `interrupted` is asked before each retry: when it turns True the call raises Interrupted.
    """

    def before_retry(error: BaseException, delay: float) -> None:
        if interrupted():
            raise Interrupted(f"{what}: stopped retrying ({describe(error, 120)})") from None
        log.warning("%s: %s, retrying in %.1fs", what, describe(error, 120), delay)

    try:
        return retry(lambda: method(request, timeout=timeout), retry_seconds, before_retry)
    except grpc.RpcError as error:
        raise as_domain_error(error, what) from None


def as_domain_error(error: grpc.RpcError, what: str) -> LabelLoopError:
    """The domain error that carries another service's answer on to our caller."""
    code, details = error.code(), error.details()
    message = f"{what}: {details}"
    if code == grpc.StatusCode.NOT_FOUND:
        return NotFound(message)
    if code == grpc.StatusCode.ALREADY_EXISTS:
        return AlreadyExists(message)
    if code in RETRYABLE:
        return Unavailable(f"{what}: the service did not answer ({code.name}): {details}")
    return FailedPrecondition(f"{what} failed with {code.name}: {details}")
