"""Synthetic embeddings for batch selector tests: well-separated Gaussian blobs."""

from __future__ import annotations

import numpy as np


def blobs(
    sizes: list[int], dim: int = 8, spread: float = 1.0, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """float32 embeddings and the blob of each row; blob centres lie about 40 spreads apart."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 10, (len(sizes), dim))
    blob = np.repeat(np.arange(len(sizes)), sizes)
    points = centres[blob] + rng.normal(0, spread, (len(blob), dim))
    return points.astype(np.float32), blob
