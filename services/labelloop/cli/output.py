"""What the CLI prints: `-o json|yaml|table` for every command that shows a resource.

JSON and YAML carry the API's field names (protobuf JSON mapping) with numbers as numbers: the
protobuf mapping writes 64-bit integers as strings, which `as_data` turns back. `table` is for people:
one aligned row per resource, columns chosen per command.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

import yaml
from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

FORMATS = ("table", "json", "yaml")
_INT64 = {
    FieldDescriptor.TYPE_INT64,
    FieldDescriptor.TYPE_UINT64,
    FieldDescriptor.TYPE_SINT64,
    FieldDescriptor.TYPE_FIXED64,
    FieldDescriptor.TYPE_SFIXED64,
}


def as_data(message: Message) -> dict[str, Any]:
    """The message as the protobuf JSON mapping (proto field names, every field), 64-bit integers as
    ints."""
    data = json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )  # zeros and empty lists too: a script reads labeled_count 0, not a missing key
    _numbers(data, message.DESCRIPTOR)
    return data


def _numbers(data: dict[str, Any], descriptor: Any) -> None:  # a Descriptor (Python or upb)
    for name, value in data.items():
        field = descriptor.fields_by_name.get(name)
        if field is None:
            continue
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            value_field = field.message_type.fields_by_name["value"]
            for key, item in value.items():
                value[key] = _converted(value_field, item)
        elif field.is_repeated:
            data[name] = [_converted(field, item) for item in value]
        else:
            data[name] = _converted(field, value)


def _converted(field: FieldDescriptor, value: Any) -> Any:
    if field.type in _INT64 and isinstance(value, str):
        return int(value)
    message_type = field.message_type
    # Well-known types (Timestamp, Duration) keep their JSON strings.
    if (
        message_type is not None
        and isinstance(value, dict)
        and not message_type.full_name.startswith("google.")
    ):
        _numbers(value, message_type)
    return value


def output_format(args: argparse.Namespace) -> str:
    """-o/--output, or the older --json flag some commands keep; ValueError for an unknown format."""
    chosen = str(getattr(args, "output", "table") or "table").lower()
    if getattr(args, "json", False):
        chosen = "json"
    if chosen not in FORMATS:
        raise ValueError(f"output format {chosen!r} is not one of {', '.join(FORMATS)} (-o json, -o yaml)")
    return chosen


def emit(args: argparse.Namespace, data: Any, table: Callable[[], str]) -> None:
    """Prints data as JSON or YAML, or table() for -o table."""
    chosen = output_format(args)
    if chosen == "json":
        print(json.dumps(data, indent=1))
    elif chosen == "yaml":
        print(yaml.safe_dump(data, sort_keys=False, allow_unicode=True).rstrip())
    else:
        text = table()
        if text:
            print(text)


def columns(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """An aligned table, kubectl style: upper-case header, two spaces between columns."""
    cells = [[str(h).upper() for h in header]] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    )


def _cell(value: Any) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def fields(pairs: Sequence[tuple[str, Any]]) -> str:
    """Name: value lines, for one resource (`get` in table form)."""
    width = max(len(name) for name, _ in pairs) + 1
    return "\n".join(f"{(name + ':').ljust(width)} {_cell(value)}" for name, value in pairs)


def error_line(message: str) -> None:
    """One line on stderr: `error: ...` (newlines in a service's message are folded)."""
    text = " ".join(part.strip() for part in str(message).splitlines() if part.strip())
    print(f"error: {text}", file=sys.stderr)
