"""Names read from the generated API (labelloop.v1), so that no module spells them out by hand.

Enum values follow AIP-126: every value is prefixed with the enum's name in UPPER_SNAKE_CASE and value 0
is ``<PREFIX>_UNSPECIFIED``. ``enum_name(common_pb2.Strategy, STRATEGY_ACTIVELAB)`` gives "activelab", the
short name used in metric labels, logs and the CLI.
"""

from __future__ import annotations

import re
from types import ModuleType

from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper

from labelloop.v1 import (
    dataset_store_pb2,
    experiments_pb2,
    labeling_pb2,
    scorer_pb2,
    selector_pb2,
    trainer_pb2,
)

_SERVICE_MODULES = (
    dataset_store_pb2,
    trainer_pb2,
    scorer_pb2,
    selector_pb2,
    experiments_pb2,
    labeling_pb2,
)


def enum_prefix(enum_type: EnumTypeWrapper) -> str:
    """The AIP-126 prefix of an enum's values: Strategy -> "STRATEGY_", RoundStage -> "ROUND_STAGE_"."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", enum_type.DESCRIPTOR.name).upper() + "_"


def enum_name(enum_type: EnumTypeWrapper, value: int, prefix_to_strip: str | None = None) -> str:
    """The short lowercase name of a value: (Strategy, STRATEGY_ACTIVELAB) -> "activelab".

    ``prefix_to_strip`` defaults to the enum's AIP-126 prefix. Raises ValueError for an unknown value.
    """
    prefix = enum_prefix(enum_type) if prefix_to_strip is None else prefix_to_strip
    return enum_type.Name(value).removeprefix(prefix).lower()


def enum_value(enum_type: EnumTypeWrapper, name: str, prefix: str | None = None) -> int:
    """The inverse of enum_name: "activelab", "ACTIVELAB" or "STRATEGY_ACTIVELAB" -> STRATEGY_ACTIVELAB.

    Raises ValueError for an unknown name.
    """
    prefix = enum_prefix(enum_type) if prefix is None else prefix
    upper = name.upper()
    return enum_type.Value(upper if upper.startswith(prefix) else prefix + upper)


def defined_values(enum_type: EnumTypeWrapper) -> list[int]:
    """Every value of an enum except 0 (UNSPECIFIED), in declaration order."""
    return [value for value in enum_type.values() if value != 0]


def service_name(pb2_module: ModuleType) -> str:
    """The full gRPC name of the one service a generated module declares: "labelloop.v1.ScorerService"."""
    services = list(pb2_module.DESCRIPTOR.services_by_name.values())
    if len(services) != 1:
        raise ValueError(f"{pb2_module.__name__} declares {len(services)} services, expected one")
    return str(services[0].full_name)


def service_names() -> list[str]:
    """The full gRPC names of every LabelLoop service, from the generated descriptors."""
    return [service_name(module) for module in _SERVICE_MODULES]


# An experiment in one of these states never changes again: watchers stop, runners exit, Cancel refuses.
TERMINAL_EXPERIMENT_STATES = frozenset(
    {
        experiments_pb2.EXPERIMENT_STATE_SUCCEEDED,
        experiments_pb2.EXPERIMENT_STATE_FAILED,
        experiments_pb2.EXPERIMENT_STATE_CANCELLED,
    }
)
