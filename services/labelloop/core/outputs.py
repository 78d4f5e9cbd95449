"""Which output folders a caller may name (trainer runs, scores, labeling reports): the services
write only where the resource names say, never into another resource's folder.

- `datasets/`, `operations/` and `uploads/` hold the store's datasets, the trainer's records and the
  files clients upload: no output goes there.
- Under `experiments/` only a round's folder, `experiments/{e}/rounds/{n}/...`, of an experiment that
  has not ended or been deleted; a request labelled with an experiment (and round) must name exactly
  that experiment's (round's) folder, the one the controller derives from those names
  (layout.round_prefix).
- Elsewhere (e.g. `runs/...`, the trainer's own default `runs/{operation}/`) a caller's scratch space.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from google.protobuf import json_format

from labelloop.core import layout
from labelloop.core.api import TERMINAL_EXPERIMENT_STATES
from labelloop.core.errors import FailedPrecondition, InvalidArgument, NotFound
from labelloop.core.names import shown
from labelloop.core.storage import ObjectStore
from labelloop.v1 import experiments_pb2

RESERVED_PREFIXES = (layout.DATASETS_PREFIX, layout.OPERATIONS_PREFIX, layout.UPLOADS_PREFIX)
_ROUND_FOLDER = re.compile(rf"^{layout.EXPERIMENTS_PREFIX}([^/]+)/rounds/(\d+)/")


def check_output_folder(store: ObjectStore, output_uri: str, labels: Mapping[str, str] | None = None) -> None:
    """InvalidArgument (or FailedPrecondition for an ended experiment) unless output_uri is a folder
    the caller may have written to; an empty output_uri is left to the service to derive."""
    if not output_uri:
        return
    what = f"output_uri {shown(output_uri)}"
    try:
        key = store.ref_to_key(output_uri)
    except InvalidArgument as error:
        raise InvalidArgument(f"{what}: {error}; use a folder of this store") from None
    folder = key.rstrip("/") + "/"
    if folder == "/" or any(part in ("", ".", "..") for part in folder[:-1].split("/")):
        raise InvalidArgument(f"{what} must be a folder of its own, without '.', '..' or empty parts")
    labels = labels or {}
    if reserved := next((p for p in RESERVED_PREFIXES if folder.startswith(p)), None):
        raise InvalidArgument(
            f"{what} is under {reserved}, which holds {_OWNERS[reserved]}: no output goes there; "
            f"{_expected(labels)}"
        )
    if not folder.startswith(layout.EXPERIMENTS_PREFIX):
        return
    match = _ROUND_FOLDER.match(folder)
    if not match:
        raise InvalidArgument(
            f"{what}: an experiment's folder takes outputs only in a round's folder, "
            f"experiments/{{experiment}}/rounds/{{round}}/; {_expected(labels)}"
        )
    experiment, number = match[1], match[2]
    if labels.get("experiment", experiment) != experiment or labels.get("round", number) != number:
        raise InvalidArgument(f"{what} is not the folder its labels name; {_expected(labels)}")
    _check_experiment_open(store, experiment, what)


_OWNERS = {
    layout.DATASETS_PREFIX: "the store's datasets",
    layout.OPERATIONS_PREFIX: "the trainer's operation records",
    layout.UPLOADS_PREFIX: "files clients upload",
}


def _expected(labels: Mapping[str, str]) -> str:
    if "experiment" in labels and "round" in labels:
        prefix = layout.round_prefix(
            labels["experiment"], int(labels["round"]) if labels["round"].isdigit() else 0
        )
        return f"expected a folder under {shown(prefix)} (or leave output_uri empty)"
    if "experiment" in labels:
        return (f"expected a folder under {shown(layout.experiment_prefix(labels['experiment']) + 'rounds/')}"
                " (or leave output_uri empty)")  # fmt: skip
    return "leave output_uri empty for a folder of the service's own, or use e.g. 'runs/{name}/'"


def _check_experiment_open(store: ObjectStore, experiment: str, what: str) -> None:
    """An ended or deleted experiment's rounds are its results: nobody writes there any more."""
    if store.exists(layout.deleted_experiment_key(experiment)):
        raise NotFound(f"{what}: experiments/{experiment} was deleted; its folder takes no outputs")
    try:
        record = store.get_json(layout.experiment_key(experiment))
        state = json_format.ParseDict(
            record["experiment"], experiments_pb2.Experiment(), ignore_unknown_fields=True
        ).state
    except NotFound:
        return  # no experiment of that id yet: the folder is nobody's
    except (KeyError, TypeError, ValueError, json_format.ParseError):
        raise FailedPrecondition(
            f"{what}: experiments/{experiment} has a record this service cannot read"
        ) from None
    if state in TERMINAL_EXPERIMENT_STATES:
        name = experiments_pb2.ExperimentState.Name(state)
        raise FailedPrecondition(
            f"{what}: experiments/{experiment} has ended ({name}); its rounds are its results and take no "
            "new outputs: write elsewhere"
        )
