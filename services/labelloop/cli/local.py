"""LocalCluster: the five services as separate local processes (`python -m labelloop.<service>`).

Used by `labelloop up`, `labelloop demo`, the integration tests and the benchmarks:

    with LocalCluster(storage=StorageConfig(root=Path("data")), log_dir=Path("logs")) as cluster:
        client = LabelLoopClient(cluster.address("controller"), cluster.address("store"))
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from labelloop.core.channels import CallerCredentials, channel
from labelloop.core.config import (
    DEFAULT_METRICS_PORTS,
    DEFAULT_PORTS,
    SecurityConfig,
    Settings,
    StorageConfig,
)

# Start order: the store first (everyone reads datasets), the controller last (it resumes experiments
# and calls the others right away).
SERVICES = ("store", "trainer", "scorer", "selector", "controller")
# How long a service may take to report SERVING: the trainer does once its worker has imported
# AutoGluon (10 s alone, far more on two busy cores). The chart's startup probe allows 5 s x 60.
HEALTHY_SECONDS = 300.0


@dataclass(frozen=True)
class Ports:
    grpc: int
    metrics: int


def default_ports() -> dict[str, Ports]:
    return {s: Ports(DEFAULT_PORTS[s], DEFAULT_METRICS_PORTS[s]) for s in SERVICES}


def free_ports() -> dict[str, Ports]:
    """Ports the OS reports free right now, for runs beside other LabelLoop instances."""
    import socket

    def free() -> int:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return sock.getsockname()[1]

    return {s: Ports(free(), free()) for s in SERVICES}


def served_as_configured(security: SecurityConfig) -> SecurityConfig:
    """The credentials our services present to each other, and `wait_healthy` to them, matching how
    they serve: without a server certificate they serve plaintext, so a CA from the environment (a
    caller's LABELLOOP_TLS_CA, exported for the CLI) must not make them dial TLS."""
    if security.tls:
        return security
    return dataclasses.replace(security, tls_ca=None, client_auth=False)


class ServiceFailed(RuntimeError):
    """A service process exited or never became healthy."""


class LocalCluster:
    def __init__(
        self,
        storage: StorageConfig,
        log_dir: Path,
        ports: dict[str, Ports] | None = None,
        services: Iterable[str] = SERVICES,
        settings: Settings | None = None,
        host: str = "127.0.0.1",
        extra_env: dict[str, str] | None = None,
        import_roots: Iterable[Path] | None = None,
    ):
        """`import_roots`: the folders the store may import manifests and images from (default: the
        settings' LABELLOOP_IMPORT_ROOTS; none: only the object store)."""
        self.ports = ports or default_ports()
        self.services = [s for s in SERVICES if s in set(services)]
        self.log_dir = Path(log_dir)
        addresses: dict[str, Any] = {
            f"{s}_address": f"{host}:{self.ports[s].grpc}" for s in SERVICES if s in self.ports
        }
        base = settings or Settings(log_format="json")
        roots = base.import_roots if import_roots is None else tuple(Path(r).absolute() for r in import_roots)
        self.settings = dataclasses.replace(
            base,
            storage=storage,
            bind_host=host,
            import_roots=roots,
            security=served_as_configured(base.security),
            **addresses,
        )
        self.extra_env = dict(extra_env or {})
        self.processes: dict[str, subprocess.Popen] = {}

    # Addresses --------------------------------------------------------------------------------

    def address(self, service: str) -> str:
        return self.settings.address_of(service)

    def metrics_url(self, service: str) -> str:
        return f"http://{self.settings.bind_host}:{self.ports[service].metrics}/metrics"

    def log_path(self, service: str) -> Path:
        return self.log_dir / f"{service}.log"

    def env_for(self, service: str) -> dict[str, str]:
        env = {**os.environ, **self.settings.to_env(), **self.extra_env}
        env["LABELLOOP_GRPC_PORT"] = str(self.ports[service].grpc)
        env["LABELLOOP_METRICS_PORT"] = str(self.ports[service].metrics)
        env["PYTHONUNBUFFERED"] = "1"
        # A missing model download must fail fast instead of hanging (there is no internet).
        env.setdefault("HF_HUB_OFFLINE", "1")
        env.setdefault("TRANSFORMERS_OFFLINE", "1")
        return env

    # Lifecycle --------------------------------------------------------------------------------

    def start(self, timeout: float = HEALTHY_SECONDS) -> LocalCluster:
        """Starts every service not already running and waits until each reports SERVING. Starting
        again is harmless (`with cluster.start():` enters twice): a second process would lose its
        ports to the first and leave that one running after stop()."""
        try:
            for service in self.services:
                if not self.running(service):
                    self.start_service(service, wait=False)
            for service in self.services:
                self.wait_healthy(service, timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def running(self, service: str) -> bool:
        process = self.processes.get(service)
        return process is not None and process.poll() is None

    def start_service(self, service: str, wait: bool = True, timeout: float = HEALTHY_SECONDS) -> None:
        if self.running(service):
            pid = self.processes[service].pid
            raise RuntimeError(f"{service} is already running (pid {pid}); stop it first")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path(service), "ab") as log:  # append: restarts keep earlier output
            self.processes[service] = subprocess.Popen(
                [sys.executable, "-m", f"labelloop.{service}"],
                env=self.env_for(service),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C reaches `labelloop up`, which stops us in order
            )
        if wait:
            self.wait_healthy(service, timeout)

    def wait_healthy(self, service: str, timeout: float = HEALTHY_SECONDS) -> None:
        deadline = time.monotonic() + timeout
        credentials = CallerCredentials.of(self.settings.security)  # health needs no token, TLS does
        stub = health_pb2_grpc.HealthStub(channel(self.address(service), credentials))
        while True:
            process = self.processes[service]
            if process.poll() is not None:
                raise ServiceFailed(
                    f"{service} exited with code {process.returncode}; "
                    f"log {self.log_path(service)}:\n{self.log_tail(service)}"
                )
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=2)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass  # not listening yet
            if time.monotonic() > deadline:
                raise ServiceFailed(
                    f"{service} did not become healthy within {timeout:.0f}s at {self.address(service)}; "
                    f"log {self.log_path(service)}:\n{self.log_tail(service)}"
                )
            time.sleep(0.2)

    def kill(self, service: str) -> None:
        """SIGKILL to the service and its children (a trainer's worker), as a crashed pod: no
        shutdown code runs."""
        process = self.processes[service]
        _kill_group(process.pid)
        process.kill()
        process.wait(30)

    def stop_service(self, service: str, timeout: float = 20.0) -> None:
        if not self.running(service):
            return
        process = self.processes[service]
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        _kill_group(process.pid)  # leftovers such as a trainer's worker process

    def restart(self, service: str, timeout: float = HEALTHY_SECONDS) -> None:
        self.stop_service(service)
        self.start_service(service, wait=True, timeout=timeout)

    def stop(self) -> None:
        """Stops every service, the controller first (it drives the others)."""
        for service in reversed(list(self.processes)):
            self.stop_service(service)

    def failed(self) -> list[str]:
        """Services whose process has exited."""
        return [s for s in self.processes if not self.running(s)]

    def log_tail(self, service: str, chars: int = 4000) -> str:
        try:
            return self.log_path(service).read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return "(no log)"

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
