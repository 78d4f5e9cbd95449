"""`python -m labelloop.store` as its own process, configured only by LABELLOOP_* variables."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from labelloop.core.config import Settings
from labelloop.core.server import channel
from labelloop.core.storage import S3Store
from labelloop.sample_data import write_digits_tabular
from labelloop.v1 import dataset_store_pb2 as pb
from labelloop.v1 import dataset_store_pb2_grpc as pb_grpc

from tests.conftest import s3_config
from tests.support.ports import free_port
from tests.support.seaweedfs import S3Server


def _wait_serving(address: str, process: subprocess.Popen, timeout: float = 60.0) -> None:
    health = health_pb2_grpc.HealthStub(channel(address))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the store exited with {process.returncode} before serving")
        try:
            reply = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=1)
            if reply.status == health_pb2.HealthCheckResponse.SERVING:
                return
        except grpc.RpcError:
            pass  # not listening yet
        time.sleep(0.2)
    raise TimeoutError(f"the store at {address} is not SERVING after {timeout}s")


@pytest.mark.integration
def test_store_process_serves_s3_and_stops_on_sigterm(s3_server: S3Server, tmp_path: Path) -> None:
    storage = s3_config(s3_server)
    settings = Settings(
        storage=storage,
        grpc_port=free_port(),
        metrics_port=free_port(),
        cache_dir=tmp_path,
        import_roots=(tmp_path,),  # reaches the process as LABELLOOP_IMPORT_ROOTS
    )
    env = {
        **os.environ,
        **settings.to_env(),
        "LABELLOOP_GRPC_PORT": str(settings.grpc_port),
        "LABELLOOP_METRICS_PORT": str(settings.metrics_port),
    }
    log = open(tmp_path / "store.log", "wb")  # noqa: SIM115 - closed in finally
    process = subprocess.Popen([sys.executable, "-m", "labelloop.store"], env=env, stdout=log, stderr=log)
    try:
        address = f"127.0.0.1:{settings.grpc_port}"
        _wait_serving(address, process)
        stub = pb_grpc.DatasetStoreServiceStub(channel(address))
        manifest = write_digits_tabular(tmp_path / "digits")
        dataset = stub.CreateDataset(
            pb.CreateDatasetRequest(
                dataset_id="digits", manifest_uri=str(manifest), label_column="label", test_fraction=0.2
            ),
            timeout=60,
        ).dataset
        assert (dataset.example_count, dataset.test_count) == (1797, 360)
        assert dataset.examples_uri == f"s3://{storage.bucket}/datasets/digits/examples.parquet"
        # It really is in the S3 bucket, written last.
        assert S3Store(storage).exists("datasets/digits/dataset.json")

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        log.close()
    text = (tmp_path / "store.log").read_text()
    assert "received signal" in text and "store serving gRPC" in text
