"""`labelloop experiments list|get|delete|start|pause|resume|cancel|rounds|watch` (and create:
experiment_create.py).

`get` and `rounds` show each round's model and the command that uses it:
`labelloop predict --model experiments/E/rounds/N --input ROWS.csv --output predictions.csv`.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from labelloop.cli.experiment_create import add_create
from labelloop.cli.output import as_data, columns, emit, fields, output_format
from labelloop.cli.progress import evaluated, watch
from labelloop.client import LabelLoopClient, stage_name, state_name
from labelloop.v1 import experiments_pb2


def _client(args: argparse.Namespace) -> LabelLoopClient:
    return LabelLoopClient(args.controller, args.store)


def _name(experiment: str) -> str:
    return experiment if experiment.startswith("experiments/") else f"experiments/{experiment}"


def predict_command(round_name: str) -> str:
    """How to use a round's model (cli/predict.py resolves experiments/E/rounds/N)."""
    return f"labelloop predict --model {round_name} --input ROWS.csv --output predictions.csv"


def round_rows(rounds: list[experiments_pb2.Round]) -> list[dict[str, Any]]:
    """One dict per round, numbers as numbers; accuracy None until the round is evaluated."""
    return [
        {
            "round": r.number,
            "stage": stage_name(r.stage),
            "labeled": r.labeled_count,
            "test_accuracy": r.test_accuracy if r.stage > experiments_pb2.ROUND_STAGE_EVALUATE else None,
            "seconds": round(r.seconds, 3),
            "selected": len(r.selected_example_ids),
            "model_uri": r.model_uri,
            "model": r.name if r.model_uri else "",  # what `labelloop predict --model` takes
            "predict": predict_command(r.name) if r.model_uri else "",
        }
        for r in rounds
    ]


def rounds_table(rows: list[dict[str, Any]]) -> str:
    shown = [
        [
            r["round"],
            r["stage"],
            r["labeled"],
            r["test_accuracy"],
            f"{r['seconds']:.1f}",
            r["model"],
        ]
        for r in rows
    ]
    table = columns(["round", "stage", "labeled", "test accuracy", "seconds", "model"], shown)
    with_model = [r for r in rows if r["model_uri"]]
    if with_model:
        table += f"\nuse a round's model: {with_model[-1]['predict']}"
    return table


def _experiment_row(experiment: experiments_pb2.Experiment) -> list[Any]:
    accuracy = experiment.latest_test_accuracy if evaluated(experiment) else None
    return [
        experiment.name,
        state_name(experiment.state),
        experiment.config.dataset.removeprefix("datasets/"),
        experiment.current_round,
        experiment.labeled_count,
        accuracy,
    ]


def _summary(experiment: experiments_pb2.Experiment, rows: list[dict[str, Any]]) -> str:
    rule = experiment.config.stopping_rule
    stops = [
        f"{rule.max_rounds} rounds" if rule.max_rounds else "",
        f"{rule.label_budget} labels" if rule.label_budget else "",
        f"accuracy {rule.target_accuracy}" if rule.target_accuracy else "",
    ]
    latest = [r for r in rows if r["model_uri"]]
    head = fields(
        [
            ("name", experiment.name),
            ("state", state_name(experiment.state)),
            ("status", experiment.status_message),
            ("dataset", experiment.config.dataset),
            ("round", f"{experiment.current_round} ({stage_name(experiment.current_stage)})"),
            ("labeled", experiment.labeled_count),
            ("test accuracy", experiment.latest_test_accuracy if evaluated(experiment) else None),
            ("stops at", ", ".join(s for s in stops if s)),
            ("latest model", latest[-1]["model_uri"] if latest else ""),
        ]
    )
    return f"{head}\n\n{rounds_table(rows)}" if rows else head


def cmd_list(args: argparse.Namespace) -> int:
    with _client(args) as client:
        experiments = client.list()
    emit(
        args,
        [as_data(e) for e in experiments],
        lambda: columns(
            ["name", "state", "dataset", "round", "labeled", "accuracy"],
            [_experiment_row(e) for e in experiments],
        ),
    )
    return 0


def cmd_get(args: argparse.Namespace) -> int:
    if not args.experiment:
        return cmd_list(args)
    with _client(args) as client:
        experiment = client.get(args.experiment)
        rows = round_rows(client.list_rounds(args.experiment))
    emit(args, {**as_data(experiment), "rounds": rows}, lambda: _summary(experiment, rows))
    return 0


