"""Storage that fails for a while, for real: a store folder on its own tmpfs made read-only and then full
(every service writes there), and the S3 server (SeaweedFS) stopped for longer than the client's
retries and started again. Each experiment finishes, or stops resumably and finishes after
ResumeExperiment, with every label stored exactly once.

Mounting a tmpfs needs root (CAP_SYS_ADMIN); elsewhere the first test skips and says so, since a
read-only folder does not stop root and a fake filesystem would test nothing real.
tests/controller/test_resume.py checks what readers see during an S3 outage (no disagreement between
the stored record and the controller's answers, no read blocked behind a stuck write).
"""

from __future__ import annotations

import errno
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from labelloop.core.config import StorageConfig
from labelloop.core.storage import S3Store

from tests.reliability.harness import Fault, assert_finished_exactly, create, run_with_faults
from tests.support.cluster import client_for, cluster, ingest_tabular_digits
from tests.support.seaweedfs import S3Server, restart_seaweedfs, start_seaweedfs

pytestmark = pytest.mark.integration

MAX_ROUNDS = 2
HOLD_SECONDS = 12.0  # longer than the controller's write retries below and the S3 client's own
FAST_STOP = {"LABELLOOP_CONTROLLER_WRITE_RETRY_SECONDS": "3"}


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    mount_point = tmp_path / "tmpfs"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256m", "tmpfs", str(mount_point)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs (needs root): {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(mount_point)], capture_output=True)
        subprocess.run(["umount", "-l", str(mount_point)], check=True)


def remount(mount_point: Path, mode: str) -> Callable[[], None]:
    def change() -> None:
        # A file open for writing at that instant makes remounting read-only answer busy: try again.
        for _ in range(50):
            if subprocess.run(["mount", "-o", f"remount,{mode}", str(mount_point)]).returncode == 0:
                return
        raise AssertionError(f"could not remount {mount_point} {mode}")

    return change


def fill(mount_point: Path) -> None:
    """Writes a filler file until the filesystem is full (ENOSPC)."""
    chunk = b"\0" * (1 << 20)
    with open(mount_point / "filler", "wb") as out:
        try:
            while True:
                out.write(chunk)
                out.flush()
        except OSError as error:
            assert error.errno == errno.ENOSPC, error


def test_a_read_only_then_full_disk(tmp_path: Path, tmpfs: Path) -> None:
    storage = StorageConfig(backend="local", root=tmpfs / "store")
    local = cluster(tmp_path, storage)
    local.extra_env.update(FAST_STOP)
    with local:
        client = client_for(local)
        ingest_tabular_digits(client, tmp_path / "data", rows=300)
        faults = [
            Fault(1, "train", "read-only disk", remount(tmpfs, "ro"), remount(tmpfs, "rw"), HOLD_SECONDS),
            Fault(2, "snapshot", "full disk", lambda: fill(tmpfs), (tmpfs / "filler").unlink, HOLD_SECONDS),
        ]
        create(client, "disk", MAX_ROUNDS)
        outcome = run_with_faults(client, "disk", faults, timeout=600)
        assert_finished_exactly(client, "disk", outcome, MAX_ROUNDS)
        client.close()


def test_the_s3_server_stopped_past_the_retries(tmp_path: Path) -> None:
    weed_dir = tmp_path / "weed"
    servers: list[S3Server] = [start_seaweedfs(weed_dir)]
    storage = StorageConfig(
        backend="s3", endpoint=servers[0].endpoint, bucket="faults",
        access_key=servers[0].access_key, secret_key=servers[0].secret_key,
    )  # fmt: skip
    S3Store(storage)  # the bucket, once: services starting together would race to create it
    local = cluster(tmp_path, storage)
    local.extra_env.update(FAST_STOP)

    def restart() -> None:
        servers.append(restart_seaweedfs(servers[-1], weed_dir))

    try:
        with local:
            client = client_for(local)
            ingest_tabular_digits(client, tmp_path / "data", rows=300)
            outage = Fault(1, "train", "S3 server stopped", lambda: servers[-1].stop(), restart, HOLD_SECONDS)
            create(client, "s3", MAX_ROUNDS)
            outcome = run_with_faults(client, "s3", [outage], timeout=600)
            assert_finished_exactly(client, "s3", outcome, MAX_ROUNDS)
            client.close()
    finally:
        for server in servers:
            server.stop()
