"""kubectl-style spellings: `labelloop get experiments [NAME]`, `labelloop delete dataset NAME`,
`labelloop get tokens`.

They run the same code as the noun-first commands (`labelloop experiments get NAME`)."""

from __future__ import annotations

import argparse

from labelloop.cli import datasets, experiments, tokens

NOUNS = {
    "datasets": "datasets",
    "dataset": "datasets",
    "experiments": "experiments",
    "experiment": "experiments",
    "exp": "experiments",
    "tokens": "tokens",
    "token": "tokens",
}


def _tokens(args: argparse.Namespace) -> bool:
    """Whether the command is about tokens; ValueError for --file on another type."""
    if NOUNS[args.noun] == "tokens":
        return True
    if args.file:
        raise ValueError(f"--file is for tokens only, not {args.noun}")
    return False


def cmd_get(args: argparse.Namespace) -> int:
    if _tokens(args):
        return tokens.cmd_list(args)
    if NOUNS[args.noun] == "datasets":
        args.dataset = args.name
        return datasets.cmd_get(args)
    args.experiment = args.name
    return experiments.cmd_get(args)


def cmd_delete(args: argparse.Namespace) -> int:
    if _tokens(args):
        return tokens.cmd_delete(args)
    if NOUNS[args.noun] == "datasets":
        args.datasets = args.names
        return datasets.cmd_delete(args)
    args.experiments = args.names
    return experiments.cmd_delete(args)


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Adds `get` and `delete` (resource type first) to the `labelloop` parser."""
    nouns = sorted(NOUNS)
    get = commands.add_parser("get", help="list a resource type, or show one: get experiments [NAME]")
    get.add_argument("noun", choices=nouns, metavar="TYPE", help="datasets, experiments or tokens")
    get.add_argument("name", nargs="?", default="", help="one resource's id or name (default: list them)")
    get.add_argument(
        "--file", metavar="PATH", help="tokens: the tokens file (see `labelloop tokens list -h`)"
    )
    get.set_defaults(func=cmd_get)

    delete = commands.add_parser("delete", help="delete resources: delete experiments NAME... [--force]")
    delete.add_argument("noun", choices=nouns, metavar="TYPE", help="datasets, experiments or tokens")
    delete.add_argument("names", nargs="+", metavar="name", help="the resources' ids or names")
    delete.add_argument(
        "--force",
        action="store_true",
        help="experiments: cancel a RUNNING or PAUSED one first; datasets: delete even while used",
    )
    delete.add_argument(
        "--file", metavar="PATH", help="tokens: the tokens file (see `labelloop tokens delete -h`)"
    )
    delete.set_defaults(func=cmd_delete)
