"""One trainer job: fit (TRAIN), load (PREDICT) or only embed (EMBED); predict and embed pool and test.

TRAIN fine-tunes a MultiModalPredictor (TRAINING_MODE_FINE_TUNE) or fits a linear probe on the
frozen backbone's cached embeddings (TRAINING_MODE_LINEAR_PROBE, until the labeled set reaches
fine_tune_from_labels); see models.py, embeddings.py and probe.py. Every TRAIN and PREDICT writes the
pool's and test split's probabilities and the pool's embeddings; EMBED writes only the embeddings.

Runs inside an executor: the local worker process, or a Kubernetes pod through
`python -m labelloop.trainer.job --spec-json <file or store key>`. It needs only the spec and the
object store; everything it produces goes under `spec.output_prefix`, result.json last.

A pod of a sharded prediction (an Indexed Job: LABELLOOP_SHARD_COUNT=N > 1 and JOB_COMPLETION_INDEX=i)
predicts only slice i of the pool and of the test split and writes them under `shards/` with a done
marker instead of result.json; the executor merges the shards (see shards.py).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from labelloop.core import layout, tables
from labelloop.core.config import Settings
from labelloop.core.errors import FailedPrecondition
from labelloop.core.faults import is_transient
from labelloop.core.storage import ObjectStore, open_store, upload_folder
from labelloop.trainer import data, embeddings, hparams, newdata, probe, threads
from labelloop.trainer import predictor as predictor_folder
from labelloop.trainer.contract import JobKind, JobSpec
from labelloop.trainer.models import (
    AutoGluonModel,
    FittedModel,
    ProbeRunner,
    aligned_probabilities,
    fit_autogluon,
    in_chunks,
    load_autogluon,
)
from labelloop.trainer.shards import SPLITS, Shard

__all__ = ["aligned_probabilities", "main", "run_job"]
log = logging.getLogger(__name__)

Report = Callable[[float, str], None]
# Progress fractions at stage boundaries of a TRAIN job; PREDICT uses the prediction span only.
FIT_START, FIT_END, PREDICT_END = 0.05, 0.7, 0.95
RESULT_FILE = "result.json"


def offline_environment() -> None:
    """Make a missing download fail at once instead of hanging: there is no internet here."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def failure_message(error: BaseException) -> str:
    """The job status's error text, "Kind: message"; the operation's code is read from Kind. A fault that
    can go away (storage unreachable, a full disk) is Unavailable: the controller then trains again
    (and, past its attempts, stops resumably) instead of failing the experiment for good."""
    kind = "Unavailable" if is_transient(error) else type(error).__name__
    return f"{kind}: {error}"


