"""The demo's side-by-side summary: labels random needed for the default run's final accuracy, the plot
with both curves, and the output files a rerun replaces. (The demo's services run is `make demo`.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from labelloop.cli.demo import comparison, labels_to_reach, plot_learning_curve, prepare_output

DEFAULT = [
    {"round": 0, "labeled": 20, "test_accuracy": 0.60},
    {"round": 1, "labeled": 40, "test_accuracy": 0.80},
    {"round": 2, "labeled": 60, "test_accuracy": 0.90},
]
RANDOM = [
    {"round": 0, "labeled": 20, "test_accuracy": 0.60},
    {"round": 1, "labeled": 40, "test_accuracy": 0.70},
    {"round": 2, "labeled": 60, "test_accuracy": 0.75},
]


def test_labels_to_reach_interpolates_between_rounds() -> None:
    assert labels_to_reach(DEFAULT, 0.6) == 20.0
    assert labels_to_reach(DEFAULT, 0.85) == pytest.approx(50.0)
    assert labels_to_reach(RANDOM, 0.8) is None


def test_comparison_says_what_random_needed_and_the_saving() -> None:
    text = comparison(DEFAULT, RANDOM)
    assert "random selection did not reach the default strategy's final accuracy 0.900 (60 labels)" in text
    assert "within 60 labels (it ended at 0.750)" in text
    # Random's final 0.75 is reached by the default run at 20 + 20 * (0.15 / 0.2) = 35 labels.
    assert "reached random's final accuracy 0.750 (60 labels) with 35 labels: 1.71x fewer" in text
    reached = comparison(RANDOM, DEFAULT)  # the other way round: reached, at 20 + 20 * 0.15 / 0.2
    assert "random selection needed 35 labels to reach the default strategy's final accuracy 0.750" in reached


def test_plot_with_both_curves_and_rerun_cleanup(tmp_path: Path) -> None:
    plot_learning_curve(DEFAULT, tmp_path / "curve.png", "demo", random_rows=RANDOM)
    assert (tmp_path / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    out = tmp_path / "demo-output"
    prepare_output(out)
    for name in ("rounds.json", "random_rounds.json", "learning_curve.png"):
        (out / name).write_text("old")
    prepare_output(out)
    assert not any(
        (out / name).exists() for name in ("rounds.json", "random_rounds.json", "learning_curve.png")
    )
