"""Resource names (AIP-122), e.g. "datasets/digits" or "experiments/e1/rounds/3"."""

from __future__ import annotations

import re
import uuid

from labelloop.core.errors import InvalidArgument

_ID = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
# The longest resource name any collection can have (ids are at most 63 characters each).
MAX_NAME_LENGTH = 512
# How much of a caller's value an error message quotes: never unbounded input.
SHOWN_CHARACTERS = 64


def shown(value: object, limit: int = SHOWN_CHARACTERS) -> str:
    """repr(value) for an error message, cut to `limit` characters and saying how long it was."""
    text = str(value)
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text)} characters)"


def check_id(value: str, what: str) -> str:
    """Validates a caller-chosen resource id."""
    if not _ID.match(value):
        raise InvalidArgument(
            f"{what} {shown(value)} is not a valid id: use 1-63 lowercase letters, digits or hyphens, "
            "starting with a letter"
        )
    return value


def new_id(prefix: str = "") -> str:
    """A fresh id, e.g. for an experiment created without one."""
    return f"{prefix}{uuid.uuid4().hex[:12]}"


def parse(name: str, *collections: str) -> list[str]:
    """Splits "datasets/d/snapshots/s" into ["d", "s"] given ("datasets", "snapshots")."""
    pattern = "/".join(f"{c}/{{{c[:-1]}}}" for c in collections)
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidArgument(
            f"resource name {shown(name)} is longer than {MAX_NAME_LENGTH} characters: "
            f"use {pattern!r} with ids of at most 63 characters"
        )
    parts = name.split("/") if name else []
    if len(parts) != 2 * len(collections) or any(
        parts[2 * i] != c or not parts[2 * i + 1] for i, c in enumerate(collections)
    ):
        raise InvalidArgument(f"resource name {shown(name)} does not match {pattern!r}")
    return [parts[2 * i + 1] for i in range(len(collections))]
