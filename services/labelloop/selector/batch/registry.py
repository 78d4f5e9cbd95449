"""Which plug-in chooses the batch for each value of the API's BatchMethod enum
(labelloop.v1.common_pb2.BatchMethod); UNSPECIFIED means the lowest scores.

Adding a method: add its value to the enum in protos/labelloop/v1/common.proto (`make protos`), write
one file in this folder with a class that follows base.BatchSelector, and add one line below.
"""

from __future__ import annotations

from labelloop.core.errors import InvalidArgument
from labelloop.selector.batch.base import BatchSelector
from labelloop.selector.batch.diverse import Diverse
from labelloop.selector.batch.lowest_scores import LowestScores
from labelloop.selector.batch.typical import Typical
from labelloop.v1 import common_pb2

DEFAULT_BATCH_METHOD = common_pb2.BATCH_METHOD_LOWEST_SCORES

BATCH_SELECTORS: dict[int, BatchSelector] = {
    common_pb2.BATCH_METHOD_LOWEST_SCORES: LowestScores(),
    common_pb2.BATCH_METHOD_DIVERSE: Diverse(),
    common_pb2.BATCH_METHOD_TYPICAL: Typical(),
}


def batch_selector_for(method: int) -> BatchSelector:
    """The plug-in of an enum value, the default for UNSPECIFIED; InvalidArgument naming the choices
    for unknown ones."""
    plugin = BATCH_SELECTORS.get(method or DEFAULT_BATCH_METHOD)
    if plugin is None:
        choices = ", ".join(common_pb2.BatchMethod.Name(value) for value in sorted(BATCH_SELECTORS))
        raise InvalidArgument(f"batch_method {method} is not a batch method: choose one of {choices}")
    return plugin
