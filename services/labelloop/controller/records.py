"""The controller's durable state: one experiment.json per experiment and one JSON file per round.

Everything the round state machine needs to resume after a crash lives in these two records, and
both are rewritten (atomically on the local backend, one PUT on S3) after every step.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import json_format, timestamp_pb2

from labelloop.core.api import enum_name
from labelloop.core.layout import EXPERIMENTS_PREFIX, experiment_key, round_key
from labelloop.core.storage import ObjectStore
from labelloop.v1 import common_pb2, experiments_pb2


def now() -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.GetCurrentTime()
    return stamp


def stage_key(stage: int) -> str:
    """ "ROUND_STAGE_TRAIN" -> "train": the key used in Round.stage_seconds and metrics."""
    return enum_name(experiments_pb2.RoundStage, stage)


def ref_to_dict(ref: common_pb2.ArrayRef) -> dict[str, Any]:
    return json_format.MessageToDict(ref, preserving_proto_field_name=True)


def ref_from_dict(data: dict[str, Any]) -> common_pb2.ArrayRef:
    return json_format.ParseDict(data, common_pb2.ArrayRef())


@dataclass
class RoundRecord:
    """A Round plus the working state its steps hand to each other."""

    round: experiments_pb2.Round
    # Bumped when a trainer operation was lost (trainer restarted): the next request id differs.
    train_attempt: int = 0
    # ArrayRefs (as dicts) produced by the steps: pool, test, pool_embeddings, unlabeled, labeled,
    # labeled_out_of_sample, *_scores, selected (the new examples' rows of this round's model),
    # initial_embeddings (round 0, typical first set).
    arrays: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Selected examples that already had a label (chosen for another annotation).
    relabel_ids: list[str] = field(default_factory=list)
    # Annotations in the log when the round's snapshot was taken.
    annotations_before: int = 0
    # Epoch seconds when waiting for external labelers began (their timeout survives restarts).
    label_wait_started: float = 0.0
    # Round 0 with a typical first set: the trainer's embedding operation, its attempt (bumped when
    # the trainer lost it), and the chosen initial ids once chosen (a replay labels the same ones).
    embedding_operation: str = ""
    embed_attempt: int = 0
    initial_ids: list[str] = field(default_factory=list)
    # The round's labeling report (LabelingReport as JSON, controller/consensus.py), and the Parquet
    # of CROWDLAB's consensus labels the round trains on ("" = the snapshot's majority vote).
    labeling_report: dict[str, Any] = field(default_factory=dict)
    consensus_labels_uri: str = ""

    def array(self, name: str) -> common_pb2.ArrayRef | None:
        data = self.arrays.get(name)
        return ref_from_dict(data) if data else None

    def set_array(self, name: str, ref: common_pb2.ArrayRef) -> None:
        self.arrays[name] = ref_to_dict(ref)

    def to_json(self) -> dict[str, Any]:
        return {
            "round": json_format.MessageToDict(self.round, preserving_proto_field_name=True),
            "train_attempt": self.train_attempt,
            "arrays": self.arrays,
            "relabel_ids": self.relabel_ids,
            "annotations_before": self.annotations_before,
            "label_wait_started": self.label_wait_started,
            "embedding_operation": self.embedding_operation,
            "embed_attempt": self.embed_attempt,
            "initial_ids": self.initial_ids,
            "labeling_report": self.labeling_report,
            "consensus_labels_uri": self.consensus_labels_uri,
        }

    @classmethod
    def first_step(cls, experiment_name: str, number: int) -> RoundRecord:
        """A new round at its SNAPSHOT step."""
        return cls(
            round=experiments_pb2.Round(
                name=f"{experiment_name}/rounds/{number}",
                number=number,
                stage=experiments_pb2.ROUND_STAGE_SNAPSHOT,
                start_time=now(),
            )
        )

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RoundRecord:
        return cls(
            round=json_format.ParseDict(data["round"], experiments_pb2.Round()),
            train_attempt=int(data.get("train_attempt", 0)),
            arrays=dict(data.get("arrays", {})),
            relabel_ids=list(data.get("relabel_ids", [])),
            annotations_before=int(data.get("annotations_before", 0)),
            label_wait_started=float(data.get("label_wait_started", 0.0)),
            embedding_operation=str(data.get("embedding_operation", "")),
            embed_attempt=int(data.get("embed_attempt", 0)),
            initial_ids=list(data.get("initial_ids", [])),
            labeling_report=dict(data.get("labeling_report", {})),
            consensus_labels_uri=str(data.get("consensus_labels_uri", "")),
        )


class RecordStore:
    """Reads and writes experiment and round records in the object store."""

    def __init__(self, store: ObjectStore):
        self.store = store

    def save_experiment(self, experiment: experiments_pb2.Experiment) -> None:
        experiment_id = experiment.name.removeprefix("experiments/")
        data = json_format.MessageToDict(experiment, preserving_proto_field_name=True)
        self.store.put_json(experiment_key(experiment_id), {"experiment": data})

    def load_experiment(self, experiment_id: str) -> experiments_pb2.Experiment:
        data = self.store.get_json(experiment_key(experiment_id))
        return json_format.ParseDict(data["experiment"], experiments_pb2.Experiment())

    def experiment_exists(self, experiment_id: str) -> bool:
        return self.store.exists(experiment_key(experiment_id))

    def experiment_ids(self) -> Iterator[str]:
        for key in self.store.list(EXPERIMENTS_PREFIX):
            parts = key.split("/")
            if len(parts) == 3 and parts[2] == "experiment.json":
                yield parts[1]

    def save_round(self, experiment_id: str, record: RoundRecord) -> None:
        self.store.put_json(round_key(experiment_id, record.round.number), record.to_json())

    def load_rounds(self, experiment_id: str, last: int) -> list[RoundRecord]:
        """The round records 0..last that exist, in order (probing keys avoids listing model files)."""
        records = []
        for number in range(last + 1):
            key = round_key(experiment_id, number)
            if self.store.exists(key):
                records.append(RoundRecord.from_json(self.store.get_json(key)))
        return records
