"""Stubs for the services the controller drives, and a retrying call for idempotent requests."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc

from labelloop.core.channels import CallerCredentials, channel
from labelloop.core.config import Settings
from labelloop.core.errors import AlreadyExists, FailedPrecondition, LabelLoopError, NotFound, Unavailable
from labelloop.v1 import (
    dataset_store_pb2_grpc,
    scorer_pb2_grpc,
    selector_pb2_grpc,
    trainer_pb2_grpc,
)

log = logging.getLogger(__name__)

# Codes that mean "try again": the service restarts or is briefly overloaded. Every request the
# controller sends is idempotent (request ids, fixed snapshot ids, deterministic outputs).
RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})


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
    deadline = time.monotonic() + retry_seconds
    delay = 0.2
    while True:
        try:
            return method(request, timeout=timeout)
        except grpc.RpcError as error:
            code = error.code()
            if code in RETRYABLE and interrupted():
                raise Interrupted(f"{what}: stopped retrying ({code.name})") from None
            if code in RETRYABLE and time.monotonic() < deadline:
                log.warning("%s: %s, retrying in %.1fs", what, code.name, delay)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
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
