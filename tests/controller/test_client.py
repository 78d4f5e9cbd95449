"""Pure helpers of the Python client."""

from __future__ import annotations

import pytest
from labelloop.client import strategy_value, trainer_config
from labelloop.v1 import common_pb2


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
