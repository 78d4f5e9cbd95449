"""Names read from the generated API: enum short names and values, service names from descriptors."""

from __future__ import annotations

import pytest
from labelloop.core.api import defined_values, enum_name, enum_prefix, enum_value, service_name, service_names
from labelloop.v1 import common_pb2, experiments_pb2, scorer_pb2


def test_enum_names_strip_the_aip_prefix() -> None:
    assert enum_prefix(experiments_pb2.RoundStage) == "ROUND_STAGE_"
    assert enum_name(common_pb2.Strategy, common_pb2.STRATEGY_LEAST_CONFIDENCE) == "least_confidence"
    assert enum_name(common_pb2.OperationState, common_pb2.OPERATION_STATE_SUCCEEDED) == "succeeded"
    assert enum_name(common_pb2.Strategy, common_pb2.STRATEGY_MARGIN, prefix_to_strip="STRATEGY_MAR") == "gin"
    with pytest.raises(ValueError):
        enum_name(common_pb2.Strategy, 99)


@pytest.mark.parametrize("name", ["margin", "MARGIN", "STRATEGY_MARGIN"])
def test_enum_value_reverses_enum_name(name: str) -> None:
    assert enum_value(common_pb2.Strategy, name) == common_pb2.STRATEGY_MARGIN
    for value in defined_values(common_pb2.Strategy):
        assert enum_value(common_pb2.Strategy, enum_name(common_pb2.Strategy, value)) == value
    with pytest.raises(ValueError):
        enum_value(common_pb2.Strategy, "nope")


def test_defined_values_leave_out_unspecified() -> None:
    assert defined_values(common_pb2.BatchMethod) == [
        common_pb2.BATCH_METHOD_LOWEST_SCORES,
        common_pb2.BATCH_METHOD_DIVERSE,
        common_pb2.BATCH_METHOD_TYPICAL,
    ]
    assert 0 not in defined_values(common_pb2.Strategy)
    assert len(defined_values(common_pb2.Strategy)) == len(common_pb2.Strategy.values()) - 1


def test_service_names_come_from_the_descriptors() -> None:
    assert service_name(scorer_pb2) == "labelloop.v1.ScorerService"
    assert service_names() == [
        "labelloop.v1.DatasetStoreService",
        "labelloop.v1.TrainerService",
        "labelloop.v1.ScorerService",
        "labelloop.v1.SelectorService",
        "labelloop.v1.ExperimentService",
        "labelloop.v1.LabelingService",
    ]
    with pytest.raises(ValueError, match="declares 0 services"):
        service_name(common_pb2)
