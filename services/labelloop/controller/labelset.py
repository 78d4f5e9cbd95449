"""An experiment's side of the dataset store: its annotation log and the snapshots taken of it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from labelloop.controller.clients import call
from labelloop.core import metrics, tables
from labelloop.core.errors import AlreadyExists
from labelloop.core.storage import ObjectStore
from labelloop.v1 import dataset_store_pb2, dataset_store_pb2_grpc

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Label:
    """One annotation to append to the log."""

    example_id: str
    annotator: str
    label: str


class LabelSet:
    def __init__(
        self,
        stub: dataset_store_pb2_grpc.DatasetStoreServiceStub,
        store: ObjectStore,
        dataset: str,
        annotation_set: str,
        interrupted: Callable[[], bool],
    ):
        self.stub, self.store = stub, store
        self.dataset, self.annotation_set = dataset, annotation_set
        self.interrupted = interrupted

    def create_snapshot(self, snapshot_id: str) -> dataset_store_pb2.Snapshot:
        """Freezes the log; a replay after a crash gets the existing (immutable) snapshot back."""
        name = f"{self.dataset}/snapshots/{snapshot_id}"
        try:
            return call(
                self.stub.CreateSnapshot,
                dataset_store_pb2.CreateSnapshotRequest(
                    parent=self.dataset, snapshot_id=snapshot_id, annotation_set=self.annotation_set
                ),
                what=f"creating snapshot {name}",
                interrupted=self.interrupted,
            ).snapshot
        except AlreadyExists:  # a store that answers a repeated create with ALREADY_EXISTS
            return self.get_snapshot(name)

    def get_snapshot(self, name: str) -> dataset_store_pb2.Snapshot:
        return call(
            self.stub.GetSnapshot,
            dataset_store_pb2.GetSnapshotRequest(name=name),
            what=f"reading {name}",
            interrupted=self.interrupted,
        ).snapshot

    def snapshot_labels(self, snapshot: dataset_store_pb2.Snapshot) -> tuple[list[str], dict[str, int]]:
        """Labeled ids in labels_multiannotator row order, and annotations per example."""
        table = tables.read_arrow(self.store.get_bytes(self.store.ref_to_key(snapshot.labels_uri)))
        ids = [str(i) for i in table.column("example_id").to_pylist()]
        if "annotation_count" in table.column_names:
            counts = [int(c) for c in table.column("annotation_count").to_pylist()]
        else:
            counts = [1] * len(ids)
        return ids, dict(zip(ids, counts, strict=True))

    def append(self, labels: list[Label], request_id: str) -> None:
        """Stores labels once: the store ignores a retried request id."""
        response = call(
            self.stub.AppendAnnotations,
            dataset_store_pb2.AppendAnnotationsRequest(
                parent=self.dataset,
                annotation_set=self.annotation_set,
                annotations=[
                    dataset_store_pb2.Annotation(
                        example_id=a.example_id, annotator=a.annotator, label=a.label
                    )
                    for a in labels
                ],
                request_id=request_id,
            ),
            what="storing labels",
            interrupted=self.interrupted,
        )
        metrics.LABELS_RECEIVED.labels(self.annotation_set).inc(response.appended_count)
        if response.duplicate:
            log.info("labels of %s were already stored (replay after a restart)", request_id)

    def annotations(self) -> list[dataset_store_pb2.Annotation]:
        found: list[dataset_store_pb2.Annotation] = []
        token = ""
        while True:
            page = call(
                self.stub.ListAnnotations,
                dataset_store_pb2.ListAnnotationsRequest(
                    parent=self.dataset, annotation_set=self.annotation_set, page_size=1000, page_token=token
                ),
                what="reading annotations",
                interrupted=self.interrupted,
            )
            found.extend(page.annotations)
            token = page.next_page_token
            if not token:
                return found

    def annotators_by_example(self) -> dict[str, set[str]]:
        existing: dict[str, set[str]] = {}
        for annotation in self.annotations():
            existing.setdefault(annotation.example_id, set()).add(annotation.annotator)
        return existing
