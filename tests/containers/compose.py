"""compose.yaml as a test fixture: one compose project on free loopback ports, its health and start-up
times, and its removal (containers, network and volumes; the images stay cached)."""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "compose.yaml"
SERVICES = ("objectstore", "store", "trainer", "scorer", "selector", "controller", "prometheus")
# The log line each container writes once it serves (core/server.py; weed's S3 gateway; Prometheus).
SERVING_LINES = {
    "objectstore": "S3           ready",
    "prometheus": "Server is ready to receive web requests",
}
SERVING_LINE = "serving gRPC on port"
# Host ports of the published container ports (compose.yaml's LABELLOOP_*_HOST_PORT).
PUBLISHED = ("STORE", "CONTROLLER", "PROMETHEUS", "S3", "WEBHOOK")


def compose_command() -> list[str]:
    return shlex.split(os.environ.get("COMPOSE", "docker-compose"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _timestamp(text: str) -> float:
    """Docker's RFC 3339 timestamps carry nanoseconds; datetime takes microseconds."""
    whole, _, fraction = text.rstrip("Z").partition(".")
    return datetime.fromisoformat(f"{whole}.{(fraction + '000000')[:6]}+00:00").timestamp()


@dataclass
class ComposeProject:
    name: str
    input_dir: Path
    ports: dict[str, int] = field(default_factory=lambda: {key: free_port() for key in PUBLISHED})

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ, LABELLOOP_INPUT_DIR=str(self.input_dir))
        env.update({f"LABELLOOP_{key}_HOST_PORT": str(port) for key, port in self.ports.items()})
        return env

    def compose(self, *args: str, timeout: float = 300, check: bool = True) -> str:
        command = [*compose_command(), "-p", self.name, "-f", str(COMPOSE_FILE), *args]
        run = subprocess.run(command, env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and run.returncode != 0:
            output = run.stdout + run.stderr
            raise AssertionError(f"{shlex.join(command)} failed ({run.returncode}):\n{output}")
        return run.stdout + run.stderr

    def container(self, service: str) -> str:
        ids = self.compose("ps", "-q", service).split()
        assert len(ids) == 1, f"{service}: expected one container, found {ids}"
        return ids[0]

    def inspect(self, service: str) -> dict:
        out = subprocess.run(
            ["docker", "inspect", self.container(service)], capture_output=True, text=True, check=True
        )
        return json.loads(out.stdout)[0]

    def wait_healthy(self, timeout: float = 300.0) -> None:
        deadline = time.monotonic() + timeout
        states: dict[str, str] = {}
        while time.monotonic() < deadline:
            states = {s: self.inspect(s)["State"].get("Health", {}).get("Status", "none") for s in SERVICES}
            if all(state == "healthy" for state in states.values()):
                return
            if any(self.inspect(s)["State"]["Status"] in ("exited", "dead") for s in SERVICES):
                break
            time.sleep(2)
        raise AssertionError(f"not all containers became healthy: {states}\n{self.logs()}")

    def seconds_to_serving(self, service: str) -> float:
        """From the container's start to its first log line that says it serves (Docker's timestamps)."""
        started = _timestamp(self.inspect(service)["State"]["StartedAt"])
        needle = SERVING_LINES.get(service, SERVING_LINE)
        out = subprocess.run(
            ["docker", "logs", "--timestamps", self.container(service)],
            capture_output=True,
            text=True,
            check=True,
        )
        for line in (out.stdout + out.stderr).splitlines():
            if needle in line:
                return _timestamp(line.split(" ", 1)[0]) - started
        raise AssertionError(f"{service} never logged {needle!r}")

    def logs(self, tail: int = 40) -> str:
        return self.compose("logs", "--no-color", f"--tail={tail}", check=False, timeout=60)

    def leftovers(self) -> dict[str, list[str]]:
        """What Docker still holds of this project: containers, networks and volumes by compose label."""
        label = f"label=com.docker.compose.project={self.name}"
        found = {}
        for kind, command in {
            "containers": ["docker", "ps", "-a", "-q", "--filter", label],
            "networks": ["docker", "network", "ls", "-q", "--filter", label],
            "volumes": ["docker", "volume", "ls", "-q", "--filter", label],
        }.items():
            found[kind] = subprocess.run(command, capture_output=True, text=True, check=True).stdout.split()
        return found

    def down(self) -> None:
        self.compose("down", "-v", "--remove-orphans", "--timeout", "20", timeout=180)
