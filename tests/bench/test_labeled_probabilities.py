"""`make bench-labeled-probabilities`: ActiveLab with in-sample probabilities for labeled examples is a
variant the noisy scenarios know, runnable by name, that sets the experiment's switch."""

from __future__ import annotations

from labelloop.v1 import experiments_pb2 as pb

from bench.__main__ import _narrowed
from bench.config import config_for
from bench.services_path import scenario_config


def test_the_in_sample_variant_runs_by_name_and_sets_the_switch() -> None:
    config = _narrowed(
        config_for("full"), "0,1,2", "digits_images_noisy", strategies="activelab,activelab_in_sample,margin"
    )
    [scenario] = config.curves
    # margin is no strategy of the noisy scenarios: left out, as before.
    assert scenario.strategies == ("activelab", "activelab_in_sample") and scenario.seeds == (0, 1, 2)
    in_sample = scenario_config(scenario, "digits", "activelab_in_sample", seed=0)
    out_of_sample = scenario_config(scenario, "digits", "activelab", seed=0)
    assert in_sample.labeled_probabilities == pb.LABELED_PROBABILITIES_IN_SAMPLE
    assert out_of_sample.labeled_probabilities == pb.LABELED_PROBABILITIES_UNSPECIFIED  # out of sample
    assert in_sample.allow_relabel and in_sample.strategy == out_of_sample.strategy
