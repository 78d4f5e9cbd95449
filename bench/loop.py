"""The reference loop: active learning in one process, with no services in between.

Per round: AutoGluon MultiModalPredictor.fit on the labeled rows, predict_proba on pool and test,
test accuracy, scores (ActiveLab through cleanlab.multiannotator.get_active_learning_scores; the
other strategies through the scorer's own plug-ins; random from a seeded generator), np.argsort
for the batch, and the oracle's labels. The trainer settings come from the trainer's own
`hparams.fit_args`, so a config means the same model on both paths. Initial labels come from the
controller's `per_class_ids` with the same seed, so both paths start from the same labeled set.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from labelloop.controller.initial import per_class_ids
from labelloop.core.api import enum_value
from labelloop.core.storage import ObjectStore
from labelloop.scorer.strategies import strategy_for
from labelloop.scorer.strategies.base import FitInputs, PoolChunk
from labelloop.v1 import common_pb2

from bench.data import LABEL_COLUMN, Frames

log = logging.getLogger(__name__)

LABEL = "__label__"


@dataclass
class RoundTiming:
    number: int
    labeled: int
    test_accuracy: float
    stage_seconds: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    selected: list[str] = field(default_factory=list)


# A fitter turns (train frame, feature columns) into a predict_proba(frame) -> [n, classes] callable;
# the smoke test swaps AutoGluon for scikit-learn here, nothing else.
Fitter = Callable[[pd.DataFrame, list[str], list[str], int], Callable[[pd.DataFrame], np.ndarray]]


def autogluon_fitter(
    config: dict[str, Any], image_column: str, store: ObjectStore, cache_dir: Path
) -> Fitter:
    """MultiModalPredictor with the trainer's own fit arguments for `config` (a JobSpec config dict)."""
    from labelloop.trainer import hparams

    def fit(
        train: pd.DataFrame, features: list[str], classes: list[str], seed: int
    ) -> Callable[[pd.DataFrame], np.ndarray]:
        from autogluon.multimodal import MultiModalPredictor
        from labelloop.trainer import threads

        threads.use(threads.job_threads(shared=True))  # as the trainer's worker does: the same arithmetic
        args = hparams.fit_args(
            {**config, "seed": seed}, n_labeled=len(train), image_column=image_column, store=store,
            cache_dir=cache_dir,
        )  # fmt: skip
        workdir = Path(tempfile.mkdtemp(prefix="labelloop-bench-fit-"))
        n_classes = train[LABEL].nunique()
        predictor = MultiModalPredictor(
            label=LABEL,
            problem_type="binary" if n_classes == 2 else "multiclass",
            path=str(workdir / "predictor"),
            verbosity=0,
            enable_progress_bar=False,
        )
        predictor.fit(
            train[[*features, LABEL]],
            hyperparameters=args.hyperparameters,
            presets=args.presets,
            time_limit=args.time_limit,
            column_types=args.column_types or None,
            seed=args.seed,
        )
        model_classes = [str(c) for c in predictor.class_labels]

        def predict(frame: pd.DataFrame) -> np.ndarray:
            proba = np.asarray(predictor.predict_proba(frame[features], as_pandas=False, as_multiclass=True))
            out = np.zeros((len(frame), len(classes)), dtype=np.float32)
            for j, label in enumerate(model_classes):  # the dataset's class order, unseen classes 0
                out[:, classes.index(label)] = proba[:, j]
            return out

        predict.cleanup = lambda: shutil.rmtree(workdir, ignore_errors=True)  # type: ignore[attr-defined]
        return predict

    return fit


