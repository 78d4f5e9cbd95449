"""Stopping rules and the size of the next batch. The first rule reached wins."""

from __future__ import annotations

from labelloop.v1 import experiments_pb2


def stop_reason(
    rule: experiments_pb2.StoppingRule,
    round_number: int,
    labels_used: int,
    test_accuracy: float,
    selectable: int,
) -> str:
    """Why the experiment ends after evaluating `round_number`, or "" to keep going.

    Round n's model was trained after n labeling rounds, so max_rounds=M ends after round M.
    """
    if rule.max_rounds and round_number >= rule.max_rounds:
        return f"reached max_rounds={rule.max_rounds}"
    if rule.target_accuracy and test_accuracy >= rule.target_accuracy:
        return f"test accuracy {test_accuracy:.4f} reached target_accuracy={rule.target_accuracy}"
    if rule.label_budget and labels_used >= rule.label_budget:
        return f"used the label budget ({labels_used} of {rule.label_budget} labels)"
    if selectable <= 0:
        return "no examples left to label"
    return ""


def next_batch_size(batch_size: int, rule: experiments_pb2.StoppingRule, labels_used: int) -> int:
    """The batch size, truncated so that the labels bought never exceed the budget."""
    if rule.label_budget:
        return max(0, min(batch_size, rule.label_budget - labels_used))
    return batch_size
