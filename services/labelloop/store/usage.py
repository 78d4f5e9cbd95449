"""Which experiments still use a dataset, so that it is not deleted under them by accident.

Read from the controller's records (the public Experiment message as JSON, at
layout.experiment_key): an experiment uses its dataset until it ends, and also while it is FAILED on a
fault, since ResumeExperiment can still bring it back.
"""

from __future__ import annotations

import logging
from typing import Any

from google.protobuf import json_format

from labelloop.core.errors import NotFound
from labelloop.core.layout import EXPERIMENTS_PREFIX, experiment_key
from labelloop.core.storage import ObjectStore
from labelloop.v1 import experiments_pb2

log = logging.getLogger(__name__)

_ACTIVE = frozenset(
    {
        experiments_pb2.EXPERIMENT_STATE_CREATED,
        experiments_pb2.EXPERIMENT_STATE_RUNNING,
        experiments_pb2.EXPERIMENT_STATE_PAUSED,
    }
)


def in_use(experiment: experiments_pb2.Experiment) -> bool:
    resumable = (
        experiment.state == experiments_pb2.EXPERIMENT_STATE_FAILED
        and experiment.failure_kind == experiments_pb2.FAILURE_KIND_FAULT
    )
    return experiment.state in _ACTIVE or resumable


def _experiment(data: Any) -> experiments_pb2.Experiment | None:
    try:
        return json_format.ParseDict(
            data["experiment"], experiments_pb2.Experiment(), ignore_unknown_fields=True
        )
    except (KeyError, TypeError, json_format.ParseError):
        return None


def experiments_using(store: ObjectStore, dataset_id: str) -> list[str]:
    """Names of the experiments that use datasets/{dataset_id}, sorted."""
    name = f"datasets/{dataset_id}"
    users = []
    for experiment_id in store.list_folders(EXPERIMENTS_PREFIX):
        try:
            experiment = _experiment(store.get_json(experiment_key(experiment_id)))
        except (NotFound, ValueError):  # deleted (only its tombstone is left), or not a record
            continue
        if experiment is None:
            log.warning("experiments/%s has a record this store cannot read: not counted", experiment_id)
            continue
        if experiment.config.dataset == name and in_use(experiment):
            users.append(experiment.name)
    return sorted(users)
