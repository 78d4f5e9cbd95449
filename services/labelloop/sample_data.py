"""Data sets that ship inside installed packages (scikit-learn), written out as ingest manifests.

Nothing here downloads: demos, tests and benchmarks run offline. Labels are strings.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image


def write_digits_images(folder: Path, size: int = 32, limit: int | None = None) -> Path:
    """scikit-learn's 8x8 digits as RGB PNGs of size x size px, and manifest.csv (image_path,label).

    The format of cleanlab's ActiveLab image reference: one row per image, paths relative to
    the manifest. limit keeps the first images only (fast tests).
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    folder = Path(folder)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    count = len(digits.images) if limit is None else min(limit, len(digits.images))
    rows = []
    for i in range(count):
        pixels = (digits.images[i] * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)
        # Nearest keeps the digit's blocky pixels crisp; RGB is what pretrained image models expect.
        image = Image.fromarray(pixels).resize((size, size), Image.Resampling.NEAREST).convert("RGB")
        relative = f"images/{i:05d}.png"
        image.save(folder / relative)
        rows.append({"image_path": relative, "label": str(digits.target[i])})
    manifest = folder / "manifest.csv"
    pd.DataFrame(rows).to_csv(manifest, index=False)
    return manifest


def write_digits_tabular(folder: Path) -> Path:
    """The digits as 64 numeric pixel columns (pixel_0..pixel_63) and a label column: manifest.csv."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    frame = pd.DataFrame(digits.data.astype(np.int64), columns=[f"pixel_{i}" for i in range(64)])
    frame["label"] = [str(t) for t in digits.target]
    return _write(frame, folder)


def write_breast_cancer_tabular(folder: Path) -> Path:
    """Wisconsin breast cancer (569 rows, 30 numeric columns), label "malignant" or "benign"."""
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    columns = [name.replace(" ", "_") for name in data.feature_names]
    frame = pd.DataFrame(data.data, columns=columns)
    frame["label"] = [str(data.target_names[t]) for t in data.target]
    return _write(frame, folder)


def write_wine_tabular(folder: Path) -> Path:
    """Wine recognition (178 rows, 13 numeric columns), label "class_0".."class_2"."""
    from sklearn.datasets import load_wine

    data = load_wine()
    columns = [name.replace("/", "_per_") for name in data.feature_names]
    frame = pd.DataFrame(data.data, columns=columns)
    frame["label"] = [str(data.target_names[t]) for t in data.target]
    return _write(frame, folder)


def _write(frame: pd.DataFrame, folder: Path) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    manifest = folder / "manifest.csv"
    frame.to_csv(manifest, index=False)
    return manifest
