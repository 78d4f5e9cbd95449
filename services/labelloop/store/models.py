"""Plain records the dataset store hands out; their keys come from labelloop.core.layout."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from labelloop.core import layout

T = TypeVar("T")

POOL, TEST = "pool", "test"
SPLITS = (POOL, TEST)
DEFAULT_ANNOTATION_SET = "default"
# Columns every examples.parquet starts with; manifest columns may not reuse these names.
RESERVED_COLUMNS = ("example_id", "split")


def now() -> datetime:
    return datetime.now(UTC)


def to_iso(time: datetime) -> str:
    return time.astimezone(UTC).isoformat()


def from_iso(text: str) -> datetime:
    return datetime.fromisoformat(text)


@dataclass(frozen=True)
class DatasetInfo:
    """What dataset.json holds."""

    dataset_id: str
    display_name: str
    classes: list[str]
    example_count: int
    pool_count: int
    test_count: int
    image_column: str
    feature_columns: list[str]
    label_column: str
    create_time: datetime
    manifest_uri: str = ""
    seed: int = 0
    test_fraction: float = 0.0

    @property
    def name(self) -> str:
        return f"datasets/{self.dataset_id}"

    @property
    def examples_key(self) -> str:
        return layout.examples_key(self.dataset_id)

    def to_json(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k != "create_time"}
        return {
            **data,
            "name": self.name,
            "create_time": to_iso(self.create_time),
            "examples_key": self.examples_key,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DatasetInfo:
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**{**fields, "create_time": from_iso(data["create_time"])})


@dataclass(frozen=True)
class Example:
    example_id: str
    split: str
    image_key: str  # "" without an image column
    features: dict[str, str]


@dataclass(frozen=True)
class Annotation:
    example_id: str
    annotator: str
    label: str
    create_time: datetime | None = None  # set by the store


@dataclass(frozen=True)
class AppendResult:
    appended_count: int
    duplicate: bool


@dataclass(frozen=True)
class SnapshotInfo:
    """What snapshot.json holds."""

    dataset_id: str
    snapshot_id: str
    annotation_set: str
    labeled_count: int
    annotation_count: int
    annotator_count: int
    create_time: datetime

    @property
    def name(self) -> str:
        return f"datasets/{self.dataset_id}/snapshots/{self.snapshot_id}"

    @property
    def prefix(self) -> str:
        return layout.snapshot_prefix(self.dataset_id, self.snapshot_id)

    @property
    def labels_key(self) -> str:
        return layout.snapshot_labels_key(self.dataset_id, self.snapshot_id)

    @property
    def labels_multiannotator_key(self) -> str:
        return layout.snapshot_multiannotator_key(self.dataset_id, self.snapshot_id)

    @property
    def annotators_key(self) -> str:
        return layout.snapshot_annotators_key(self.dataset_id, self.snapshot_id)

    @property
    def snapshot_key(self) -> str:
        return layout.snapshot_key(self.dataset_id, self.snapshot_id)

    def to_json(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k != "create_time"}
        # The keys too, so a reader of snapshot.json needs no knowledge of the layout.
        keys = {
            "labels_key": self.labels_key,
            "labels_multiannotator_key": self.labels_multiannotator_key,
            "annotators_key": self.annotators_key,
        }
        return {**data, **keys, "name": self.name, "create_time": to_iso(self.create_time)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SnapshotInfo:
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**{**fields, "create_time": from_iso(data["create_time"])})


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_page_token: str = ""
    total_size: int = 0
