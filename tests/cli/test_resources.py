"""list/get/delete for datasets and experiments against the real store and controller, in both
spellings (`labelloop experiments delete X`, `labelloop delete experiment X`), -o json/yaml/table."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from labelloop.cli.local import LocalCluster
from labelloop.cli.main import main
from labelloop.client import LabelLoopClient
from labelloop.core import layout
from labelloop.v1 import experiments_pb2

from tests.support.cluster import write_tabular_digits

pytestmark = pytest.mark.integration


def cli(running: tuple[LocalCluster, LabelLoopClient], capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    local, _ = running
    capsys.readouterr()
    code = main([*argv, "--controller", local.address("controller"), "--store", local.address("store")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out


def failing(
    running: tuple[LocalCluster, LabelLoopClient], capsys: pytest.CaptureFixture[str], *argv: str
) -> str:
    local, _ = running
    capsys.readouterr()
    code = main(["--controller", local.address("controller"), "--store", local.address("store"), *argv])
    err = capsys.readouterr().err
    assert code == 1 and len(err.splitlines()) == 1 and err.startswith("error: "), err
    return err


def test_datasets_list_get_delete(
    running: tuple[LocalCluster, LabelLoopClient], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    manifest = write_tabular_digits(tmp_path, rows=40)
    created = cli(
        running,
        capsys,
        "datasets",
        "create",
        "doomed",
        "--manifest",
        str(manifest),
        "--label-column",
        "label",
    )
    assert created.startswith("datasets/doomed created")

    listed = json.loads(cli(running, capsys, "datasets", "list", "-o", "json"))
    by_name = {d["name"]: d for d in listed}
    assert by_name["datasets/digits"]["pool_count"] == 140 and by_name["datasets/digits"]["test_count"] == 60
    assert by_name["datasets/doomed"]["example_count"] == 40  # int64 fields as numbers, not "40"
    table = cli(running, capsys, "get", "datasets").splitlines()
    assert table[0].split() == ["NAME", "DATA", "CLASSES", "POOL", "TEST"]
    assert "datasets/digits  table  10       140   60" in table
    one = yaml.safe_load(cli(running, capsys, "-o", "yaml", "datasets", "get", "doomed"))
    assert one["example_count"] == 40 and one["classes"] == [str(i) for i in range(10)]

    # Used by an experiment that has not ended: refused, one line naming the fix; --force deletes it.
    cli(
        running,
        capsys,
        "experiments",
        "create",
        "user",
        "--dataset",
        "doomed",
        "--batch-size",
        "5",
        "--max-rounds",
        "1",
    )
    refused = failing(running, capsys, "datasets", "delete", "doomed")
    assert "experiments/user" in refused
    assert "delete the dataset with force" in refused and "(FAILED_PRECONDITION)" in refused
    assert cli(running, capsys, "delete", "dataset", "doomed", "--force") == "datasets/doomed deleted\n"
    assert "datasets/doomed" not in cli(running, capsys, "datasets", "ls")
    assert "datasets/doomed" in failing(running, capsys, "datasets", "get", "doomed")


def test_experiments_list_get_delete(
    running: tuple[LocalCluster, LabelLoopClient], capsys: pytest.CaptureFixture[str]
) -> None:
    local, client = running
    root = Path(local.settings.storage.root)
    create = [
        "experiments",
        "create",
        "--dataset",
        "digits",
        "--batch-size",
        "5",
        "--per-class",
        "1",
        "--max-rounds",
        "1",
    ]
    cli(running, capsys, *create, "gone")
    cli(running, capsys, *create, "busy", "--start")  # no trainer: it stays RUNNING

    got = json.loads(cli(running, capsys, "experiments", "get", "gone", "-o", "json"))
    assert got["name"] == "experiments/gone" and got["labeled_count"] == 0 and got["rounds"] == []
    assert got["config"]["batch_size"] == 5 and got["config"]["stopping_rule"]["max_rounds"] == 1
    shown = cli(running, capsys, "get", "experiment", "gone")
    assert "state:" in shown and "CREATED" in shown and "test accuracy: -" in shown
    names = [e["name"] for e in yaml.safe_load(cli(running, capsys, "experiments", "list", "-o", "yaml"))]
    assert {"experiments/gone", "experiments/busy"} <= set(names)

    # A CREATED experiment goes at once, with everything under its folder but the tombstone.
    assert (root / layout.experiment_key("gone")).exists()
    assert cli(running, capsys, "experiments", "delete", "gone") == "experiments/gone deleted\n"
    left = sorted(
        p.relative_to(root).as_posix() for p in (root / "experiments" / "gone").rglob("*") if p.is_file()
    )
    assert left == [layout.deleted_experiment_key("gone")]
    assert "NOT_FOUND" in failing(running, capsys, "experiments", "get", "gone")
    assert "NOT_FOUND" in failing(running, capsys, "experiments", "delete", "gone")
    again = failing(running, capsys, *create, "gone")
    assert "was deleted, and its id stays taken" in again and "choose another experiment_id" in again

    # A RUNNING one needs --force, and is then cancelled first.
    refused = failing(running, capsys, "delete", "experiments", "busy")
    assert "RUNNING: cancel it first, or delete it with force" in refused and "FAILED_PRECONDITION" in refused
    assert client.get("busy").state == experiments_pb2.EXPERIMENT_STATE_RUNNING
    started = time.monotonic()
    deleted = json.loads(cli(running, capsys, "experiments", "rm", "busy", "--force", "-o", "json"))
    assert deleted == {"deleted": ["experiments/busy"]} and time.monotonic() - started < 30
    assert "experiments/busy" not in cli(running, capsys, "experiments", "list")
    assert not (root / layout.experiment_key("busy")).exists()
    assert not (root / layout.round_key("busy", 0)).exists()


def test_restarted_controller_does_not_bring_a_deleted_experiment_back(
    running: tuple[LocalCluster, LabelLoopClient], capsys: pytest.CaptureFixture[str]
) -> None:
    local, _ = running
    create = [
        "experiments",
        "create",
        "--dataset",
        "digits",
        "--batch-size",
        "5",
        "--per-class",
        "1",
        "--max-rounds",
        "1",
    ]
    cli(running, capsys, *create, "ephemeral")
    cli(running, capsys, "experiments", "delete", "ephemeral")
    local.restart("controller")
    assert "experiments/ephemeral" not in cli(running, capsys, "experiments", "list")
    assert "id stays taken" in failing(running, capsys, *create, "ephemeral")


def test_a_watch_ends_when_its_experiment_is_deleted(
    running: tuple[LocalCluster, LabelLoopClient], capsys: pytest.CaptureFixture[str]
) -> None:
    local, _ = running
    create = ["experiments", "create", "--dataset", "digits", "--batch-size", "5", "--per-class", "1"]
    cli(running, capsys, *create, "watched-away", "--max-rounds", "1")
    addresses = ["--controller", local.address("controller"), "--store", local.address("store")]
    watcher = subprocess.Popen(
        [sys.executable, "-m", "labelloop.cli.main", "experiments", "watch", "watched-away", *addresses],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert watcher.stdout is not None and "not started" in watcher.stdout.readline()  # it is watching
    cli(running, capsys, "experiments", "delete", "watched-away")
    _, err = watcher.communicate(timeout=30)
    assert watcher.returncode == 1 and err == "error: experiments/watched-away was deleted (NOT_FOUND)\n"


def test_experiments_create_for_people(
    running: tuple[LocalCluster, LabelLoopClient], capsys: pytest.CaptureFixture[str]
) -> None:
    """--queue chooses the labeling queue; the rules flags reach it; a bad rule is one line."""
    base = ["experiments", "create", "--dataset", "digits", "--batch-size", "5", "--max-rounds", "1"]
    rules = [
        "--annotators-per-example",
        "2",
        "--quorum",
        "0.8",
        "--deadline",
        "3600",
        "--lease-seconds",
        "300",
    ]
    cli(running, capsys, *base, "team", "--queue", *rules)
    config = json.loads(cli(running, capsys, "experiments", "get", "team", "-o", "json"))["config"]
    assert config["labeling_queue"]["rules"] == {
        "annotators_per_example": 2,
        "quorum": 0.8,
        "deadline_seconds": 3600.0,
        "lease_seconds": 300.0,
    }
    assert "simulated_oracle" not in config

    refused = failing(running, capsys, *base, "bad-quorum", "--queue", "--quorum", "1.5")
    assert "quorum" in refused and "INVALID_ARGUMENT" in refused


def test_a_manifest_path_is_read_by_the_store(
    running: tuple[LocalCluster, LabelLoopClient], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A path that is no file here goes to the store as given (a store in a container reads its own
    files); the store's refusal is one line."""
    missing = str(tmp_path / "none.csv")
    refused = failing(running, capsys, "datasets", "create", "d", "--manifest", missing)
    assert "none.csv' does not exist" in refused and "INVALID_ARGUMENT" in refused