def scores_for(
    strategy: str, unlabeled: np.ndarray, labeled: np.ndarray, labels: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Lower first. ActiveLab is cleanlab's own function on the whole arrays (the reference), random the
    loop's own generator; every other strategy is the scorer's plug-in on the whole pool."""
    label_matrix = labels[:, np.newaxis].astype(float)
    if strategy == "activelab":
        from cleanlab.multiannotator import get_active_learning_scores

        _, unlabeled_scores = get_active_learning_scores(label_matrix, labeled, unlabeled)
        return np.asarray(unlabeled_scores, dtype=np.float64)
    if strategy == "random":
        return rng.random(len(unlabeled))
    try:
        plugin = strategy_for(enum_value(common_pb2.Strategy, strategy))
    except ValueError as error:
        raise ValueError(f"unknown strategy {strategy!r}") from error
    fitted = plugin.fit(FitInputs(unlabeled.shape[1], 1, 0, [labeled], label_matrix))
    row_sums = np.einsum("ij->i", unlabeled, dtype=np.float64)
    return np.asarray(plugin.score(fitted.state, PoolChunk(0, [unlabeled], [row_sums])), dtype=np.float64)


def run_loop(
    frames: Frames,
    fitter: Fitter,
    *,
    strategy: str,
    seed: int,
    per_class: int,
    batch_size: int,
    rounds: int,
    on_round: Callable[[RoundTiming], None] | None = None,
) -> list[RoundTiming]:
    """rounds labeling rounds, rounds + 1 models; returns one RoundTiming per model."""
    pool, test, classes = frames.pool, frames.test, frames.classes
    truth = dict(zip(pool["example_id"], pool[LABEL_COLUMN], strict=True))
    labeled_ids = per_class_ids(per_class, list(pool["example_id"]), truth, classes, seed)
    labels: dict[str, str] = {i: truth[i] for i in labeled_ids}  # the oracle, noise-free
    position = {e: i for i, e in enumerate(pool["example_id"])}
    class_index = {c: i for i, c in enumerate(classes)}
    test_truth = test[LABEL_COLUMN].to_numpy()
    rng = np.random.default_rng([seed, 2])
    out: list[RoundTiming] = []
    for number in range(rounds + 1):
        seconds: dict[str, float] = {}
        started = t = time.perf_counter()
        # Pool order, as the trainer's merge of examples and snapshot labels gives: AutoGluon's
        # internal validation split depends on row order.
        rows = np.array(sorted(position[i] for i in labels), dtype=int)
        train = pool.iloc[rows].assign(**{LABEL: [labels[i] for i in pool["example_id"].iloc[rows]]})
        predict = fitter(train, frames.feature_columns, classes, seed)
        seconds["fit"], t = _lap(t)
        pool_probs, test_probs = predict(pool), predict(test)
        seconds["predict"], t = _lap(t)
        accuracy = float((np.asarray(classes)[test_probs.argmax(axis=1)] == test_truth).mean())
        seconds["evaluate"], t = _lap(t)
        record = RoundTiming(number, len(labels), accuracy)
        if number < rounds:
            mask = np.ones(len(pool), dtype=bool)
            mask[rows] = False
            unlabeled_rows = np.flatnonzero(mask)
            labeled_classes = np.array([class_index[labels[i]] for i in pool["example_id"].iloc[rows]])
            scores = scores_for(strategy, pool_probs[unlabeled_rows], pool_probs[rows], labeled_classes, rng)
            seconds["score"], t = _lap(t)
            chosen = unlabeled_rows[np.argsort(scores, kind="stable")[:batch_size]]
            seconds["select"], t = _lap(t)
            record.selected = [str(pool["example_id"].iat[r]) for r in chosen]
            for example_id in record.selected:
                labels[example_id] = truth[example_id]
            seconds["label"], t = _lap(t)
        getattr(predict, "cleanup", lambda: None)()
        record.stage_seconds = seconds
        record.seconds = time.perf_counter() - started
        out.append(record)
        log.info(
            "round %d: %d labels, accuracy %.3f, %.1fs", number, record.labeled, accuracy, record.seconds
        )
        if on_round:
            on_round(record)
    return out


def _lap(start: float) -> tuple[float, float]:
    now = time.perf_counter()
    return now - start, now
