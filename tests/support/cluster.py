"""LocalCluster on free ports, a tiny tabular dataset and a fast trainer config for tests."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pandas as pd
from labelloop.cli.local import SERVICES, LocalCluster, Ports
from labelloop.client import LabelLoopClient, trainer_config
from labelloop.core.config import StorageConfig
from labelloop.v1 import trainer_pb2

from tests.support.ports import free_port

# A numeric MLP trains in a few seconds on 2 CPU cores and needs no pretrained weights. Measured on
# 300 tabular digits: 50 labels -> 0.68 test accuracy, 90 -> 0.93, about 4 s a fit (fewer epochs or
# the default learning rate leave a near-constant model at these sizes).
FAST_TRAINER_HYPERPARAMETERS = {
    "model.names": "[numerical_mlp]",
    "optim.max_epochs": "30",
    "optim.lr": "0.01",
    "env.batch_size": "16",
    "env.per_gpu_batch_size": "16",
}


def fast_trainer() -> trainer_pb2.TrainerConfig:
    return trainer_config(FAST_TRAINER_HYPERPARAMETERS, num_gpus=0)


def free_ports(services: tuple[str, ...] = SERVICES) -> dict[str, Ports]:
    return {s: Ports(free_port(), free_port()) for s in services}


def session_folder(path: Path) -> Path:
    """The pytest session's base temporary folder that holds `path` (every tmp_path of the run sits
    under it); `path` itself when it is in none."""
    for folder in [path, *path.parents]:
        if folder.parent.name.startswith("pytest-of-"):
            return folder
    return path


def cluster(
    workdir: Path, storage: StorageConfig, services: tuple[str, ...] = SERVICES, **kwargs: object
) -> LocalCluster:
    """A LocalCluster (not started) on free ports, logging under workdir/logs; the store imports
    manifests from workdir and the test session's other temporary folders (kwargs' import_roots
    instead, if given)."""
    kwargs.setdefault("import_roots", [workdir, session_folder(workdir)])
    return LocalCluster(
        storage=storage,
        log_dir=workdir / "logs",
        ports=free_ports(SERVICES),  # every address is known, even of services left out
        services=services,
        extra_env={"LABELLOOP_CACHE_DIR": str(workdir / "cache"), "LABELLOOP_LOG_LEVEL": "INFO"},
        **kwargs,  # type: ignore[arg-type]
    )


def client_for(running: LocalCluster) -> LabelLoopClient:
    return LabelLoopClient(running.address("controller"), running.address("store"))


# The ground truth's column, named like the snapshot's own "label" column on purpose.
LABEL_COLUMN = "label"


def write_tabular_digits(folder: Path, rows: int = 300) -> Path:
    """The first `rows` scikit-learn digits as 64 pixel columns + the digit, with stable ids."""
    from labelloop.sample_data import write_digits_tabular

    manifest = write_digits_tabular(folder / "full")
    frame = pd.read_csv(manifest).head(rows)
    frame.insert(0, "id", [f"d{i:04d}" for i in range(len(frame))])
    path = folder / "manifest.csv"
    frame.to_csv(path, index=False)
    return path


def ingest_tabular_digits(
    client: LabelLoopClient, folder: Path, dataset_id: str = "digits", rows: int = 300
) -> str:
    manifest = write_tabular_digits(folder, rows)
    client.create_dataset(
        dataset_id, str(manifest), label_column=LABEL_COLUMN, id_column="id", test_fraction=0.3, seed=7
    )
    return dataset_id


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as reply:
        return reply.read().decode()
