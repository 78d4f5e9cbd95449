"""kubectl-style spellings: `labelloop get experiments [NAME]`, `labelloop delete dataset NAME`.

They run the same code as the noun-first commands (`labelloop experiments get NAME`)."""

from __future__ import annotations

import argparse

from labelloop.cli import datasets, experiments

NOUNS = {
    "datasets": "datasets",
    "dataset": "datasets",
    "experiments": "experiments",
    "experiment": "experiments",
    "exp": "experiments",
}


def cmd_get(args: argparse.Namespace) -> int:
    if NOUNS[args.noun] == "datasets":
        args.dataset = args.name
        return datasets.cmd_get(args)
    args.experiment = args.name
    return experiments.cmd_get(args)


def cmd_delete(args: argparse.Namespace) -> int:
    if NOUNS[args.noun] == "datasets":
        args.datasets = args.names
        return datasets.cmd_delete(args)
    args.experiments = args.names
    return experiments.cmd_delete(args)


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Adds `get` and `delete` (resource type first) to the `labelloop` parser."""
    nouns = sorted(NOUNS)
    get = commands.add_parser("get", help="list a resource type, or show one: get experiments [NAME]")
    get.add_argument("noun", choices=nouns, metavar="TYPE", help="datasets or experiments")
    get.add_argument("name", nargs="?", default="", help="one resource's id or name (default: list them)")
    get.set_defaults(func=cmd_get)

    delete = commands.add_parser("delete", help="delete resources: delete experiments NAME... [--force]")
    delete.add_argument("noun", choices=nouns, metavar="TYPE", help="datasets or experiments")
    delete.add_argument("names", nargs="+", metavar="name", help="the resources' ids or names")
    delete.add_argument(
        "--force",
        action="store_true",
        help="experiments: cancel a RUNNING or PAUSED one first; datasets: delete even while used",
    )
    delete.set_defaults(func=cmd_delete)
