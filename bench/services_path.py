"""Experiments through the product path: the five services as processes, driven by LabelLoopClient."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

from labelloop import presets
from labelloop.cli.local import SERVICES, LocalCluster, Ports
from labelloop.client import LabelLoopClient, trainer_config
from labelloop.core.api import enum_value
from labelloop.core.config import StorageConfig
from labelloop.v1 import common_pb2, experiments_pb2, trainer_pb2

from bench.config import CurveConfig
from bench.data import SPLIT_SEED, Ingest


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def running_cluster(workdir: Path, data: Path) -> Iterator[tuple[LocalCluster, LabelLoopClient]]:
    """The five services on free ports, with their store and logs under workdir; the store imports
    manifests from data."""
    ports = {s: Ports(_free_port(), _free_port()) for s in SERVICES}
    cluster = LocalCluster(
        storage=StorageConfig(backend="local", root=workdir / "store"),
        log_dir=workdir / "logs",
        ports=ports,
        extra_env={"LABELLOOP_LOG_LEVEL": "WARNING"},
        import_roots=[data],
    )
    with cluster, LabelLoopClient(cluster.address("controller"), cluster.address("store")) as client:
        yield cluster, client


def ensure_dataset(client: LabelLoopClient, dataset_id: str, ingest: Ingest) -> None:
    import grpc

    try:
        client.get_dataset(dataset_id)
        return
    except grpc.RpcError as error:
        if error.code() != grpc.StatusCode.NOT_FOUND:
            raise
    client.create_dataset(
        dataset_id,
        str(ingest.manifest),
        image_column=ingest.image_column,
        label_column=ingest.label_column,
        id_column=ingest.id_column,
        test_fraction=ingest.test_fraction,
        seed=SPLIT_SEED,
    )


def _enum(enum_type: Any, name: str) -> int:
    return enum_value(enum_type, name)


def preset_trainer(modality: str, seed: int) -> trainer_pb2.TrainerConfig:
    """The modality's preset as a TrainerConfig, on the CPU."""
    preset = presets.preset_for(modality)
    return trainer_config(**preset.trainer_kwargs(), num_gpus=0, seed=seed)


def scenario_config(
    cfg: CurveConfig, dataset_id: str, strategy: str, seed: int
) -> experiments_pb2.ExperimentConfig:
    """One strategy's experiment of a scenario: the preset's trainer and initial set, the strategy's
    scoring, batch method and re-labeling, and the scenario's annotators and budget."""
    from bench.data import NUM_CLASSES

    variant = cfg.variant(strategy)
    preset = presets.preset_for(cfg.preset)
    config = experiments_pb2.ExperimentConfig(
        dataset=f"datasets/{dataset_id}",
        initial_labels=experiments_pb2.InitialLabels(
            count=cfg.initial_count or preset.initial_count(NUM_CLASSES[cfg.dataset]),
            selection=cast(
                "experiments_pb2.InitialSelection",
                _enum(experiments_pb2.InitialSelection, cfg.initial_selection),
            ),
        ),
        strategy=cast("common_pb2.Strategy", _enum(common_pb2.Strategy, variant.strategy)),
        batch_method=cast("common_pb2.BatchMethod", _enum(common_pb2.BatchMethod, variant.batch_method)),
        batch_size=cfg.batch_size,
        stopping_rule=experiments_pb2.StoppingRule(max_rounds=cfg.rounds, label_budget=cfg.label_budget),
        trainer=preset_trainer(cfg.preset, seed),
        allow_relabel=variant.allow_relabel,
        seed=seed,
    )
    if variant.labeled_probabilities:
        config.labeled_probabilities = cast(
            "experiments_pb2.LabeledProbabilities",
            _enum(experiments_pb2.LabeledProbabilities, variant.labeled_probabilities),
        )
    config.simulated_oracle.CopyFrom(
        experiments_pb2.SimulatedOracle(annotator_accuracies=list(cfg.annotator_accuracies))
    )
    return config


