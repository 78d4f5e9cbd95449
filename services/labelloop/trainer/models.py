"""The two kinds of fitted model a job predicts with, behind one small interface.

- AutoGluonModel: a fine-tuned MultiModalPredictor (TRAINING_MODE_FINE_TUNE); its embeddings are
  `extract_embedding`, the fitted network's penultimate features.
- ProbeRunner: a linear probe on the frozen backbone's cached embeddings
  (TRAINING_MODE_LINEAR_PROBE, probe.py); its embeddings are the frozen ones.

Both give probabilities in the dataset's class order (zero columns for classes the model never
saw) and float32 embeddings, for any rows of the examples table.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from labelloop.core.errors import FailedPrecondition
from labelloop.core.storage import ObjectStore, download_prefix
from labelloop.trainer import data, epochs, hparams
from labelloop.trainer.contract import JobSpec
from labelloop.trainer.embeddings import Embeddings
from labelloop.trainer.probe import ProbeModel

Report = Callable[[float, str], None]
# Rows per predict_proba / extract_embedding call: bounded memory on large pools (AutoGluon batches
# within a call), few calls (each costs about 0.1-0.3 s of set-up, which 512 rows paid 4 times a round).
CHUNK_ROWS = 4096


def aligned_probabilities(proba: np.ndarray, model_classes: list[Any], classes: list[str]) -> np.ndarray:
    """Columns in the dataset's class order; classes the model never saw get 0."""
    index = {c: i for i, c in enumerate(classes)}
    out = np.zeros((len(proba), len(classes)), dtype=np.float32)
    for j, label in enumerate(model_classes):
        if str(label) not in index:
            raise FailedPrecondition(f"the model predicts class {label!r}, which the dataset does not have")
        out[:, index[str(label)]] = proba[:, j]
    return out


class FittedModel(Protocol):
    def probabilities(self, frame: pd.DataFrame) -> np.ndarray:
        """[rows, dataset classes] float32 for rows of the examples table."""
        ...

    def embeddings(self, frame: pd.DataFrame) -> np.ndarray:
        """[rows, dims] float32 for rows of the examples table."""
        ...


class AutoGluonModel:
    def __init__(self, spec: JobSpec, predictor: Any):
        self.spec, self.predictor = spec, predictor

    def probabilities(self, frame: pd.DataFrame) -> np.ndarray:
        if frame.empty:
            return np.zeros((0, len(self.spec.classes)), np.float32)
        proba = self.predictor.predict_proba(
            data.model_inputs(self.spec, frame), as_pandas=False, as_multiclass=True
        )
        return aligned_probabilities(np.asarray(proba), list(self.predictor.class_labels), self.spec.classes)

    def embeddings(self, frame: pd.DataFrame) -> np.ndarray:
        inputs = data.model_inputs(self.spec, frame)
        features = self.predictor.extract_embedding(inputs, as_tensor=False)
        if isinstance(features, dict):  # one entry per model when a fusion exposes them separately
            features = np.concatenate(
                [np.asarray(v).reshape(len(frame), -1) for v in features.values()], axis=1
            )
        return np.asarray(features, dtype=np.float32).reshape(len(frame), -1)


class ProbeRunner:
    def __init__(self, spec: JobSpec, model: ProbeModel, embeddings: Embeddings):
        self.spec, self.model, self.table = spec, model, embeddings

    def embeddings(self, frame: pd.DataFrame) -> np.ndarray:
        ids = frame["example_id"].astype(str).tolist()
        try:
            return self.table.rows_of(ids)
        except KeyError as error:
            raise FailedPrecondition(
                f"example {error} is not in the embedding cache {self.table.prefix}: the dataset changed "
                "since it was embedded"
            ) from None

    def probabilities(self, frame: pd.DataFrame) -> np.ndarray:
        if frame.empty:
            return np.zeros((0, len(self.spec.classes)), np.float32)
        proba = self.model.predict_proba(self.embeddings(frame))
        return aligned_probabilities(proba, self.model.classes, self.spec.classes)


