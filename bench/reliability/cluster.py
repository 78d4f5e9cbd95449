"""The services as local processes on the tabular digits sample with a fast trainer, and the checks
on an experiment's labels (each stored exactly once) that every part of the run shares."""

from __future__ import annotations

import socket
import time
from collections import Counter
from pathlib import Path

import grpc
import pandas as pd
from labelloop.cli.local import SERVICES, LocalCluster, Ports
from labelloop.client import LabelLoopClient, trainer_config
from labelloop.core.config import StorageConfig
from labelloop.v1 import experiments_pb2 as pb

DATASET = "digits"
PER_CLASS, BATCH = 2, 10  # 20 first labels (10 digits), then 10 a round
# A numeric MLP: about 4 s a fit on 2 cores (the same settings as tests/support/cluster.py).
FAST_TRAINER = {
    "model.names": "[numerical_mlp]",
    "optim.max_epochs": "30",
    "optim.lr": "0.01",
    "env.batch_size": "16",
    "env.per_gpu_batch_size": "16",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def local_cluster(workdir: Path, extra_env: dict[str, str] | None = None) -> LocalCluster:
    """Every service on free ports, one store folder, manifests imported from workdir."""
    return LocalCluster(
        storage=StorageConfig(backend="local", root=workdir / "store"),
        log_dir=workdir / "logs",
        ports={s: Ports(free_port(), free_port()) for s in SERVICES},
        extra_env={"LABELLOOP_CACHE_DIR": str(workdir / "cache"), "LABELLOOP_LOG_LEVEL": "WARNING"}
        | (extra_env or {}),
        import_roots=[workdir],
    )


def client_for(local: LocalCluster) -> LabelLoopClient:
    return LabelLoopClient(local.address("controller"), local.address("store"))


def ingest_digits(client: LabelLoopClient, folder: Path, rows: int = 300) -> Path:
    from labelloop.sample_data import write_digits_tabular

    frame = pd.read_csv(write_digits_tabular(folder / "full")).head(rows)
    frame.insert(0, "id", [f"d{i:04d}" for i in range(len(frame))])
    manifest = folder / "manifest.csv"
    frame.to_csv(manifest, index=False)
    client.create_dataset(
        DATASET, str(manifest), label_column="label", id_column="id", test_fraction=0.3, seed=7
    )
    return manifest


def create(client: LabelLoopClient, name: str, max_rounds: int, seed: int) -> None:
    client.create_experiment(
        name, dataset=DATASET, strategy="least_confidence", per_class=PER_CLASS, batch_size=BATCH,
        max_rounds=max_rounds, trainer=trainer_config(FAST_TRAINER, num_gpus=0), seed=seed, start=True,
    )  # fmt: skip


def expected_labels(max_rounds: int) -> int:
    return PER_CLASS * 10 + BATCH * max_rounds


def label_counts(client: LabelLoopClient, name: str) -> tuple[int, int]:
    """(distinct (example, annotator) pairs stored, pairs stored more than once) of the experiment."""
    annotations = client.list_annotations(DATASET, name)
    pairs = Counter((a.example_id, a.annotator) for a in annotations)
    return len(pairs), sum(n - 1 for n in pairs.values() if n > 1)


def get_quietly(client: LabelLoopClient, name: str) -> pb.Experiment | None:
    """The experiment as the controller shows it; None while the controller does not answer."""
    try:
        request = pb.GetExperimentRequest(name=f"experiments/{name}")
        return client.experiments.GetExperiment(request, timeout=5).experiment
    except grpc.RpcError:
        return None


def resume_quietly(client: LabelLoopClient, name: str) -> bool:
    """ResumeExperiment; False while the controller or storage cannot take it yet."""
    try:
        client.resume(name)
        return True
    except grpc.RpcError as error:
        if error.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            time.sleep(1)
            return False
        raise
