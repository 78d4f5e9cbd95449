"""Trainer operations: the record, its persistence at `operations/{id}.json`, filters and paging."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from labelloop.core import layout, paging
from labelloop.core.errors import InvalidArgument, NotFound
from labelloop.core.storage import ObjectStore
from labelloop.trainer.contract import JobState
from labelloop.trainer.epochs import epoch_of
from labelloop.v1 import common_pb2, trainer_pb2

log = logging.getLogger(__name__)

PREFIX = layout.OPERATIONS_PREFIX

_STATES = {
    JobState.PENDING: common_pb2.OPERATION_STATE_PENDING,
    JobState.RUNNING: common_pb2.OPERATION_STATE_RUNNING,
    JobState.SUCCEEDED: common_pb2.OPERATION_STATE_SUCCEEDED,
    JobState.FAILED: common_pb2.OPERATION_STATE_FAILED,
    JobState.CANCELLED: common_pb2.OPERATION_STATE_CANCELLED,
}


@dataclass
class OperationRecord:
    id: str
    kind: str  # a JobKind: "train", "predict", "predict_new" or "embed"
    request_id: str
    state: JobState = JobState.PENDING
    progress: float = 0.0
    message: str = ""
    create_time: float = field(default_factory=time.time)
    update_time: float = field(default_factory=time.time)
    error_code: int = 0  # a google.rpc.Code value
    error_message: str = ""
    result: dict[str, Any] = field(default_factory=dict)  # the job's result.json
    labels: dict[str, str] = field(default_factory=dict)
    spec: dict[str, Any] = field(default_factory=dict)  # the JobSpec, for people and reattaching
    version: int = 0  # bumped on every change; WatchOperation streams on change

    @property
    def name(self) -> str:
        return f"operations/{self.id}"

    @property
    def key(self) -> str:
        return layout.operation_key(self.id)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "state": str(self.state)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OperationRecord:
        known = {f for f in cls.__dataclass_fields__}
        data = {k: v for k, v in data.items() if k in known}
        data["state"] = JobState(data["state"])
        return cls(**data)


def save(store: ObjectStore, record: OperationRecord) -> None:
    store.put_json(record.key, record.to_dict())


def load_all(store: ObjectStore) -> list[OperationRecord]:
    records = []
    for key in store.list(PREFIX):
        if key.count("/") != 1 or not key.endswith(".json"):
            continue
        try:
            records.append(OperationRecord.from_dict(store.get_json(key)))
        except Exception as error:  # one unreadable file must not keep the trainer from starting
            log.warning("skipping unreadable operation %s: %s", key, error)
    return records


def operation_id(name: str) -> str:
    parts = name.split("/")
    if len(parts) != 2 or parts[0] != "operations" or not parts[1]:
        raise InvalidArgument(f"operation name {name!r} does not match 'operations/{{operation}}'")
    return parts[1]


# Filters and paging ---------------------------------------------------------------------------


def parse_filter(text: str) -> dict[str, str]:
    """'experiment=e1 AND round=3' (keys may be written labels.experiment) -> {"experiment": "e1", ...}."""
    terms: dict[str, str] = {}
    if not text.strip():
        return terms
    for term in text.split(" AND "):
        key, sep, value = term.strip().partition("=")
        key, value = key.strip(), value.strip().strip('"')
        key = key.removeprefix("labels.")
        if not sep or not key or "=" in value or " " in key:
            raise InvalidArgument(
                f"filter term {term.strip()!r} is not 'key=value'; join terms with ' AND ', "
                "e.g. 'experiment=e1 AND round=3'"
            )
        terms[key] = value
    return terms


def matches(record: OperationRecord, terms: dict[str, str]) -> bool:
    return all(record.labels.get(k) == v for k, v in terms.items())


def page(items: list[Any], page_size: int, token: str) -> tuple[list[Any], str]:
    return paging.paginate("operations", items, page_size, token)


# Protos -----------------------------------------------------------------------------------------


def _timestamp(seconds: float) -> Timestamp:
    ts = Timestamp()
    ts.FromNanoseconds(int(seconds * 1e9))
    return ts


def _array_ref(store: ObjectStore, result: dict[str, Any], split: str) -> common_pb2.ArrayRef:
    key = result.get(f"{split}_probabilities_key")
    if not key:
        return common_pb2.ArrayRef()
    return common_pb2.ArrayRef(
        uri=store.uri(key),
        shape=[int(result.get(f"n_{split}", 0)), len(result.get("classes", []))],
        dtype="float32",
        example_ids_uri=store.uri(result[f"{split}_example_ids_key"]),
    )


def _embeddings_ref(store: ObjectStore, result: dict[str, Any]) -> common_pb2.ArrayRef:
    key = result.get("pool_embeddings_key")
    if not key:
        return common_pb2.ArrayRef()
    return common_pb2.ArrayRef(
        uri=store.uri(key),
        shape=[int(result.get("n_pool", 0)), int(result.get("embedding_dims", 0))],
        dtype="float32",
        example_ids_uri=store.uri(result["pool_example_ids_key"]),
    )


def to_proto(record: OperationRecord, store: ObjectStore) -> trainer_pb2.Operation:
    # The job reports its epoch in the progress message (epochs.py); while it runs, it is a field too.
    epoch, max_epochs = epoch_of(record.message) if not record.state.done else (0, 0)
    op = trainer_pb2.Operation(
        name=record.name,
        state=_STATES[record.state],
        progress=record.progress,
        progress_message=record.message,
        create_time=_timestamp(record.create_time),
        update_time=_timestamp(record.update_time),
        labels=record.labels,
        epoch=epoch,
        max_epochs=max_epochs,
    )
    if record.state == JobState.FAILED or record.error_message:
        op.error.CopyFrom(common_pb2.OperationError(code=record.error_code, message=record.error_message))
    if record.state == JobState.SUCCEEDED and record.result:
        r = record.result
        op.result.CopyFrom(
            trainer_pb2.RunResult(
                model_uri=store.uri(r["model_key"].rstrip("/")) + "/"
                if r.get("model_key")
                else "",  # a folder
                pool_probabilities=_array_ref(store, r, "pool"),
                test_probabilities=_array_ref(store, r, "test"),
                classes=r.get("classes", []),
                fit_seconds=float(r.get("fit_seconds") or 0.0),
                predict_seconds=float(r.get("predict_seconds") or 0.0),
                test_accuracy=float(r.get("test_accuracy") or 0.0),
                pool_embeddings=_embeddings_ref(store, r),
                embed_seconds=float(r.get("embed_seconds") or 0.0),
                predictions_uri=store.uri(r["predictions_key"]) if r.get("predictions_key") else "",
                predicted_count=int(r.get("n_predicted") or 0),
            )
        )
    return op


def not_found(name: str) -> NotFound:
    return NotFound(f"operation {name!r} does not exist; ListOperations shows the known ones")
