"""`labelloop tokens create|list|delete`: the callers' tokens, in the tokens file the services read.

The file is LABELLOOP_AUTH_TOKENS_FILE's (core/auth.py describes it), else the one `labelloop up
--secure` made by its data, or --file. It holds only hashes: `create` prints the new token once,
alone on stdout (`TOKEN=$(labelloop tokens create ...)`), and nothing can show it again. Each change
writes a new file beside the old and renames it over, under a lock, so the services (which reload
the file when it changes) never read half a file and two team leads never lose each other's tokens.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import re
import stat
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from labelloop.cli.output import columns, emit, fields, output_format
from labelloop.cli.secure import StateFiles, default_state_dir
from labelloop.core.auth import ANNOTATOR, ROLES, hash_token, new_token, parse_tokens
from labelloop.core.config import Settings

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,62}")
MAX_ANNOTATOR_CHARS = 128
HEADER = "# LabelLoop tokens: SHA-256 hashes only (docs/security.md); `labelloop tokens` edits this file.\n"


def tokens_path(args: argparse.Namespace) -> Path:
    """--file, else LABELLOOP_AUTH_TOKENS_FILE, else the tokens of `labelloop up --secure`'s state."""
    if args.file:
        return Path(args.file).absolute()
    settings = Settings.from_env()
    if settings.security.tokens_file is not None:
        return settings.security.tokens_file
    return StateFiles(default_state_dir(settings.storage.root)).tokens


def _load(path: Path) -> dict[str, Any]:
    """The file's YAML (checked as the services check it); an empty one when it does not exist yet."""
    if not path.exists():
        if not path.parent.is_dir():
            raise ValueError(
                f"no tokens file {path} (its folder does not exist): run `labelloop up --secure` first, "
                "or give --file PATH or LABELLOOP_AUTH_TOKENS_FILE"
            )
        return {"tokens": []}
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ValueError(f"{path} is not valid YAML ({str(error).splitlines()[0]}): fix it first") from None
    parse_tokens(data, str(path))  # InvalidArgument naming the bad entry: never build on a broken file
    return data


def _entries(data: dict[str, Any]) -> list[dict[str, Any]]:
    return list(data["tokens"])


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock beside the file, held while reading, changing and replacing it."""
    lock_path = path.with_name(f".{path.name}.lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _replace(path: Path, data: dict[str, Any]) -> None:
    """Writes `data` to a temporary file in the same folder and renames it over `path` (atomic: a
    reader sees the old file or the new one, whole). Keeps the old file's mode, else 0600."""
    parse_tokens(data, str(path))  # what the services would refuse is never written
    mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else 0o600
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as out:
            out.write(HEADER + yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
            out.flush()
            os.fchmod(out.fileno(), mode)
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)  # the rename itself survives a crash
    finally:
        os.close(folder)


def _check_new(args: argparse.Namespace, entries: list[dict[str, Any]], path: Path) -> None:
    if not NAME_PATTERN.fullmatch(args.name):
        raise ValueError(
            f"token name {args.name[:70]!r}: use 1-63 letters, digits, '.', '_', '@' or '-', "
            "starting with a letter or digit"
        )
    if any(str(entry.get("name", "")) == args.name for entry in entries):
        raise ValueError(
            f"a token named {args.name!r} exists in {path}: choose another name, or "
            f"`labelloop tokens delete {args.name}` first"
        )
    if args.role == ANNOTATOR:
        if not args.annotator:
            raise ValueError("--role annotator needs --annotator ID: the annotator id the token labels as")
        if len(args.annotator) > MAX_ANNOTATOR_CHARS or args.annotator != args.annotator.strip():
            raise ValueError(
                f"--annotator: give an id of at most {MAX_ANNOTATOR_CHARS} characters, "
                "without leading or trailing spaces"
            )
    elif args.annotator:
        raise ValueError(f"--annotator is for --role annotator only (this token's role is {args.role})")


