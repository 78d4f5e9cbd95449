"""What the controller needs to know about a dataset: its classes, pool ids and ground truth.

Read once per experiment from the dataset's examples.parquet (only the id, split and label columns).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field

import pyarrow.parquet as pq

from labelloop.controller.clients import call
from labelloop.core.errors import FailedPrecondition
from labelloop.core.storage import ObjectStore
from labelloop.v1 import dataset_store_pb2, dataset_store_pb2_grpc

POOL, TEST = "pool", "test"


def label_text(value: object) -> str:
    """A ground-truth cell as the class name the store uses (ints stored as floats lose the ".0")."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


@dataclass
class DatasetView:
    name: str
    classes: list[str]
    label_column: str
    columns: list[str]
    pool_ids: list[str]
    test_ids: list[str]
    # example id -> ground-truth class name, per requested label column.
    truth: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def pool_count(self) -> int:
        return len(self.pool_ids)

    def ground_truth(self, column: str = "") -> dict[str, str]:
        column = column or self.label_column
        if column not in self.truth:
            raise FailedPrecondition(
                f"{self.name} has no ground-truth column {column!r}: name one of {self.columns} "
                "in simulated_oracle.label_column, or use external_labelers"
            )
        return self.truth[column]


def load_dataset(
    store: ObjectStore, dataset: dataset_store_pb2.Dataset, label_columns: tuple[str, ...] = ()
) -> DatasetView:
    """Reads example ids, splits and the given label columns (default: the dataset's) of a dataset."""
    key = store.ref_to_key(dataset.examples_uri)
    data = io.BytesIO(store.get_bytes(key))
    schema_names = list(pq.read_schema(data).names)
    wanted = {c for c in (*label_columns, dataset.label_column) if c and c in schema_names}
    data.seek(0)
    table = pq.read_table(data, columns=["example_id", "split", *sorted(wanted)])
    ids = [str(v) for v in table.column("example_id").to_pylist()]
    splits = table.column("split").to_pylist()
    truth: dict[str, dict[str, str]] = {}
    for column in wanted:
        values = table.column(column).to_pylist()
        truth[column] = {i: label_text(v) for i, v in zip(ids, values, strict=True) if v is not None}
    return DatasetView(
        name=dataset.name,
        classes=list(dataset.classes),
        label_column=dataset.label_column,
        columns=schema_names,
        pool_ids=[i for i, s in zip(ids, splits, strict=True) if s == POOL],
        test_ids=[i for i, s in zip(ids, splits, strict=True) if s == TEST],
        truth=truth,
    )


def fetch_view(
    stub: dataset_store_pb2_grpc.DatasetStoreServiceStub,
    store: ObjectStore,
    dataset: str,
    truth_column: str = "",
    retry_seconds: float = 10.0,
    interrupted: Callable[[], bool] = lambda: False,
) -> DatasetView:
    """Asks the dataset store for `dataset`, then reads its examples (and truth_column, if named)."""
    found = call(
        stub.GetDataset,
        dataset_store_pb2.GetDatasetRequest(name=dataset),
        what=f"reading {dataset}",
        retry_seconds=retry_seconds,
        interrupted=interrupted,
    ).dataset
    return load_dataset(store, found, (truth_column,) if truth_column else ())