def run_job(
    spec: JobSpec,
    store: ObjectStore,
    report: Report,
    cache_dir: Path | None = None,
    shard: Shard | None = None,
) -> dict[str, Any]:
    """Runs the job to the end and returns the result.json content.

    With a shard (a PREDICT job only), predicts that shard's slices and returns its done marker's
    content instead; result.json is then the merge's to write.
    """
    offline_environment()
    if shard is not None and spec.kind != JobKind.PREDICT:
        raise FailedPrecondition(f"only PREDICT jobs can be sharded, not {spec.kind}")
    # The ground truth must never be a feature, whatever the dataset metadata says.
    spec = replace(spec, feature_columns=[c for c in spec.feature_columns if c != spec.label_column])
    cache_dir = cache_dir or Settings.from_env().cache_dir
    prefix = spec.output_prefix.rstrip("/") + "/"
    store.delete(prefix + RESULT_FILE)  # a rerun must not leave a stale result visible meanwhile
    if shard is not None:
        store.delete(shard.done_key)  # nor a stale done marker of this shard
    if spec.kind == JobKind.PREDICT_NEW:  # a manifest of new rows: no dataset, no splits
        result = newdata.predict_manifest(spec, store, report, cache_dir)
        store.put_json(prefix + RESULT_FILE, result)  # last: its presence means the job finished
        report(1.0, "done")
        return result
    report(0.0, "reading examples")
    if shard is None:
        examples, placement = data.load_examples(spec, store, cache_dir), None
    else:
        examples, placement = _load_shard_examples(spec, store, cache_dir, shard)
    workdir = Path(tempfile.mkdtemp(prefix=f"labelloop-{spec.job_id}-"))
    try:
        if spec.kind == JobKind.EMBED:
            result = _embed_pool(spec, store, examples, cache_dir, report)
        else:
            model, result, save = _model(spec, store, examples, workdir, cache_dir, report, shard)
            start = FIT_END if spec.kind == JobKind.TRAIN else FIT_START
            if shard is not None and placement is not None:
                summary = _predict_shard(spec, store, model, examples, report, start, shard, placement)
                store.put_json(shard.done_key, summary)  # last: its presence means this shard is done
                report(1.0, f"shard {shard.index} of {shard.count} done")
                return summary
            predicted = _predict_all(spec, store, model, examples, report, start)
            if isinstance(model, ProbeRunner):  # the frozen embeddings: their cost is the cache's
                predicted["embed_seconds"] = result.pop("embed_seconds", 0.0)
            result.update(predicted)
            result["torch_threads"] = threads.current()  # what the fit and predict seconds ran with
            report(PREDICT_END, "saving model")
            result["model_key"] = save()
        store.put_json(prefix + RESULT_FILE, result)  # last: its presence means the job finished
        report(1.0, "done")
        return result
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _model(
    spec: JobSpec,
    store: ObjectStore,
    examples: pd.DataFrame,
    workdir: Path,
    cache_dir: Path,
    report: Report,
    shard: Shard | None,
) -> tuple[FittedModel, dict[str, Any], Callable[[], str]]:
    """The model to predict with, the result's first fields, and a function that saves the model."""
    prefix = spec.output_prefix.rstrip("/") + "/"
    model_key = layout.model_prefix(prefix)
    if spec.kind == JobKind.PREDICT:
        report(0.02, "loading model")
        kept = spec.model_key.rstrip("/") + "/"
        if spec.model_key and probe.is_probe_model(store, spec.model_key):
            fitted = probe.load(store, spec.model_key)
            table = _probe_embeddings(spec, store, examples, cache_dir, report, fitted, shard)
            runner = ProbeRunner(spec, fitted, table)
            info = {"mode": hparams.LINEAR_PROBE, "fit_seconds": 0.0, "embed_seconds": table.seconds}
            return runner, info, lambda: kept
        predictor = load_autogluon(spec, store, workdir / "predictor")
        return AutoGluonModel(spec, predictor), {"mode": hparams.FINE_TUNE, "fit_seconds": 0.0}, lambda: kept

    # Bad labels fail here, before the embeddings or the 10-second AutoGluon import.
    labeled = data.labeled_rows(spec, store, examples)
    if not hparams.uses_linear_probe(spec.config, len(labeled)):
        train = labeled.drop(columns=["example_id"])
        predictor, seconds = fit_autogluon(
            spec, store, train, workdir / "predictor", cache_dir, report, (FIT_START, FIT_END)
        )

        def upload() -> str:
            upload_folder(store, workdir / "predictor", model_key)
            predictor_folder.save_autogluon_card(store, model_key, spec)
            return model_key

        return AutoGluonModel(spec, predictor), {"mode": hparams.FINE_TUNE, "fit_seconds": seconds}, upload

    table = embeddings.dataset_embeddings(spec, store, examples, cache_dir, report)
    report(FIT_START, f"fitting a linear probe on {len(labeled)} labeled examples")
    start = time.perf_counter()
    pool_ids = examples.loc[examples["split"] == "pool", "example_id"].astype(str).tolist()
    hyperparameters = hparams.parse_hyperparameters(spec.config.get("hyperparameters", {}))
    fitted = probe.fit(
        table.rows_of(labeled["example_id"].astype(str).tolist()),
        labeled[data.LABEL].astype(str).tolist(),
        table.rows_of(pool_ids),
        c=probe.probe_c(hyperparameters),
        seed=int(spec.config.get("seed", 0) or 0),
        backbone=asdict(backbone := embeddings.backbone_of(spec, examples)),
    )
    info = {
        "mode": hparams.LINEAR_PROBE,
        "fit_seconds": time.perf_counter() - start,
        "embed_seconds": table.seconds,
        "embeddings_cache_key": table.prefix,
    }

    def save() -> str:  # self-contained: the frozen networks are copied into the folder first
        predictor_folder.save_probe_extras(store, model_key, spec, examples, backbone, cache_dir)
        probe.save(store, fitted, model_key)
        return model_key

    return ProbeRunner(spec, fitted, table), info, save


