"""The fault matrix's harness: experiments on the tabular digits sample with the fast trainer, faults
injected when the controller reports a given (round, stage), and the checks every case ends with: the
experiment finishes, or stops resumably and finishes after ResumeExperiment, with every label stored
exactly once. bench/reliability runs the long versions with the same pieces."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from labelloop.cli.local import LocalCluster
from labelloop.client import LabelLoopClient
from labelloop.v1 import experiments_pb2 as pb

from tests.support.cluster import fast_trainer

PER_CLASS, BATCH = 2, 10  # 20 first labels (10 digits), then 10 a round
STAGES = ("snapshot", "train", "evaluate", "score", "select", "label")
POLL_SECONDS = 0.05
MAX_RESUMES = 5


def create(client: LabelLoopClient, name: str, max_rounds: int, seed: int = 5) -> None:
    client.create_experiment(
        name, dataset="digits", strategy="least_confidence", per_class=PER_CLASS, batch_size=BATCH,
        max_rounds=max_rounds, trainer=fast_trainer(), seed=seed, start=True,
    )  # fmt: skip


def expected_labels(max_rounds: int) -> int:
    return PER_CLASS * 10 + BATCH * max_rounds


def position(client: LabelLoopClient, name: str) -> tuple[int, int, str] | None:
    """(state, round, stage name) as the controller shows it; None while it does not answer."""
    try:
        request = pb.GetExperimentRequest(name=f"experiments/{name}")
        shown = client.experiments.GetExperiment(request, timeout=2).experiment
    except grpc.RpcError:
        return None
    stage = pb.RoundStage.Name(shown.current_stage).removeprefix("ROUND_STAGE_").lower()
    return shown.state, shown.current_round, stage


@dataclass
class Fault:
    """What to do when the experiment first shows (round, stage) or a later step: `inject` runs, and
    `heal` (if any) `hold_seconds` later."""

    round: int
    stage: str
    what: str
    inject: Callable[[], None]
    heal: Callable[[], None] | None = None
    hold_seconds: float = 0.0
    seen_at: str = ""  # the (round:stage) the experiment showed when the fault was injected


@dataclass
class Outcome:
    experiment: pb.Experiment
    faults: list[Fault] = field(default_factory=list)
    resumes: int = 0


def _order(number: int, stage: str) -> tuple[int, int]:
    return number, STAGES.index(stage) if stage in STAGES else len(STAGES)


def run_with_faults(client: LabelLoopClient, name: str, faults: list[Fault], timeout: float = 600) -> Outcome:
    """Injects each fault in turn at its step (or the first later one shown), then waits for the end;
    an experiment that stops on a fault (FAILED, failure_kind FAULT) is resumed once its faults healed."""
    pending = sorted(faults, key=lambda f: _order(f.round, f.stage))
    deadline = time.monotonic() + timeout
    outcome = Outcome(pb.Experiment(), faults=pending)
    for fault in pending:
        while True:
            assert time.monotonic() < deadline, f"{name} did not reach {fault.round}:{fault.stage}"
            shown = position(client, name)
            if shown is not None:
                state, number, stage = shown
                if state == pb.EXPERIMENT_STATE_FAILED:
                    outcome.resumes += _resume(client, name)
                    continue
                if state != pb.EXPERIMENT_STATE_RUNNING or _order(number, stage) >= _order(
                    fault.round, fault.stage
                ):
                    break
            time.sleep(POLL_SECONDS)
        fault.seen_at = f"{shown[1]}:{shown[2]}" if shown else "?"
        fault.inject()
        if fault.heal is not None:
            time.sleep(fault.hold_seconds)
            fault.heal()
    while True:
        final = client.wait(name, timeout=max(1.0, deadline - time.monotonic()))
        if final.state != pb.EXPERIMENT_STATE_FAILED or outcome.resumes >= MAX_RESUMES:
            outcome.experiment = final
            return outcome
        outcome.resumes += _resume(client, name)


def _resume(client: LabelLoopClient, name: str) -> int:
    """Resumes an experiment that stopped on a fault; one that failed for good is left as it is."""
    failed = client.get(name)
    if failed.failure_kind != pb.FAILURE_KIND_FAULT:
        raise AssertionError(f"{name} failed for good: {failed.status_message}")
    try:
        client.resume(name)
    except grpc.RpcError as error:
        if error.code() != grpc.StatusCode.UNAVAILABLE:  # storage still refuses: try again later
            raise
        time.sleep(1)
        return 0
    return 1


def label_counts(client: LabelLoopClient, name: str) -> tuple[int, int]:
    """(labels stored, (example, annotator) pairs stored more than once) of the experiment's set."""
    annotations = client.list_annotations("digits", name)
    pairs = Counter((a.example_id, a.annotator) for a in annotations)
    return len(annotations), sum(n - 1 for n in pairs.values() if n > 1)


def assert_finished_exactly(client: LabelLoopClient, name: str, outcome: Outcome, max_rounds: int) -> None:
    final = outcome.experiment
    assert final.state == pb.EXPERIMENT_STATE_SUCCEEDED, (final.status_message, outcome.faults)
    stored, duplicated = label_counts(client, name)
    assert duplicated == 0
    assert stored == expected_labels(max_rounds) == final.labels_used
    assert [r.labeled_count for r in client.list_rounds(name)] == [
        expected_labels(n) for n in range(max_rounds + 1)
    ]


# Processes ------------------------------------------------------------------------------------


def children(pid: int) -> list[int]:
    """The processes whose parent is pid (from /proc: no dependency for this)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # it exited meanwhile
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited; its parent has not collected it yet


def kill_service(local: LocalCluster, service: str) -> Callable[[], None]:
    """SIGKILL of the service (and its worker, as a crashed pod), restarted at once without waiting."""

    def inject() -> None:
        local.kill(service)
        local.start_service(service, wait=False)

    return inject


def workers(trainer_pid: int) -> list[int]:
    """The trainer's worker processes (multiprocessing's spawned children, not its resource tracker)."""
    found = []
    for pid in children(trainer_pid):
        try:
            if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(pid)
        except OSError:
            continue
    return found


def kill_worker(local: LocalCluster) -> Callable[[], None]:
    """SIGKILL of the trainer's worker process alone, as the OOM killer does."""

    def inject() -> None:
        deadline = time.monotonic() + 60
        while not (found := workers(local.processes["trainer"].pid)):
            assert time.monotonic() < deadline, "the trainer has no worker process"
            time.sleep(0.2)
        for pid in found:
            os.kill(pid, signal.SIGKILL)

    return inject
