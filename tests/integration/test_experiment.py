"""End to end: the five services as separate processes, on a local folder and on a real S3 server
(SeaweedFS), run a small ActiveLab experiment on tabular digits with a fast AutoGluon MLP."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from labelloop.cli.local import LocalCluster
from labelloop.client import LabelLoopClient
from labelloop.core import layout
from labelloop.core.config import StorageConfig
from labelloop.core.storage import ObjectStore, open_store
from labelloop.v1 import experiments_pb2 as pb

from tests.conftest import s3_config
from tests.support.cluster import client_for, cluster, fast_trainer, ingest_tabular_digits, scrape

pytestmark = pytest.mark.integration

ROWS = 300  # 210 pool, 90 test


@pytest.fixture(params=["local", "s3"])
def running(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[LocalCluster, LabelLoopClient]]:
    if request.param == "local":
        storage = StorageConfig(backend="local", root=tmp_path / "store")
    else:
        storage = s3_config(request.getfixturevalue("s3_server"))
    with cluster(tmp_path, storage) as local:
        client = client_for(local)
        ingest_tabular_digits(client, tmp_path / "data", rows=ROWS)
        yield local, client
        client.close()


def test_two_round_experiment(running: tuple[LocalCluster, LabelLoopClient]) -> None:
    local, client = running
    client.create_experiment(
        "e2e",
        dataset="digits",
        strategy="activelab",
        per_class=3,
        batch_size=20,
        max_rounds=2,
        annotator_count=2,
        trainer=fast_trainer(),
        seed=3,
        start=True,
    )
    experiment = client.wait("e2e", timeout=600)
    assert experiment.state == pb.EXPERIMENT_STATE_SUCCEEDED, experiment.status_message
    assert "max_rounds=2" in experiment.status_message
    assert experiment.rounds_completed == 3 and experiment.labels_used == 70

    rounds = client.list_rounds("e2e")
    assert [r.number for r in rounds] == [0, 1, 2]
    assert [r.labeled_count for r in rounds] == [30, 50, 70]
    assert all(r.stage == pb.ROUND_STAGE_DONE for r in rounds)
    accuracies = [r.test_accuracy for r in rounds]
    assert all(0.3 < a <= 1.0 for a in accuracies), accuracies  # 10 classes: chance is 0.1
    assert experiment.latest_test_accuracy == rounds[-1].test_accuracy
    for r in rounds[:2]:
        assert len(r.selected_example_ids) == 20
        assert r.model_uri and r.training_operation.startswith("operations/")
        stages = set(r.stage_seconds)
        assert {"snapshot", "train", "fit", "predict", "evaluate", "score", "select", "label"} <= stages
        assert r.seconds >= r.stage_seconds["train"] > 0
    assert not rounds[2].selected_example_ids and "score" not in rounds[2].stage_seconds

    # Every selected example got exactly one label, none of them was labeled before.
    annotations = client.list_annotations("digits", "e2e")
    assert len(annotations) == 70
    assert len({a.example_id for a in annotations}) == 70
    picked = [i for r in rounds[:2] for i in r.selected_example_ids]
    assert set(picked) <= {a.example_id for a in annotations} and len(set(picked)) == 40
    table = client.rounds_table("e2e")
    assert [row["labeled"] for row in table] == [30, 50, 70]
    assert {"round", "labeled", "test_accuracy", "seconds", "stage_seconds"} <= set(table[0])

    # State and artifacts are in the object store, where a restarted controller finds them.
    store = open_store(local.settings.storage)
    assert store.exists("experiments/e2e/experiment.json") and store.exists("experiments/e2e/rounds/2.json")
    assert store.exists("experiments/e2e/rounds/0/scores/unlabeled_scores.npy")

    text = scrape(local.metrics_url("controller"))
    assert 'labelloop_round_test_accuracy{experiment="e2e",round="2"}' in text
    assert 'labelloop_experiment_rounds_completed{experiment="e2e"} 3.0' in text
    assert 'labelloop_labels_received_total{experiment="e2e"} 70.0' in text
    assert 'labelloop_round_stage_duration_seconds_count{experiment="e2e",stage="train"} 3.0' in text
    assert 'labelloop_experiment_running{experiment="e2e"} 0.0' in text


def predictions_and_scores(store: ObjectStore, experiment: str, number: int) -> tuple[dict, dict]:
    """Predicted class and score of every candidate of a round, from the arrays the round stored."""
    folder = layout.round_prefix(experiment, number)
    predicted, scores = {}, {}
    for part in ("unlabeled", "labeled"):
        ids = store.get_json(layout.example_ids_key(folder, part))
        probabilities = store.get_array(layout.probabilities_key(folder, part))
        part_scores = store.get_array(f"{layout.scores_prefix(folder)}{part}_scores.npy")
        predicted.update(zip(ids, probabilities.argmax(axis=1).tolist(), strict=True))
        scores.update(zip(ids, part_scores.tolist(), strict=True))
    return predicted, scores


def test_relabeling_with_a_class_cap(tmp_path: Path) -> None:
    """allow_relabel and max_per_class: labeled examples compete for a second, fresh annotator, and no
    predicted class gets more than its share of the batch."""
    cap, batch_size = 3, 20
    storage = StorageConfig(backend="local", root=tmp_path / "store")
    with cluster(tmp_path, storage) as local:
        client = client_for(local)
        ingest_tabular_digits(client, tmp_path / "data", rows=ROWS)
        client.create_experiment(
            "relabel",
            dataset="digits",
            per_class=4,
            batch_size=batch_size,
            max_rounds=1,
            annotator_count=3,
            noise_rate=0.3,
            allow_relabel=True,
            max_per_class=cap,
            trainer=fast_trainer(),
            seed=5,
            start=True,
        )
        experiment = client.wait("relabel", timeout=600)
        assert experiment.state == pb.EXPERIMENT_STATE_SUCCEEDED, experiment.status_message
        first, last = client.list_rounds("relabel")
        selected = list(first.selected_example_ids)
        assert 0 < len(selected) <= batch_size and len(set(selected)) == len(selected)

        predicted, scores = predictions_and_scores(open_store(local.settings.storage), "relabel", 0)
        per_class = Counter(predicted[i] for i in selected)
        assert max(per_class.values()) <= cap, per_class
        # The cap mattered: the best-scored batch, uncapped, has more of some predicted class.
        uncapped = sorted(scores, key=lambda i: scores[i])[:batch_size]
        assert max(Counter(predicted[i] for i in uncapped).values()) > cap

        annotations = client.list_annotations("digits", "relabel")
        assert len(annotations) == 40 + len(selected) == experiment.labels_used
        by_example: dict[str, list[str]] = {}
        for a in annotations:
            by_example.setdefault(a.example_id, []).append(a.annotator)
        assert all(len(set(names)) == len(names) for names in by_example.values())  # fresh annotators
        relabeled = [i for i in selected if len(by_example[i]) == 2]
        assert relabeled  # with 30% noisy labels ActiveLab asks a second annotator about some
        assert last.labeled_count == 40 + len(selected) - len(relabeled)
        client.close()
