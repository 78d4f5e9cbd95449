"""Small datasets written straight into an object store, in the dataset store's layout.

datasets/{d}/dataset.json, examples.parquet, files/*.png and snapshots/{s}/snapshot.json,
labels.parquet: what the trainer reads, without depending on the dataset store service.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from labelloop.core.config import Settings, StorageConfig
from labelloop.core.storage import ObjectStore
from labelloop.trainer.contract import JobKind, JobSpec
from sklearn.datasets import load_digits

from tests.support.ports import free_port

CLASSES = [str(i) for i in range(10)]
FEATURES = [f"px{i}" for i in range(64)]


@dataclass
class Fixture:
    dataset: str
    snapshot: str
    examples: pd.DataFrame
    labels: pd.DataFrame
    image_column: str
    feature_columns: list[str]

    @property
    def examples_key(self) -> str:
        return f"datasets/{self.dataset}/examples.parquet"

    @property
    def labels_key(self) -> str:
        return f"datasets/{self.dataset}/snapshots/{self.snapshot}/labels.parquet"

    def spec(self, job_id: str, output_prefix: str, config: dict | None = None, **changes: object) -> JobSpec:
        fields: dict = dict(
            job_id=job_id,
            kind=JobKind.TRAIN,
            examples_key=self.examples_key,
            output_prefix=output_prefix,
            classes=list(CLASSES),
            image_column=self.image_column,
            feature_columns=list(self.feature_columns),
            label_column="digit",
            labels_key=self.labels_key,
            config=config or {},
        )
        fields.update(changes)
        return JobSpec(**fields)


def _png(pixels: np.ndarray, size: int) -> bytes:
    from PIL import Image

    image = Image.fromarray((pixels * (255 / 16)).astype(np.uint8)).resize((size, size)).convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def write_digits(
    store: ObjectStore,
    *,
    dataset: str = "digits",
    snapshot: str = "s1",
    n_pool: int = 80,
    n_test: int = 20,
    n_labeled: int = 40,
    labeled_classes: list[str] | None = None,
    images: bool = False,
    image_size: int = 32,
) -> Fixture:
    """sklearn digits: a pool and a test split, and a snapshot labeling part of the pool."""
    digits = load_digits()
    rng = np.random.default_rng(0)
    order = rng.permutation(len(digits.target))[: n_pool + n_test]
    rows = []
    for i, idx in enumerate(order):
        row = {"example_id": f"ex-{idx:04d}", "split": "pool" if i < n_pool else "test"}
        row["digit"] = str(digits.target[idx])
        if images:
            key = f"datasets/{dataset}/files/{idx:04d}.png"
            store.put_bytes(key, _png(digits.images[idx], image_size))
            row["image"] = key
        else:
            row.update({f: float(v) for f, v in zip(FEATURES, digits.data[idx], strict=True)})
        rows.append(row)
    examples = pd.DataFrame(rows)
    pool = examples[examples["split"] == "pool"]
    if labeled_classes is not None:
        pool = pool[pool["digit"].isin(labeled_classes)]
    chosen = pool.head(n_labeled)
    labels = pd.DataFrame(
        {"example_id": chosen["example_id"], "label": chosen["digit"], "annotation_count": 1}
    ).reset_index(drop=True)

    base = f"datasets/{dataset}"
    feature_columns = [] if images else FEATURES
    store.put_json(
        f"{base}/dataset.json",
        {
            "name": base,
            "display_name": dataset,
            "classes": CLASSES,
            "image_column": "image" if images else "",
            "feature_columns": feature_columns,
            "label_column": "digit",
            "examples_key": f"{base}/examples.parquet",
            "example_count": len(examples),
            "pool_count": n_pool,
            "test_count": n_test,
        },
    )
    store.put_bytes(f"{base}/examples.parquet", examples.to_parquet(index=False))
    write_snapshot(store, dataset, snapshot, labels)
    return Fixture(dataset, snapshot, examples, labels, "image" if images else "", feature_columns)


def write_snapshot(store: ObjectStore, dataset: str, snapshot: str, labels: pd.DataFrame) -> None:
    base = f"datasets/{dataset}/snapshots/{snapshot}"
    store.put_bytes(f"{base}/labels.parquet", labels.to_parquet(index=False))
    store.put_json(
        f"{base}/snapshot.json",
        {
            "name": base,
            "annotation_set": "default",
            "labeled_count": len(labels),
            "annotation_count": int(labels["annotation_count"].sum()) if len(labels) else 0,
            "labels_key": f"{base}/labels.parquet",
        },
    )


def local_trainer_settings(root: Path) -> Settings:
    """A trainer's settings for tests: its store and cache under root, free ports."""
    return Settings(
        storage=StorageConfig(backend="local", root=root / "store"),
        cache_dir=root / "cache",
        grpc_port=free_port(),
        metrics_port=free_port(),
    )
