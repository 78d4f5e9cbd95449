"""Which plug-in scores each value of the API's Strategy enum (labelloop.v1.common_pb2.Strategy).

Adding a strategy: add its value to the enum in protos/labelloop/v1/common.proto (`make protos`), write
one file in this folder with a class that follows base.Strategy, and add one line below.
"""

from __future__ import annotations

from typing import Any

from labelloop.core.api import enum_name
from labelloop.core.errors import InvalidArgument
from labelloop.scorer.strategies.activelab import ActiveLab
from labelloop.scorer.strategies.base import Strategy
from labelloop.scorer.strategies.budget_aware import BudgetAware
from labelloop.scorer.strategies.entropy import Entropy
from labelloop.scorer.strategies.least_confidence import LeastConfidence
from labelloop.scorer.strategies.margin import Margin
from labelloop.scorer.strategies.random import Random
from labelloop.v1 import common_pb2

STRATEGIES: dict[int, Strategy[Any]] = {
    common_pb2.STRATEGY_ACTIVELAB: ActiveLab(),
    common_pb2.STRATEGY_RANDOM: Random(),
    common_pb2.STRATEGY_LEAST_CONFIDENCE: LeastConfidence(),
    common_pb2.STRATEGY_MARGIN: Margin(),
    common_pb2.STRATEGY_ENTROPY: Entropy(),
    common_pb2.STRATEGY_BUDGET_AWARE: BudgetAware(),
}


def strategy_name(strategy: int) -> str:
    """The enum value's short name ("activelab", "least_confidence"), as in metric labels and logs."""
    return enum_name(common_pb2.Strategy, strategy)


def strategy_for(strategy: int) -> Strategy[Any]:
    """The plug-in of an enum value; InvalidArgument naming the choices for UNSPECIFIED or unknown ones."""
    plugin = STRATEGIES.get(strategy)
    if plugin is None:
        choices = ", ".join(common_pb2.Strategy.Name(value) for value in sorted(STRATEGIES))
        raise InvalidArgument(f"strategy {strategy} is not a scoring strategy: choose one of {choices}")
    return plugin
