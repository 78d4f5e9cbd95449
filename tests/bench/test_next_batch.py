"""Time to next batch from a synthetic rounds record: which rounds count, the sum of stages, the medians,
the nearest-rank p90, the headline in results.json and the table in docs/benchmarks.md. No timing."""

from __future__ import annotations

from typing import Any

import pytest

from bench.markdown_overhead import next_batch_table
from bench.next_batch import BATCH_STAGES, summary
from bench.overhead import compare
from bench.report import headlines


def services_round(number: int, train: float, label: bool = True) -> dict[str, Any]:
    stages = {"snapshot": 0.1, "consensus": 0.05, "train": train, "fit": train - 1.0, "predict": 0.5,
              "evaluate": 0.01, "score": 0.2, "select": 0.04}  # fmt: skip
    if label:
        stages["label"] = 7.0  # the people's time: not part of the wait for the next batch
    seconds = sum(v for k, v in stages.items() if k in (*BATCH_STAGES, "label"))
    return {"number": number, "labeled": 20 * (number + 1), "test_accuracy": 0.5, "seconds": seconds,
            "stage_seconds": stages}  # fmt: skip


def reference_round(number: int, fit: float, label: bool = True) -> dict[str, Any]:
    stages = {"fit": fit, "predict": 0.5, "evaluate": 0.0, "score": 0.01, "select": 0.0}
    if label:
        stages["label"] = 0.0
    seconds = sum(stages.values())
    return {"number": number, "labeled": 20, "test_accuracy": 0.5, "seconds": seconds,
            "stage_seconds": stages}  # fmt: skip


# Round 0 (waits for the first labels too) and the last round (selects nothing, no label stage) are
# left out; their train seconds are extreme so that counting them would move every figure.
SERVICES = [
    services_round(0, 100.0),
    services_round(1, 2.0),
    services_round(2, 4.0),
    services_round(3, 3.0),
    services_round(4, 50.0),
    services_round(5, 100.0, label=False),
]


def test_time_to_next_batch_sums_the_stages_before_label_of_the_batch_rounds() -> None:
    result = summary(SERVICES)
    assert result is not None
    assert result["rounds"] == [1, 2, 3, 4]
    # Each round's wait: snapshot 0.1 + train + evaluate 0.01 + score 0.2 + select 0.04 (not the
    # consensus part of the snapshot, not the label stage).
    waits = sorted(0.35 + t for t in (2.0, 4.0, 3.0, 50.0))
    assert result["median"] == pytest.approx((waits[1] + waits[2]) / 2)
    assert result["p90"] == pytest.approx(waits[-1])  # nearest rank of 4: the slowest
    assert list(result["by_stage"]) == list(BATCH_STAGES)
    assert result["by_stage"] == pytest.approx(
        {"snapshot": 0.1, "train": 3.5, "evaluate": 0.01, "score": 0.2, "select": 0.04}
    )
    # The train stage's parts: fit (train - 1), predict 0.5, and the job's own remaining 0.5 s.
    assert result["train_parts"] == pytest.approx({"fit": 2.5, "predict": 0.5, "trainer_job": 0.5})


def test_the_in_process_loop_trains_in_fit_and_predict() -> None:
    result = summary([reference_round(n, fit) for n, fit in enumerate((9.0, 1.0, 2.0, 3.0))])
    assert result is not None
    assert result["by_stage"]["snapshot"] == 0.0
    assert result["by_stage"]["train"] == pytest.approx(2.5)
    assert result["train_parts"]["trainer_job"] == 0.0
    assert result["median"] == pytest.approx(2.51)


def test_no_batch_round_gives_no_figure() -> None:
    assert summary([services_round(0, 1.0), services_round(1, 1.0, label=False)]) is None


def test_headline_and_table_come_from_the_services_rounds() -> None:
    measured = {
        "services": {"rounds": SERVICES},
        "reference": {"rounds": [reference_round(n, 1.0, label=n < 5) for n in range(6)]},
    }
    run = {**measured, **compare(measured)}  # the overhead part as bench/overhead.py saves it
    figure = headlines({"overhead": {"datasets": {"digits_tabular": run}}})["time_to_next_batch_seconds"]
    assert figure["digits_tabular"]["median"] == pytest.approx(3.85)
    table = "\n".join(next_batch_table(run))
    assert "rounds 1, 2, 3, 4" in table
    assert "| **time to next batch, median** | 1.510 | **3.850** |" in table
    assert "| &nbsp;&nbsp;trainer job | 0.000 | 0.500 |" in table
    assert run["time_to_next_batch"]["in_process"]["rounds"] == [1, 2, 3, 4]


def test_the_stages_are_those_the_controller_observes_in_its_metric() -> None:
    """The controller's labelloop_time_to_next_batch_seconds sums MAIN_STAGES before label."""
    from labelloop.controller.runner import MAIN_STAGES

    assert MAIN_STAGES[:-1] == BATCH_STAGES and MAIN_STAGES[-1] == "label"
