"""What the SELECT step adds to a SelectBatchRequest for batch methods that read embeddings: the
round's one pool embeddings array, whose rows the selector finds by example id (no split copy is
written: on Fashion-MNIST that was ~60 MB a round), and a clear reason when the trainer returned
none."""

from __future__ import annotations

from labelloop.core.api import enum_name
from labelloop.core.errors import FailedPrecondition, LabelLoopError
from labelloop.v1 import common_pb2, selector_pb2

# Batch methods that rank by scores alone; every other one is handed the rows' embeddings.
SCORES_ONLY = frozenset({common_pb2.BATCH_METHOD_UNSPECIFIED, common_pb2.BATCH_METHOD_LOWEST_SCORES})


def attach_embeddings(
    request: selector_pb2.SelectBatchRequest,
    pool_embeddings: common_pb2.ArrayRef | None,
    has_labeled: bool,
) -> None:
    """Sets the request's unlabeled_embeddings (and, when examples are labeled, labeled_embeddings) to
    the round's pool embeddings when its batch method reads embeddings and the round has them. The
    selector takes the scored rows by example id and the labeled examples as the pool's other rows."""
    if request.batch_method in SCORES_ONLY or pool_embeddings is None:
        return
    request.unlabeled_embeddings.CopyFrom(pool_embeddings)
    if has_labeled:
        request.labeled_embeddings.CopyFrom(pool_embeddings)


def explain_failure(
    error: LabelLoopError, request: selector_pb2.SelectBatchRequest, round_number: int
) -> LabelLoopError:
    """The selector's error, with the likely cause when the method reads embeddings the round lacks."""
    if request.batch_method in SCORES_ONLY or request.HasField("unlabeled_embeddings"):
        return error
    method = enum_name(common_pb2.BatchMethod, request.batch_method)
    return FailedPrecondition(
        f"{error} (round {round_number}'s training run returned no pool_embeddings, which batch_method "
        f"{method} reads: use a trainer config that returns them, e.g. trainer.mode="
        "TRAINING_MODE_LINEAR_PROBE, or batch_method BATCH_METHOD_LOWEST_SCORES)"
    )
