"""A whole experiment labeled by people through the labeling queue: the five services as processes on
a real S3 server (SeaweedFS), a fast AutoGluon MLP on tabular digits. Scripted annotators label part
of each batch (quorum 1/2), then the rest while the next model trains: those labels land in the next
round's snapshot, each once. Tasks of later rounds show the round model's prediction, most useful
(lowest score) first; two annotators finish the experiment with the client's label_queue."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from labelloop.client import LabelLoopClient
from labelloop.v1 import experiments_pb2 as pb
from labelloop.v1 import labeling_pb2 as lb

from tests.conftest import s3_config
from tests.support.cluster import LABEL_COLUMN, client_for, cluster, fast_trainer, ingest_tabular_digits
from tests.support.seaweedfs import S3Server

pytestmark = pytest.mark.integration

ROWS = 300  # 210 pool, 90 test


def eventually(check: Callable[[], bool], what: str, timeout: float = 600.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def current(client: LabelLoopClient, experiment: str) -> tuple[int, int]:
    found = client.get(experiment)
    return found.current_round, found.current_stage


def selection_tasks(client: LabelLoopClient, experiment: str, number: int) -> list[lb.Task]:
    """The round's selected batch (tasks with the round model's prediction), as leased."""
    return [t for t in client.list_tasks(experiment, round=number) if t.prediction.model]


def test_people_label_through_the_queue_and_late_labels_count_once(
    s3_server: S3Server, tmp_path: Path
) -> None:
    with cluster(tmp_path, s3_config(s3_server)) as local:
        client = client_for(local)
        ingest_tabular_digits(client, tmp_path / "data", rows=ROWS)
        manifest = pd.read_csv(tmp_path / "data" / "manifest.csv", dtype=str)
        truth = dict(zip(manifest["id"], manifest[LABEL_COLUMN], strict=True))
        client.create_experiment(
            "team",
            dataset="digits",
            per_class=2,
            batch_size=10,
            max_rounds=2,
            trainer=fast_trainer(),
            labeling_rules=pb.LabelingRules(annotators_per_example=1, quorum=0.5, lease_seconds=600),
            seed=3,
            start=True,
        )

        # Round 0's first set: half now, the other half while the first model trains.
        eventually(lambda: len(client.list_tasks("team")) == 20, "the first set's tasks")
        first = client.lease_tasks("team", "slow", max_tasks=20).tasks
        assert len(first) == 20
        for task in first[:10]:
            client.submit_label(task, truth[task.example_id], annotator="slow")
        eventually(lambda: current(client, "team") == (0, pb.ROUND_STAGE_TRAIN), "round 0 to train")
        for task in first[10:]:
            client.submit_label(
                task, truth[task.example_id], annotator="slow", request_id=f"r0-{task.example_id}"
            )
        client.submit_label(
            first[-1], truth[first[-1].example_id], annotator="slow", request_id=f"r0-{first[-1].example_id}"
        )
        assert current(client, "team") == (0, pb.ROUND_STAGE_TRAIN)  # they came in during training
        assert client.list_rounds("team")[0].labeled_count == 10

        # Round 0's selection: predictions shown, most useful first; half labeled, then half late.
        eventually(lambda: len(selection_tasks(client, "team", 0)) == 10, "round 0's selected tasks")
        batch = client.lease_tasks("team", "alice", max_tasks=10).tasks
        assert len(batch) == 10
        scores = [t.prediction.score for t in batch]
        assert scores == sorted(scores)
        for task in batch:
            prediction = task.prediction
            assert prediction.model == "experiments/team/rounds/0"
            assert abs(sum(prediction.probabilities.values()) - 1) < 1e-3
            assert prediction.probabilities[prediction.label] == pytest.approx(prediction.confidence)
            assert max(prediction.probabilities.values()) == pytest.approx(prediction.confidence)
        for task in batch[:5]:
            client.submit_label(task, truth[task.example_id], annotator="alice")
        eventually(lambda: current(client, "team")[0] == 1, "round 1")
        for task in batch[5:]:
            client.submit_label(task, truth[task.example_id], annotator="alice")
        rounds = client.list_rounds("team")
        assert rounds[1].labeled_count == 20 + 5  # the late first-set labels, once; not yet the late five

        # Round 1's selection: two annotators with the client's label_queue until the experiment ends.
        submitted: Counter[str] = Counter()

        def annotate(name: str) -> None:
            with client_for(local) as person:
                submitted[name] = person.label_queue(
                    "team", name, lambda t: truth[t.example_id], poll_seconds=0.2, timeout=600
                )

        people = [threading.Thread(target=annotate, args=(n,)) for n in ("bob", "carol")]
        for person in people:
            person.start()
        final = client.wait("team", timeout=900)
        for person in people:
            person.join(timeout=60)
        assert final.state == pb.EXPERIMENT_STATE_SUCCEEDED, final.status_message
        assert final.rounds_completed == 3

        annotations = client.list_annotations("digits", "team")
        per_example = Counter(a.example_id for a in annotations)
        assert max(per_example.values()) == 1  # one label wanted per example: none stored twice
        assert len(annotations) == 20 + 10 + sum(submitted.values())  # none lost
        assert all(a.label == truth[a.example_id] for a in annotations)
        rounds = client.list_rounds("team")
        assert rounds[2].labeled_count >= 30 + 5 and rounds[2].labeled_count <= len(annotations)
        assert all(r.labels_awaited == 0 for r in rounds)
        for task in selection_tasks(client, "team", 1):
            assert task.prediction.model == "experiments/team/rounds/1"
        client.close()
