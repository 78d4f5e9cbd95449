"""One trainer job: fit (TRAIN) or load (PREDICT) a MultiModalPredictor, predict pool and test.

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
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from labelloop.core import layout
from labelloop.core.config import Settings
from labelloop.core.errors import FailedPrecondition
from labelloop.core.storage import ObjectStore, download_prefix, open_store, upload_folder
from labelloop.trainer import data, hparams
from labelloop.trainer.contract import JobKind, JobSpec
from labelloop.trainer.shards import SPLITS, Shard

log = logging.getLogger(__name__)

Report = Callable[[float, str], None]
PREDICT_CHUNK_ROWS = 512
# Progress fractions at stage boundaries of a TRAIN job; PREDICT uses the prediction span only.
FIT_START, FIT_END, PREDICT_END = 0.05, 0.7, 0.95
RESULT_FILE = "result.json"


def offline_environment() -> None:
    """Make a missing download fail at once instead of hanging: there is no internet here."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


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
    report(0.0, "reading examples")
    if shard is None:
        examples, placement = data.load_examples(spec, store, cache_dir), None
    else:
        examples, placement = _load_shard_examples(spec, store, cache_dir, shard)
    workdir = Path(tempfile.mkdtemp(prefix=f"labelloop-{spec.job_id}-"))
    try:
        fit_seconds = 0.0
        if spec.kind == JobKind.TRAIN:
            predictor, fit_seconds = _fit(spec, store, examples, workdir, cache_dir, report)
            start = FIT_END
        else:
            report(0.02, "loading model")
            predictor = _load(spec, store, workdir)
            start = FIT_START
        if shard is not None and placement is not None:
            summary = _predict_shard(spec, store, predictor, examples, report, start, shard, placement)
            store.put_json(shard.done_key, summary)  # last: its presence means this shard is done
            report(1.0, f"shard {shard.index} of {shard.count} done")
            return summary
        result = _predict_all(spec, store, predictor, examples, report, start)
        result["fit_seconds"] = fit_seconds
        if spec.kind == JobKind.TRAIN:
            report(PREDICT_END, "uploading model")
            upload_folder(store, workdir / "predictor", layout.model_prefix(prefix))
            result["model_key"] = layout.model_prefix(prefix)
        else:
            result["model_key"] = spec.model_key.rstrip("/") + "/"
        store.put_json(prefix + RESULT_FILE, result)  # last: its presence means the job finished
        report(1.0, "done")
        return result
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _fit(
    spec: JobSpec, store: ObjectStore, examples: pd.DataFrame, workdir: Path, cache_dir: Path, report: Report
) -> tuple[Any, float]:
    # Bad labels fail here, before the 10-second AutoGluon import.
    train = data.training_frame(spec, store, examples[examples["split"] == "pool"])
    from autogluon.multimodal import MultiModalPredictor

    args = hparams.fit_args(
        spec.config, n_labeled=len(train), image_column=spec.image_column, store=store, cache_dir=cache_dir
    )
    n_classes = train[data.LABEL].nunique()
    predictor = MultiModalPredictor(
        label=data.LABEL,
        problem_type="binary" if n_classes == 2 else "multiclass",  # AutoGluon's name for 2 classes
        path=str(workdir / "predictor"),
        verbosity=1,
        enable_progress_bar=False,  # progress goes through report(), logs stay JSON lines
    )
    report(FIT_START, f"fitting on {len(train)} labeled examples of {n_classes} classes")
    start = time.perf_counter()
    with _heartbeat(report, FIT_START, FIT_END, args.time_limit, "fitting"):
        predictor.fit(
            train,
            hyperparameters=args.hyperparameters,
            presets=args.presets,
            time_limit=args.time_limit,
            column_types=args.column_types or None,
            seed=args.seed,
        )
    return predictor, time.perf_counter() - start


def _load(spec: JobSpec, store: ObjectStore, workdir: Path) -> Any:
    from autogluon.multimodal import MultiModalPredictor

    if not spec.model_key:
        raise FailedPrecondition("a PREDICT job needs model_key: the folder of a saved predictor")
    folder = download_prefix(store, spec.model_key, workdir / "predictor")
    return MultiModalPredictor.load(str(folder))


