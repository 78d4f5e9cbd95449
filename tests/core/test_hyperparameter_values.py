"""Numeric hyperparameters of the wrong type are refused when the config arrives (CreateExperiment, a
training run), not once a run fails after labels were bought."""

from __future__ import annotations

import pytest
from labelloop.core.errors import InvalidArgument
from labelloop.core.hparams import parse_hyperparameters


def test_numbers_are_read_as_numbers() -> None:
    parsed = parse_hyperparameters(
        {"optim.lr": "1e-3", "optim.max_epochs": "30", "model.names": "[numerical_mlp]"}
    )
    assert parsed == {"optim.lr": 0.001, "optim.max_epochs": 30, "model.names": ["numerical_mlp"]}


@pytest.mark.parametrize(
    ("key", "value", "kind"),
    [
        ("optim.lr", "abc", "number"),
        ("optim.lr", "nan", "number"),
        ("optim.lr", "-0.1", "number"),
        ("optim.lr", "true", "number"),
        ("optim.max_epochs", "1.5", "integer"),
        ("env.batch_size", "[16]", "integer"),
    ],
)
def test_a_numeric_key_with_another_value_is_refused(key: str, value: str, kind: str) -> None:
    with pytest.raises(InvalidArgument, match=f"hyperparameter '{key}' must be a non-negative {kind}"):
        parse_hyperparameters({key: value})


@pytest.mark.parametrize("key", ["no.such.thing", "optimization.lr", "trainer.max_epochs"])
def test_a_key_outside_the_known_sections_is_refused(key: str) -> None:
    with pytest.raises(InvalidArgument, match=f"hyperparameter '{key}' is in no known section"):
        parse_hyperparameters({key: "1"})


def test_every_section_autogluon_and_the_probe_use_is_accepted() -> None:
    keys = ["model.names", "data.mixup.turn_on", "optim.lr", "env.batch_size", "linear_probe.c"]
    assert set(parse_hyperparameters(dict.fromkeys(keys, "1"))) == set(keys)
