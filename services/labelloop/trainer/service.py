"""TrainerService over gRPC: a thin layer over `Trainer`; domain errors become statuses in the interceptor."""

from __future__ import annotations

from collections.abc import Iterator

import grpc

from labelloop.core.api import service_name
from labelloop.core.outputs import check_output_folder
from labelloop.trainer import operations as ops
from labelloop.trainer.hparams import config_to_dict
from labelloop.trainer.runs import Trainer
from labelloop.v1 import trainer_pb2, trainer_pb2_grpc

SERVICE_NAME = service_name(trainer_pb2)


class TrainerServicer(trainer_pb2_grpc.TrainerServiceServicer):
    def __init__(self, trainer: Trainer):
        self.trainer = trainer

    def _op(self, record: ops.OperationRecord) -> trainer_pb2.Operation:
        return ops.to_proto(record, self.trainer.store)

    def CreateTrainingRun(
        self, request: trainer_pb2.CreateTrainingRunRequest, context: grpc.ServicerContext
    ) -> trainer_pb2.CreateTrainingRunResponse:
        check_output_folder(self.trainer.store, request.output_uri, request.labels)
        record = self.trainer.create_training_run(
            snapshot=request.snapshot,
            config=config_to_dict(request.config),
            output_uri=request.output_uri,
            labels=dict(request.labels),
            request_id=request.request_id,
            labels_uri=request.labels_uri,
            pool_embeddings=not request.skip_pool_embeddings,
        )
        return trainer_pb2.CreateTrainingRunResponse(operation=self._op(record))

    def CreatePredictionRun(
        self, request: trainer_pb2.CreatePredictionRunRequest, context: grpc.ServicerContext
    ) -> trainer_pb2.CreatePredictionRunResponse:
        check_output_folder(self.trainer.store, request.output_uri, request.labels)
        record = self.trainer.create_prediction_run(
            dataset_name=request.dataset,
            model_uri=request.model_uri,
            output_uri=request.output_uri,
            labels=dict(request.labels),
            request_id=request.request_id,
            manifest_uri=request.manifest_uri,
            image_column=request.image_column,
            id_column=request.id_column,
        )
        return trainer_pb2.CreatePredictionRunResponse(operation=self._op(record))

    def CreateEmbeddingRun(
        self, request: trainer_pb2.CreateEmbeddingRunRequest, context: grpc.ServicerContext
    ) -> trainer_pb2.CreateEmbeddingRunResponse:
        check_output_folder(self.trainer.store, request.output_uri, request.labels)
        record = self.trainer.create_embedding_run(
            dataset_name=request.dataset,
            config=config_to_dict(request.config),
            output_uri=request.output_uri,
            labels=dict(request.labels),
            request_id=request.request_id,
        )
        return trainer_pb2.CreateEmbeddingRunResponse(operation=self._op(record))

    def GetOperation(
        self, request: trainer_pb2.GetOperationRequest, context: grpc.ServicerContext
    ) -> trainer_pb2.GetOperationResponse:
        return trainer_pb2.GetOperationResponse(operation=self._op(self.trainer.get(request.name)))

    def ListOperations(
        self, request: trainer_pb2.ListOperationsRequest, context: grpc.ServicerContext
    ) -> trainer_pb2.ListOperationsResponse:
        records, token = self.trainer.list(request.filter, request.page_size, request.page_token)
        return trainer_pb2.ListOperationsResponse(
            operations=[self._op(r) for r in records], next_page_token=token
        )

    def WatchOperation(
        self, request: trainer_pb2.WatchOperationRequest, context: grpc.ServicerContext
    ) -> Iterator[trainer_pb2.WatchOperationResponse]:
        for record in self.trainer.watch(request.name, is_active=context.is_active):
            yield trainer_pb2.WatchOperationResponse(operation=self._op(record))

    def CancelOperation(
        self, request: trainer_pb2.CancelOperationRequest, context: grpc.ServicerContext
    ) -> trainer_pb2.CancelOperationResponse:
        return trainer_pb2.CancelOperationResponse(operation=self._op(self.trainer.cancel(request.name)))


def register(trainer: Trainer):
    def add(server: grpc.Server) -> list[str]:
        trainer_pb2_grpc.add_TrainerServiceServicer_to_server(TrainerServicer(trainer), server)
        return [SERVICE_NAME]

    return add
