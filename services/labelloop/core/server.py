"""gRPC server bootstrap shared by every service: interceptors, health, reflection, metrics, SIGTERM."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import start_http_server

from labelloop.core.api import service_names
from labelloop.core.config import Settings
from labelloop.core.logs import setup_logging
from labelloop.core.metrics import REGISTRIES, ServerInterceptor

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 64 * 1024 * 1024
CHANNEL_OPTIONS = [
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_time_ms", 30_000),
]
# Registers servicers on the server and returns their full service names.
Registrar = Callable[[grpc.Server], list[str]]


def channel(address: str) -> grpc.Channel:
    return grpc.insecure_channel(address, options=CHANNEL_OPTIONS)


class Server:
    """A running service: gRPC with health and reflection, and /metrics on its own port."""

    def __init__(self, service: str, settings: Settings, register: Registrar, max_workers: int = 16):
        self.service, self.settings = service, settings
        self.grpc = grpc.server(
            futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix=service),
            interceptors=[ServerInterceptor()],
            options=CHANNEL_OPTIONS,
        )
        self.service_names = register(self.grpc)
        unknown = sorted(set(self.service_names) - set(service_names()))
        if unknown:  # health and reflection would announce a service no client can call
            raise ValueError(f"{service} registered {unknown}, not services of labelloop.v1")
        self.health = health.HealthServicer(experimental_non_blocking=True)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.grpc)
        reflection.enable_server_reflection(
            [*self.service_names, health.SERVICE_NAME, reflection.SERVICE_NAME], self.grpc
        )
        self.port = self.grpc.add_insecure_port(f"{settings.bind_host}:{settings.port_for(service)}")
        self.stopped = threading.Event()

    def _set_health(self, status: int) -> None:
        for name in ["", *self.service_names]:
            self.health.set(name, status)

    def start(self) -> None:
        metrics_port = self.settings.metrics_port_for(self.service)
        # Only this service's metrics (and the process and gRPC ones), not every service's.
        start_http_server(metrics_port, addr=self.settings.bind_host, registry=REGISTRIES[self.service])
        self.grpc.start()
        self._set_health(health_pb2.HealthCheckResponse.SERVING)
        log.info("%s serving gRPC on port %d, metrics on port %d", self.service, self.port, metrics_port)

    def stop(self, grace: float = 10.0) -> None:
        """Stops taking new RPCs, lets running ones finish for `grace` seconds."""
        self._set_health(health_pb2.HealthCheckResponse.NOT_SERVING)
        self.grpc.stop(grace).wait()
        self.stopped.set()


def run_service(
    service: str, build: Callable[[Settings], Registrar], on_stop: Callable[[], None] = lambda: None
) -> None:
    """Entry point of `python -m labelloop.<service>`: serves until SIGTERM or SIGINT."""
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
    server.start()
    server.stopped.wait()
