"""The `labelloop` command: experiment commands against real services, `up`, and demo helpers."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from labelloop.cli import demo
from labelloop.cli.demo import plot_learning_curve, prepare_output
from labelloop.cli.local import LocalCluster
from labelloop.cli.main import main
from labelloop.cli.progress import format_table
from labelloop.client import LabelLoopClient
from labelloop.core.server import channel

from tests.support.ports import free_port


def run(running: tuple[LocalCluster, LabelLoopClient], *args: str) -> int:
    local, _ = running
    return main(["--controller", local.address("controller"), "--store", local.address("store"), *args])


@pytest.mark.integration
def test_experiment_commands(
    running: tuple[LocalCluster, LabelLoopClient], capsys: pytest.CaptureFixture[str]
) -> None:
    create = [
        "experiments",
        "create",
        "cli-1",
        "--dataset",
        "digits",
        "--batch-size",
        "5",
        "--per-class",
        "1",
    ]
    hp = ["--hp", "optim.max_epochs=2"]
    assert run(running, *create, "--max-rounds", "1", *hp, "--annotators", "2", "-o", "json") == 0
    made = json.loads(capsys.readouterr().out)
    assert made["name"] == "experiments/cli-1" and made["state"] == "EXPERIMENT_STATE_CREATED"
    assert made["config"]["trainer"]["hyperparameters"] == {"optim.max_epochs": "2"}
    assert made["config"]["simulated_oracle"]["annotator_count"] == 2

    assert run(running, "experiments", "list") == 0
    listed = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert listed[0] == ["NAME", "STATE", "DATASET", "ROUND", "LABELED", "ACCURACY"]
    assert ["experiments/cli-1", "CREATED", "digits", "0", "0", "-"] in listed  # no accuracy before one
    assert run(running, "experiments", "cancel", "cli-1", "-o", "json") == 0
    assert json.loads(capsys.readouterr().out)["state"] == "EXPERIMENT_STATE_CANCELLED"
    assert run(running, "experiments", "watch", "cli-1") == 0  # ends at once: the experiment ended
    watched = capsys.readouterr().out
    assert "experiments/cli-1: CANCELLED cancelled" in watched and "\x1b" not in watched  # not a TTY
    assert run(running, "experiments", "watch", "cli-1", "-o", "json") == 0
    captured = capsys.readouterr()  # the document on stdout, the progress on stderr
    assert json.loads(captured.out)["state"] == "EXPERIMENT_STATE_CANCELLED" and "round 0" in captured.err
    assert run(running, "experiments", "rounds", "cli-1", "--json") == 0
    assert json.loads(capsys.readouterr().out) == []

    assert run(running, "experiments", "get", "ghost") == 1
    assert "NOT_FOUND" in capsys.readouterr().err
    assert run(running, "datasets", "get", "digits", "-o", "json") == 0
    assert json.loads(capsys.readouterr().out)["name"] == "datasets/digits"


@pytest.mark.integration
def free_range(count: int) -> int:
    """The first of `count` consecutive ports free right now (below SeaweedFS's port + 10000)."""
    import random
    import socket

    for _ in range(200):
        base = random.randrange(20000, 45000)
        try:
            with contextlib.ExitStack() as stack:
                for port in range(base, base + count):
                    stack.enter_context(socket.socket()).bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
    raise AssertionError(f"no {count} consecutive free ports")


def test_up_runs_every_service_until_sigterm(tmp_path: Path) -> None:
    base, controller = free_range(10), free_port()
    ports = ["--port-base", str(base), "--controller-port", str(controller)]
    process = subprocess.Popen(
        [sys.executable, "-m", "labelloop.cli.main", "up", *ports, "--data", str(tmp_path / "data")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "LABELLOOP_STORAGE_BACKEND": "local"},
    )
    try:
        addresses: dict[str, str] = {}
        deadline = time.monotonic() + 120
        while len(addresses) < 5 and time.monotonic() < deadline:
            line = process.stdout.readline() if process.stdout else ""
            assert line, f"`labelloop up` exited early with code {process.poll()}"
            if match := re.match(r"\s*(\w+)\s+(127\.0\.0\.1:\d+)\s+metrics", line):
                addresses[match[1]] = match[2]
        assert addresses == {
            "store": f"127.0.0.1:{base}",
            "trainer": f"127.0.0.1:{base + 1}",
            "scorer": f"127.0.0.1:{base + 2}",
            "selector": f"127.0.0.1:{base + 3}",
            "controller": f"127.0.0.1:{controller}",  # the per-service port wins over the base
        }
        for address in addresses.values():
            health = health_pb2_grpc.HealthStub(channel(address))
            reply = health.Check(health_pb2.HealthCheckRequest(), timeout=10)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0
        for address in addresses.values():  # every service stopped with it
            with pytest.raises(grpc.RpcError):
                health_pb2_grpc.HealthStub(channel(address)).Check(health_pb2.HealthCheckRequest(), timeout=2)
        assert (tmp_path / "data" / "logs" / "controller.log").exists()
    finally:
        if process.poll() is None:
            process.kill()


def test_demo_outputs(tmp_path: Path) -> None:
    rows = [
        {"round": 0, "labeled": 30, "test_accuracy": 0.5, "seconds": 12.0},
        {"round": 1, "labeled": 70, "test_accuracy": 0.8, "seconds": 15.5},
    ]
    plot_learning_curve(rows, tmp_path / "curve.png", "test")
    assert (tmp_path / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = format_table(rows).splitlines()
    assert table[0].split() == ["round", "labeled", "test", "accuracy", "seconds"]
    assert table[2].split() == ["1", "70", "0.8000", "15.5"]

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("precious")
    with pytest.raises(SystemExit, match="choose another --output"):
        prepare_output(foreign)
    ours = tmp_path / "ours"
    prepare_output(ours)
    (ours / "rounds.json").write_text("[]")
    prepare_output(ours)  # a rerun replaces the previous demo's output
    assert not (ours / "rounds.json").exists()


def test_demo_says_which_extra_it_lacks_before_starting(monkeypatch: pytest.MonkeyPatch) -> None:
    demo.require_demo_extra()  # this environment has everything (make venv installs labelloop[demo])
    monkeypatch.setattr(demo, "DEMO_MODULES", ("matplotlib", "labelloop_no_such_module"))
    with pytest.raises(SystemExit, match=r"needs labelloop_no_such_module: pip install 'labelloop\[demo\]'"):
        demo.require_demo_extra()


@pytest.mark.integration
def test_create_with_the_label_efficiency_options(
    running: tuple[LocalCluster, LabelLoopClient], capsys: pytest.CaptureFixture[str]
) -> None:
    create = ["experiments", "create", "--dataset", "digits", "--batch-size", "5", "--max-rounds", "1"]
    options = [
        "--initial-count",
        "12",
        "--initial-selection",
        "random",
        "--strategy",
        "budget-aware",
        "--batch-method",
        "diverse",
        "--training-mode",
        "linear-probe",
        "--fine-tune-from-labels",
        "100",
        "--annotator-accuracies",
        "0.6,0.8,0.9",
        "--labeled-probabilities",
        "in-sample",
    ]
    assert run(running, *create, "cli-options", *options, "-o", "json") == 0
    config = json.loads(capsys.readouterr().out)["config"]
    assert config["initial_labels"] == {
        "count": 12,
        "selection": "INITIAL_SELECTION_RANDOM",
        "per_class": 0,
        "example_ids": [],
    }
    assert config["strategy"] == "STRATEGY_BUDGET_AWARE" and config["batch_method"] == "BATCH_METHOD_DIVERSE"
    assert config["trainer"]["mode"] == "TRAINING_MODE_LINEAR_PROBE"
    assert config["trainer"]["fine_tune_from_labels"] == 100  # an int64, as a number
    assert config["simulated_oracle"]["annotator_accuracies"] == [0.6, 0.8, 0.9]
    assert config["labeled_probabilities"] == "LABELED_PROBABILITIES_IN_SAMPLE"

    # A preset fills what is not given; the first set defaults to 2 typical examples per class.
    assert (
        run(running, "-o", "json", *create, "cli-preset", "--preset", "tabular", "--batch-method", "lowest")
        == 0
    )
    config = json.loads(capsys.readouterr().out)["config"]
    assert config["initial_labels"] == {
        "count": 20,
        "selection": "INITIAL_SELECTION_TYPICAL",
        "per_class": 0,
        "example_ids": [],
    }
    assert config["strategy"] == "STRATEGY_BUDGET_AWARE"
    assert config["batch_method"] == "BATCH_METHOD_LOWEST_SCORES"  # given, so not the preset's
    assert config["trainer"]["mode"] == "TRAINING_MODE_LINEAR_PROBE"


@pytest.mark.integration
@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--batch-method", "widest"], "error: batch method 'widest' is not one of lowest, diverse, typical"),
        (["--strategy", "clairvoyant"], "error: strategy 'clairvoyant' is not one of activelab, random,"),
        (["--initial-count", "12", "--initial-selection", "best"], "is not one of typical, random"),
        (["--training-mode", "full"], "error: training mode 'full' is not one of fine-tune, linear-probe"),
        (["--labeled-probabilities", "x"], "is not one of out-of-sample, in-sample"),
        (["--annotator-accuracies", "0.6,1.2"], "give one number in (0, 1] per annotator"),
        (["--annotator-accuracies", "high"], "are not comma-separated numbers"),
        (["--preset", "audio"], "error: unknown modality 'audio': use one of image, text, tabular"),
        (["--per-class", "2", "--initial-count", "12"], "sets per_class and count: set exactly one of"),
    ],
)
def test_bad_option_values_are_one_clear_line(
    running: tuple[LocalCluster, LabelLoopClient],
    capsys: pytest.CaptureFixture[str],
    option: list[str],
    message: str,
) -> None:
    create = [
        "experiments",
        "create",
        "cli-bad",
        "--dataset",
        "digits",
        "--batch-size",
        "5",
        "--max-rounds",
        "1",
    ]
    assert run(running, *create, *option) in (1, 2)
    captured = capsys.readouterr()
    assert message in captured.err and len(captured.err.strip().splitlines()) == 1, captured.err
    assert "Traceback" not in captured.err and not captured.out
