"""Pure helpers of the Python client."""

from __future__ import annotations

import pytest
from labelloop.client import option_names, option_value, parse_accuracies, strategy_value, trainer_config
from labelloop.v1 import common_pb2, experiments_pb2, trainer_pb2


@pytest.mark.parametrize(
    ("given", "value"),
    [("activelab", common_pb2.STRATEGY_ACTIVELAB), ("STRATEGY_MARGIN", common_pb2.STRATEGY_MARGIN), (2, 2)],
)
def test_strategy_names(given: str | int, value: int) -> None:
    assert strategy_value(given) == value


def test_unknown_strategy() -> None:
    with pytest.raises(ValueError):
        strategy_value("clairvoyance")


def test_trainer_config_sends_yaml_text() -> None:
    config = trainer_config(
        {"optim.max_epochs": 3, "model.names": ["numerical_mlp"], "optim.lr": "0.01"},
        {"model.timm_image.checkpoint_name": "labelloop:random/resnet18"},
        time_limit_seconds=60,
    )
    assert dict(config.hyperparameters) == {
        "optim.max_epochs": "3",
        "model.names": "[numerical_mlp]",
        "optim.lr": "0.01",
    }
    assert [(c.key, c.source) for c in config.checkpoints] == [
        ("model.timm_image.checkpoint_name", "labelloop:random/resnet18")
    ]
    assert config.time_limit_seconds == 60


@pytest.mark.parametrize(
    ("enum_type", "given", "value"),
    [
        (common_pb2.Strategy, "budget-aware", common_pb2.STRATEGY_BUDGET_AWARE),
        (common_pb2.BatchMethod, "lowest", common_pb2.BATCH_METHOD_LOWEST_SCORES),
        (common_pb2.BatchMethod, "BATCH_METHOD_DIVERSE", common_pb2.BATCH_METHOD_DIVERSE),
        (trainer_pb2.TrainingMode, "linear-probe", trainer_pb2.TRAINING_MODE_LINEAR_PROBE),
        (experiments_pb2.LabeledProbabilities, "in_sample", experiments_pb2.LABELED_PROBABILITIES_IN_SAMPLE),
        (experiments_pb2.InitialSelection, "", 0),
    ],
)
def test_option_values_take_short_names(enum_type: object, given: str, value: int) -> None:
    assert option_value(enum_type, given, "option") == value  # type: ignore[arg-type]


def test_option_names_are_what_the_cli_shows() -> None:
    assert option_names(common_pb2.BatchMethod) == ["lowest", "diverse", "typical"]
    with pytest.raises(ValueError, match="batch method 'wide' is not one of lowest, diverse, typical"):
        option_value(common_pb2.BatchMethod, "wide", "batch method")


def test_trainer_config_mode_and_accuracies() -> None:
    config = trainer_config(mode="linear-probe", fine_tune_from_labels=200)
    assert config.mode == trainer_pb2.TRAINING_MODE_LINEAR_PROBE and config.fine_tune_from_labels == 200
    assert parse_accuracies("0.6, 0.9,1") == [0.6, 0.9, 1.0]
    with pytest.raises(ValueError, match=r"in \(0, 1\]"):
        parse_accuracies("0.6,0")