class _heartbeat:
    """Reports elapsed fit time every few seconds, so a watcher sees the job is alive.

    AutoGluon has no cheap progress hook; with a time limit progress follows the clock.
    """

    def __init__(self, report: Report, lo: float, hi: float, limit: float | None, what: str):
        self.report, self.lo, self.hi, self.limit, self.what = report, lo, hi, limit, what
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        start = time.monotonic()
        while not self.stop.wait(5.0):
            elapsed = time.monotonic() - start
            share = min(elapsed / self.limit, 0.99) if self.limit else 0.0
            self.report(self.lo + (self.hi - self.lo) * share, f"{self.what} ({elapsed:.0f} s)")

    def __enter__(self) -> _heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def aligned_probabilities(proba: np.ndarray, model_classes: list[Any], classes: list[str]) -> np.ndarray:
    """Columns in the dataset's class order; classes the model never saw get 0."""
    index = {c: i for i, c in enumerate(classes)}
    out = np.zeros((len(proba), len(classes)), dtype=np.float32)
    for j, label in enumerate(model_classes):
        if str(label) not in index:
            raise FailedPrecondition(f"the model predicts class {label!r}, which the dataset does not have")
        out[:, index[str(label)]] = proba[:, j]
    return out


def _split_frames(examples: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Each split's rows in the order of the examples table: the order of the output arrays."""
    return {s: examples[examples["split"] == s].reset_index(drop=True) for s in SPLITS}


def _predict_frames(
    spec: JobSpec,
    predictor: Any,
    frames: dict[str, pd.DataFrame],
    report: Report,
    start: float,
) -> dict[str, np.ndarray]:
    """Probabilities of every frame's rows, in chunks of PREDICT_CHUNK_ROWS, in the dataset's class order."""
    model_classes = list(predictor.class_labels)
    total = max(1, sum(len(f) for f in frames.values()))
    done = 0
    out: dict[str, np.ndarray] = {}
    for split, frame in frames.items():
        inputs = data.model_inputs(spec, frame)
        parts = []
        for lo in range(0, len(frame), PREDICT_CHUNK_ROWS):
            chunk = inputs.iloc[lo : lo + PREDICT_CHUNK_ROWS]
            proba = predictor.predict_proba(chunk, as_pandas=False, as_multiclass=True)
            parts.append(aligned_probabilities(np.asarray(proba), model_classes, spec.classes))
            done += len(chunk)
            report(start + (PREDICT_END - start) * done / total, f"predicted {done}/{total} examples")
        out[split] = np.concatenate(parts) if parts else np.zeros((0, len(spec.classes)), np.float32)
    return out


def _predict_all(
    spec: JobSpec, store: ObjectStore, predictor: Any, examples: pd.DataFrame, report: Report, start: float
) -> dict[str, Any]:
    prefix = spec.output_prefix.rstrip("/") + "/"
    frames = _split_frames(examples)
    t0 = time.perf_counter()
    probabilities = _predict_frames(spec, predictor, frames, report, start)
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
    result["predict_seconds"] = time.perf_counter() - t0
    return result


def _load_shard_examples(
    spec: JobSpec, store: ObjectStore, cache_dir: Path, shard: Shard
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """This shard's rows of each split, like data.load_examples, and where they lie in the splits.

    The rows are chosen before image keys become local files, so on S3 a pod downloads only the
    images of its own shard.
    """
    table = data.read_parquet(store, spec.examples_key)
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
    predictor: Any,
    examples: pd.DataFrame,
    report: Report,
    start: float,
    shard: Shard,
    placement: dict[str, Any],
) -> dict[str, Any]:
    """Predicts this shard's rows (already sliced, see _load_shard_examples); returns its summary.

    Test rows are sliced like the pool (not all predicted by one shard), so the shards share the work
    evenly; test accuracy is merged from each shard's hit and known-truth counts.
    """
    frames = _split_frames(examples)
    t0 = time.perf_counter()
    probabilities = _predict_frames(spec, predictor, frames, report, start)
    for split, frame in frames.items():
        store.put_array(shard.probabilities_key(split), probabilities[split])
        store.put_json(shard.ids_key(split), frame["example_id"].tolist())
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
        "predict_seconds": time.perf_counter() - t0,
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
        result = run_job(spec, store, status.report, settings.cache_dir, shard)
    except Exception as error:
        log.exception("job %s failed", spec.job_id)
        status.write("failed", 0.0, "failed", f"{type(error).__name__}: {error}", force=True)
        return 1
    status.write("succeeded", 1.0, "done", force=True)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
