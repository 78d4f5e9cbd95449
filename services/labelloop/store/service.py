"""DatasetStoreService over gRPC: converts protos to and from the DatasetStore domain class."""

from __future__ import annotations

from datetime import datetime

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from labelloop.core.api import service_name
from labelloop.core.names import parse
from labelloop.core.server import Registrar
from labelloop.store.datasets import DatasetStore
from labelloop.store.models import POOL, TEST, Annotation, DatasetInfo, SnapshotInfo
from labelloop.v1 import dataset_store_pb2 as pb
from labelloop.v1 import dataset_store_pb2_grpc as pb_grpc

SERVICE_NAME = service_name(pb)
_SPLIT_TO_PROTO = {POOL: pb.SPLIT_POOL, TEST: pb.SPLIT_TEST}
_SPLIT_FROM_PROTO = {pb.SPLIT_UNSPECIFIED: "", pb.SPLIT_POOL: POOL, pb.SPLIT_TEST: TEST}


def _timestamp(time: datetime | None) -> Timestamp | None:
    if time is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(time)
    return stamp


def _dataset_id(name: str) -> str:
    return parse(name, "datasets")[0]


class DatasetStoreServicer(pb_grpc.DatasetStoreServiceServicer):
    def __init__(self, datasets: DatasetStore):
        self.datasets = datasets
        self.store = datasets.store

    def _dataset(self, info: DatasetInfo) -> pb.Dataset:
        return pb.Dataset(
            name=info.name,
            display_name=info.display_name,
            classes=info.classes,
            example_count=info.example_count,
            pool_count=info.pool_count,
            test_count=info.test_count,
            image_column=info.image_column,
            feature_columns=info.feature_columns,
            label_column=info.label_column,
            examples_uri=self.store.uri(info.examples_key),
            create_time=_timestamp(info.create_time),
        )

    def _snapshot(self, snapshot: SnapshotInfo) -> pb.Snapshot:
        return pb.Snapshot(
            name=snapshot.name,
            annotation_set=snapshot.annotation_set,
            labeled_count=snapshot.labeled_count,
            annotation_count=snapshot.annotation_count,
            labels_uri=self.store.uri(snapshot.labels_key),
            labels_multiannotator_uri=self.store.uri(snapshot.labels_multiannotator_key),
            annotators_uri=self.store.uri(snapshot.annotators_key),
            create_time=_timestamp(snapshot.create_time),
        )

    def CreateDataset(
        self, request: pb.CreateDatasetRequest, context: grpc.ServicerContext
    ) -> pb.CreateDatasetResponse:
        info = self.datasets.create_dataset(
            request.dataset_id,
            request.manifest_uri,
            display_name=request.display_name,
            image_column=request.image_column,
            feature_columns=list(request.feature_columns),
            label_column=request.label_column,
            split_column=request.split_column,
            test_fraction=request.test_fraction,
            classes=list(request.classes),
            id_column=request.id_column,
            seed=request.seed,
            text_columns=list(request.text_columns),
        )
        return pb.CreateDatasetResponse(dataset=self._dataset(info))

    def GetDataset(
        self, request: pb.GetDatasetRequest, context: grpc.ServicerContext
    ) -> pb.GetDatasetResponse:
        return pb.GetDatasetResponse(
            dataset=self._dataset(self.datasets.get_dataset(_dataset_id(request.name)))
        )

    def ListDatasets(
        self, request: pb.ListDatasetsRequest, context: grpc.ServicerContext
    ) -> pb.ListDatasetsResponse:
        page = self.datasets.list_datasets(request.page_size, request.page_token)
        return pb.ListDatasetsResponse(
            datasets=[self._dataset(d) for d in page.items], next_page_token=page.next_page_token
        )

    def DeleteDataset(
        self, request: pb.DeleteDatasetRequest, context: grpc.ServicerContext
    ) -> pb.DeleteDatasetResponse:
        self.datasets.delete_dataset(_dataset_id(request.name), force=request.force)
        return pb.DeleteDatasetResponse()

    def ListExamples(
        self, request: pb.ListExamplesRequest, context: grpc.ServicerContext
    ) -> pb.ListExamplesResponse:
        split = _SPLIT_FROM_PROTO.get(request.split, str(request.split))
        page = self.datasets.list_examples(
            _dataset_id(request.parent), split, request.page_size, request.page_token
        )
        examples = [
            pb.Example(
                example_id=e.example_id,
                split=_SPLIT_TO_PROTO[e.split],
                image_uri=self.store.uri(e.image_key) if e.image_key else "",
                features=e.features,
            )
            for e in page.items
        ]
        return pb.ListExamplesResponse(
            examples=examples, next_page_token=page.next_page_token, total_size=page.total_size
        )

    def AppendAnnotations(
        self, request: pb.AppendAnnotationsRequest, context: grpc.ServicerContext
    ) -> pb.AppendAnnotationsResponse:
        annotations = [Annotation(a.example_id, a.annotator, a.label) for a in request.annotations]
        result = self.datasets.append_annotations(
            _dataset_id(request.parent), request.annotation_set, annotations, request.request_id
        )
        return pb.AppendAnnotationsResponse(appended_count=result.appended_count, duplicate=result.duplicate)

    def ListAnnotations(
        self, request: pb.ListAnnotationsRequest, context: grpc.ServicerContext
    ) -> pb.ListAnnotationsResponse:
        page = self.datasets.list_annotations(
            _dataset_id(request.parent), request.annotation_set, request.page_size, request.page_token
        )
        annotations = [
            pb.Annotation(
                example_id=a.example_id,
                annotator=a.annotator,
                label=a.label,
                create_time=_timestamp(a.create_time),
            )
            for a in page.items
        ]
        return pb.ListAnnotationsResponse(annotations=annotations, next_page_token=page.next_page_token)

    def CreateSnapshot(
        self, request: pb.CreateSnapshotRequest, context: grpc.ServicerContext
    ) -> pb.CreateSnapshotResponse:
        snapshot = self.datasets.create_snapshot(
            _dataset_id(request.parent), request.snapshot_id, request.annotation_set
        )
        return pb.CreateSnapshotResponse(snapshot=self._snapshot(snapshot))

    def GetSnapshot(
        self, request: pb.GetSnapshotRequest, context: grpc.ServicerContext
    ) -> pb.GetSnapshotResponse:
        dataset_id, snapshot_id = parse(request.name, "datasets", "snapshots")
        return pb.GetSnapshotResponse(
            snapshot=self._snapshot(self.datasets.get_snapshot(dataset_id, snapshot_id))
        )

    def ListSnapshots(
        self, request: pb.ListSnapshotsRequest, context: grpc.ServicerContext
    ) -> pb.ListSnapshotsResponse:
        page = self.datasets.list_snapshots(
            _dataset_id(request.parent), request.page_size, request.page_token
        )
        return pb.ListSnapshotsResponse(
            snapshots=[self._snapshot(s) for s in page.items], next_page_token=page.next_page_token
        )


def registrar(datasets: DatasetStore) -> Registrar:
    """The core.server Registrar that serves datasets."""

    def register(server: grpc.Server) -> list[str]:
        pb_grpc.add_DatasetStoreServiceServicer_to_server(DatasetStoreServicer(datasets), server)
        return [SERVICE_NAME]

    return register
