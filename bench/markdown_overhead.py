"""docs/benchmarks.md's time-to-next-batch table (section 2, per data set), from the overhead run's rounds."""

from __future__ import annotations

from typing import Any

from bench.next_batch import BATCH_STAGES, compare_paths

PART_NAMES = {"fit": "fit", "predict": "predict", "embed": "pool embeddings", "trainer_job": "trainer job"}


def next_batch_table(d: dict[str, Any]) -> list[str]:
    """The median seconds from a batch's last label to the next batch, by stage, on both paths."""
    both = d.get("time_to_next_batch") or compare_paths(d)
    svc, ref = both["services"], both["in_process"]
    if svc is None:
        return []
    ref = ref or {"median": None, "p90": None, "by_stage": {}, "train_parts": {}}

    def cell(summary: dict[str, Any], group: str, key: str) -> str:
        value = summary[group].get(key)
        return "-" if value is None else f"{value:.3f}"

    rounds = ", ".join(str(n) for n in svc["rounds"])
    out = [
        f"Time to next batch (rounds {rounds}): from a batch's last label to the next batch being ready, "
        "the labelers' wait between batches; the same sum of stages the controller observes in "
        "`labelloop_time_to_next_batch_seconds`. Median seconds by stage (the train stage's parts "
        "indented; the in-process loop has no snapshot, and its train is fit + predict). p90 is the "
        "nearest rank: with fewer than ten rounds, the slowest.",
        "",
        "| stage | in-process | services |",
        "|---|---|---|",
    ]
    for stage in BATCH_STAGES:
        out.append(f"| {stage} | {cell(ref, 'by_stage', stage)} | {cell(svc, 'by_stage', stage)} |")
        if stage == "train":
            out += [
                f"| &nbsp;&nbsp;{PART_NAMES.get(part, part)} | {cell(ref, 'train_parts', part)} "
                f"| {cell(svc, 'train_parts', part)} |"
                for part in svc["train_parts"]
            ]
    out += [
        f"| **time to next batch, median** | {_seconds(ref['median'])} | **{_seconds(svc['median'])}** |",
        f"| time to next batch, p90 | {_seconds(ref['p90'])} | {_seconds(svc['p90'])} |",
        "",
    ]
    return out


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
