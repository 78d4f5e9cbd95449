"""Output folders a caller may name (core/outputs.py): never another resource's folder, and a run
labelled with an experiment and round writes exactly into that round's folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.protobuf import json_format
from labelloop.core.errors import FailedPrecondition, InvalidArgument, LabelLoopError, NotFound
from labelloop.core.layout import deleted_experiment_key, experiment_key
from labelloop.core.outputs import check_output_folder
from labelloop.core.storage import LocalStore
from labelloop.v1 import experiments_pb2

S = experiments_pb2


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    store = LocalStore(tmp_path / "store")
    for experiment, state in (("live", S.EXPERIMENT_STATE_RUNNING), ("done", S.EXPERIMENT_STATE_SUCCEEDED)):
        record = S.Experiment(name=f"experiments/{experiment}", state=state)
        data = json_format.MessageToDict(record, preserving_proto_field_name=True)
        store.put_json(experiment_key(experiment), {"experiment": data})  # as the controller writes it
    store.put_json(deleted_experiment_key("gone"), {})
    return store


ALLOWED = [
    ("", {}),  # the service derives it
    ("runs/mine/", {}),
    ("experiments/live/rounds/3/", {"experiment": "live", "round": "3"}),
    ("experiments/live/rounds/0/initial-embeddings/", {"experiment": "live", "round": "0"}),
    ("experiments/live/rounds/3/scores/", {}),
    ("experiments/new/rounds/1/", {"experiment": "new", "round": "1"}),  # not created yet: nobody's
]


@pytest.mark.parametrize(("output", "labels"), ALLOWED)
def test_allowed_folders(store: LocalStore, output: str, labels: dict[str, str]) -> None:
    check_output_folder(store, output, labels)
    if output:
        check_output_folder(store, store.uri(output), labels)  # a URI of this store is the same folder


REFUSED: list[tuple[str, dict[str, str], type[LabelLoopError], str]] = [
    ("datasets/digits/", {}, InvalidArgument, "is under datasets/, which holds the store's datasets"),
    ("operations/", {}, InvalidArgument, "is under operations/"),
    ("uploads/x/", {}, InvalidArgument, "is under uploads/"),
    ("experiments/live/", {}, InvalidArgument, "takes outputs only in a round's folder"),
    ("experiments/live/tasks/", {}, InvalidArgument, "takes outputs only in a round's folder"),
    ("experiments/live/rounds/2/", {"experiment": "live", "round": "3"}, InvalidArgument,
     "not the folder its labels name; expected a folder under 'experiments/live/rounds/3/'"),
    ("experiments/done/rounds/1/", {"experiment": "live", "round": "1"}, InvalidArgument,
     "expected a folder under 'experiments/live/rounds/1/'"),
    ("experiments/done/rounds/1/", {}, FailedPrecondition,
     "experiments/done has ended (EXPERIMENT_STATE_SUCCEEDED)"),
    ("experiments/gone/rounds/1/", {}, NotFound, "experiments/gone was deleted"),
    ("runs/../datasets/d/", {}, InvalidArgument, "without '.', '..' or empty parts"),
    ("/", {}, InvalidArgument, "must be a folder of its own"),
    ("s3://elsewhere/x/", {}, InvalidArgument, "use a folder of this store"),
]  # fmt: skip


@pytest.mark.parametrize(("output", "labels", "error", "message"), REFUSED)
def test_refused_folders_say_what_to_use(
    store: LocalStore, output: str, labels: dict[str, str], error: type[LabelLoopError], message: str
) -> None:
    with pytest.raises(error) as info:
        check_output_folder(store, output, labels)
    assert message in str(info.value)
