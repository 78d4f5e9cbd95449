"""End to end with a real Label Studio: a 2-round experiment on tabular digits whose every label comes
from two people (alice, bob) annotating through Label Studio's REST API, two annotations per example.
The controller (the connector) is killed in the middle of round 1's labeling, people go on labeling
while it is down, and after its restart every Label Studio annotation is in the log exactly once."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from labelloop.client import LabelLoopClient, trainer_config
from labelloop.core.config import StorageConfig
from labelloop.v1 import common_pb2
from labelloop.v1 import experiments_pb2 as pb

from tests.labelstudio.server import Annotator, LabelStudio
from tests.support.cluster import LABEL_COLUMN, client_for, cluster, ingest_tabular_digits
from tests.support.ports import free_port

pytestmark = [pytest.mark.labelstudio, pytest.mark.integration]

EXPERIMENT = "ls-e2e"
INITIAL, BATCH, PER_EXAMPLE = 10, 6, 2
# Long on purpose: the rounds go on within seconds only because webhooks wake the reconciliation.
RECONCILE_SECONDS = 120.0


def wait_for(what: str, found: Callable[[], Any], client: LabelLoopClient, timeout: float = 300.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        experiment = client.get(EXPERIMENT)
        assert experiment.state != pb.EXPERIMENT_STATE_FAILED, experiment.status_message
        value = found()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")


def experiment_config(label_studio: LabelStudio, webhook_port: int) -> pb.ExperimentConfig:
    config = pb.ExperimentConfig(
        dataset="datasets/digits",
        initial_labels=pb.InitialLabels(count=INITIAL, selection=pb.INITIAL_SELECTION_RANDOM),
        strategy=common_pb2.STRATEGY_LEAST_CONFIDENCE,
        batch_size=BATCH,
        stopping_rule=pb.StoppingRule(max_rounds=2),
        trainer=trainer_config(mode="linear-probe", num_gpus=0),
        seed=5,
    )
    config.label_studio.CopyFrom(
        pb.LabelStudioProject(
            url=label_studio.url,
            rules=pb.LabelingRules(annotators_per_example=PER_EXAMPLE),
            webhook_url=f"http://127.0.0.1:{webhook_port}/label-studio",
            reconcile_seconds=RECONCILE_SECONDS,
        )
    )
    return config


class People:
    """alice labels the truth; bob errs on the first task of every batch (annotators differ)."""

    def __init__(
        self, label_studio: LabelStudio, client: LabelLoopClient, project_id: int, truth: dict[str, str]
    ):
        self.studio, self.client, self.project_id, self.truth = label_studio, client, project_id, truth
        self.alice = label_studio.sign_up("alice@example.com")
        self.bob = label_studio.sign_up("bob@example.com")

    def batch_tasks(self, batch: str, size: int) -> list[dict[str, Any]]:
        def tasks() -> list[dict[str, Any]]:
            found = [t for t in self.studio.tasks(self.project_id) if t["data"]["labelloop_batch"] == batch]
            return sorted(found, key=lambda t: t["id"]) if len(found) >= size else []

        found = wait_for(f"the {size} tasks of batch {batch}", tasks, self.client)
        assert len(found) == size, f"batch {batch} was imported more than once: {len(found)} tasks"
        return found

    def label(self, tasks: list[dict[str, Any]]) -> None:
        for person in (self.alice, self.bob):
            for n, task in enumerate(tasks):
                self._annotate(person, task, wrong=person is self.bob and n == 0)

    def _annotate(self, person: Annotator, task: dict[str, Any], wrong: bool) -> None:
        label = self.truth[task["data"]["example_id"]]
        if wrong:
            label = str((int(label) + 1) % 10)
        person.annotate(self.studio.url, task["id"], label)


def test_two_rounds_labeled_in_label_studio_survive_a_controller_kill(
    label_studio: LabelStudio, tmp_path: Path
) -> None:
    local = cluster(tmp_path, StorageConfig(backend="local", root=tmp_path / "store"))
    webhook_port = free_port()
    local.extra_env.update(
        {"LABEL_STUDIO_API_KEY": label_studio.token, "LABELLOOP_WEBHOOK_PORT": str(webhook_port)}
    )
    with local:
        client = client_for(local)
        ingest_tabular_digits(client, tmp_path / "data", rows=200)
        manifest = pd.read_csv(tmp_path / "data" / "manifest.csv")
        truth = {str(i): str(v) for i, v in zip(manifest["id"], manifest[LABEL_COLUMN], strict=True)}
        client.experiments.CreateExperiment(
            pb.CreateExperimentRequest(
                experiment_id=EXPERIMENT, config=experiment_config(label_studio, webhook_port), start=True
            )
        )
        project = wait_for("the experiment's project", lambda: _project(label_studio), client)
        people = People(label_studio, client, project["id"], truth)
        assert project["maximum_annotations"] == PER_EXAMPLE

        # The first labeled set, then round 0's batch: no model yet, then the round-0 model's predictions.
        first = people.batch_tasks(f"{EXPERIMENT}-initial", INITIAL)
        assert not any(t["predictions"] for t in first)
        people.label(first)
        batch0 = people.batch_tasks(f"{EXPERIMENT}-r0-label", BATCH)
        _assert_predictions(batch0, round_number=0)
        labeled = time.monotonic()
        people.label(batch0)
        wait_for("round 1", lambda: client.get(EXPERIMENT).current_round >= 1, client)
        woken = time.monotonic() - labeled
        assert woken < RECONCILE_SECONDS / 2, f"round 0 went on after {woken:.0f}s: webhooks did not wake it"

        # Round 1: half of the batch is labeled and stored, the controller dies, the rest is labeled
        # while it is down; its restart stores each annotation once.
        batch1 = people.batch_tasks(f"{EXPERIMENT}-r1-label", BATCH)
        _assert_predictions(batch1, round_number=1)
        half = BATCH // 2
        people.label(batch1[:half])
        stored_before = PER_EXAMPLE * (INITIAL + BATCH + half)
        wait_for(
            "the first half of round 1's labels in the log",
            lambda: len(client.list_annotations("digits", EXPERIMENT)) >= stored_before,
            client,
        )
        local.kill("controller")
        people.label(batch1[half:])
        local.start_service("controller")

        experiment = client.wait(EXPERIMENT, timeout=600)
        assert experiment.state == pb.EXPERIMENT_STATE_SUCCEEDED, experiment.status_message
        assert experiment.rounds_completed == 3

        # Every Label Studio annotation is in the log once, with its person and class; none lost.
        in_studio = Counter(
            (t["data"]["example_id"], f"labelstudio:{_email(label_studio, a['completed_by'])}", _choice(a))
            for t in label_studio.tasks(project["id"])
            for a in t["annotations"]
        )
        in_log = Counter(
            (a.example_id, a.annotator, a.label) for a in client.list_annotations("digits", EXPERIMENT)
        )
        assert sum(in_studio.values()) == PER_EXAMPLE * (INITIAL + 2 * BATCH)
        assert in_log == in_studio
        assert experiment.labels_used == sum(in_log.values())
        annotators = {a for _, a, _ in in_log}
        assert annotators == {"labelstudio:alice@example.com", "labelstudio:bob@example.com"}
        # One project, found again after the restart; every batch imported once.
        assert len([p for p in label_studio.projects() if p["title"] == f"LabelLoop {EXPERIMENT}"]) == 1
        assert len(label_studio.tasks(project["id"])) == INITIAL + 2 * BATCH
        # Label Studio pre-fills from the latest round's model version.
        assert label_studio.get(f"/api/projects/{project['id']}/")["model_version"] == f"{EXPERIMENT}-r1"
        hooks = label_studio.get("/api/webhooks/", project=project["id"])
        assert [h["url"] for h in hooks] == [f"http://127.0.0.1:{webhook_port}/label-studio"]
        client.close()


def _project(label_studio: LabelStudio) -> dict[str, Any] | None:
    return next((p for p in label_studio.projects() if p["title"] == f"LabelLoop {EXPERIMENT}"), None)


def _assert_predictions(tasks: list[dict[str, Any]], round_number: int) -> None:
    """Each task carries the round model's prediction: model version, confidence, top class."""
    for task in tasks:
        (prediction,) = task["predictions"]
        assert prediction["model_version"] == f"{EXPERIMENT}-r{round_number}"
        assert 0.0 < prediction["score"] <= 1.0
        (choice,) = prediction["result"][0]["value"]["choices"]
        assert choice == task["data"]["labelloop_predicted"]
        assert f"predicts {choice}" in task["data"]["labelloop_prediction"]


def _email(label_studio: LabelStudio, user_id: int) -> str:
    users = {u["id"]: u["email"] for u in label_studio.get("/api/users/")}
    return str(users[user_id])


def _choice(annotation: dict[str, Any]) -> str:
    return str(annotation["result"][0]["value"]["choices"][0])
