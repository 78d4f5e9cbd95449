"""The linear probe: a multinomial logistic regression on frozen-backbone embeddings.

Few labels and a good pretrained representation: a linear model on the embeddings beats fine-tuning
the whole network by far at 20-300 labels on a CPU and fits in well under a second. Features are
standardized with the statistics of the pool (no labels needed), so the regularization strength
means the same for every backbone; an embedding scaled block by block on purpose (pixels beside a
network's features, see `prescaled`) is left as it is. The fitted model is a small folder of its
own (`model/`): linear_probe.json (backbone, classes, settings) and linear_probe.npz (scaler and
weights); a prediction run recognises it by linear_probe.json and reuses the dataset's cached
embeddings.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np

from labelloop.core.errors import FailedPrecondition, InvalidArgument, NotFound
from labelloop.core.storage import ObjectStore

DEFAULT_C = 1.0  # scikit-learn's default; 0.1-10 measured within a point on standardized embeddings
MAX_ITER = 2000
C_KEY = "linear_probe.c"
MODEL_JSON, MODEL_ARRAYS = "linear_probe.json", "linear_probe.npz"


@dataclass
class ProbeModel:
    classes: list[str]  # the labeled classes, in the column order of coef
    backbone: dict[str, Any]  # embeddings.Backbone as a dict, for people and prediction runs
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray  # [classes or 1 for binary, dims]
    intercept: np.ndarray
    c: float

    def predict_proba(self, embeddings: np.ndarray) -> np.ndarray:
        """[rows, len(classes)] probabilities, in self.classes order."""
        if embeddings.shape[1] != self.coef.shape[1]:
            raise FailedPrecondition(
                f"the embeddings have {embeddings.shape[1]} dims, the linear probe was fitted on "
                f"{self.coef.shape[1]}: the backbone changed since the model was fitted"
            )
        logits = ((embeddings - self.mean) / self.scale) @ self.coef.T + self.intercept
        if len(self.classes) == 2:  # scikit-learn's binary form: one logit for the second class
            p = 1.0 / (1.0 + np.exp(-logits[:, 0]))
            return np.stack([1.0 - p, p], axis=1)
        logits = logits - logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)


def probe_c(hyperparameters: dict[str, Any]) -> float:
    raw = hyperparameters.get(C_KEY)
    if raw is None or raw == "":
        return DEFAULT_C
    try:
        c = float(raw)
    except (TypeError, ValueError):
        raise InvalidArgument(f"{C_KEY} must be a positive number, not {raw!r}") from None
    if not c > 0:
        raise InvalidArgument(f"{C_KEY} must be a positive number, not {c}")
    return c


def prescaled(backbone: dict[str, Any]) -> bool:
    """Embeddings whose columns are scaled by design: the raw pixels beside the network's L2-normalised
    features (embeddings.Backbone.image_pixels), with at most standardized numeric columns besides.
    Standardizing each of their columns would undo the blocks' weighting (text parts need it: then
    every column is standardized)."""
    return bool(backbone.get("image_pixels")) and not backbone.get("text_columns")


def fit(
    labeled: np.ndarray,
    labels: list[str],
    pool: np.ndarray,
    *,
    c: float,
    seed: int,
    backbone: dict[str, Any],
) -> ProbeModel:
    """Fits on the labeled rows' embeddings; `pool` (all pool rows) gives the standardization (none
    for prescaled embeddings)."""
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    labeled, pool = labeled.astype(np.float64), pool.astype(np.float64)  # float32 would stop lbfgs early
    mean = pool.mean(axis=0) if len(pool) else labeled.mean(axis=0)
    scale = pool.std(axis=0) if len(pool) else labeled.std(axis=0)
    scale = np.where(scale > 1e-12, scale, 1.0)
    if prescaled(backbone):
        mean, scale = np.zeros_like(mean), np.ones_like(scale)
    model = LogisticRegression(C=c, max_iter=MAX_ITER, random_state=seed)  # multinomial with lbfgs
    # One BLAS thread: the matrices are small, and on a busy machine OpenBLAS's spinning threads made
    # this fit 50x slower (20 s instead of 0.4 s for 100 labels x 1,280 dims, measured).
    with threadpool_limits(limits=1, user_api="blas"):
        model.fit((labeled - mean) / scale, np.asarray(labels, dtype=object))
    return ProbeModel(
        classes=[str(k) for k in model.classes_],
        backbone=backbone,
        mean=mean.astype(np.float64),
        scale=scale.astype(np.float64),
        coef=model.coef_.astype(np.float64),
        intercept=model.intercept_.astype(np.float64),
        c=c,
    )


def is_probe_model(store: ObjectStore, model_key: str) -> bool:
    return store.exists(model_key.rstrip("/") + "/" + MODEL_JSON)


def save(store: ObjectStore, model: ProbeModel, model_key: str) -> None:
    folder = model_key.rstrip("/") + "/"
    buffer = io.BytesIO()
    np.savez(buffer, mean=model.mean, scale=model.scale, coef=model.coef, intercept=model.intercept)
    store.put_bytes(folder + MODEL_ARRAYS, buffer.getvalue())
    meta = {"kind": "linear_probe", "classes": model.classes, "backbone": model.backbone, "c": model.c}
    store.put_json(folder + MODEL_JSON, meta)  # last: it marks the folder as a linear probe


def load(store: ObjectStore, model_key: str) -> ProbeModel:
    folder = model_key.rstrip("/") + "/"
    try:
        meta = store.get_json(folder + MODEL_JSON)
        arrays = np.load(io.BytesIO(store.get_bytes(folder + MODEL_ARRAYS)))
    except (NotFound, ValueError, OSError) as error:
        raise FailedPrecondition(
            f"the linear probe under {store.uri(folder)} is unreadable: {error}"
        ) from None
    return ProbeModel(
        classes=[str(c) for c in meta["classes"]],
        backbone=dict(meta["backbone"]),
        mean=arrays["mean"],
        scale=arrays["scale"],
        coef=arrays["coef"],
        intercept=arrays["intercept"],
        c=float(meta.get("c", DEFAULT_C)),
    )
