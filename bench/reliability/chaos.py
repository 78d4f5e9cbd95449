"""Random SIGKILLs over many experiments: `concurrent` experiments run at a time on one set of services
while a service (or the trainer's worker, as the OOM killer would) is killed every few seconds and
restarted at once. An experiment that stops on a fault is resumed; each must end SUCCEEDED with every
label stored exactly once."""

from __future__ import annotations

import logging
import os
import random
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labelloop.cli.local import SERVICES, LocalCluster
from labelloop.client import LabelLoopClient
from labelloop.v1 import experiments_pb2 as pb

from bench.reliability.cluster import (
    client_for,
    create,
    expected_labels,
    get_quietly,
    ingest_digits,
    label_counts,
    local_cluster,
    resume_quietly,
)

log = logging.getLogger(__name__)
WORKER = "trainer-worker"
TARGETS = (*SERVICES, WORKER)


@dataclass
class Chaos:
    experiments: int = 0
    succeeded: int = 0
    failed_for_good: list[str] = field(default_factory=list)
    resumed: int = 0  # ResumeExperiment calls that brought a stopped experiment back
    experiments_resumed: int = 0  # experiments resumed at least once
    kills: Counter[str] = field(default_factory=Counter)
    labels_lost: int = 0
    labels_duplicated: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "experiments": self.experiments,
            "succeeded": self.succeeded,
            "failed_for_good": self.failed_for_good,
            "resumes": self.resumed,
            "experiments_resumed": self.experiments_resumed,
            "kills": dict(self.kills),
            "faults_injected": sum(self.kills.values()),
            "labels_lost": self.labels_lost,
            "labels_duplicated": self.labels_duplicated,
            "seconds": round(self.seconds, 1),
        }


def worker_pids(trainer_pid: int) -> list[int]:
    """The trainer's spawned worker processes, read from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if parent == trainer_pid and b"spawn_main" in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except (OSError, ValueError, IndexError):
            continue  # exited meanwhile
    return found


def inject(local: LocalCluster, target: str) -> bool:
    """SIGKILLs a service (restarted at once, not waited for) or the worker; False if nothing to kill."""
    if target == WORKER:
        pids = worker_pids(local.processes["trainer"].pid)
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        return bool(pids)
    local.kill(target)
    local.start_service(target, wait=False)
    return True


def _killer(
    local: LocalCluster, chaos: Chaos, every: float, rng: random.Random, stop: threading.Event
) -> None:
    while not stop.wait(rng.uniform(every / 2, every * 1.5)):
        target = rng.choice(TARGETS)
        if inject(local, target):
            chaos.kills[target] += 1
            log.info("killed %s (%d faults so far)", target, sum(chaos.kills.values()))


def _follow(client: LabelLoopClient, names: list[str], chaos: Chaos, resumed: set[str]) -> list[str]:
    """One look at each running experiment: resumes those stopped on a fault; returns those that ended."""
    ended = []
    for name in names:
        shown = get_quietly(client, name)
        if shown is None:
            continue
        if shown.state == pb.EXPERIMENT_STATE_FAILED and shown.failure_kind == pb.FAILURE_KIND_FAULT:
            if resume_quietly(client, name):
                chaos.resumed += 1
                resumed.add(name)
                log.info("resumed %s: %s", name, shown.status_message)
        elif shown.state == pb.EXPERIMENT_STATE_SUCCEEDED:
            chaos.succeeded += 1
            ended.append(name)
        elif shown.state in (pb.EXPERIMENT_STATE_FAILED, pb.EXPERIMENT_STATE_CANCELLED):
            chaos.failed_for_good.append(f"{name}: {shown.status_message}")
            ended.append(name)
    return ended


def _launch(client: LabelLoopClient, name: str, max_rounds: int, seed: int) -> bool:
    """Creates and starts the experiment; False when a service is down this instant (try again)."""
    try:
        create(client, name, max_rounds, seed)
        return True
    except Exception as error:  # a killed controller or store; the create may have gone through
        shown = get_quietly(client, name)
        if shown is None:
            log.info("creating %s: %s; trying again", name, error)
            return False
        if shown.state == pb.EXPERIMENT_STATE_CREATED:
            try:
                client.start(name)
            except Exception:
                return False
        return True


def run_chaos(
    workdir: Path,
    experiments: int,
    concurrent: int,
    max_rounds: int,
    kill_every: float,
    seed: int,
    timeout: float,
) -> Chaos:
    rng = random.Random(seed)
    chaos = Chaos(experiments=experiments)
    # Writes of the controller's records stop the experiment on a fault quickly (then resumed).
    with local_cluster(workdir, {"LABELLOOP_CONTROLLER_WRITE_RETRY_SECONDS": "5"}) as local:
        client = client_for(local)
        ingest_digits(client, workdir / "data")
        waiting = [f"chaos-{n:03d}" for n in range(experiments)]
        running: list[str] = []
        resumed: set[str] = set()
        stop = threading.Event()
        killer = threading.Thread(target=_killer, args=(local, chaos, kill_every, rng, stop), daemon=True)
        started = time.monotonic()
        killer.start()
        try:
            while waiting or running:
                if time.monotonic() - started > timeout:  # counted against the run, not hidden
                    chaos.failed_for_good += [
                        f"{n}: not finished after {timeout:.0f} s" for n in running + waiting
                    ]
                    break
                while waiting and len(running) < concurrent:
                    if not _launch(client, waiting[0], max_rounds, rng.randrange(1 << 30)):
                        time.sleep(1)
                        continue
                    running.append(waiting.pop(0))
                for name in _follow(client, running, chaos, resumed):
                    running.remove(name)
                time.sleep(0.5)
        finally:
            stop.set()
            killer.join()
        chaos.seconds = time.monotonic() - started
        chaos.experiments_resumed = len(resumed)
        for service in SERVICES:
            local.wait_healthy(service, timeout=180)
        for n in range(experiments):
            name = f"chaos-{n:03d}"
            stored, duplicated = label_counts(client, name)
            shown = client.get(name)
            succeeded = shown.state == pb.EXPERIMENT_STATE_SUCCEEDED
            expected = expected_labels(max_rounds) if succeeded else shown.labels_used
            chaos.labels_lost += max(0, expected - stored)
            chaos.labels_duplicated += duplicated
        client.close()
    return chaos
