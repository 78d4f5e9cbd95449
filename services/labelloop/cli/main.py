"""`labelloop`: run the services locally, manage datasets and experiments, label, predict, run the demo.

Global options (--controller, --store, -o/--output) go anywhere on the line. Every error is one line,
`error: ...`, that says what to change; the exit status is 1 for an error a service reported, 2 for
a bad command line or option value.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

import grpc

from labelloop.cli import datasets as dataset_commands
from labelloop.cli import experiments as experiment_commands
from labelloop.cli import export as export_commands
from labelloop.cli import tasks as task_commands
from labelloop.cli import tokens as token_commands
from labelloop.cli import up as up_commands
from labelloop.cli import verbs as verb_commands
from labelloop.cli.options import CliParser, add_global_options, apply_credentials, spread_global_options
from labelloop.cli.output import error_line
from labelloop.cli.predict import add_commands as add_predict_commands
from labelloop.core.errors import LabelLoopError

# Set to see the Python traceback of an unexpected error instead of its one line.
TRACEBACK_ENV = "LABELLOOP_TRACEBACK"


def cmd_demo(args: argparse.Namespace) -> int:
    from labelloop.cli.demo import run_demo

    return run_demo(args)


def build_parser() -> argparse.ArgumentParser:
    parser = CliParser(prog="labelloop", description=__doc__)
    add_global_options(parser)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up_commands.add_commands(commands)  # `labelloop up`
    dataset_commands.add_commands(commands)  # `labelloop datasets create|list|get|delete`
    experiment_commands.add_commands(commands)  # `labelloop experiments create|list|get|delete|...|watch`
    verb_commands.add_commands(commands)  # `labelloop get|delete TYPE [NAME]`, kubectl style
    task_commands.add_commands(commands)  # `labelloop tasks list|lease|submit|skip`
    export_commands.add_commands(commands)  # `labelloop export`, `labelloop report`
    token_commands.add_commands(commands)  # `labelloop tokens create|list|delete` (no service call)

    from labelloop.cli.demo import add_arguments as add_demo_arguments

    demo = commands.add_parser(
        "demo", help="the default preset vs random selection on scikit-learn digits, all services local"
    )
    add_demo_arguments(demo)
    demo.set_defaults(func=cmd_demo)
    add_predict_commands(commands)  # `labelloop predict` and `labelloop models pull` (cli/predict.py)
    spread_global_options(parser)  # last: every subcommand above accepts them too
    return parser


def rpc_error_text(error: grpc.RpcError, args: argparse.Namespace) -> str:
    """One line for a gRPC error: the service's message (it says what to fix) and its code, or for a
    service that cannot be reached, how to reach it."""
    code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    details = (error.details() if hasattr(error, "details") else "") or ""
    unreachable = code == grpc.StatusCode.UNAVAILABLE and (
        not details or "connect" in details.lower() or "dns" in details.lower()
    )
    if unreachable and any(word in details.lower() for word in ("ssl", "handshake", "certificate", "tls")):
        return (
            f"no TLS connection to the LabelLoop services ({details}): give the CA that signed their "
            "certificates with --ca-cert (LABELLOOP_TLS_CA), and under mTLS a client certificate"
        )
    if unreachable and "socket closed" in details.lower() and not os.environ.get("LABELLOOP_TLS_CA"):
        # What a plaintext call to a TLS port ends with: the server drops the connection.
        return (
            f"the LabelLoop services closed the connection (controller {args.controller}, store "
            f"{args.store}): if they speak TLS (`labelloop up --secure`), give their CA with --ca-cert"
        )
    if unreachable:
        return (
            f"cannot reach the LabelLoop services (controller {args.controller}, store {args.store}): "
            "start them with `labelloop up`, or give their addresses with --controller and --store"
        )
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return f"the service did not answer in time ({details or 'deadline exceeded'}): try again"
    return f"{details} ({code.name})"


# Commands that print with their own --json flag rather than cli/output.py: -o json sets it.
_OWN_JSON_FLAG = ("labelloop.cli.export",)  # `labelloop report --json`


def _own_json_flag(args: argparse.Namespace) -> None:
    if getattr(args.func, "__module__", "") not in _OWN_JSON_FLAG or not hasattr(args, "json"):
        return
    if args.output == "json":
        args.json = True
    elif args.output == "yaml":
        raise ValueError(f"-o yaml: `labelloop {args.command}` prints a table or JSON; use -o json")


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as done:  # --help, or a usage error already printed as one line
        return done.code if isinstance(done.code, int) else 2
    try:
        _own_json_flag(args)
        apply_credentials(args)
        return int(args.func(args) or 0)
    except grpc.RpcError as error:
        error_line(rpc_error_text(error, args))
        return 1
    except (ValueError, LookupError, LabelLoopError, OSError, TimeoutError) as error:
        # A bad option value, a missing file, ...: the message names the valid values or the fix.
        error_line(str(error))
        return 2
    except SystemExit as done:
        if isinstance(done.code, str):
            error_line(done.code)
            return 1
        return done.code or 0
    except KeyboardInterrupt:
        return 130
    except Exception as error:
        if os.environ.get(TRACEBACK_ENV):
            raise
        error_line(
            f"unexpected {type(error).__name__}: {error} (a bug; set {TRACEBACK_ENV}=1 for the traceback "
            "and report it)"
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
