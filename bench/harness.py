"""Runs the benchmark parts of a mode and keeps each part's results in `{workdir}/parts/{part}.json`.

Parts run independently (and resume from the run cache), so one part can be rerun alone; the
report (report.py) is built from whatever part files exist.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from labelloop.core import layout
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
        tmp = path.with_suffix(f".{os.getpid()}.tmp")  # atomic: another benchmark process may read it
        tmp.write_text(json.dumps(result, indent=1))
        tmp.replace(path)

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
def cluster_client(ws: Workspace, name: str = "") -> Iterator[Any]:
    """The five services with their store under {workdir}/services[/name]: one store per data set keeps
    its embeddings cached across runs, and lets benchmark processes on different data sets run at once."""
    from bench.services_path import running_cluster

    with running_cluster(ws.root / "services" / name if name else ws.root / "services", ws.root / "data") as (
        _,
        client,
    ):
        yield client


def run_curves(config: BenchConfig, ws: Workspace, fitter_for: Any = None) -> dict[str, Any]:
    """fitter_for(cfg, frames) overrides the AutoGluon fitter (the smoke test's scikit-learn model)."""
    results: dict[str, Any] = {"path": config.curve_path, "datasets": {}}
    for cfg in config.curves:
        if config.cached_only:
            runs = _cached_only(cfg, ws, config.curve_path)
            if "random" not in runs:
                log.warning("%s: no cached random runs, left out of the report", cfg.name)
                continue
        elif config.curve_path == "services":
            runs = _curves_services(cfg, ws, config.parallel, config.resume_experiments)
        else:
            frames = prepare_inprocess(ws, cfg.dataset, cfg.rows, cfg.test_fraction)
            fitter = (
                fitter_for(cfg, frames)
                if fitter_for
                else inprocess_fitter(ws, cfg.hyperparameters, cfg.checkpoints, frames.image_column)
            )
            runs = curves.run_curves_inprocess(cfg, frames, fitter, ws.cache)
        results["datasets"][cfg.name] = {"config": _curve_config(cfg), **curves.analyse(runs, cfg.noisy)}
        if cfg.preset:
            results["datasets"][cfg.name]["first_model_vs_linear"] = _first_model_check(cfg, ws, runs)
        _save_curves(ws, results)  # after each scenario: a partial result survives a crash
    return results


def _first_model_check(cfg: CurveConfig, ws: Workspace, runs: dict[str, dict[int, curves.Run]]) -> Any:
    """The preset's first model against a raw-feature logistic regression on the same labels."""
    from bench import baseline

    if not any(run and run[0].get("initial_labels") for by in runs.values() for run in by.values()):
        return None  # runs cached before the check existed
    frames = prepare_inprocess(ws, cfg.dataset, cfg.rows, cfg.test_fraction)  # same split and ids
    return baseline.first_model_check(runs, frames)


def store_of(ws: Workspace, name: str) -> LocalStore:
    """The store of cluster_client(ws, name)."""
    return LocalStore((ws.root / "services" / name if name else ws.root / "services") / "store")


def drop_run_arrays(store: LocalStore, run: curves.Run) -> None:
    """Deletes a finished run's arrays and models from the services' store once its result is cached
    (a Fashion-MNIST round left ~40 MB of embeddings, probabilities and scores); its small JSON records
    stay, so the controller still lists the experiment. The dataset and its embedding cache stay too."""
    if not run or not run[0].get("experiment"):
        return
    prefix = layout.experiment_prefix(run[0]["experiment"])
    bulky = [k for k in store.list(prefix) if not k.endswith(".json")]
    for key in bulky:
        store.delete(key)
    log.info("deleted %d arrays and model files of %s (the result is cached)", len(bulky), prefix)


def _cached_only(cfg: CurveConfig, ws: Workspace, path: str) -> dict[str, dict[int, curves.Run]]:
    """The cached runs of cfg, each strategy with the seeds it has (strategies without any left out)."""
    runs, _ = curves.cached_runs(cfg, ws.cache, path)
    return {s: runs[s] for s in cfg.strategies if s in runs}


def _save_curves(ws: Workspace, results: dict[str, Any]) -> None:
    """Adds this invocation's scenarios to the workspace's curves part: invocations that ran other
    scenarios (other seeds, other data sets, another process) keep theirs; a scenario run again
    replaces its entry. Entries from the other path (in-process vs services) are dropped."""
    earlier = ws.load_parts().get("curves", {})
    kept = earlier.get("datasets", {}) if earlier.get("path") == results["path"] else {}
    ws.save_part("curves", {**results, "datasets": {**kept, **results["datasets"]}})


def _curves_services(
    cfg: CurveConfig, ws: Workspace, parallel: int, resume: bool = True
) -> dict[str, dict[int, curves.Run]]:
    from bench.baseline import initial_labels
    from bench.services_path import (
        FirstEmbedding,
        ensure_dataset,
        run_experiment,
        run_scenario,
        scenario_config,
    )

    runs, todo = curves.cached_runs(cfg, ws.cache, "services")
    if not todo:  # everything cached: no services needed
        return runs
    ingest = data.ingest_args(cfg.dataset, ws.data_folder(cfg.dataset, cfg.rows), cfg.rows, cfg.test_fraction)
    did = dataset_id(cfg.dataset, cfg.rows)
    name = cfg.dataset if cfg.preset else ""
    store = store_of(ws, name)
    with cluster_client(ws, name) as client:
        ensure_dataset(client, did, ingest)

        first = FirstEmbedding()

        def experiment(experiment_id: str, strategy: str, seed: int) -> curves.Run:
            if cfg.preset:  # a scenario: the preset's trainer, label-free start, the strategy's variant
                config = scenario_config(cfg, did, strategy, seed)
                run = run_scenario(client, experiment_id, config, first, resume=resume)
                if run and run[0].get("snapshot"):  # what the first model trained on, for the baseline
                    run[0]["initial_labels"] = initial_labels(store, run[0]["snapshot"])
                return run
            return run_experiment(
                client, experiment_id, dataset_id=did, strategy=strategy, seed=seed,
                per_class=cfg.per_class, batch_size=cfg.batch_size, rounds=cfg.rounds,
                hyperparameters=cfg.hyperparameters, checkpoints=cfg.checkpoints,
            )  # fmt: skip

        return curves.run_curves_services(
            cfg, experiment, ws.cache, parallel, cached=functools.partial(drop_run_arrays, store)
        )


def _curve_config(cfg: CurveConfig) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(cfg)
