"""The command line itself, without services: help on every flag, global options anywhere, `up`'s
ports, numbers in JSON, and one-line errors (the real `labelloop` process, no traceback)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest
from labelloop.cli.local import SERVICES
from labelloop.cli.main import _own_json_flag, build_parser, main
from labelloop.cli.options import subparsers
from labelloop.cli.output import as_data
from labelloop.cli.up import ports_from
from labelloop.core.config import Settings
from labelloop.v1 import experiments_pb2, trainer_pb2

from tests.support.ports import free_port


def test_every_option_and_argument_has_help() -> None:
    parser = build_parser()
    undocumented = [
        f"{sub.prog} {action.option_strings or action.dest}"
        for sub in [parser, *subparsers(parser)]
        for action in sub._actions
        if not isinstance(action, argparse._SubParsersAction) and not action.help
    ]
    assert not undocumented
    commands = {sub.prog for sub in subparsers(parser)}
    for expected in (
        "up",
        "datasets list",
        "datasets delete",
        "experiments delete",
        "get",
        "delete",
        "predict",
    ):
        assert f"labelloop {expected}" in commands


@pytest.mark.parametrize(
    "argv",
    [
        ["--controller", "c:1", "--store", "s:2", "-o", "json", "experiments", "list"],
        ["experiments", "list", "--controller", "c:1", "--store=s:2", "-o", "json"],
        ["--controller", "c:1", "experiments", "--store", "s:2", "list", "--output", "json"],
        ["-o", "yaml", "--store", "s:2", "experiments", "list", "-o", "json", "--controller", "c:1"],
    ],
)
def test_global_options_go_anywhere(argv: list[str]) -> None:
    args = build_parser().parse_args(argv)
    assert (args.controller, args.store, args.output) == ("c:1", "s:2", "json")  # the last one given wins


def test_global_defaults_and_commands_with_their_own_output() -> None:
    parser = build_parser()
    args = parser.parse_args(["datasets", "list"])
    defaults = Settings.from_env()
    assert (args.output, args.controller, args.store) == (
        "table",
        defaults.controller_address,
        defaults.store_address,
    )
    predict = parser.parse_args(
        ["predict", "--controller", "c:1", "--model", "m", "--input", "i", "--output", "p.csv"]
    )
    assert predict.output == "p.csv" and predict.controller == "c:1"  # predict's own --output: a file
    report = parser.parse_args(["report", "e1", "-o", "json"])
    _own_json_flag(report)  # `report` prints with its own --json flag: -o json sets it
    assert report.json is True
    with pytest.raises(ValueError, match="-o yaml: `labelloop report` prints a table or JSON; use -o json"):
        _own_json_flag(parser.parse_args(["-o", "yaml", "report", "e1"]))


def up_args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["up", *argv])


def test_up_ports_from_a_base_and_per_service() -> None:
    ports = ports_from(up_args("--port-base", "61000"))
    assert [ports[s].grpc for s in SERVICES] == [61000, 61001, 61002, 61003, 61004]
    assert [ports[s].metrics for s in SERVICES] == [61005, 61006, 61007, 61008, 61009]
    ports = ports_from(up_args("--port-base", "61000", "--controller-port", "62000"))
    assert ports["controller"].grpc == 62000 and ports["store"].grpc == 61000
    defaults = ports_from(up_args("--store-port", "60051"))
    assert defaults["store"].grpc == 60051 and defaults["trainer"].grpc == 50052
    with pytest.raises(ValueError, match="port 61001 is given to both trainer and controller"):
        ports_from(up_args("--port-base", "61000", "--controller-port", "61001"))
    with pytest.raises(ValueError, match="exclude each other"):
        ports_from(up_args("--port-base", "61000", "--free-ports"))


def test_json_numbers_are_numbers() -> None:
    experiment = experiments_pb2.Experiment(
        name="experiments/e",
        labeled_count=42,
        config=experiments_pb2.ExperimentConfig(trainer=trainer_pb2.TrainerConfig(fine_tune_from_labels=100)),
    )
    experiment.create_time.FromSeconds(0)
    data = as_data(experiment)
    assert data["labeled_count"] == 42 and data["config"]["trainer"]["fine_tune_from_labels"] == 100
    assert data["create_time"] == "1970-01-01T00:00:00Z"  # well-known types keep their JSON form
    round_ = experiments_pb2.Round(labeled_count=7, labels_awaited=3, stage_seconds={"train": 1.5})
    shown = as_data(round_)
    assert (shown["labeled_count"], shown["labels_awaited"], shown["stage_seconds"]) == (7, 3, {"train": 1.5})
    assert shown["test_accuracy"] == 0 and shown["selected_example_ids"] == []  # zeros are shown too


def labelloop(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "labelloop.cli.main", *argv],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def test_each_error_is_one_line_that_names_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    closed = f"127.0.0.1:{free_port()}"  # nothing listens there
    create = ["experiments", "create", "e", "--dataset", "d", "--batch-size", "5"]
    cases = [
        (["experiments", "list", "--controller", closed], "start them with `labelloop up`, or give their"),
        ([*create, "--strategy", "foo"], "strategy 'foo' is not one of activelab, random,"),
        ([*create, "--preset", "audio"], "unknown modality 'audio': use one of image, text, tabular"),
        (
            [*create, "--hp", "max_epochs"],
            "--hp 'max_epochs' is not KEY=VALUE (e.g. --hp optim.max_epochs=5)",
        ),
        (
            [*create[:-1], "five"],
            "argument --batch-size: invalid int value: 'five' (see `labelloop experiments",
        ),
        (["-o", "xml", "datasets", "list"], "invalid choice: 'xml' (choose from 'table', 'json', 'yaml')"),
        (["experiments", "frobnicate"], "invalid choice: 'frobnicate' (choose from"),
        (["up", "--port-base", "80"], "--port-base 80: give a port from 1024 to"),
        (["delete", "pods", "x"], "argument TYPE: invalid choice: 'pods'"),
        ([], "the following arguments are required: COMMAND (see `labelloop --help`)"),
    ]
    for argv, message in cases:
        assert main(argv) != 0, argv  # an uncaught exception would fail the test here
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err, (argv, err)
        assert len(err.splitlines()) == 1, err
    # The installed command as a user runs it: the same one line, no traceback.
    done = labelloop("experiments", "get", "e1", "--controller", closed, "--store", closed, "-o", "yaml")
    assert done.returncode == 1 and not done.stdout
    assert done.stderr.splitlines() == [
        f"error: cannot reach the LabelLoop services (controller {closed}, store {closed}): "
        "start them with `labelloop up`, or give their addresses with --controller and --store"
    ]


def test_a_taken_port_is_named_with_the_options_to_change() -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = labelloop("up", "--free-ports", "--store-port", str(port))
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1, done.stderr
    assert f"error: port {port} (store) is in use" in done.stderr and "--port-base N" in done.stderr
