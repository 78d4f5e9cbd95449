"""Synthetic model outputs and annotator labels for scorer tests, and helpers to store them."""

from __future__ import annotations

import numpy as np
from labelloop.core.storage import ObjectStore
from labelloop.v1 import common_pb2


def probabilities(
    rng: np.random.Generator, truth: np.ndarray, classes: int, skill: float = 3.0
) -> np.ndarray:
    """Dirichlet rows leaning towards the true class, like a half-trained model (some exact zeros)."""
    alpha = np.full((len(truth), classes), 0.4)
    alpha[np.arange(len(truth)), truth] += skill
    probs = rng.gamma(alpha)  # normalised gamma draws are Dirichlet rows
    probs[rng.random(probs.shape) < 0.05] = 0.0  # exact zeros exercise cleanlab's clipping
    probs[np.arange(len(truth)), truth] += 1e-3
    return probs / probs.sum(axis=1, keepdims=True)


def annotator_labels(
    rng: np.random.Generator, truth: np.ndarray, classes: int, annotators: int, multi: bool
) -> np.ndarray:
    """labels_multiannotator: float [N, M] with NaN for missing; annotators right 80% of the time.
    multi=False gives every example exactly one label (cleanlab's single-annotator branch)."""
    n = len(truth)
    noisy = np.where(
        rng.random((n, annotators)) < 0.8, truth[:, None], rng.integers(0, classes, (n, annotators))
    )
    labels = noisy.astype(np.float64)
    if multi:
        labels[rng.random((n, annotators)) < 0.5] = np.nan
        empty = np.isnan(labels).all(axis=1)
        labels[empty, 0] = noisy[empty, 0]
    else:
        keep = rng.integers(0, annotators, n)
        labels[:] = np.nan
        labels[np.arange(n), keep] = noisy[np.arange(n), keep]
    labels[0, :] = noisy[0, :]  # every annotator labels at least one example
    if not multi:
        labels[0, 1:] = np.nan
        for a in range(annotators):
            labels[a, :] = np.nan
            labels[a, a] = noisy[a, a]
    return labels


def put_array(
    store: ObjectStore, key: str, array: np.ndarray, ids: list[str] | None = None
) -> common_pb2.ArrayRef:
    store.put_array(key, array)
    ref = common_pb2.ArrayRef(uri=store.uri(key), shape=list(array.shape), dtype=array.dtype.name)
    if ids is not None:
        store.put_json(key.removesuffix(".npy") + "_ids.json", ids)
        ref.example_ids_uri = store.uri(key.removesuffix(".npy") + "_ids.json")
    return ref
