"""`python -m labelloop.controller`: the experiment service; resumes running experiments on start."""

from __future__ import annotations

import os

import grpc

from labelloop.controller.clients import Stubs
from labelloop.controller.context import CRASH_AT_ENV
from labelloop.controller.experiments import Experiments
from labelloop.controller.label_studio.webhook import serve_webhooks
from labelloop.controller.labeling.service import LabelingServicer
from labelloop.controller.labeling.tasks import shared_board
from labelloop.controller.service import ExperimentServicer
from labelloop.core.api import service_name
from labelloop.core.config import Settings
from labelloop.core.server import Registrar, run_service
from labelloop.core.storage import open_store
from labelloop.v1 import experiments_pb2, experiments_pb2_grpc, labeling_pb2, labeling_pb2_grpc


def build(settings: Settings) -> Registrar:
    crash_at = os.environ.get(CRASH_AT_ENV, "")  # crash-recovery tests only
    experiments = Experiments(open_store(settings.storage), Stubs.connect(settings), crash_at=crash_at)
    if settings.webhook_port:  # Label Studio's webhooks: they wake its experiments' reconciliation early
        serve_webhooks(settings.bind_host, settings.webhook_port)

    def register(server: grpc.Server) -> list[str]:
        experiments_pb2_grpc.add_ExperimentServiceServicer_to_server(ExperimentServicer(experiments), server)
        # The labeling queue's board is the one the runners' labelers use (one per process and store).
        labeling = LabelingServicer(experiments, shared_board(experiments.store), experiments.stubs)
        labeling_pb2_grpc.add_LabelingServiceServicer_to_server(labeling, server)
        experiments.recover()
        return [service_name(experiments_pb2), service_name(labeling_pb2)]

    return register


if __name__ == "__main__":
    run_service("controller", build)
