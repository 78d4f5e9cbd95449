"""The append-only annotation log: one immutable JSON object per append request.

Keys are `datasets/{d}/annotations/{set}/{seq:08d}-{request_id}.json`: the sequence number
keeps append order under lexical listing, the request id makes retries detectable.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from labelloop.core.errors import InvalidArgument
from labelloop.core.layout import annotations_prefix
from labelloop.core.names import check_id
from labelloop.core.storage import ObjectStore
from labelloop.store.models import DEFAULT_ANNOTATION_SET, Annotation, from_iso, to_iso

_REQUEST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_ENTRY = re.compile(r"^(\d{8})-(.+)\.json$")


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
            f"request_id {request_id!r} is not valid: use 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return request_id


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


def read_entry(store: ObjectStore, entry: LogEntry) -> list[Annotation]:
    body = store.get_json(entry.key)
    time = from_iso(body["create_time"])
    return [Annotation(a["example_id"], a["annotator"], a["label"], time) for a in body["annotations"]]


def read_log(store: ObjectStore, dataset: str, annotation_set: str) -> list[Annotation]:
    return [a for entry in entries(store, dataset, annotation_set) for a in read_entry(store, entry)]


def append(
    store: ObjectStore,
    dataset: str,
    annotation_set: str,
    request_id: str,
    annotations: Sequence[Annotation],
    time: datetime,
) -> bool:
    """Stores one request unless its request_id is already in the log; returns whether it stored.

    The caller holds the dataset's lock, so the listing cannot go stale between the check and
    the write within this process.
    """
    existing = entries(store, dataset, annotation_set)
    if any(e.request_id == request_id for e in existing):
        return False
    body = {
        "request_id": request_id,
        "create_time": to_iso(time),
        "annotations": [
            {"example_id": a.example_id, "annotator": a.annotator, "label": a.label} for a in annotations
        ],
    }
    seq = existing[-1].seq + 1 if existing else 1
    key = f"{annotations_prefix(dataset, annotation_set)}{seq:08d}-{request_id}.json"
    # Exclusive: never overwrites, e.g. the same retry racing in from a second store replica.
    return store.create_exclusive(key, json.dumps(body, indent=1, sort_keys=True).encode())
