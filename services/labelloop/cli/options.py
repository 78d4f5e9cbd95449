"""The parser's shared behaviour: global options anywhere on the line, and one-line usage errors.

Global options (--controller, --store, --token, --ca-cert, -o/--output) are defined on the top-level
parser with their defaults and copied onto every subcommand with no default, so
`labelloop -o json experiments list` and `labelloop experiments list -o json` mean the same. A
subcommand that has its own option of the same spelling (`predict --output FILE`) keeps it.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

from labelloop.cli.output import FORMATS
from labelloop.core.config import Settings


class CliParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line that names the fix (the help to read)."""

    def error(self, message: str) -> NoReturn:
        print(f"error: {message} (see `{self.prog} --help`)", file=sys.stderr)
        sys.exit(2)


def _global_options(defaults: Settings) -> list[tuple[tuple[str, ...], dict]]:
    return [
        (
            ("--controller",),
            {
                "default": defaults.controller_address,
                "metavar": "HOST:PORT",
                "help": "controller address (default LABELLOOP_CONTROLLER_ADDRESS or 127.0.0.1:50055)",
            },
        ),
        (
            ("--store",),
            {
                "default": defaults.store_address,
                "metavar": "HOST:PORT",
                "help": "dataset store address (default LABELLOOP_STORE_ADDRESS or 127.0.0.1:50051)",
            },
        ),
        (
            ("--token",),
            {
                "default": None,
                "metavar": "TOKEN",
                "help": "the bearer token to present (default LABELLOOP_TOKEN; docs/security.md)",
            },
        ),
        (
            ("--ca-cert",),
            {
                "default": None,
                "metavar": "FILE",
                "help": "PEM CA of the services' TLS certificates: speak TLS (default LABELLOOP_TLS_CA)",
            },
        ),
        (
            ("-o", "--output"),
            {
                "default": "table",
                "choices": FORMATS,
                "metavar": "FORMAT",
                "help": f"output format: {', '.join(FORMATS)} (default table; json, yaml: every field)",
            },
        ),
    ]


def apply_credentials(args: argparse.Namespace) -> None:
    """--token and --ca-cert become this process's LABELLOOP_TOKEN and LABELLOOP_TLS_CA, which every
    channel it opens presents (labelloop.core.channels)."""
    if getattr(args, "token", None):
        os.environ["LABELLOOP_TOKEN"] = args.token
    if getattr(args, "ca_cert", None):
        os.environ["LABELLOOP_TLS_CA"] = str(Path(args.ca_cert).absolute())


def add_global_options(parser: argparse.ArgumentParser) -> None:
    """On the top-level parser, with their defaults."""
    for flags, options in _global_options(Settings.from_env()):
        parser.add_argument(*flags, **options)


def spread_global_options(parser: argparse.ArgumentParser) -> None:
    """Copies the global options onto every subcommand (call once the tree is complete). The copies
    have no default, so a value given before the subcommand is kept unless given again after it."""
    for flags, options in _global_options(Settings.from_env()):
        for sub in subparsers(parser):
            if any(flag in sub._option_string_actions for flag in flags):
                continue  # the command's own option of that name wins (e.g. predict --output FILE)
            sub.add_argument(*flags, **{**options, "default": argparse.SUPPRESS})


def subparsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """Every parser below this one, depth first (aliases once)."""
    seen: set[int] = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                if id(sub) in seen:
                    continue
                seen.add(id(sub))
                yield sub
                yield from subparsers(sub)
