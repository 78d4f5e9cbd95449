"""Pure helpers for the TRAIN step: the idempotent request, progress text, and the retry policy."""

from __future__ import annotations

from labelloop.v1 import common_pb2, trainer_pb2

# Trainer operations that failed because the trainer went away are retried under a new request id.
MAX_TRAIN_ATTEMPTS = 3
# google.rpc codes of a run lost rather than failed: CANCELLED (not by us), ABORTED (the trainer
# restarted mid-run), UNAVAILABLE (the executor could not start it).
LOST_CODES = frozenset({1, 10, 14})
DONE = frozenset(
    {
        common_pb2.OPERATION_STATE_SUCCEEDED,
        common_pb2.OPERATION_STATE_FAILED,
        common_pb2.OPERATION_STATE_CANCELLED,
    }
)


def training_request(
    experiment_id: str,
    number: int,
    attempt: int,
    snapshot: str,
    config: trainer_pb2.TrainerConfig,
    seed: int,
    output_uri: str,
) -> trainer_pb2.CreateTrainingRunRequest:
    """Request id "{e}-r{n}-train" (then "-a{k}" per retry): a replay finds the same operation."""
    return trainer_pb2.CreateTrainingRunRequest(
        request_id=_attempt_id(f"{experiment_id}-r{number}-train", attempt),
        snapshot=snapshot,
        config=_seeded(config, seed),
        output_uri=output_uri,
        labels={"experiment": experiment_id, "round": str(number)},
    )


def embedding_request(
    experiment_id: str,
    attempt: int,
    dataset: str,
    config: trainer_pb2.TrainerConfig,
    seed: int,
    output_uri: str,
) -> trainer_pb2.CreateEmbeddingRunRequest:
    """Request id "{e}-embed" (then "-a{k}" per retry): the pool's embeddings for a typical first set."""
    return trainer_pb2.CreateEmbeddingRunRequest(
        request_id=_attempt_id(f"{experiment_id}-embed", attempt),
        dataset=dataset,
        config=_seeded(config, seed),
        output_uri=output_uri,
        labels={"experiment": experiment_id, "round": "0", "purpose": "initial-embeddings"},
    )


def progress_text(operation: trainer_pb2.Operation, verb: str = "train") -> str:
    """ "train 45%: <trainer message>", the form `labelloop experiments watch` parses."""
    text = f"{verb} {operation.progress:.0%}"
    return f"{text}: {operation.progress_message}" if operation.progress_message else text


def is_lost(operation: trainer_pb2.Operation | None) -> bool:
    """True when the run did not fail on its own merits, so training again may succeed."""
    return operation is None or (
        operation.state == common_pb2.OPERATION_STATE_CANCELLED or operation.error.code in LOST_CODES
    )


def run_seconds(operation: trainer_pb2.Operation) -> float:
    """The trainer's wall time of the run (a controller replaying the step only saw its tail)."""
    if not operation.create_time.seconds:
        return 0.0
    return (operation.update_time.ToDatetime() - operation.create_time.ToDatetime()).total_seconds()


def _attempt_id(base: str, attempt: int) -> str:
    """A retry after a lost run gets its own request id, so the trainer starts a new operation."""
    return base + (f"-a{attempt}" if attempt else "")


def _seeded(config: trainer_pb2.TrainerConfig, seed: int) -> trainer_pb2.TrainerConfig:
    """A copy of the experiment's trainer config with the experiment's seed unless it sets its own."""
    trainer = trainer_pb2.TrainerConfig()
    trainer.CopyFrom(config)
    trainer.seed = trainer.seed or seed
    return trainer
