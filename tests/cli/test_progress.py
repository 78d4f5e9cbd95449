"""`watch`'s status line from Experiment and Round messages: epochs, elapsed time, ETA, and no
accuracy before the first evaluation."""

from __future__ import annotations

from labelloop.cli.progress import Status, duration, eta_seconds, rounds_total
from labelloop.v1 import experiments_pb2 as pb

RUNNING = pb.EXPERIMENT_STATE_RUNNING


def experiment(**fields: object) -> pb.Experiment:
    config = pb.ExperimentConfig(batch_size=10, stopping_rule=pb.StoppingRule(max_rounds=5))
    return pb.Experiment(**{"name": "experiments/e", "state": RUNNING, "config": config, **fields})  # type: ignore[arg-type]


def test_the_line_shows_epochs_elapsed_and_an_eta_from_earlier_rounds() -> None:
    current = experiment(current_round=3, rounds_completed=3, labeled_count=40, latest_test_accuracy=0.8125)
    round_ = pb.Round(
        number=3,
        stage=pb.ROUND_STAGE_TRAIN,
        progress_message="train 45%: fitting, epoch 3/10 (35 s)",  # as the trainer words it
        training_epoch=3,
        training_max_epochs=10,
    )
    status = Status(current, round_, durations=[100.0, 30.0, 40.0], elapsed=170.0, round_elapsed=20.0)
    # Rounds 3, 4 and 5 are left at 35 s each (round 0's embedding run is left out), 20 s already run.
    assert status.line() == (
        "round 3/5  train 45%  epoch 3/10  fitting (35 s)  labeled 40  accuracy 0.812  "
        "elapsed 2m50s  ETA 1m25s"
    )
    # The epoch comes from the round's fields, and only while it trains.
    round_.training_epoch = 4
    assert "  epoch 4/10  fitting (35 s)  " in status.line()
    round_.stage = pb.ROUND_STAGE_SCORE
    assert "epoch" not in status.line()


def test_no_accuracy_and_no_eta_before_the_first_round_ends() -> None:
    current = experiment(current_round=0, current_stage=pb.ROUND_STAGE_TRAIN, labeled_count=20)
    round_ = pb.Round(number=0, stage=pb.ROUND_STAGE_TRAIN, progress_message="train 5%: fitting (12 s)")
    assert Status(current, round_, elapsed=12.0, round_elapsed=12.0).line() == (
        "round 0/5  train 5%  fitting (12 s)  labeled 20  elapsed 12s  ETA after round 0"
    )
    evaluated = experiment(current_stage=pb.ROUND_STAGE_SCORE, latest_test_accuracy=0.5)
    shown = Status(evaluated, pb.Round(number=0, stage=pb.ROUND_STAGE_SCORE)).line()
    assert "accuracy 0.500" in shown
    ended = experiment(
        state=pb.EXPERIMENT_STATE_SUCCEEDED, rounds_completed=6, current_stage=pb.ROUND_STAGE_DONE
    )
    assert "ETA" not in Status(ended, pb.Round(number=5, stage=pb.ROUND_STAGE_DONE), durations=[1.0]).line()
    created = experiment(state=pb.EXPERIMENT_STATE_CREATED)
    assert Status(created, pb.Round()).line().startswith("round 0/5  not started  labeled 0")


def test_rounds_left_from_max_rounds_or_the_label_budget() -> None:
    assert rounds_total(experiment()) == 6  # round 0 and 5 more
    budget = experiment(current_round=2, labels_used=50)
    budget.config.stopping_rule.CopyFrom(pb.StoppingRule(label_budget=80))
    assert rounds_total(budget) == 6  # 30 labels left: 3 more batches of 10 after round 2
    assert eta_seconds(budget, [60.0, 10.0], 4.0) == 10.0 * 6 - 4.0  # 6 rounds not completed
    target_only = experiment()
    target_only.config.stopping_rule.CopyFrom(pb.StoppingRule(target_accuracy=0.9))
    assert rounds_total(target_only) is None and eta_seconds(target_only, [5.0], 0) is None
    assert [duration(s) for s in (8, 75, 3700)] == ["8s", "1m15s", "1h01m"]
