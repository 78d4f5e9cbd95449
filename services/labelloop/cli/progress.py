"""Showing experiments to people: tqdm progress bars while watching, and a rounds table."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from tqdm import tqdm

from labelloop.client import LabelLoopClient, stage_name, state_name
from labelloop.v1 import experiments_pb2

# The controller reports trainer progress as "train 45%: <trainer message>".
_PERCENT = re.compile(r"^(\w+) (\d+)%(?::\s*(.*))?$")


def watch_with_bars(client: LabelLoopClient, experiment: str) -> experiments_pb2.Experiment:
    """Two bars until the experiment ends: rounds, and the current stage's progress."""
    current = client.get(experiment)
    rule = current.config.stopping_rule
    total_rounds = rule.max_rounds + 1 if rule.max_rounds else None
    rounds = tqdm(total=total_rounds, desc="rounds", unit="round", position=0, dynamic_ncols=True)
    stage = tqdm(
        total=100, desc="stage", bar_format="{desc}: {percentage:3.0f}%|{bar}| {postfix}", position=1
    )
    try:
        for current, round_ in client.watch(experiment):
            rounds.n = current.rounds_completed
            rounds.set_postfix(
                state=state_name(current.state),
                labeled=current.labeled_count,
                accuracy=f"{current.latest_test_accuracy:.3f}",
            )
            stage.set_description(f"round {round_.number} {stage_name(round_.stage)}")
            match = _PERCENT.match(round_.progress_message)
            stage.n = (
                int(match[2]) if match else (100 if round_.stage == experiments_pb2.ROUND_STAGE_DONE else 0)
            )
            stage.set_postfix_str((match[3] or "") if match else round_.progress_message, refresh=False)
            rounds.refresh()
            stage.refresh()
    finally:
        stage.close()
        rounds.close()
    return current


def format_table(rows: Iterable[dict[str, Any]]) -> str:
    """round | labeled | test accuracy | seconds, one line per round."""
    lines = [f"{'round':>5}  {'labeled':>7}  {'test accuracy':>13}  {'seconds':>8}"]
    for row in rows:
        lines.append(
            f"{row['round']:>5}  {row['labeled']:>7}  {row['test_accuracy']:>13.4f}  {row['seconds']:>8.1f}"
        )
    return "\n".join(lines)
