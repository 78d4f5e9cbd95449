"""The floor a preset's first model must clear: a plain logistic regression on the raw features,
trained on the very labels the first model had (issue 9: "a preset's first model is never worse than a
plain linear model trained on the same labels").

Raw features per modality: an image's own pixel values in 0..1 at its stored size (one channel when
every image is grey); a text column's TF-IDF (sublinear, fitted on the pool's texts); numeric columns
as they are. The model is scikit-learn's LogisticRegression with its defaults (C=1, lbfgs), no scaling.
The labels are round 0's snapshot labels (consensus labels when annotators are noisy), which the
services path records with each run (`initial_labels`).
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pandas as pd
from labelloop.core import layout, names
from labelloop.core.storage import ObjectStore

from bench.data import LABEL_COLUMN, Frames

MAX_ITER = 3000


def initial_labels(store: ObjectStore, snapshot: str) -> list[list[str]]:
    """[[example_id, label], ...] of a snapshot ("datasets/{d}/snapshots/{s}"): what round 0 trained on."""
    key = layout.snapshot_labels_key(*names.parse(snapshot, "datasets", "snapshots"))
    labels = pd.read_parquet(io.BytesIO(store.get_bytes(key)))
    return [[str(i), str(label)] for i, label in zip(labels["example_id"], labels["label"], strict=True)]


def raw_features(frames: Frames) -> tuple[np.ndarray, np.ndarray, str]:
    """Pool and test rows' raw features (in the frames' row order) and what they are, for the report."""
    if frames.image_column:
        from PIL import Image

        def pixels(paths: pd.Series) -> np.ndarray:
            return np.stack(
                [np.asarray(Image.open(p).convert("RGB"), np.float32).ravel() / 255 for p in paths]
            )

        pool, test = pixels(frames.pool[frames.image_column]), pixels(frames.test[frames.image_column])
        rgb = pool.reshape(len(pool), -1, 3)
        if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2]):
            return pool[:, ::3], test[:, ::3], "the grey pixel values in 0..1"
        return pool, test, "the RGB pixel values in 0..1"
    numeric = [c for c in frames.feature_columns if pd.api.types.is_numeric_dtype(frames.pool[c])]
    text = [c for c in frames.feature_columns if c not in numeric]
    parts_pool, parts_test = (
        [frames.pool[numeric].to_numpy(np.float64)],
        [frames.test[numeric].to_numpy(np.float64)],
    )
    if text:
        from sklearn.feature_extraction.text import TfidfVectorizer

        for column in text:
            vectorizer = TfidfVectorizer(sublinear_tf=True, min_df=2).fit(frames.pool[column].fillna(""))
            parts_pool.append(vectorizer.transform(frames.pool[column].fillna("")).toarray())
            parts_test.append(vectorizer.transform(frames.test[column].fillna("")).toarray())
    what = " and ".join(
        (["the numeric columns as they are"] if numeric else []) + (["TF-IDF of the text"] if text else [])
    )
    return np.hstack(parts_pool), np.hstack(parts_test), what


def linear_accuracy(
    frames: Frames, features: tuple[np.ndarray, np.ndarray], labels: list[list[str]], seed: int
) -> float:
    """Test accuracy of LogisticRegression on the labeled pool rows' raw features."""
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    pool, test = features
    row = {example_id: i for i, example_id in enumerate(frames.pool["example_id"])}
    rows = [row[example_id] for example_id, _ in labels]
    y = np.asarray([label for _, label in labels], dtype=object)
    truth = frames.test[LABEL_COLUMN].to_numpy(dtype=object)
    if len(set(y)) < 2:  # one class labeled: every prediction is that class
        return float((truth == y[0]).mean())
    model = LogisticRegression(max_iter=MAX_ITER, random_state=seed)
    with threadpool_limits(limits=1, user_api="blas"):
        model.fit(pool[rows], y)
        return float((model.predict(test) == truth).mean())


def first_model_check(
    runs: dict[str, dict[int, list[dict[str, Any]]]], frames: Frames
) -> dict[str, Any] | None:
    """Per seed: the first model's test accuracy and the raw-feature logistic regression's on the same
    labels; None when no run recorded its initial labels (runs cached before this check existed)."""
    by_seed: dict[int, dict[str, Any]] = {}
    for by in runs.values():
        for seed, run in by.items():
            if seed not in by_seed and run and run[0].get("initial_labels"):
                by_seed[seed] = {"first": float(run[0]["test_accuracy"]), "labels": run[0]["initial_labels"]}
    if not by_seed:
        return None
    pool, test, what = raw_features(frames)
    seeds: dict[str, dict[str, float]] = {}
    for seed in sorted(by_seed):
        linear = linear_accuracy(frames, (pool, test), by_seed[seed]["labels"], seed)
        seeds[str(seed)] = {"first_model": round(by_seed[seed]["first"], 4), "linear": round(linear, 4)}
    firsts = np.array([s["first_model"] for s in seeds.values()])
    linears = np.array([s["linear"] for s in seeds.values()])
    return {
        "features": what,
        "labels": len(next(iter(by_seed.values()))["labels"]),
        "seeds": seeds,
        "first_model_mean": round(float(firsts.mean()), 4),
        "first_model_std": round(float(firsts.std()), 4),
        "linear_mean": round(float(linears.mean()), 4),
        "linear_std": round(float(linears.std()), 4),
        "seeds_below_linear": [int(s) for s, v in seeds.items() if v["first_model"] < v["linear"]],
        "not_worse": bool(firsts.mean() >= linears.mean()),
    }
