"""The append-only annotation log: one immutable JSON object per append request.

Keys are `datasets/{d}/annotations/{set}/{seq:08d}-{request_id}.json`: the sequence number
keeps append order under lexical listing, the request id makes retries detectable. An object holds
one request, or several that arrived together (appends.py writes them in one go: the key names the
first, the body lists them all).

The rules an append must meet live here too: they bound what a request can make a later step
store or compute (a snapshot's annotator matrix grows with the annotators of its set).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from labelloop.core.errors import InvalidArgument, NotFound
from labelloop.core.layout import annotations_prefix
from labelloop.core.names import check_id, shown
from labelloop.core.storage import ObjectStore
from labelloop.store.models import DEFAULT_ANNOTATION_SET, POOL, TEST, Annotation, from_iso, to_iso

_REQUEST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_ENTRY = re.compile(r"^(\d{8})-(.+)\.json$")

MAX_LISTED = 10  # offending values an error message names
MAX_ANNOTATIONS_PER_REQUEST = 10_000
MAX_ANNOTATOR_LENGTH = 128
# Columns of a snapshot's labels_multiannotator matrix: it is (labeled examples x annotators).
MAX_ANNOTATORS_PER_SET = 1_000


def check_set(annotation_set: str) -> str:
    return check_id(annotation_set or DEFAULT_ANNOTATION_SET, "annotation_set")


def check_request_id(request_id: str) -> str:
    if not request_id:
        raise InvalidArgument(
            "request_id is empty: choose one per append request (e.g. '{experiment}-r{round}') "
            "so that a retry is stored once"
        )
    if not _REQUEST_ID.match(request_id):
        raise InvalidArgument(
            f"request_id {shown(request_id)} is not valid: use 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return request_id


def _listed(values: Iterable[object], count: int) -> str:
    """At most MAX_LISTED values, each cut short, and how many more there were."""
    items = [shown(v) for v in list(values)[:MAX_LISTED]]
    more = f" and {count - len(items)} more" if count > len(items) else ""
    return f"[{', '.join(items)}]{more}"


def check_request(
    annotations: Sequence[Annotation], classes: Sequence[str], splits: dict[str, str], dataset: str
) -> None:
    """Everything one request can be checked for on its own; `splits` maps example id to split."""
    if not annotations:
        raise InvalidArgument("annotations is empty: send at least one annotation")
    if len(annotations) > MAX_ANNOTATIONS_PER_REQUEST:
        raise InvalidArgument(
            f"{len(annotations)} annotations in one request: send at most "
            f"{MAX_ANNOTATIONS_PER_REQUEST} per request (split it, with one request_id each)"
        )
    if blank := [i for i, a in enumerate(annotations) if not a.annotator.strip()]:
        raise InvalidArgument(
            f"annotations {blank[:MAX_LISTED]} have an empty annotator: name who gave each label"
        )
    if long := [i for i, a in enumerate(annotations) if len(a.annotator.strip()) > MAX_ANNOTATOR_LENGTH]:
        raise InvalidArgument(
            f"annotations {long[:MAX_LISTED]} have an annotator longer than {MAX_ANNOTATOR_LENGTH} "
            "characters: use a shorter annotator id"
        )
    known_classes = set(classes)
    if unknown := sorted({a.label for a in annotations if a.label not in known_classes}):
        choices = list(classes) if len(classes) <= 50 else f"{len(classes)} classes, e.g. {classes[:10]}"
        raise InvalidArgument(
            f"labels {_listed(unknown, len(unknown))} are not classes of {dataset}; use one of {choices}"
        )
    if missing := sorted({a.example_id for a in annotations} - splits.keys()):
        raise NotFound(f"{len(missing)} example id(s) not in {dataset}: {_listed(missing, len(missing))}")
    if test := sorted({a.example_id for a in annotations if splits[a.example_id] == TEST}):
        raise InvalidArgument(
            f"{len(test)} example id(s) are in the test split of {dataset}: {_listed(test, len(test))}; "
            f"label only {POOL} examples (test labels would be trained on and still counted in test "
            "accuracy)"
        )
    pairs = Counter((a.example_id, a.annotator.strip()) for a in annotations)
    if repeated := sorted(pair for pair, n in pairs.items() if n > 1):
        listed = ", ".join(f"({shown(e)}, {shown(a)})" for e, a in repeated[:MAX_LISTED])
        more = f" and {len(repeated) - MAX_LISTED} more" if len(repeated) > MAX_LISTED else ""
        raise InvalidArgument(
            f"{len(repeated)} (example, annotator) pair(s) appear more than once in the request: "
            f"{listed}{more}; send each annotator's label for an example once"
        )


@dataclass(frozen=True)
class LogEntry:
    seq: int
    request_id: str
    key: str


def entries(store: ObjectStore, dataset: str, annotation_set: str) -> list[LogEntry]:
    """The log's requests in append order."""
    prefix = annotations_prefix(dataset, annotation_set)
    found = []
    for key in store.list(prefix):
        match = _ENTRY.match(key[len(prefix) :])
        if match:  # anything else under the prefix is not ours: ignore it
            found.append(LogEntry(int(match[1]), match[2], key))
    return sorted(found, key=lambda e: e.seq)


def read_requests(store: ObjectStore, entry: LogEntry) -> list[tuple[str, list[Annotation]]]:
    """The requests of one object, in order: one, or several written together (a group commit)."""
    body = store.get_json(entry.key)
    time = from_iso(body["create_time"])

    def annotations(items: list[dict[str, str]]) -> list[Annotation]:
        return [Annotation(a["example_id"], a["annotator"], a["label"], time) for a in items]

    if "requests" in body:
        return [(r["request_id"], annotations(r["annotations"])) for r in body["requests"]]
    return [(body["request_id"], annotations(body["annotations"]))]


def read_entry(store: ObjectStore, entry: LogEntry) -> list[Annotation]:
    return [a for _, annotations in read_requests(store, entry) for a in annotations]


def differences(stored: Sequence[Annotation], sent: Sequence[Annotation]) -> str:
    """How a request differs from the one stored under its request id ("" when it does not)."""
    old = [(a.example_id, a.annotator, a.label) for a in stored]
    new = [(a.example_id, a.annotator, a.label) for a in sent]
    if old == new:
        return ""
    parts = []
    if len(old) != len(new):
        parts.append(f"the stored request has {len(old)} annotations, this one {len(new)}")
    index = next((i for i, (a, b) in enumerate(zip(old, new, strict=False)) if a != b), None)
    if index is not None:
        fields = ("example_id", "annotator", "label")
        changed = [
            f"{f} {shown(a)} stored, {shown(b)} sent"
            for f, a, b in zip(fields, old[index], new[index], strict=True)
            if a != b
        ]
        parts.append(f"annotation {index} differs: {'; '.join(changed)}")
    return "; ".join(parts)


def entry_body(requests: Sequence[tuple[str, Sequence[Annotation]]], time: datetime) -> bytes:
    """The stored object of append requests written together: one request keeps the plain form
    (request_id, create_time, annotations); several are listed under "requests", in order."""

    def items(annotations: Sequence[Annotation]) -> list[dict[str, str]]:
        return [{"example_id": a.example_id, "annotator": a.annotator, "label": a.label} for a in annotations]

    body: dict[str, object] = {"create_time": to_iso(time)}
    if len(requests) == 1:
        body |= {"request_id": requests[0][0], "annotations": items(requests[0][1])}
    else:
        body["requests"] = [{"request_id": r, "annotations": items(a)} for r, a in requests]
    return json.dumps(body, indent=1, sort_keys=True).encode()
