"""The first labeled set: `count` examples chosen without labels (typical or random), k random pool
examples per ground-truth class (to reproduce cleanlab's reference), or ids the caller names."""

from __future__ import annotations

import numpy as np

from labelloop.core.errors import FailedPrecondition, InvalidArgument
from labelloop.v1 import experiments_pb2

TYPICAL = experiments_pb2.INITIAL_SELECTION_TYPICAL
RANDOM = experiments_pb2.INITIAL_SELECTION_RANDOM


def selection_of(initial: experiments_pb2.InitialLabels) -> int:
    """The label-free selection of a count-based first set; unset means typical."""
    return initial.selection or TYPICAL


def needs_embeddings(initial: experiments_pb2.InitialLabels) -> bool:
    """True when the first set is the typical examples of the pool's embeddings (a trainer run)."""
    return initial.count > 0 and selection_of(initial) == TYPICAL


def initial_example_ids(
    initial: experiments_pb2.InitialLabels,
    pool_ids: list[str],
    truth: dict[str, str] | None,
    classes: list[str],
    seed: int,
) -> list[str]:
    """The initial ids, deterministic for a seed (a replay after a crash picks the same ones). A
    typical first set needs embeddings: the runner chooses it with the trainer and the selector."""
    if initial.example_ids:
        return explicit_ids(list(initial.example_ids), pool_ids)
    if initial.count:
        if needs_embeddings(initial):
            raise FailedPrecondition("a typical first set is chosen from the pool's embeddings, not here")
        return random_ids(initial.count, pool_ids, seed)
    if truth is None:
        raise FailedPrecondition(
            "initial_labels.per_class needs a ground-truth column in the dataset: "
            "use initial_labels.count (chosen without labels) or initial_labels.example_ids instead"
        )
    return per_class_ids(initial.per_class, pool_ids, truth, classes, seed)


def explicit_ids(ids: list[str], pool_ids: list[str]) -> list[str]:
    if len(set(ids)) != len(ids):
        raise InvalidArgument("initial_labels.example_ids has duplicates: list every example once")
    pool = set(pool_ids)
    missing = [i for i in ids if i not in pool]
    if missing:
        raise InvalidArgument(
            f"initial_labels.example_ids names {len(missing)} examples that are not in the dataset's "
            f"pool split, e.g. {missing[:3]}: use example ids from ListExamples with split=SPLIT_POOL"
        )
    return ids


def random_ids(count: int, pool_ids: list[str], seed: int) -> list[str]:
    """`count` pool examples drawn uniformly without replacement, in id order."""
    if count > len(pool_ids):
        raise FailedPrecondition(
            f"initial_labels.count={count} exceeds the {len(pool_ids)} pool examples: lower count"
        )
    ordered = sorted(pool_ids)  # sorted: independent of the parquet row order
    picks = np.random.default_rng(seed).choice(len(ordered), size=count, replace=False)
    return [ordered[i] for i in sorted(picks.tolist())]


def per_class_ids(
    per_class: int, pool_ids: list[str], truth: dict[str, str], classes: list[str], seed: int
) -> list[str]:
    by_class: dict[str, list[str]] = {c: [] for c in classes}
    for example_id in sorted(pool_ids):  # sorted: independent of the parquet row order
        label = truth.get(example_id)
        if label in by_class:
            by_class[label].append(example_id)
    short = {c: len(ids) for c, ids in by_class.items() if len(ids) < per_class}
    if short:
        raise FailedPrecondition(
            f"initial_labels.per_class={per_class} but some classes have fewer pool examples "
            f"({short}): lower per_class to at most {min(len(v) for v in by_class.values())}"
        )
    rng = np.random.default_rng(seed)
    chosen: list[str] = []
    for c in classes:
        candidates = by_class[c]
        picks = rng.choice(len(candidates), size=per_class, replace=False)
        chosen.extend(candidates[i] for i in sorted(picks.tolist()))
    return chosen