def in_chunks(
    compute: Callable[[pd.DataFrame], np.ndarray],
    frame: pd.DataFrame,
    width: int,
    on_chunk: Callable[[int], None] = lambda rows: None,
) -> np.ndarray:
    """compute() over CHUNK_ROWS rows at a time, concatenated; on_chunk(rows) after each."""
    parts = []
    for lo in range(0, len(frame), CHUNK_ROWS):
        chunk = frame.iloc[lo : lo + CHUNK_ROWS]
        parts.append(compute(chunk))
        on_chunk(len(chunk))
    return np.concatenate(parts).astype(np.float32) if parts else np.zeros((0, width), np.float32)


def fit_autogluon(
    spec: JobSpec,
    store: ObjectStore,
    train: pd.DataFrame,
    folder: Path,
    cache_dir: Path,
    report: Report,
    span: tuple[float, float],
) -> tuple[Any, float]:
    """A MultiModalPredictor fitted on the training frame (data.labeled_rows without example_id);
    (predictor, seconds).
    The seconds include building the predictor and its arguments, as the benchmark's in-process loop
    counts them: the model's own work, not the service's."""
    from autogluon.multimodal import MultiModalPredictor

    start = time.perf_counter()
    args = hparams.fit_args(
        spec.config, n_labeled=len(train), image_column=spec.image_column, store=store, cache_dir=cache_dir
    )
    n_classes = train[data.LABEL].nunique()
    predictor = MultiModalPredictor(
        label=data.LABEL,
        problem_type="binary" if n_classes == 2 else "multiclass",  # AutoGluon's name for 2 classes
        path=str(folder),
        verbosity=1,
        enable_progress_bar=False,  # progress goes through report(), logs stay JSON lines
    )
    report(span[0], f"fine-tuning on {len(train)} labeled examples of {n_classes} classes")
    with (
        _heartbeat(report, span[0], span[1], args.time_limit, "fitting") as beat,
        epochs.following(beat.epoch),
    ):
        predictor.fit(
            train,
            hyperparameters=args.hyperparameters,
            presets=args.presets,
            time_limit=args.time_limit,
            column_types=args.column_types or None,
            seed=args.seed,
        )
    return predictor, time.perf_counter() - start


def load_autogluon(spec: JobSpec, store: ObjectStore, folder: Path) -> Any:
    from autogluon.multimodal import MultiModalPredictor

    if not spec.model_key:
        raise FailedPrecondition("a PREDICT job needs model_key: the folder of a saved predictor")
    return MultiModalPredictor.load(str(download_prefix(store, spec.model_key, folder)))


class _heartbeat:
    """Reports the fit's epoch and elapsed time at each new epoch (at most once a second) and every
    few seconds before the first, so a watcher sees the job is alive and how far it is ("fitting,
    epoch 3/10 (42 s)").

    Progress is the larger of the share of epochs begun and the share of the time limit used
    (a fit stops at whichever comes first).
    """

    def __init__(self, report: Report, lo: float, hi: float, limit: float | None, what: str):
        self.report, self.lo, self.hi, self.limit, self.what = report, lo, hi, limit, what
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.epochs = (0, 0)  # (epoch from 1, max epochs); (0, 0) until the first epoch starts
        self.start = self.last = time.monotonic()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def epoch(self, epoch: int, max_epochs: int) -> None:
        """The Lightning callback's listener (epochs.following): reports the new epoch now, or
        within a second when epochs take milliseconds (one report each would flood the watchers)."""
        with self.lock:
            self.epochs = (epoch, max_epochs)
            due = epoch == 1 or time.monotonic() - self.last >= 1.0
        if due:
            self._beat()

    def _beat(self) -> None:
        now = time.monotonic()
        elapsed = now - self.start
        with self.lock:
            epoch, most = self.epochs
            self.last = now
        share = min(elapsed / self.limit, 0.99) if self.limit else 0.0
        if epoch and most:
            share = max(share, min((epoch - 1) / most, 0.99))
        where = f", {epochs.epoch_text(epoch, most)}" if epoch else ""
        self.report(self.lo + (self.hi - self.lo) * share, f"{self.what}{where} ({elapsed:.0f} s)")

    def _run(self) -> None:
        while not self.stop.wait(1.0):
            with self.lock:
                due = time.monotonic() - self.last >= (1.0 if self.epochs[0] else 5.0)
            if due:  # an epoch that began within the last second but was not yet reported
                self._beat()

    def __enter__(self) -> _heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()
