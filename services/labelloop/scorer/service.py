"""ScorerService over gRPC: unpacks the request for the Scorer domain class and packs its result."""

from __future__ import annotations

import grpc

from labelloop.core.api import service_name
from labelloop.core.outputs import check_output_folder
from labelloop.core.server import Registrar
from labelloop.scorer.crowdlab import LabelAssessor
from labelloop.scorer.scoring import Scorer
from labelloop.v1 import scorer_pb2 as pb
from labelloop.v1 import scorer_pb2_grpc as pb_grpc

SERVICE_NAME = service_name(pb)


class ScorerServicer(pb_grpc.ScorerServiceServicer):
    def __init__(self, scorer: Scorer, assessor: LabelAssessor):
        self.scorer = scorer
        self.assessor = assessor

    def ScoreExamples(
        self, request: pb.ScoreExamplesRequest, context: grpc.ServicerContext
    ) -> pb.ScoreExamplesResponse:
        check_output_folder(self.scorer.store, request.output_uri)
        result = self.scorer.score(
            strategy=request.strategy,
            unlabeled_probabilities=list(request.unlabeled_probabilities),
            labeled_probabilities=list(request.labeled_probabilities),
            labels_multiannotator=request.labels_multiannotator
            if request.HasField("labels_multiannotator")
            else None,
            output_uri=request.output_uri,
            seed=request.seed,
            chunk_size=request.chunk_size,
        )
        return pb.ScoreExamplesResponse(
            unlabeled_scores=result.unlabeled_scores,
            labeled_scores=result.labeled_scores,
            scored_count=result.scored_count,
        )

    def AssessLabels(
        self, request: pb.AssessLabelsRequest, context: grpc.ServicerContext
    ) -> pb.AssessLabelsResponse:
        check_output_folder(self.scorer.store, request.output_uri)
        return self.assessor.assess(request)


def registrar(scorer: Scorer) -> Registrar:
    assessor = LabelAssessor(scorer.store)

    def register(server: grpc.Server) -> list[str]:
        pb_grpc.add_ScorerServiceServicer_to_server(ScorerServicer(scorer, assessor), server)
        return [SERVICE_NAME]

    return register
