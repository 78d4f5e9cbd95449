"""`labelloop tasks list|lease|submit|skip`: the labeling queue from a shell, one verb per RPC.

    labelloop tasks lease digits-team --annotator alice --max-tasks 5
    labelloop tasks submit experiments/digits-team/rounds/1/tasks/d0042 --annotator alice \\
        --lease-id 3f2a... --label 7
    labelloop tasks list digits-team --state open -o json

Every verb prints the tasks (-o table, json or yaml: the global output option).
"""

from __future__ import annotations

import argparse
import urllib.parse
from pathlib import Path
from typing import Any

from labelloop.cli.output import as_data, columns, emit, output_format
from labelloop.client import LabelLoopClient
from labelloop.labeling_client import task_state_value
from labelloop.v1 import labeling_pb2


def _client(args: argparse.Namespace) -> LabelLoopClient:
    return LabelLoopClient(args.controller, args.store)


def _data(task: labeling_pb2.Task) -> dict[str, Any]:
    data = as_data(task)
    data.pop("image_bytes", None)  # written to files by --save-images, never printed
    return data


def _row(task: labeling_pb2.Task) -> list[object]:
    state = labeling_pb2.TaskState.Name(task.state).removeprefix("TASK_STATE_").lower()
    prediction = task.prediction
    predicted = (
        (prediction.label, prediction.confidence, prediction.score) if prediction.model else ("", "", "")
    )
    return [task.name, state, f"{task.labels_received}/{task.labels_wanted}", *predicted, task.lease_id]


def _print(args: argparse.Namespace, tasks: list[labeling_pb2.Task]) -> None:
    header = ["name", "state", "labels", "predicted", "confidence", "score", "lease"]
    emit(args, [_data(t) for t in tasks], lambda: columns(header, [_row(t) for t in tasks]) if tasks else "")


def cmd_list(args: argparse.Namespace) -> int:
    task_state_value(args.state)  # a bad state is a ValueError before any call
    with _client(args) as client:
        _print(args, client.list_tasks(args.experiment, round=args.round, state=args.state))
    return 0


def cmd_lease(args: argparse.Namespace) -> int:
    with _client(args) as client:
        leased = client.lease_tasks(
            args.experiment, args.annotator, args.max_tasks, include_image_bytes=bool(args.save_images)
        )
    if args.save_images:
        folder = Path(args.save_images)
        folder.mkdir(parents=True, exist_ok=True)
        for task in leased.tasks:
            if task.image_bytes:
                suffix = Path(urllib.parse.urlparse(task.image_url).path).suffix  # .png, .jpg
                (folder / f"{task.example_id}{suffix}").write_bytes(task.image_bytes)
    _print(args, list(leased.tasks))
    if output_format(args) == "table":
        print(f"{len(leased.tasks)} leased; the experiment waits for {leased.labels_awaited} labels")
    return 0


def cmd_submit(args: argparse.Namespace) -> int:
    with _client(args) as client:
        task = client.submit_label(
            args.task,
            args.label,
            annotator=args.annotator,
            lease_id=args.lease_id,
            # The same command run again (a retry) is the same request: stored once.
            request_id=args.request_id or f"cli-{args.lease_id}-{args.label}".replace("/", "_")[:128],
        )
    _print(args, [task])
    return 0


def cmd_skip(args: argparse.Namespace) -> int:
    with _client(args) as client:
        task = client.skip_task(
            args.task, annotator=args.annotator, lease_id=args.lease_id, reason=args.reason
        )
    _print(args, [task])
    return 0


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Adds `tasks` and its verbs to the `labelloop` parser."""
    tasks = commands.add_parser(
        "tasks", help="the labeling queue: lease tasks, submit labels, skip, list"
    ).add_subparsers(required=True)

    listing = tasks.add_parser("list", help="an experiment's tasks, newest round first (no labels shown)")
    listing.add_argument("experiment", help="experiment id or experiments/{id}")
    listing.add_argument(
        "--round", type=int, default=-1, help="only this round's tasks (default: every round)"
    )
    listing.add_argument("--state", default="", help="only tasks in this state: open, leased, done or closed")
    listing.set_defaults(func=cmd_list)

    lease = tasks.add_parser("lease", help="lease tasks to label, most useful first")
    lease.add_argument("experiment", help="experiment id or experiments/{id}")
    lease.add_argument("--annotator", required=True, help="who labels: a stable id per person or program")
    lease.add_argument("--max-tasks", type=int, default=1, help="at most this many tasks (1 to 100)")
    lease.add_argument("--save-images", default="", help="write each task's image into this folder")
    lease.set_defaults(func=cmd_lease)

    for verb, text in (("submit", "submit a label for a leased task"), ("skip", "give a leased task back")):
        sub = tasks.add_parser(verb, help=text)
        sub.add_argument("task", help="the task's name, experiments/{e}/rounds/{n}/tasks/{example}")
        sub.add_argument("--annotator", required=True, help="the annotator id the task was leased under")
        sub.add_argument("--lease-id", required=True, help="the lease_id `tasks lease` printed")
        if verb == "submit":
            sub.add_argument("--label", required=True, help="one of the dataset's classes")
            sub.add_argument(
                "--request-id",
                default="",
                help="idempotency key: a retry with the same id is stored once (default: lease + label)",
            )
            sub.set_defaults(func=cmd_submit)
        else:
            sub.add_argument("--reason", default="", help="why, for the record ('unreadable image')")
            sub.set_defaults(func=cmd_skip)
