"""Every gRPC channel LabelLoop opens, to one of its services: plaintext or TLS, mTLS, bearer token.

Services, the client, the CLI and the benchmarks all call `channel(address, credentials)`; without
credentials it takes them from the LABELLOOP_* environment (LABELLOOP_TLS_CA, LABELLOOP_TOKEN,
LABELLOOP_TLS_SERVER_NAME, and under LABELLOOP_TLS_CLIENT_AUTH the certificate LABELLOOP_TLS_CERT/KEY),
so a process configured for a secure deployment dials securely without further code.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import grpc

from labelloop.core.config import SecurityConfig

MAX_MESSAGE_BYTES = 64 * 1024 * 1024
CHANNEL_OPTIONS: list[tuple[str, int | str]] = [
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_time_ms", 30_000),
]


@dataclass(frozen=True)
class CallerCredentials:
    """What a caller presents: TLS when ca_cert is set (verifying servers with it), a client
    certificate for mTLS, and a bearer token."""

    token: str = field(default="", repr=False)
    ca_cert: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    # The name servers' certificates are checked against when it differs from the address's host
    # (kubectl port-forward to 127.0.0.1 of a certificate for labelloop-controller).
    server_name: str = ""

    @classmethod
    def of(cls, security: SecurityConfig) -> CallerCredentials:
        """A service's own credentials: its token, its CA, and under mTLS its certificate."""
        mutual = security.client_auth
        return cls(
            token=security.token,
            ca_cert=security.tls_ca,
            client_cert=security.tls_cert if mutual else None,
            client_key=security.tls_key if mutual else None,
        )

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> CallerCredentials:
        values = dict(os.environ if env is None else env)

        def get(name: str, default: str = "") -> str:
            return values.get(f"LABELLOOP_{name}", default)

        return dataclasses.replace(cls.of(SecurityConfig.from_env(get)), server_name=get("TLS_SERVER_NAME"))

    def transport(self) -> grpc.ChannelCredentials | None:
        """TLS channel credentials, or None for plaintext."""
        if self.ca_cert is None:
            return None
        has_pair = self.client_cert is not None and self.client_key is not None
        return grpc.ssl_channel_credentials(
            root_certificates=self.ca_cert.read_bytes(),
            private_key=self.client_key.read_bytes() if has_pair and self.client_key else None,
            certificate_chain=self.client_cert.read_bytes() if has_pair and self.client_cert else None,
        )


def channel(address: str, credentials: CallerCredentials | None = None) -> grpc.Channel:
    """A channel to `address` with `credentials` (default: CallerCredentials.from_env())."""
    credentials = CallerCredentials.from_env() if credentials is None else credentials
    transport = credentials.transport()
    if transport is None:
        opened = grpc.insecure_channel(address, options=CHANNEL_OPTIONS)
    else:
        options = list(CHANNEL_OPTIONS)
        if credentials.server_name:
            options.append(("grpc.ssl_target_name_override", credentials.server_name))
        opened = grpc.secure_channel(address, transport, options=options)
    if credentials.token:
        return grpc.intercept_channel(opened, BearerToken(credentials.token))
    return opened


class _CallDetails(NamedTuple):
    method: str
    timeout: float | None
    metadata: Any
    credentials: Any
    wait_for_ready: Any
    compression: Any


class BearerToken(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    """Adds `authorization: Bearer TOKEN` to every call (over plaintext too: a local cluster without
    TLS still checks tokens; keep tokens off networks you do not trust without TLS)."""

    def __init__(self, token: str):
        self._header = ("authorization", f"Bearer {token}")

    def __repr__(self) -> str:
        return "BearerToken(***)"

    def _with_token(self, details: Any) -> _CallDetails:
        metadata = [*(details.metadata or ()), self._header]
        return _CallDetails(
            details.method,
            details.timeout,
            metadata,
            details.credentials,
            getattr(details, "wait_for_ready", None),
            getattr(details, "compression", None),
        )

    def intercept_unary_unary(self, continuation: Callable, details: Any, request: Any) -> Any:
        return continuation(self._with_token(details), request)

    def intercept_unary_stream(self, continuation: Callable, details: Any, request: Any) -> Any:
        return continuation(self._with_token(details), request)

    def intercept_stream_unary(self, continuation: Callable, details: Any, requests: Iterator[Any]) -> Any:
        return continuation(self._with_token(details), requests)

    def intercept_stream_stream(self, continuation: Callable, details: Any, requests: Iterator[Any]) -> Any:
        return continuation(self._with_token(details), requests)