def cmd_control(args: argparse.Namespace) -> int:
    """start, pause, resume, cancel: the experiment as it is afterwards."""
    with _client(args) as client:
        experiment = getattr(client, args.action)(args.experiment)
    emit(args, as_data(experiment), lambda: f"{experiment.name} {state_name(experiment.state)}")
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    deleted = []
    with _client(args) as client:
        for experiment in args.experiments:
            client.delete_experiment(experiment, force=args.force)
            deleted.append(_name(experiment))
    emit(args, {"deleted": deleted}, lambda: "\n".join(f"{name} deleted" for name in deleted))
    return 0


def cmd_rounds(args: argparse.Namespace) -> int:
    with _client(args) as client:
        rows = round_rows(client.list_rounds(args.experiment))
    emit(args, rows, lambda: rounds_table(rows))
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    # With -o json|yaml stdout carries only the final document; progress goes to stderr.
    progress = sys.stdout if output_format(args) == "table" else sys.stderr
    terminal = progress.isatty() if args.plain is None else not args.plain
    with _client(args) as client:
        final = watch(client, args.experiment, progress, terminal=terminal, interval=args.interval)
        rows = round_rows(client.list_rounds(args.experiment))
    emit(
        args,
        {**as_data(final), "rounds": rows},
        lambda: (
            f"{rounds_table(rows)}\n{final.name}: {state_name(final.state)} {final.status_message}".rstrip()
        ),
    )
    failed = final.state in (
        experiments_pb2.EXPERIMENT_STATE_FAILED,
        experiments_pb2.EXPERIMENT_STATE_CANCELLED,
    )
    return 1 if failed and args.exit_status else 0


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Adds `experiments` and its verbs to the `labelloop` parser."""
    experiments = commands.add_parser(
        "experiments", aliases=["experiment", "exp"], help="active-learning experiments"
    ).add_subparsers(dest="verb", required=True, metavar="VERB")
    add_create(experiments)

    listing = experiments.add_parser("list", aliases=["ls"], help="every experiment, one line each")
    listing.set_defaults(func=cmd_list)

    get = experiments.add_parser(
        "get", help="one experiment with its rounds and models (every one, without a name)"
    )
    get.add_argument("experiment", nargs="?", default="", help="experiment id or experiments/{id}")
    get.set_defaults(func=cmd_get)

    for action, text in (
        ("start", "start a CREATED experiment"),
        ("pause", "pause after the step in progress"),
        ("resume", "resume a paused experiment, or one that stopped on a fault"),
        ("cancel", "stop an experiment for good (its rounds and models stay)"),
    ):
        sub = experiments.add_parser(action, help=text)
        sub.add_argument("experiment", help="experiment id or experiments/{id}")
        sub.set_defaults(func=cmd_control, action=action)

    delete = experiments.add_parser(
        "delete",
        aliases=["rm"],
        help="delete experiments with their rounds, models and tasks (the id stays taken)",
    )
    delete.add_argument(
        "experiments", nargs="+", metavar="experiment", help="experiment id or experiments/{id}"
    )
    delete.add_argument("--force", action="store_true", help="cancel a RUNNING or PAUSED experiment first")
    delete.set_defaults(func=cmd_delete)

    rounds = experiments.add_parser("rounds", help="one line per round, with its model")
    rounds.add_argument("experiment", help="experiment id or experiments/{id}")
    rounds.add_argument("--json", action="store_true", help="the same as -o json")
    rounds.set_defaults(func=cmd_rounds)

    watching = experiments.add_parser(
        "watch",
        help="progress until the experiment ends: round, stage, epoch, elapsed time and ETA",
        description="On a terminal one status line is redrawn; piped or with --plain, a plain line is "
        "printed per change (at most one per --interval seconds within a stage).",
    )
    watching.add_argument("experiment", help="experiment id or experiments/{id}")
    watching.add_argument(
        "--plain",
        action="store_true",
        default=None,
        help="plain lines without escape codes even on a terminal (the default when piped)",
    )
    watching.add_argument(
        "--interval",
        type=float,
        default=10.0,
        help="plain lines: at most one per this many seconds while the stage stays the same",
    )
    watching.add_argument(
        "--exit-status",
        action="store_true",
        help="exit with 1 when the experiment FAILED or was CANCELLED (for scripts)",
    )
    watching.set_defaults(func=cmd_watch)