def cmd_create(args: argparse.Namespace) -> int:
    path = tokens_path(args)
    token = new_token()
    entry: dict[str, Any] = {"name": args.name, "role": args.role}
    if args.annotator:
        entry["annotator"] = args.annotator
    entry["sha256"] = hash_token(token)
    with _locked(path) if path.parent.is_dir() else contextlib.nullcontext():
        data = _load(path)
        entries = _entries(data)
        _check_new(args, entries, path)
        _replace(path, {**data, "tokens": [*entries, entry]})
    if output_format(args) == "table":
        print(token)  # alone on its line: TOKEN=$(labelloop tokens create ...)
        print(
            f"token {args.name!r} ({args.role}) added to {path}; it is shown only this once",
            file=sys.stderr,
        )
    else:
        emit(args, {**_shown(entry), "token": token, "file": str(path)}, lambda: "")
    return 0


def _shown(entry: dict[str, Any]) -> dict[str, str]:
    return {
        "name": str(entry.get("name", "")),
        "role": str(entry.get("role", "")),
        "annotator": str(entry.get("annotator", "") or ""),
        "sha256": str(entry.get("sha256", "")).lower(),
    }


def cmd_list(args: argparse.Namespace) -> int:
    path = tokens_path(args)
    shown = [_shown(entry) for entry in _entries(_load(path))]
    if args.name:
        found = [entry for entry in shown if entry["name"] == args.name]
        if not found:
            raise LookupError(f"no token named {args.name[:70]!r} in {path} (`labelloop tokens list`)")
        one = found[0]
        emit(args, one, lambda: fields([*one.items(), ("file", str(path))]))
        return 0
    rows = [[e["name"], e["role"], e["annotator"], e["sha256"][:12]] for e in shown]
    emit(args, shown, lambda: columns(["name", "role", "annotator", "sha256"], rows))
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    path = tokens_path(args)
    with _locked(path) if path.parent.is_dir() else contextlib.nullcontext():
        data = _load(path)
        entries = _entries(data)
        names = {str(entry.get("name", "")) for entry in entries}
        if missing := [name for name in args.names if name not in names]:
            shown = ", ".join(repr(name[:70]) for name in missing[:3])
            raise LookupError(f"no token named {shown} in {path}: nothing deleted (`labelloop tokens list`)")
        kept = [entry for entry in entries if str(entry.get("name", "")) not in set(args.names)]
        _replace(path, {**data, "tokens": kept})
    for name in args.names:
        print(f"token {name!r} deleted")
    return 0


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Adds `tokens` and its verbs to the `labelloop` parser."""
    tokens = commands.add_parser(
        "tokens", aliases=["token"], help="callers' tokens in the services' tokens file (no service call)"
    ).add_subparsers(dest="verb", required=True, metavar="VERB")
    file_help = (
        "the tokens file (default LABELLOOP_AUTH_TOKENS_FILE, else labelloop-secure/tokens.yaml "
        "beside the data, as `labelloop up --secure` makes it)"
    )

    create = tokens.add_parser(
        "create",
        help="add a token and print it once (alone on stdout)",
        description="Adds a token to the tokens file and prints it once, alone on stdout: "
        "TOKEN=$(labelloop tokens create bob --role annotator --annotator bob). The file keeps only "
        "its hash; running services accept it at once.",
    )
    create.add_argument("name", help="the token's name, shown in logs and refusals (e.g. labeler-bob)")
    create.add_argument("--role", required=True, choices=ROLES, help="what the token may call")
    create.add_argument(
        "--annotator", default="", metavar="ID", help="role annotator: the annotator id it labels as"
    )
    create.add_argument("--file", metavar="PATH", help=file_help)
    create.set_defaults(func=cmd_create)

    listing = tokens.add_parser("list", aliases=["get"], help="the tokens' names, roles and hash prefixes")
    listing.add_argument("name", nargs="?", default="", help="show one token (default: list them)")
    listing.add_argument("--file", metavar="PATH", help=file_help)
    listing.set_defaults(func=cmd_list)

    delete = tokens.add_parser("delete", help="revoke tokens: running services refuse them at once")
    delete.add_argument("names", nargs="+", metavar="NAME", help="the tokens' names")
    delete.add_argument("--file", metavar="PATH", help=file_help)
    delete.set_defaults(func=cmd_delete)
