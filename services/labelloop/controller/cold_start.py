"""Round 0's first labeled set, chosen once and persisted before it is labeled.

Typical (TypiClust, the default of a count-based first set): the trainer embeds the pool with its
pretrained backbone (an embedding operation, crash point "0:embed"), then the selector takes the most
typical example of each embedding cluster. Random, per class or explicit ids need no other service.
Each part commits what it produced ("0:initial" commits the ids), so a controller restarted in the
middle repeats no effect: the operation is found again by its request id, the selection is
deterministic, and the chosen ids are persisted."""

from __future__ import annotations

import time
from collections.abc import Callable

from labelloop.controller.clients import call
from labelloop.controller.context import RoundContext
from labelloop.controller.dataset import DatasetView
from labelloop.controller.ids import derived_seed
from labelloop.controller.initial import initial_example_ids, needs_embeddings
from labelloop.controller.operations import await_operation, retry_lost
from labelloop.controller.records import RoundRecord
from labelloop.controller.training import embedding_request, run_seconds
from labelloop.core import layout
from labelloop.core.errors import FailedPrecondition
from labelloop.v1 import common_pb2, experiments_pb2, selector_pb2

# Round 0's folder for the embedding run's output (the training run writes beside it, in the round's
# folder itself).
INITIAL_EMBEDDINGS_FOLDER = "initial-embeddings/"


def first_set_ids(
    ctx: RoundContext,
    config: experiments_pb2.ExperimentConfig,
    view: DatasetView,
    truth_column: str,
    record: RoundRecord,
    progress: Callable[[str], None],
) -> list[str]:
    """The first labeled set's ids, chosen on the first call and read from `record` after that.
    While it is labeled, round 0's selected_example_ids show it (external labelers read them)."""
    if record.initial_ids:
        return list(record.initial_ids)
    initial = config.initial_labels
    embeddings = None
    if needs_embeddings(initial):
        with ctx.substep("embed"):
            embeddings = pool_embeddings(ctx, config, record, progress)
    with ctx.substep("initial"):
        started = time.perf_counter()
        if embeddings is not None:
            ids = typical_ids(ctx, config, embeddings)
        else:
            truth = view.truth.get(truth_column)
            ids = initial_example_ids(initial, view.pool_ids, truth, view.classes, config.seed)
        with ctx.lock:
            record.initial_ids = ids
            del record.round.selected_example_ids[:]
            record.round.selected_example_ids.extend(ids)
            record.round.stage_seconds["initial_select"] = time.perf_counter() - started
            ctx.commit(record)
    return ids


def typical_ids(
    ctx: RoundContext, config: experiments_pb2.ExperimentConfig, embeddings: common_pb2.ArrayRef
) -> list[str]:
    """The ids of `config.initial_labels.count` typical pool examples, by the selector (deterministic
    for the experiment's seed)."""
    count = config.initial_labels.count
    request = selector_pb2.SelectBatchRequest(
        batch_size=count,
        seed=derived_seed(config.seed, 0, 5),
        batch_method=common_pb2.BATCH_METHOD_TYPICAL,
        unlabeled_embeddings=embeddings,
    )
    response = call(
        ctx.stubs.selector.SelectBatch,
        request,
        what="selecting the typical first labeled set",
        interrupted=ctx.interrupted,
    )
    ids = [e.example_id for e in response.examples]
    if len(ids) != count or len(set(ids)) != count:
        raise FailedPrecondition(
            f"the selector chose {len(set(ids))} distinct examples for a typical first set of "
            f"initial_labels.count={count}"
        )
    return ids


def pool_embeddings(
    ctx: RoundContext,
    config: experiments_pb2.ExperimentConfig,
    record: RoundRecord,
    progress: Callable[[str], None],
) -> common_pb2.ArrayRef:
    """The pool's embeddings by the trainer config's pretrained backbone (no label needed)."""
    kept = record.array("initial_embeddings")
    if kept is not None:
        return kept
    output = ctx.store.uri(layout.round_prefix(ctx.id, 0) + INITIAL_EMBEDDINGS_FOLDER)
    while True:
        request = embedding_request(
            ctx.id, record.embed_attempt, config.dataset, config.trainer, config.seed, output
        )
        operation = call(
            ctx.stubs.trainer.CreateEmbeddingRun,
            request,
            what="starting the embedding run",
            interrupted=ctx.interrupted,
        ).operation
        if record.embedding_operation != operation.name:
            with ctx.lock:
                record.embedding_operation = operation.name  # so that Cancel can stop it
                ctx.commit(record)
        done = await_operation(ctx, operation.name, progress, verb="embed")
        if done is not None and done.state == common_pb2.OPERATION_STATE_SUCCEEDED:
            break

        def next_attempt() -> None:
            record.embed_attempt += 1

        retry_lost(ctx, record, done, "embedding the pool", record.embed_attempt, next_attempt)
    embeddings = done.result.pool_embeddings
    if not embeddings.uri:
        raise FailedPrecondition(
            f"the embedding run {done.name} returned no pool_embeddings: a typical first set needs a "
            "trainer config whose backbone embeds examples (initial_labels.selection=RANDOM needs none)"
        )
    with ctx.lock:
        record.set_array("initial_embeddings", embeddings)
        record.round.stage_seconds["initial_embed"] = run_seconds(done)
        ctx.commit(record)
    return embeddings
