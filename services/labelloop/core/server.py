"""gRPC server bootstrap shared by every service: interceptors, health, reflection, metrics, SIGTERM."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from concurrent import futures
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import start_http_server

from labelloop.core.api import service_names
from labelloop.core.auth import AuthInterceptor, TokenFile
from labelloop.core.channels import CHANNEL_OPTIONS, MAX_MESSAGE_BYTES, CallerCredentials, channel
from labelloop.core.config import SecurityConfig, Settings
from labelloop.core.logs import setup_logging
from labelloop.core.metrics import REGISTRIES, ServerInterceptor
from labelloop.core.tls import ReloadingCertificates

log = logging.getLogger(__name__)

# channel and its options live in core/channels.py; re-exported for the modules that import them here.
__all__ = ["CHANNEL_OPTIONS", "MAX_MESSAGE_BYTES", "CallerCredentials", "Registrar", "Server", "channel"]
# Registers servicers on the server and returns their full service names.
Registrar = Callable[[grpc.Server], list[str]]


def interceptors(security: SecurityConfig) -> list[grpc.ServerInterceptor]:
    """Metrics outermost (refused calls are counted too), then the token check when configured."""
    if security.tokens_file is None:
        return [ServerInterceptor()]
    return [ServerInterceptor(), AuthInterceptor(TokenFile(security.tokens_file))]


class Server:
    """A running service: gRPC with health and reflection, and /metrics on its own port."""

    def __init__(self, service: str, settings: Settings, register: Registrar, max_workers: int = 16):
        self.service, self.settings = service, settings
        self.grpc = grpc.server(
            futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix=service),
            interceptors=interceptors(settings.security),
            options=CHANNEL_OPTIONS,
        )
        self.service_names = register(self.grpc)
        unknown = sorted(set(self.service_names) - set(service_names()))
        if unknown:  # health and reflection would announce a service no client can call
            raise ValueError(f"{service} registered {unknown}, not services of labelloop.v1")
        self.health = health.HealthServicer(experimental_non_blocking=True)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.grpc)
        security = settings.security
        if security.reflection:
            reflection.enable_server_reflection(
                [*self.service_names, health.SERVICE_NAME, reflection.SERVICE_NAME], self.grpc
            )
        address = f"{settings.bind_host}:{settings.port_for(service)}"
        if security.tls:
            self.port = self.grpc.add_secure_port(address, ReloadingCertificates(security).credentials())
        else:
            self.port = self.grpc.add_insecure_port(address)
        if security.tokens_file is not None and not security.tls:
            log.warning("%s: tokens are checked but travel in plaintext: set LABELLOOP_TLS_CERT/KEY", service)
        if security.tokens_file is None:
            log.warning(
                "%s: authentication is off: anyone who reaches port %d may call every RPC "
                "(set LABELLOOP_AUTH_TOKENS_FILE; docs/security.md)",
                service,
                self.port,
            )
        self.health_only = self._health_only_server(security.health_port)
        self.stopped = threading.Event()

    def _health_only_server(self, port: int) -> grpc.Server | None:
        """Health checks in plaintext on a port of their own (same statuses), when a port is given."""
        if not port:
            return None
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="health"))
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        server.add_insecure_port(f"{self.settings.bind_host}:{port}")
        return server

    def _set_health(self, status: int) -> None:
        for name in ["", *self.service_names]:
            self.health.set(name, status)

    def start(self, ready: Callable[[], object] | None = None) -> None:
        """Serves at once; health says SERVING once `ready()` has returned (in a thread of its own:
        the trainer's worker imports AutoGluon meanwhile), NOT_SERVING until then."""
        metrics_port = self.settings.metrics_port_for(self.service)
        self._serve_metrics(metrics_port)
        self.grpc.start()
        if self.health_only is not None:
            self.health_only.start()
        if ready is None:
            self._set_health(health_pb2.HealthCheckResponse.SERVING)
        else:
            self._set_health(health_pb2.HealthCheckResponse.NOT_SERVING)
            threading.Thread(target=self._serve_when, args=(ready,), name="readiness", daemon=True).start()
        log.info("%s serving gRPC on port %d, metrics on port %d", self.service, self.port, metrics_port)

    def _serve_metrics(self, port: int) -> None:
        """Only this service's metrics (and the process and gRPC ones), not every service's."""
        security = self.settings.security
        if security.metrics == "off":
            return
        tls: dict[str, Any] = {}
        if security.metrics == "tls":  # prometheus_client reads the files once: renewals need a restart
            tls = {"certfile": str(security.tls_cert), "keyfile": str(security.tls_key)}
            if security.client_auth:
                tls |= {"client_cafile": str(security.tls_ca), "client_auth_required": True}
        start_http_server(port, addr=self.settings.bind_host, registry=REGISTRIES[self.service], **tls)

    def _serve_when(self, ready: Callable[[], object]) -> None:
        ready()
        if not self.stopped.is_set():
            self._set_health(health_pb2.HealthCheckResponse.SERVING)
            log.info("%s ready", self.service)

    def stop(self, grace: float = 10.0) -> None:
        """Stops taking new RPCs, lets running ones finish for `grace` seconds."""
        self._set_health(health_pb2.HealthCheckResponse.NOT_SERVING)
        self.grpc.stop(grace).wait()
        if self.health_only is not None:
            self.health_only.stop(0).wait()
        self.stopped.set()


def run_service(
    service: str,
    build: Callable[[Settings], Registrar],
    on_stop: Callable[[], None] = lambda: None,
    ready: Callable[[], object] | None = None,
) -> None:
    """Entry point of `python -m labelloop.<service>`: serves until SIGTERM or SIGINT; health says
    SERVING once ready() returns (see Server.start)."""
    settings = Settings.from_env()
    setup_logging(service, settings.log_level, settings.log_format)
    server = Server(service, settings, build(settings))

    def stop() -> None:
        on_stop()
        server.stop()

    def shutdown(signum: int, _frame: object) -> None:
        log.info("received signal %d, shutting down", signum)
        threading.Thread(target=stop, daemon=True).start()

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    server.start(ready)
    server.stopped.wait()
