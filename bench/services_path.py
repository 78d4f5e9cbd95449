"""Experiments through the product path: the five services as processes, driven by LabelLoopClient."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from labelloop.cli.local import SERVICES, LocalCluster, Ports
from labelloop.client import LabelLoopClient, trainer_config
from labelloop.core.config import StorageConfig
from labelloop.v1 import experiments_pb2

from bench.data import SPLIT_SEED, Ingest


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def running_cluster(workdir: Path) -> Iterator[tuple[LocalCluster, LabelLoopClient]]:
    """The five services on free ports, with their store and logs under workdir."""
    ports = {s: Ports(_free_port(), _free_port()) for s in SERVICES}
    cluster = LocalCluster(
        storage=StorageConfig(backend="local", root=workdir / "store"),
        log_dir=workdir / "logs",
        ports=ports,
        extra_env={"LABELLOOP_LOG_LEVEL": "WARNING"},
    )
    with cluster, LabelLoopClient(cluster.address("controller"), cluster.address("store")) as client:
        yield cluster, client


def ensure_dataset(client: LabelLoopClient, dataset_id: str, ingest: Ingest) -> None:
    import grpc

    try:
        client.get_dataset(dataset_id)
        return
    except grpc.RpcError as error:
        if error.code() != grpc.StatusCode.NOT_FOUND:
            raise
    client.create_dataset(
        dataset_id,
        str(ingest.manifest),
        image_column=ingest.image_column,
        label_column=ingest.label_column,
        id_column=ingest.id_column,
        test_fraction=ingest.test_fraction,
        seed=SPLIT_SEED,
    )


def run_experiment(
    client: LabelLoopClient,
    experiment_id: str,
    *,
    dataset_id: str,
    strategy: str,
    seed: int,
    per_class: int,
    batch_size: int,
    rounds: int,
    hyperparameters: dict[str, str],
    checkpoints: dict[str, str],
    timeout: float = 3600.0,
) -> list[dict[str, Any]]:
    """Runs one experiment to the end; one dict per round (labeled, test_accuracy, seconds, stages)."""
    client.create_experiment(
        experiment_id,
        dataset=dataset_id,
        strategy=strategy,
        per_class=per_class,
        batch_size=batch_size,
        max_rounds=rounds,
        trainer=trainer_config(hyperparameters, checkpoints, num_gpus=0),
        seed=seed,
        start=True,
    )
    final = client.wait(experiment_id, timeout=timeout)
    if final.state != experiments_pb2.EXPERIMENT_STATE_SUCCEEDED:
        raise RuntimeError(f"experiment {experiment_id} ended {final.state}: {final.status_message}")
    return [
        {
            "number": r.number,
            "labeled": int(r.labeled_count),
            "test_accuracy": float(r.test_accuracy),
            "seconds": float(r.seconds),
            "stage_seconds": {k: float(v) for k, v in sorted(r.stage_seconds.items())},
            "selected": list(r.selected_example_ids),
        }
        for r in client.list_rounds(experiment_id)
    ]
