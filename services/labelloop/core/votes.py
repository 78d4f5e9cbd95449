"""Majority vote over an annotation log, the one rule for a consensus without a model: each annotator's
latest label of an example counts once; a tie goes to the label voted most recently, so the result is
deterministic and follows the newest opinion. The store's snapshots and the controller's exports use it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

# annotator -> (label, position in the log) of that annotator's latest label of one example.
Votes = Mapping[str, tuple[str, int]]


def latest_votes(annotations: Iterable[tuple[str, str, str]]) -> dict[str, dict[str, tuple[str, int]]]:
    """example_id -> its Votes, from (example_id, annotator, label) in append order."""
    votes: dict[str, dict[str, tuple[str, int]]] = {}
    for position, (example_id, annotator, label) in enumerate(annotations):
        votes.setdefault(example_id, {})[annotator] = (label, position)  # a later label replaces one
    return votes


def majority(votes: Votes) -> tuple[str, int]:
    """The winning label and how many annotators gave it."""
    tally = Counter(label for label, _ in votes.values())
    last_vote = {label: max(p for lb, p in votes.values() if lb == label) for label in tally}
    winner = max(tally, key=lambda label: (tally[label], last_vote[label]))
    return winner, tally[winner]