class FirstEmbedding:
    """Lets the first experiment on a fresh store compute the pool's pretrained embeddings alone: the
    others start once it has left its first snapshot and find them cached, instead of computing the
    same embeddings at the same time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._leader_taken = False
        self.ready = threading.Event()

    def before_create(self) -> bool:
        """True for the first caller (the leader); the others wait here until the leader is past it."""
        with self._lock:
            leader, self._leader_taken = not self._leader_taken, True
        if not leader:
            self.ready.wait()
        return leader


def run_scenario(
    client: LabelLoopClient,
    experiment_id: str,
    config: experiments_pb2.ExperimentConfig,
    first: FirstEmbedding | None = None,
    timeout: float = 3600.0,
    resume: bool = True,
) -> list[dict[str, Any]]:
    """Runs one experiment of a scenario to the end; one dict per round, with the annotations bought
    before the round's model (the initial set plus every earlier batch: a re-label counts as one)."""
    leader = first.before_create() if first else False
    try:
        experiment_id = _create(client, experiment_id, config, resume)
        if leader:
            from labelloop.cli.demo import wait_past_first_snapshot

            wait_past_first_snapshot(client, experiment_id)
    finally:
        if first and leader:
            first.ready.set()
    return _finished_rounds(client, experiment_id, timeout)


def _create(
    client: LabelLoopClient, experiment_id: str, config: experiments_pb2.ExperimentConfig, resume: bool = True
) -> str:
    """Creates and starts the experiment. The experiment of an interrupted benchmark run may already
    exist (the controller resumes it when the services restart on the same store): with the same config
    it is that run, and we wait for it or take its rounds (unless resume is off: after a code change);
    otherwise the run starts afresh under a new id. Returns the id used."""
    import grpc

    request = experiments_pb2.CreateExperimentRequest(experiment_id=experiment_id, config=config, start=True)
    try:
        client.experiments.CreateExperiment(request, timeout=client.timeout)
    except grpc.RpcError as error:
        if error.code() != grpc.StatusCode.ALREADY_EXISTS:
            raise
        existing = client.get(experiment_id)
        resumable = existing.state not in (
            experiments_pb2.EXPERIMENT_STATE_FAILED,
            experiments_pb2.EXPERIMENT_STATE_CANCELLED,
        )
        if resume and existing.config == config and resumable:
            if existing.state == experiments_pb2.EXPERIMENT_STATE_CREATED:
                client.start(experiment_id)
            elif existing.state == experiments_pb2.EXPERIMENT_STATE_PAUSED:
                client.resume(experiment_id)
            return experiment_id
        suffix = f"-{int(time.time()) % 1_000_000}"  # ids have at most 63 characters
        experiment_id = experiment_id[: 63 - len(suffix)].rstrip("-") + suffix
        request.experiment_id = experiment_id
        client.experiments.CreateExperiment(request, timeout=client.timeout)
    return experiment_id


def run_experiment(
    client: LabelLoopClient,
    experiment_id: str,
    *,
    dataset_id: str,
    strategy: str,
    seed: int,
    per_class: int,
    batch_size: int,
    rounds: int,
    hyperparameters: dict[str, str],
    checkpoints: dict[str, str],
    timeout: float = 3600.0,
) -> list[dict[str, Any]]:
    """Runs one experiment to the end; one dict per round (labeled, test_accuracy, seconds, stages)."""
    client.create_experiment(
        experiment_id,
        dataset=dataset_id,
        strategy=strategy,
        per_class=per_class,
        batch_size=batch_size,
        max_rounds=rounds,
        trainer=trainer_config(hyperparameters, checkpoints, num_gpus=0),
        seed=seed,
        start=True,
    )
    return _finished_rounds(client, experiment_id, timeout)


def _finished_rounds(client: LabelLoopClient, experiment_id: str, timeout: float) -> list[dict[str, Any]]:
    final = client.wait(experiment_id, timeout=timeout)
    if final.state != experiments_pb2.EXPERIMENT_STATE_SUCCEEDED:
        raise RuntimeError(f"experiment {experiment_id} ended {final.state}: {final.status_message}")
    rounds = client.list_rounds(experiment_id)
    first = int(rounds[0].labeled_count) if rounds else 0
    out, bought = [], first
    for r in rounds:
        out.append(
            {
                "number": r.number,
                "labeled": int(r.labeled_count),
                "annotations": bought,
                "test_accuracy": float(r.test_accuracy),
                "seconds": float(r.seconds),
                "stage_seconds": {k: float(v) for k, v in sorted(r.stage_seconds.items())},
                "selected": list(r.selected_example_ids),
                "snapshot": r.snapshot,
                "experiment": experiment_id,
            }
        )
        bought += len(r.selected_example_ids)
    return out
