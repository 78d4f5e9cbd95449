"""SelectorService over gRPC: unpacks the request for select_batch and packs the batch."""

from __future__ import annotations

import grpc

from labelloop.core.api import service_name
from labelloop.core.server import Registrar
from labelloop.core.storage import ObjectStore
from labelloop.selector.selection import select_batch
from labelloop.v1 import selector_pb2 as pb
from labelloop.v1 import selector_pb2_grpc as pb_grpc

SERVICE_NAME = service_name(pb)


class SelectorServicer(pb_grpc.SelectorServiceServicer):
    def __init__(self, store: ObjectStore):
        self.store = store

    def SelectBatch(
        self, request: pb.SelectBatchRequest, context: grpc.ServicerContext
    ) -> pb.SelectBatchResponse:
        batch = select_batch(
            self.store,
            request.unlabeled_scores,
            request.batch_size,
            labeled_scores=request.labeled_scores,
            exclude_example_ids=request.exclude_example_ids,
            allow_relabel=request.allow_relabel,
            seed=request.seed,
            max_per_class=request.max_per_class,
            unlabeled_probabilities=request.unlabeled_probabilities,
            labeled_probabilities=request.labeled_probabilities,
            batch_method=request.batch_method,
            unlabeled_embeddings=request.unlabeled_embeddings,
            labeled_embeddings=request.labeled_embeddings,
        )
        return pb.SelectBatchResponse(
            examples=[
                pb.SelectedExample(
                    example_id=e.example_id,
                    score=e.score,
                    relabel=e.relabel,
                    predicted_class=e.predicted_class,
                )
                for e in batch
            ]
        )


def registrar(store: ObjectStore) -> Registrar:
    def register(server: grpc.Server) -> list[str]:
        pb_grpc.add_SelectorServiceServicer_to_server(SelectorServicer(store), server)
        return [SERVICE_NAME]

    return register