def _probe_embeddings(
    spec: JobSpec,
    store: ObjectStore,
    examples: pd.DataFrame,
    cache_dir: Path,
    report: Report,
    fitted: probe.ProbeModel,
    shard: Shard | None,
) -> embeddings.Embeddings:
    """The embeddings a saved probe predicts from: the cache of the backbone it was fitted on."""
    backbone = embeddings.Backbone.from_dict(fitted.backbone)
    if shard is None:
        return embeddings.dataset_embeddings(spec, store, examples, cache_dir, report, backbone)
    # A shard sees only its own rows: it must not write a cache of part of the dataset.
    cached = embeddings.read_cache(store, embeddings.cache_prefix(spec, backbone))
    if cached is None:
        raise FailedPrecondition(
            "a sharded prediction with a linear probe reads the dataset's embedding cache, and there is none "
            f"under {store.uri(embeddings.cache_prefix(spec, backbone))}: run CreateEmbeddingRun on the "
            "dataset with the same backbone first"
        )
    return cached


def _embed_pool(
    spec: JobSpec, store: ObjectStore, examples: pd.DataFrame, cache_dir: Path, report: Report
) -> dict[str, Any]:
    """EMBED: the pool's frozen-backbone embeddings, from the dataset's cache (computed once)."""
    table = embeddings.dataset_embeddings(spec, store, examples, cache_dir, report)
    prefix = spec.output_prefix.rstrip("/") + "/"
    pool = examples[examples["split"] == "pool"]
    ids = pool["example_id"].astype(str).tolist()
    result: dict[str, Any] = {"classes": list(spec.classes), "n_pool": len(ids), "mode": "embed"}
    result.update(_write_embeddings(store, prefix, table.rows_of(ids), ids))
    result["embed_seconds"] = table.seconds
    result["embeddings_cache_key"] = table.prefix
    return result


def _write_embeddings(
    store: ObjectStore, prefix: str, matrix: np.ndarray, ids: list[str] | None
) -> dict[str, Any]:
    """pool_embeddings.npy and its ids (the same file as the pool probabilities' ids: None when the
    probabilities' writing has stored it already)."""
    store.put_array(layout.embeddings_key(prefix, "pool"), matrix.astype(np.float32, copy=False))
    if ids is not None:
        store.put_json(layout.example_ids_key(prefix, "pool"), ids)
    return {
        "pool_embeddings_key": layout.embeddings_key(prefix, "pool"),
        "pool_example_ids_key": layout.example_ids_key(prefix, "pool"),
        "embedding_dims": int(matrix.shape[1]),
    }


