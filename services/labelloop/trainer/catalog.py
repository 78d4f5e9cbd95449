"""Looks up datasets and snapshots: through the dataset store's gRPC API, or straight from the store.

gRPC is the intended route (the store owns its metadata). Reading `dataset.json` and
`snapshot.json` directly is the fallback when the store service is not reachable, and what
a trainer without a store address uses.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

import grpc

from labelloop.core import layout, names
from labelloop.core.channels import CallerCredentials
from labelloop.core.errors import FailedPrecondition, NotFound
from labelloop.core.storage import ObjectStore

log = logging.getLogger(__name__)


@dataclass
class DatasetInfo:
    name: str  # "datasets/{d}"
    classes: list[str]
    examples_key: str
    image_column: str = ""
    feature_columns: list[str] = field(default_factory=list)
    label_column: str = ""


@dataclass
class SnapshotInfo:
    name: str  # "datasets/{d}/snapshots/{s}"
    labels_key: str


class Catalog(Protocol):
    def dataset(self, name: str) -> DatasetInfo: ...

    def snapshot(self, name: str) -> SnapshotInfo: ...

    def dataset_and_snapshot(self, snapshot: str) -> tuple[DatasetInfo, SnapshotInfo]:
        """A snapshot and its dataset (what a training run needs)."""
        ...


def _key(store: ObjectStore, data: dict[str, Any], key_field: str, uri_field: str, default: str) -> str:
    if data.get(key_field):
        return str(data[key_field])
    if data.get(uri_field):
        return store.ref_to_key(str(data[uri_field]))
    return default


class StoreCatalog:
    """Reads the dataset store's metadata files from the object store."""

    def __init__(self, store: ObjectStore):
        self.store = store

    def _json(self, key: str, what: str) -> dict[str, Any]:
        try:
            return self.store.get_json(key)
        except NotFound:
            raise NotFound(f"{what} does not exist ({self.store.uri(key)} is missing)") from None

    def dataset(self, name: str) -> DatasetInfo:
        (d,) = names.parse(name, "datasets")
        data = self._json(layout.dataset_key(d), name)
        return DatasetInfo(
            name=name,
            classes=[str(c) for c in data.get("classes", [])],
            examples_key=_key(self.store, data, "examples_key", "examples_uri", layout.examples_key(d)),
            image_column=data.get("image_column", "") or "",
            feature_columns=list(data.get("feature_columns", []) or []),
            label_column=data.get("label_column", "") or "",
        )

    def snapshot(self, name: str) -> SnapshotInfo:
        d, s = names.parse(name, "datasets", "snapshots")
        data = self._json(layout.snapshot_key(d, s), name)
        default = layout.snapshot_labels_key(d, s)
        return SnapshotInfo(name, _key(self.store, data, "labels_key", "labels_uri", default))

    def dataset_and_snapshot(self, snapshot: str) -> tuple[DatasetInfo, SnapshotInfo]:
        d, _ = names.parse(snapshot, "datasets", "snapshots")
        return self.dataset(f"datasets/{d}"), self.snapshot(snapshot)


class GrpcCatalog:
    """Asks the dataset store service; falls back to the files when it is unavailable."""

    def __init__(
        self,
        address: str,
        store: ObjectStore,
        timeout: float = 10.0,
        credentials: CallerCredentials | None = None,
    ):
        from labelloop.core.channels import channel
        from labelloop.v1 import dataset_store_pb2_grpc

        self.address, self.store, self.timeout = address, store, timeout
        self.stub = dataset_store_pb2_grpc.DatasetStoreServiceStub(channel(address, credentials))
        self.fallback = StoreCatalog(store)

    def _ask(self, method: str, request: Any) -> grpc.Future:
        return getattr(self.stub, method).future(request, timeout=self.timeout)

    def _call(self, method: str, request: Any, name: str) -> Any:
        return self._answer(self._ask(method, request), name)

    def _answer(self, future: grpc.Future, name: str) -> Any:
        """The response, or None when the store is unreachable (read the files instead)."""
        try:
            return future.result()
        except grpc.RpcError as error:
            code = error.code()
            if code == grpc.StatusCode.NOT_FOUND:
                raise NotFound(f"{name} does not exist (dataset store: {error.details()})") from None
            if code == grpc.StatusCode.INVALID_ARGUMENT:
                raise FailedPrecondition(f"dataset store rejected {name}: {error.details()}") from None
            if code in (
                grpc.StatusCode.UNAVAILABLE,
                grpc.StatusCode.DEADLINE_EXCEEDED,
                grpc.StatusCode.UNIMPLEMENTED,
            ):
                log.warning(
                    "dataset store at %s unavailable (%s); reading %s from the store",
                    self.address,
                    code,
                    name,
                )
                return None
            raise

    def dataset(self, name: str) -> DatasetInfo:
        from labelloop.v1 import dataset_store_pb2

        response = self._call("GetDataset", dataset_store_pb2.GetDatasetRequest(name=name), name)
        return self._dataset(name, response)

    def _dataset(self, name: str, response: Any) -> DatasetInfo:
        (d,) = names.parse(name, "datasets")
        if response is None:
            return self.fallback.dataset(name)
        ds = response.dataset
        return DatasetInfo(
            name=name,
            classes=list(ds.classes),
            examples_key=_key(self.store, {"uri": ds.examples_uri}, "", "uri", layout.examples_key(d)),
            image_column=ds.image_column,
            feature_columns=list(ds.feature_columns),
            label_column=ds.label_column,
        )

    def snapshot(self, name: str) -> SnapshotInfo:
        from labelloop.v1 import dataset_store_pb2

        response = self._call("GetSnapshot", dataset_store_pb2.GetSnapshotRequest(name=name), name)
        return self._snapshot(name, response)

    def _snapshot(self, name: str, response: Any) -> SnapshotInfo:
        d, s = names.parse(name, "datasets", "snapshots")
        if response is None:
            return self.fallback.snapshot(name)
        default = layout.snapshot_labels_key(d, s)
        return SnapshotInfo(name, _key(self.store, {"uri": response.snapshot.labels_uri}, "", "uri", default))

    def dataset_and_snapshot(self, snapshot: str) -> tuple[DatasetInfo, SnapshotInfo]:
        """Both asked at once: one round trip's wait instead of two on every training run."""
        from labelloop.v1 import dataset_store_pb2

        d, _ = names.parse(snapshot, "datasets", "snapshots")
        dataset = f"datasets/{d}"
        asked_dataset = self._ask("GetDataset", dataset_store_pb2.GetDatasetRequest(name=dataset))
        asked_snapshot = self._ask("GetSnapshot", dataset_store_pb2.GetSnapshotRequest(name=snapshot))
        return (
            self._dataset(dataset, self._answer(asked_dataset, dataset)),
            self._snapshot(snapshot, self._answer(asked_snapshot, snapshot)),
        )
