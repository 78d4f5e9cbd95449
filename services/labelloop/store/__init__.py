"""The dataset store: datasets, append-only annotation logs and immutable snapshots."""

from labelloop.store.datasets import DatasetStore

__all__ = ["DatasetStore"]
