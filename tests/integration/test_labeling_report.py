"""Several annotators, one of them bad: every round's labeling report (CROWDLAB once a model and
overlapping labels exist), training on CROWDLAB's consensus labels, the reports over gRPC, the CLI and
metrics, and the exported data set (Parquet, CSV, Label Studio JSON, the model folder) read back.

Five real service processes on a local store; tabular digits with the linear probe (a logistic
regression: about a second a round). 140 pool examples, 20 first labels and 4 batches of 30 with
re-labeling allowed: ActiveLab gives many labels to examples that already have one (another annotator).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import grpc
import pandas as pd
import pytest
from labelloop.cli.local import LocalCluster
from labelloop.cli.main import main as cli
from labelloop.client import LabelLoopClient, trainer_config
from labelloop.core import layout
from labelloop.core.config import StorageConfig
from labelloop.core.server import channel
from labelloop.core.storage import LocalStore
from labelloop.v1 import dataset_store_pb2 as ds
from labelloop.v1 import experiments_pb2 as pb
from labelloop.v1 import trainer_pb2, trainer_pb2_grpc

from tests.support.cluster import LABEL_COLUMN, client_for, cluster, ingest_tabular_digits, scrape

pytestmark = pytest.mark.integration

ACCURACIES = [0.95, 0.9, 0.9, 0.25]  # oracle-3 is mostly wrong
BAD = "oracle-3"
MAX_ROUNDS = 4
ROWS = 200  # 140 pool examples, as many as the experiment's 140 labels


@pytest.fixture(scope="module")
def experiment(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[LocalCluster, LabelLoopClient, Path]]:
    workdir = tmp_path_factory.mktemp("labeling-report")
    root = workdir / "store"
    with cluster(workdir, StorageConfig(backend="local", root=root)) as local:
        client = client_for(local)
        ingest_tabular_digits(client, workdir / "data", rows=ROWS)
        client.create_experiment(
            "crowd",
            dataset="digits",
            strategy="activelab",
            per_class=2,
            batch_size=30,
            max_rounds=MAX_ROUNDS,
            allow_relabel=True,
            annotator_accuracies=ACCURACIES,
            trainer=trainer_config(mode="linear-probe", num_gpus=0),
            seed=4,
            start=True,
        )
        final = client.wait("crowd", timeout=900)
        assert final.state == pb.EXPERIMENT_STATE_SUCCEEDED, final.status_message
        yield local, client, root
        client.close()


def parquet(store: LocalStore, uri: str) -> pd.DataFrame:
    return pd.read_parquet(io.BytesIO(store.get_bytes(store.ref_to_key(uri))))


def test_reports_rank_the_bad_annotator_last_and_training_uses_the_consensus(experiment: tuple) -> None:
    local, client, root = experiment
    store = LocalStore(root)
    reports = [client.labeling_report("crowd", n) for n in range(MAX_ROUNDS + 1)]
    assert reports[0].method == "majority_vote"  # no model yet
    assert reports[0].name == "experiments/crowd/rounds/0/labelingReport"
    assert reports[-1].method == "crowdlab"
    assert client.labeling_report("crowd") == reports[-1]  # round "-": the latest

    latest = reports[-1]
    annotations = client.list_annotations("digits", "crowd")
    assert latest.annotation_count == len(annotations) and latest.annotator_count == 4
    assert latest.labeled_count == len({a.example_id for a in annotations})
    worst = latest.annotators[0]
    assert worst.annotator == BAD, [(a.annotator, round(a.quality, 3)) for a in latest.annotators]
    assert all(a.quality > worst.quality + 0.1 for a in latest.annotators[1:])
    assert 0 < latest.mean_consensus_quality <= 1

    rounds = {r.number: r for r in client.list_rounds("crowd")}
    for number, report in enumerate(reports):
        record = store.get_json(layout.round_key("crowd", number))
        operation = store.get_json(layout.operation_key(rounds[number].training_operation.split("/")[-1]))
        fitted_on = operation["spec"]["labels_key"]
        if report.method == "crowdlab":
            # The trainer fitted exactly CROWDLAB's consensus, not the snapshot's majority vote.
            assert fitted_on == store.ref_to_key(record["consensus_labels_uri"])
            fitted = pd.read_parquet(io.BytesIO(store.get_bytes(fitted_on)))
            consensus = parquet(store, report.consensus_uri)
            assert list(fitted["label"]) == list(consensus["consensus_label"])
        else:
            assert record["consensus_labels_uri"] == ""
            assert fitted_on.endswith("/labels.parquet") and "/snapshots/" in fitted_on

    # On the last round's labels CROWDLAB's consensus is closer to the truth than the majority vote.
    examples = pd.read_parquet(io.BytesIO(store.get_bytes(layout.examples_key("digits"))))
    truth = dict(zip(examples["example_id"].astype(str), examples[LABEL_COLUMN].astype(str), strict=True))
    snapshot = pd.read_parquet(io.BytesIO(store.get_bytes(layout.snapshot_labels_key("digits", "crowd-r4"))))
    consensus = parquet(store, latest.consensus_uri)
    assert list(snapshot["example_id"]) == list(consensus["example_id"])
    right = consensus["example_id"].map(truth)
    assert (consensus["consensus_label"] == right).mean() > (snapshot["label"] == right).mean()

    # Metrics: per experiment, never per annotator.
    text = scrape(local.metrics_url("controller"))
    assert 'labelloop_labeling_annotators{experiment="crowd"} 4.0' in text
    assert f'labelloop_labeling_min_annotator_quality{{experiment="crowd"}} {worst.quality}' in text
    assert "oracle-" not in text


def test_report_names_are_checked(experiment: tuple) -> None:
    _, client, _ = experiment
    for name, code in (
        ("experiments/crowd/rounds/x/labelingReport", grpc.StatusCode.INVALID_ARGUMENT),
        ("experiments/crowd/rounds/1/report", grpc.StatusCode.INVALID_ARGUMENT),
        ("experiments/crowd/rounds/99/labelingReport", grpc.StatusCode.NOT_FOUND),
        ("experiments/nobody/rounds/-/labelingReport", grpc.StatusCode.NOT_FOUND),
    ):
        with pytest.raises(grpc.RpcError) as info:
            client.labeling.GetLabelingReport(_report_request(name), timeout=10)
        assert info.value.code() == code, (name, info.value.details())


def _report_request(name: str) -> object:
    from labelloop.v1 import labeling_pb2

    return labeling_pb2.GetLabelingReportRequest(name=name)


def test_export_round_trips(experiment: tuple, tmp_path: Path) -> None:
    local, client, root = experiment
    store = LocalStore(root)
    annotations = client.list_annotations("digits", "crowd")
    latest = client.labeling_report("crowd")
    exported = client.export_labels("crowd")
    last_round = client.list_rounds("crowd")[-1]
    assert exported.model_uri == last_round.model_uri and exported.round == last_round.number

    labels = parquet(store, exported.labels_uri)
    assert len(labels) == latest.labeled_count and labels["example_id"].is_unique
    assert set(labels["consensus_method"]) == {"crowdlab"}
    consensus = parquet(store, latest.consensus_uri).set_index("example_id")
    assert (labels.set_index("example_id")["consensus_label"] == consensus["consensus_label"]).all()
    assert {"pixel_0", "pixel_63"} <= set(labels.columns) and LABEL_COLUMN not in labels.columns
    every = parquet(store, exported.annotations_uri)
    assert len(every) == len(annotations)
    assert list(every["label"]) == [a.label for a in annotations]
    people = parquet(store, exported.annotators_uri)
    assert people["annotator"].iloc[0] == BAD and people["label_count"].sum() <= len(annotations)

    # CSV through the CLI, downloaded with the model folder.
    out = tmp_path / "csv"
    argv = ["--controller", local.address("controller"), "--store", local.address("store")]
    assert cli([*argv, "export", "crowd", "--format", "csv", "--output", str(out), "--data", str(root)]) == 0
    csv = pd.read_csv(out / "labels.csv", dtype={"example_id": str, "consensus_label": str})
    pd.testing.assert_frame_equal(csv[labels.columns[:5]], labels[labels.columns[:5]].astype(csv.dtypes[:5]))
    assert len(pd.read_csv(out / "annotations.csv")) == len(annotations)
    assert any((out / "model").rglob("*")), "the model folder was not downloaded"
    model_files = sorted(
        p.relative_to(out / "model").as_posix() for p in (out / "model").rglob("*") if p.is_file()
    )
    prefix = store.ref_to_key(exported.model_uri).rstrip("/") + "/"
    assert model_files == sorted(k.removeprefix(prefix) for k in store.list(prefix))


def test_label_studio_json(experiment: tuple, tmp_path: Path) -> None:
    _, client, root = experiment
    store = LocalStore(root)
    exported = client.export_labels("crowd", "label-studio-json")
    assert exported.labels_uri == exported.annotations_uri and exported.labels_uri.endswith("tasks.json")
    tasks = store.get_json(store.ref_to_key(exported.labels_uri))
    annotators = store.get_json(store.ref_to_key(exported.annotators_uri))
    by_number = {a["id"]: a["annotator"] for a in annotators}
    annotations = client.list_annotations("digits", "crowd")
    assert sum(len(t["annotations"]) for t in tasks) == len(annotations)
    given = sorted(
        (t["data"]["example_id"], by_number[a["completed_by"]], a["result"][0]["value"]["choices"][0])
        for t in tasks
        for a in t["annotations"]
    )
    assert given == sorted((a.example_id, a.annotator, a.label) for a in annotations)

    # Label Studio's own converter reads the export with a labeling config for these names.
    from label_studio_sdk.converter import Converter

    classes = list(client.get_dataset("digits").classes)
    choices = "".join(f'<Choice value="{c}"/>' for c in classes)
    config = (
        '<View><Text name="text" value="$example_id"/>'
        f'<Choices name="label" toName="text">{choices}</Choices></View>'
    )
    path = tmp_path / "tasks.json"
    path.write_text(json.dumps(tasks))
    converter = Converter(config=config, project_dir=str(tmp_path))
    converter.convert_to_csv(str(path), str(tmp_path / "csv"), is_dir=False, sep=",", header=True)
    converted = pd.read_csv(next((tmp_path / "csv").glob("*.csv")), dtype=str)
    assert len(converted) == len(annotations) and set(converted["label"]) <= set(classes)


def test_trainer_rejects_bad_labels_uri(experiment: tuple) -> None:
    local, _, root = experiment
    store = LocalStore(root)
    stub = trainer_pb2_grpc.TrainerServiceStub(channel(local.address("trainer")))
    snapshot = "datasets/digits/snapshots/crowd-r1"
    frame = pd.DataFrame({"example_id": ["nope"], "label": ["1"]})
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    store.put_bytes("scratch/wrong.parquet", buffer.getvalue())
    for uri, message in (
        (store.uri("scratch/missing.parquet"), "does not exist"),
        (store.uri("scratch/wrong.parquet"), "must label exactly the"),
    ):
        request = trainer_pb2.CreateTrainingRunRequest(
            snapshot=snapshot, config=trainer_config(mode="linear-probe", num_gpus=0), labels_uri=uri
        )
        with pytest.raises(grpc.RpcError) as info:
            stub.CreateTrainingRun(request, timeout=30)
        assert message in (info.value.details() or ""), info.value.details()


def test_export_keeps_labels_given_after_the_latest_report(experiment: tuple) -> None:
    """Labels appended after the experiment ended have no report yet: exported by majority vote."""
    _, client, root = experiment
    store = LocalStore(root)
    before = client.export_labels("crowd")
    labeled = set(parquet(store, before.labels_uri)["example_id"])
    pool = client.store.ListExamples(
        ds.ListExamplesRequest(parent="datasets/digits", split=ds.SPLIT_POOL, page_size=1000)
    ).examples
    # 140 labels went to fewer than 140 examples (some got a second label): some are still unlabeled.
    fresh = next(e.example_id for e in pool if e.example_id not in labeled)
    client.store.AppendAnnotations(
        ds.AppendAnnotationsRequest(
            parent="datasets/digits",
            annotation_set="crowd",
            annotations=[
                ds.Annotation(example_id=fresh, annotator="late-1", label="3"),
                ds.Annotation(example_id=fresh, annotator="late-2", label="3"),
                ds.Annotation(example_id=fresh, annotator="late-3", label="5"),
            ],
            request_id="late-labels",
        )
    )
    after = client.export_labels("crowd")
    assert after.labels_uri != before.labels_uri  # a new export folder: the old files stay as they were
    assert len(parquet(store, before.labels_uri)) == len(labeled)
    labels = parquet(store, after.labels_uri).set_index("example_id")
    row = labels.loc[fresh]
    assert (row["consensus_label"], row["consensus_method"], row["annotation_count"]) == (
        "3",
        "majority_vote",
        3,
    )
    assert row["consensus_quality"] == pytest.approx(2 / 3)
    people = parquet(store, after.annotators_uri).set_index("annotator")
    assert people.loc["late-3", "agreement_with_consensus"] == 0 and pd.isna(people.loc["late-3", "quality"])
    assert people.loc[BAD, "quality"] == client.labeling_report("crowd").annotators[0].quality
