"""The first labeled set: k random pool examples per ground-truth class, or ids the caller names."""

from __future__ import annotations

import numpy as np

from labelloop.core.errors import FailedPrecondition, InvalidArgument
from labelloop.v1 import experiments_pb2


def initial_example_ids(
    initial: experiments_pb2.InitialLabels,
    pool_ids: list[str],
    truth: dict[str, str] | None,
    classes: list[str],
    seed: int,
) -> list[str]:
    """The initial ids, deterministic for a seed (a replay after a crash picks the same ones)."""
    if initial.example_ids:
        return explicit_ids(list(initial.example_ids), pool_ids)
    if truth is None:
        raise FailedPrecondition(
            "initial_labels.per_class needs a ground-truth column in the dataset: "
            "name the examples in initial_labels.example_ids instead"
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
