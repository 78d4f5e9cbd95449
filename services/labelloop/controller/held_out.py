"""Out-of-sample probabilities for labeled examples (LABELED_PROBABILITIES_OUT_OF_SAMPLE).

A model trained on an example's labels is overconfident about it, which makes another label look
useless to ActiveLab. So each round keeps, when it selects its batch, the new examples' rows of its
own model (which had not trained on them): "selected" in the round's folder. A later round hands the
scorer, for each labeled example, the row of the earliest round that selected it. Examples no round
selected (the first labeled set, labels people added on their own) keep the current model's
in-sample row: the first set's models all trained on it, and cross-fitting would cost extra training
runs per round; see docs/architecture.md.
"""

from __future__ import annotations

import numpy as np

from labelloop.controller.arrays import CHUNK_ROWS, read_ids
from labelloop.core.arrays import array_ref, write_ids
from labelloop.core.errors import FailedPrecondition
from labelloop.core.layout import example_ids_key, probabilities_key
from labelloop.core.storage import ObjectStore
from labelloop.v1 import common_pb2

SELECTED = "selected"
OUT_OF_SAMPLE = "labeled_out_of_sample"


class KeptRows:
    """The rows each round kept when it selected, by URI, held by the experiment's runner. Every later
    round reads all of them (for scoring and for its labeling report), which grew with the rounds;
    a round's rows never change once written (a replayed step writes the same rows)."""

    def __init__(self) -> None:
        self._rows: dict[str, tuple[np.ndarray, list[str]]] = {}

    def put(self, ref: common_pb2.ArrayRef, values: np.ndarray, ids: list[str]) -> None:
        self._rows[ref.uri] = (values, ids)

    def get(self, store: ObjectStore, ref: common_pb2.ArrayRef) -> tuple[np.ndarray, list[str]]:
        if ref.uri not in self._rows:
            self._rows[ref.uri] = (store.get_array(store.ref_to_key(ref.uri)), read_ids(store, ref))
        return self._rows[ref.uri]


def gather_rows(
    store: ObjectStore, ref: common_pb2.ArrayRef, rows: np.ndarray, chunk_rows: int = CHUNK_ROWS
) -> np.ndarray:
    """The given rows of a stored array, in the given order, read chunk by chunk."""
    key = store.ref_to_key(ref.uri)
    shape, dtype, _ = store.array_header(key)
    out = np.empty((len(rows), *shape[1:]), dtype=dtype)
    order = np.argsort(rows, kind="stable")
    ordered = rows[order]
    for start, chunk in store.iter_array_rows(key, chunk_rows):
        lo, hi = np.searchsorted(ordered, [start, start + len(chunk)])
        out[order[lo:hi]] = chunk[ordered[lo:hi] - start]
    return out


def keep_selected_rows(
    store: ObjectStore,
    unlabeled: common_pb2.ArrayRef,
    selected: list[str],
    prefix: str,
    kept: KeptRows | None = None,
) -> common_pb2.ArrayRef | None:
    """Stores the round model's rows of the newly selected examples (those among `unlabeled`; a
    re-labeled one was trained on already). None when every selected example was labeled before."""
    ids = read_ids(store, unlabeled)
    position = {example_id: i for i, example_id in enumerate(ids)}
    new = [i for i in selected if i in position]
    if not new:
        return None
    values = gather_rows(store, unlabeled, np.array([position[i] for i in new], dtype=np.int64))
    key = probabilities_key(prefix, SELECTED)
    store.put_array(key, values)
    ids_uri = write_ids(store, example_ids_key(prefix, SELECTED), new)
    ref = array_ref(store, key, values.shape, values.dtype, ids_uri)
    if kept is not None:
        kept.put(ref, values, new)
    return ref


def out_of_sample(
    store: ObjectStore,
    labeled: common_pb2.ArrayRef,
    selected_by_round: list[common_pb2.ArrayRef],
    prefix: str,
    kept_rows: KeptRows | None = None,
) -> tuple[common_pb2.ArrayRef, int]:
    """The labeled rows (as `labeled`, the current model's) with each example's row replaced by the
    one the earliest round that selected it kept; `selected_by_round` in round order. Returns the
    array (stored as probabilities_key(prefix, OUT_OF_SAMPLE), same example ids) and how many rows
    were replaced."""
    ids = read_ids(store, labeled)
    position = {example_id: i for i, example_id in enumerate(ids)}
    values = np.array(store.get_array(store.ref_to_key(labeled.uri)))
    replaced = np.zeros(len(ids), dtype=bool)
    kept_rows = kept_rows or KeptRows()
    for ref in selected_by_round:  # earliest first: the first model that had not trained on it
        kept, kept_ids = kept_rows.get(store, ref)
        if kept.shape[1:] != values.shape[1:]:
            raise FailedPrecondition(
                f"{ref.uri} has {kept.shape[1:]} columns, the labeled rows {values.shape[1:]}: "
                "the class count changed between rounds"
            )
        for row, example_id in enumerate(kept_ids):
            at = position.get(example_id)
            if at is not None and not replaced[at]:
                values[at] = kept[row]
                replaced[at] = True
    key = probabilities_key(prefix, OUT_OF_SAMPLE)
    store.put_array(key, values)
    return array_ref(store, key, values.shape, values.dtype, labeled.example_ids_uri), int(replaced.sum())
