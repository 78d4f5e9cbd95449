"""Labelers, one module each, chosen by the field set in ExperimentConfig's `labeler` oneof.

Adding one: a module with a class that follows labelers.base.Labeler and takes its settings message,
a field in the oneof (protos/labelloop/v1/experiments.proto), and one line in LABELERS.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from labelloop.controller.labelers.base import Labeler, LabelingContext, LabelRequest
from labelloop.controller.labelers.external import ExternalLabelers
from labelloop.controller.labelers.label_studio import LabelStudioLabeler
from labelloop.controller.labelers.oracle import SimulatedOracle
from labelloop.controller.labelers.queue import LabelingQueue
from labelloop.core.errors import InvalidArgument
from labelloop.v1 import experiments_pb2

__all__ = ["LABELERS", "LabelRequest", "Labeler", "LabelingContext", "labeler_for"]

# Oneof field name -> the class built from that field's message.
LABELERS: dict[str, Callable[[Any], Labeler]] = {
    "simulated_oracle": SimulatedOracle,
    "external_labelers": ExternalLabelers,
    "labeling_queue": LabelingQueue,
    "label_studio": LabelStudioLabeler,
}


def labeler_for(config: experiments_pb2.ExperimentConfig) -> Labeler:
    """The experiment's labeler; InvalidArgument when none is set or this controller lacks it."""
    field = config.WhichOneof("labeler")
    if field is None:
        raise InvalidArgument(f"config sets no labeler: set {' or '.join(LABELERS)}")
    factory = LABELERS.get(field)
    if factory is None:  # a field added to the API without its plug-in
        raise InvalidArgument(
            f"config.{field} is not supported by this controller: use {' or '.join(LABELERS)}"
        )
    return factory(getattr(config, field))
