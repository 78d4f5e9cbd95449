"""ExperimentService: a thin gRPC layer over the Experiments domain class."""

from __future__ import annotations

from collections.abc import Iterator

import grpc

from labelloop.controller.experiments import Experiments
from labelloop.v1 import experiments_pb2 as pb
from labelloop.v1 import experiments_pb2_grpc


class ExperimentServicer(experiments_pb2_grpc.ExperimentServiceServicer):
    def __init__(self, experiments: Experiments):
        self.experiments = experiments

    def CreateExperiment(self, request: pb.CreateExperimentRequest, context: grpc.ServicerContext):
        experiment = self.experiments.create(
            request.experiment_id, request.display_name, request.config, start=request.start
        )
        return pb.CreateExperimentResponse(experiment=experiment)

    def GetExperiment(self, request: pb.GetExperimentRequest, context: grpc.ServicerContext):
        return pb.GetExperimentResponse(experiment=self.experiments.get(request.name))

    def ListExperiments(self, request: pb.ListExperimentsRequest, context: grpc.ServicerContext):
        items, token = self.experiments.list_experiments(request.page_size, request.page_token)
        return pb.ListExperimentsResponse(experiments=items, next_page_token=token)

    def StartExperiment(self, request: pb.StartExperimentRequest, context: grpc.ServicerContext):
        return pb.StartExperimentResponse(experiment=self.experiments.start(request.name))

    def PauseExperiment(self, request: pb.PauseExperimentRequest, context: grpc.ServicerContext):
        return pb.PauseExperimentResponse(experiment=self.experiments.pause(request.name))

    def ResumeExperiment(self, request: pb.ResumeExperimentRequest, context: grpc.ServicerContext):
        return pb.ResumeExperimentResponse(experiment=self.experiments.resume(request.name))

    def CancelExperiment(self, request: pb.CancelExperimentRequest, context: grpc.ServicerContext):
        return pb.CancelExperimentResponse(experiment=self.experiments.cancel(request.name))

    def DeleteExperiment(self, request: pb.DeleteExperimentRequest, context: grpc.ServicerContext):
        self.experiments.delete(request.name, force=request.force)
        return pb.DeleteExperimentResponse()

    def ListRounds(self, request: pb.ListRoundsRequest, context: grpc.ServicerContext):
        rounds, token = self.experiments.list_rounds(request.parent, request.page_size, request.page_token)
        return pb.ListRoundsResponse(rounds=rounds, next_page_token=token)

    def WatchExperiment(
        self, request: pb.WatchExperimentRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.WatchExperimentResponse]:
        for experiment, current in self.experiments.watch(request.name, context.is_active):
            yield pb.WatchExperimentResponse(experiment=experiment, round=current)
