"""`python -m labelloop.controller`: the experiment service; resumes running experiments on start."""

from __future__ import annotations

import grpc

from labelloop.controller.clients import Stubs
from labelloop.controller.experiments import Experiments
from labelloop.controller.service import ExperimentServicer
from labelloop.core.config import Settings
from labelloop.core.server import Registrar, run_service
from labelloop.core.storage import open_store
from labelloop.v1 import experiments_pb2_grpc


def build(settings: Settings) -> Registrar:
    experiments = Experiments(open_store(settings.storage), Stubs.connect(settings))

    def register(server: grpc.Server) -> list[str]:
        experiments_pb2_grpc.add_ExperimentServiceServicer_to_server(ExperimentServicer(experiments), server)
        experiments.recover()
        return ["labelloop.v1.ExperimentService"]

    return register


if __name__ == "__main__":
    run_service("controller", build)
