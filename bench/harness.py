"""Runs the benchmark parts of a mode and keeps each part's results in `{workdir}/parts/{part}.json`.

Parts run independently (and resume from the run cache), so one part can be rerun alone; the
report (report.py) is built from whatever part files exist.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from labelloop.core.storage import LocalStore

from bench import curves, data
from bench.config import BenchConfig, CurveConfig
from bench.loop import Fitter, autogluon_fitter
from bench.runs import RunCache

log = logging.getLogger(__name__)

PARTS = ("curves", "overhead", "scale")


class Workspace:
    def __init__(self, workdir: Path):
        self.root = Path(workdir).absolute()
        self.root.mkdir(parents=True, exist_ok=True)
        self.cache = RunCache(self.root / "runs")
        self.cache_dir = self.root / "cache"  # checkpoints built by the trainer's code

    def data_folder(self, dataset: str, rows: int) -> Path:
        return self.root / "data" / (dataset + (f"-{rows}" if rows else ""))

    def local_store(self) -> LocalStore:
        return LocalStore(self.root / "inprocess-store")

    def part_path(self, part: str) -> Path:
        return self.root / "parts" / f"{part}.json"

    def save_part(self, part: str, result: Any) -> None:
        path = self.part_path(part)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=1))

    def load_parts(self) -> dict[str, Any]:
        return {p: json.loads(self.part_path(p).read_text()) for p in PARTS if self.part_path(p).exists()}


def dataset_id(dataset: str, rows: int) -> str:
    return dataset.replace("_", "-") + (f"-{rows}" if rows else "")


def prepare_inprocess(ws: Workspace, dataset: str, rows: int, test_fraction: float) -> data.Frames:
    ingest = data.ingest_args(dataset, ws.data_folder(dataset, rows), rows, test_fraction)
    store = ws.local_store()
    did = dataset_id(dataset, rows)
    data.ingest_local(store, did, ingest)
    return data.load_frames(store, did)


def inprocess_fitter(
    ws: Workspace, hyperparameters: dict[str, str], checkpoints: dict[str, str], image: str
) -> Fitter:

    config = {
        "hyperparameters": dict(hyperparameters),
        "checkpoints": [{"key": k, "source": v} for k, v in checkpoints.items()],
        "num_gpus": 0,
    }
    return autogluon_fitter(config, image, ws.local_store(), ws.cache_dir)


@contextmanager
def cluster_client(ws: Workspace) -> Iterator[Any]:
    from bench.services_path import running_cluster

    with running_cluster(ws.root / "services") as (_, client):
        yield client


def run_curves(config: BenchConfig, ws: Workspace, fitter_for: Any = None) -> dict[str, Any]:
    """fitter_for(cfg, frames) overrides the AutoGluon fitter (the smoke test's scikit-learn model)."""
    results: dict[str, Any] = {"path": config.curve_path, "datasets": {}}
    for cfg in config.curves:
        if config.curve_path == "services":
            runs = _curves_services(cfg, ws)
        else:
            frames = prepare_inprocess(ws, cfg.dataset, cfg.rows, cfg.test_fraction)
            fitter = (
                fitter_for(cfg, frames)
                if fitter_for
                else inprocess_fitter(ws, cfg.hyperparameters, cfg.checkpoints, frames.image_column)
            )
            runs = curves.run_curves_inprocess(cfg, frames, fitter, ws.cache)
        results["datasets"][cfg.dataset] = {"config": _curve_config(cfg), **curves.analyse(runs)}
        ws.save_part("curves", results)  # after each data set: a partial result survives a crash
    return results


def _curves_services(cfg: CurveConfig, ws: Workspace) -> dict[str, dict[int, curves.Run]]:
    from bench.services_path import ensure_dataset, run_experiment

    ingest = data.ingest_args(cfg.dataset, ws.data_folder(cfg.dataset, cfg.rows), cfg.rows, cfg.test_fraction)
    did = dataset_id(cfg.dataset, cfg.rows)
    with cluster_client(ws) as client:
        ensure_dataset(client, did, ingest)

        def experiment(experiment_id: str, strategy: str, seed: int) -> curves.Run:
            return run_experiment(
                client, experiment_id, dataset_id=did, strategy=strategy, seed=seed,
                per_class=cfg.per_class, batch_size=cfg.batch_size, rounds=cfg.rounds,
                hyperparameters=cfg.hyperparameters, checkpoints=cfg.checkpoints,
            )  # fmt: skip

        return curves.run_curves_services(cfg, experiment, ws.cache)


def _curve_config(cfg: CurveConfig) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(cfg)
