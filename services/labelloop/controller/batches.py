"""What the SELECT step adds to a SelectBatchRequest for batch methods that read embeddings: the
round's pool embeddings split into unlabeled and labeled rows like the probabilities, and a clear
reason when the trainer returned none."""

from __future__ import annotations

from labelloop.controller import arrays
from labelloop.core.api import enum_name
from labelloop.core.errors import FailedPrecondition, LabelLoopError
from labelloop.core.storage import ObjectStore
from labelloop.v1 import common_pb2, selector_pb2

# Batch methods that rank by scores alone; every other one is handed the rows' embeddings.
SCORES_ONLY = frozenset({common_pb2.BATCH_METHOD_UNSPECIFIED, common_pb2.BATCH_METHOD_LOWEST_SCORES})


def attach_embeddings(
    store: ObjectStore,
    request: selector_pb2.SelectBatchRequest,
    pool_embeddings: common_pb2.ArrayRef | None,
    probabilities: arrays.SplitArrays,
    labeled_ids: list[str],
    prefix: str,
) -> None:
    """Sets the request's unlabeled_embeddings (and labeled_embeddings), rows as in its scores, when
    its batch method reads embeddings and the round has them."""
    if request.batch_method in SCORES_ONLY or pool_embeddings is None:
        return
    split = arrays.split_embeddings(store, pool_embeddings, labeled_ids, prefix, probabilities)
    request.unlabeled_embeddings.CopyFrom(split.unlabeled)
    if split.labeled is not None:
        request.labeled_embeddings.CopyFrom(split.labeled)


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