def _split_frames(examples: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Each split's rows in the order of the examples table: the order of the output arrays."""
    return {s: examples[examples["split"] == s].reset_index(drop=True) for s in SPLITS}


class _Progress:
    """Reports rows done out of a total across the prediction span [start, PREDICT_END]."""

    def __init__(self, report: Report, start: float, total: int):
        self.report, self.start, self.total, self.done = report, start, max(1, total), 0

    def __call__(self, rows: int) -> None:
        self.done += rows
        share = min(1.0, self.done / self.total)
        self.report(self.start + (PREDICT_END - self.start) * share, f"predicted {self.done}/{self.total}")


def _predict_frames(
    spec: JobSpec, model: FittedModel, frames: dict[str, pd.DataFrame], report: Report, start: float
) -> tuple[dict[str, np.ndarray], np.ndarray, float]:
    """Probabilities of every split, the pool's embeddings and the seconds the embeddings took; the
    embeddings are an empty vector (ndim 1) when the spec asks for none."""
    embedded = len(frames["pool"]) if spec.pool_embeddings else 0
    progress = _Progress(report, start, sum(len(f) for f in frames.values()) + embedded)
    width = len(spec.classes)
    probabilities = {s: in_chunks(model.probabilities, f, width, progress) for s, f in frames.items()}
    if not spec.pool_embeddings:
        return probabilities, np.zeros(0, np.float32), 0.0
    t0 = time.perf_counter()
    pool_embeddings = in_chunks(model.embeddings, frames["pool"], 0, progress)
    return probabilities, pool_embeddings, time.perf_counter() - t0


def _predict_all(
    spec: JobSpec,
    store: ObjectStore,
    model: FittedModel,
    examples: pd.DataFrame,
    report: Report,
    start: float,
) -> dict[str, Any]:
    prefix = spec.output_prefix.rstrip("/") + "/"
    frames = _split_frames(examples)
    t0 = time.perf_counter()
    probabilities, pool_embeddings, embed_seconds = _predict_frames(spec, model, frames, report, start)
    result: dict[str, Any] = {"classes": list(spec.classes)}
    for split, frame in frames.items():
        probs = probabilities[split]
        ids = frame["example_id"].tolist()
        store.put_array(layout.probabilities_key(prefix, split), probs)
        store.put_json(layout.example_ids_key(prefix, split), ids)
        result[f"{split}_probabilities_key"] = layout.probabilities_key(prefix, split)
        result[f"{split}_example_ids_key"] = layout.example_ids_key(prefix, split)
        result[f"n_{split}"] = len(ids)
        if split == "test":
            result["test_accuracy"] = _accuracy(probs, frame, spec)
    if len(frames["pool"]) and pool_embeddings.ndim == 2:
        result.update(_write_embeddings(store, prefix, pool_embeddings, None))  # ids written above
    result["embed_seconds"] = embed_seconds
    result["predict_seconds"] = time.perf_counter() - t0 - embed_seconds
    return result


def _load_shard_examples(
    spec: JobSpec, store: ObjectStore, cache_dir: Path, shard: Shard
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """This shard's rows of each split, like data.load_examples, and where they lie in the splits.

    The rows are chosen before image keys become local files, so on S3 a pod downloads only the
    images of its own shard.
    """
    table = tables.read_frame(store, spec.examples_key)
    if "split" not in table.columns:
        raise FailedPrecondition(f"{store.uri(spec.examples_key)} lacks the columns ['split']")
    parts, rows, totals = [], {}, {}
    for split in SPLITS:
        frame = table[table["split"] == split]
        lo, hi = shard.bounds(len(frame))
        parts.append(frame.iloc[lo:hi])
        rows[split], totals[split] = [lo, hi], len(frame)
    del table
    mine = pd.concat(parts, ignore_index=True)
    needed = ["example_id", *spec.feature_columns, *([spec.image_column] if spec.image_column else [])]
    missing = [c for c in needed if c not in mine.columns]
    if missing:
        raise FailedPrecondition(f"{store.uri(spec.examples_key)} lacks the columns {missing}")
    if not spec.feature_columns and not spec.image_column:
        raise FailedPrecondition("the dataset has neither an image column nor feature columns to train on")
    mine["example_id"] = mine["example_id"].astype(str)
    if spec.image_column:
        mine[spec.image_column] = data.local_image_paths(store, mine[spec.image_column], cache_dir)
    return mine, {"rows": rows, "totals": totals}


def _predict_shard(
    spec: JobSpec,
    store: ObjectStore,
    model: FittedModel,
    examples: pd.DataFrame,
    report: Report,
    start: float,
    shard: Shard,
    placement: dict[str, Any],
) -> dict[str, Any]:
    """Predicts this shard's rows (already sliced, see _load_shard_examples); returns its summary.

    Test rows are sliced like the pool (not all predicted by one shard), so the shards share the work
    evenly; test accuracy is merged from each shard's hit and known-truth counts. The shard's pool
    embeddings are merged like its probabilities.
    """
    frames = _split_frames(examples)
    t0 = time.perf_counter()
    probabilities, pool_embeddings, embed_seconds = _predict_frames(spec, model, frames, report, start)
    for split, frame in frames.items():
        store.put_array(shard.probabilities_key(split), probabilities[split])
        store.put_json(shard.ids_key(split), frame["example_id"].tolist())
    summary: dict[str, Any] = {}
    if pool_embeddings.ndim == 2 and len(frames["pool"]):
        store.put_array(shard.embeddings_key, pool_embeddings)
        summary["embedding_dims"] = int(pool_embeddings.shape[1])
    correct, known = _hits(probabilities["test"], frames["test"], spec)
    return {
        "job_id": spec.job_id,
        "index": shard.index,
        "count": shard.count,
        "classes": list(spec.classes),
        "model_key": spec.model_key.rstrip("/") + "/",
        "rows": placement["rows"],
        "totals": placement["totals"],
        "test_correct": correct,
        "test_known": known,
        "predict_seconds": time.perf_counter() - t0 - embed_seconds,
        "embed_seconds": embed_seconds,
        **summary,
    }


def _hits(probs: np.ndarray, frame: pd.DataFrame, spec: JobSpec) -> tuple[int, int]:
    """(correct predictions, rows with a known ground truth); (0, 0) when the dataset has none."""
    if not spec.label_column or spec.label_column not in frame.columns or frame.empty:
        return 0, 0
    truth = frame[spec.label_column].astype(str).to_numpy()
    known = frame[spec.label_column].notna().to_numpy()
    if not known.any():
        return 0, 0
    predicted = np.asarray(spec.classes)[probs.argmax(axis=1)]
    return int((predicted[known] == truth[known]).sum()), int(known.sum())


def _accuracy(probs: np.ndarray, frame: pd.DataFrame, spec: JobSpec) -> float | None:
    """Test accuracy against the ground truth; None when the dataset has none."""
    correct, known = _hits(probs, frame, spec)
    return correct / known if known else None


# The Kubernetes pod entry point -------------------------------------------------------------


class StatusWriter:
    """Writes `{output_prefix}status.json` for a watcher; at most one write a second while running."""

    def __init__(self, store: ObjectStore, spec: JobSpec, min_interval: float = 1.0, key: str = ""):
        self.store, self.key = store, key or spec.output_prefix.rstrip("/") + "/status.json"
        self.min_interval, self.last = min_interval, 0.0
        self.lock = threading.Lock()

    def write(self, state: str, progress: float, message: str, error: str = "", force: bool = False) -> None:
        with self.lock:
            now = time.monotonic()
            if not force and now - self.last < self.min_interval:
                return
            self.last = now
            status = {
                "state": state,
                "progress": progress,
                "message": message,
                "error": error,
                "time": time.time(),
            }
            self.store.put_json(self.key, status)

    def report(self, progress: float, message: str) -> None:
        log.info("%.0f%% %s", progress * 100, message)
        self.write("running", progress, message)


def load_spec(ref: str, store: ObjectStore) -> JobSpec:
    if os.path.isfile(ref):
        return JobSpec.from_json(Path(ref).read_text())
    return JobSpec.from_json(store.get_bytes(store.ref_to_key(ref)).decode())


def main(argv: list[str] | None = None) -> int:
    from labelloop.core.logs import setup_logging

    parser = argparse.ArgumentParser(prog="python -m labelloop.trainer.job", description=__doc__)
    parser.add_argument("--spec-json", required=True, help="a JobSpec JSON file, or its store key or URI")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    setup_logging("trainer-job", settings.log_level, settings.log_format)
    store = open_store(settings.storage)
    spec = load_spec(args.spec_json, store)
    status = StatusWriter(store, spec)
    try:
        shard = Shard.from_env(os.environ, spec.output_prefix)
    except FailedPrecondition as error:
        log.error("job %s cannot start: %s", spec.job_id, error)
        status.write("failed", 0.0, "failed", f"{type(error).__name__}: {error}", force=True)
        return 1
    if shard is not None:  # the pods of one Indexed Job must not overwrite each other's status
        status = StatusWriter(store, spec, key=shard.status_key)
        log.info("predicting shard %d of %d into %s", shard.index, shard.count, shard.prefix)
    status.write("running", 0.0, "starting", force=True)
    try:
        threads.use(threads.job_threads(shared=False))  # the pod's quota, not the node's cores
        result = run_job(spec, store, status.report, settings.cache_dir, shard)
    except Exception as error:
        log.exception("job %s failed", spec.job_id)
        status.write("failed", 0.0, "failed", failure_message(error), force=True)
        return 1
    status.write("succeeded", 1.0, "done", force=True)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
