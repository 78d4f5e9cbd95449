"""Time to next batch: from a batch's last label to the next batch being ready for labelers.

The figure labelers feel as dead time between batches. It is what the controller observes in its
`labelloop_time_to_next_batch_seconds` histogram (controller/runner.py, after SELECT): the seconds of a
round's snapshot, train, evaluate, score and select stages, for every round after round 0 that handed
a batch to labelers (round 0's snapshot also waits for the first labels; the last round selects
nothing). Here it is computed from the rounds' stage seconds (Round.stage_seconds), per stage too.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any

# The controller's round stages before LABEL (runner.MAIN_STAGES[:-1]); the in-process loop has no
# snapshot and reports its training as fit + predict.
BATCH_STAGES = ("snapshot", "train", "evaluate", "score", "select")
# Parts of the services' train stage: the model's fit and predict, and the rest (the trainer job's own
# dispatch, store reads and writes, and the run's end reaching the controller).
TRAIN_PARTS = ("fit", "predict", "embed")
TRAIN_REST = "trainer_job"


def batch_rounds(rounds: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rounds after round 0 whose batch went to labelers: those that recorded a label stage."""
    return [r for r in rounds if r["number"] > 0 and "label" in r["stage_seconds"]]


def stage_split(round_: dict[str, Any]) -> dict[str, float]:
    """Seconds of each stage up to the batch, with the train stage's parts (services) or, in process,
    train = fit + predict."""
    seconds = round_["stage_seconds"]
    out = {s: float(seconds.get(s, 0.0)) for s in BATCH_STAGES}
    parts = {p: float(seconds.get(p, 0.0)) for p in TRAIN_PARTS}
    if "train" not in seconds:
        out["train"] = sum(parts.values())
    out |= {p: v for p, v in parts.items() if p in seconds}
    out[TRAIN_REST] = max(out["train"] - sum(parts.values()), 0.0)
    return out


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest rank: the smallest value with at least `fraction` of the values at or below it (with
    few rounds, p90 is the slowest)."""
    ordered = sorted(values)
    return ordered[max(math.ceil(fraction * len(ordered)) - 1, 0)]


def summary(rounds: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """Median and p90 seconds to the next batch, the median of each stage (by_stage) and of the train
    stage's parts (train_parts), over the rounds that handed out a batch; None when no round did (an
    experiment of fewer than three rounds)."""
    chosen = batch_rounds(rounds)
    if not chosen:
        return None
    splits = [stage_split(r) for r in chosen]
    totals = [sum(s[k] for k in BATCH_STAGES) for s in splits]
    parts = [p for p in (*TRAIN_PARTS, TRAIN_REST) if any(p in s for s in splits)]

    def median(key: str) -> float:
        return round(statistics.median(s.get(key, 0.0) for s in splits), 3)

    return {
        "median": round(statistics.median(totals), 3),
        "p90": round(percentile(totals, 0.9), 3),
        "by_stage": {k: median(k) for k in BATCH_STAGES},
        "train_parts": {k: median(k) for k in parts},
        "rounds": [r["number"] for r in chosen],
    }


def compare_paths(result: dict[str, Any]) -> dict[str, Any]:
    """Both paths of an overhead run: the services' figure and the in-process loop's."""
    return {
        "services": summary(result["services"]["rounds"]),
        "in_process": summary(result["reference"]["rounds"]),
    }
