"""The selector's domain logic: pick the next batch to label from stored score arrays.

This module reads the scores, the exclusions, (for max_per_class) the predicted classes and (for
methods that need them) opens the embeddings; a batch selector plug-in (batch/, chosen by the
request's batch_method) then chooses the batch as a whole.
Rules:
- lowest scores first (the default method); ties broken by a seeded hash of the row (same seed,
  same batch);
- never an example in exclude_example_ids (e.g. pending labels);
- labeled examples compete (with their labeled_scores) only when allow_relabel is set;
- with max_per_class, at most that many examples per predicted class (argmax of the probabilities),
  filling the batch further down the ranking;
- fewer eligible examples than batch_size returns all of them, and none returns an empty batch:
  an exhausted pool is an answer for the caller (stop the experiment), not an error;
- a method that does not need scores (BatchNeeds.scores False) may be asked without them: the rows and
  example ids are then those of unlabeled_embeddings, and every reported score is 0.
Example ids are assumed unique across the unlabeled and labeled arrays.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from labelloop.core.arrays import (
    StoredArray,
    open_array,
    predicted_classes,
    predicted_classes_of_rows,
    read_ids,
)
from labelloop.core.errors import InvalidArgument
from labelloop.core.metrics import SELECTOR_SELECTED
from labelloop.core.storage import ObjectStore
from labelloop.selector.batch import batch_selector_for
from labelloop.selector.batch.base import BatchRequest
from labelloop.selector.batch.registry import DEFAULT_BATCH_METHOD
from labelloop.selector.embeddings import StoredEmbeddings, open_by_id, read_all, read_rows
from labelloop.v1 import common_pb2

CHUNK_ROWS = 65536
# Up to this many selected rows, their predicted classes are read row by row (ranged reads)
# instead of streaming the whole probability array.
ROW_READ_LIMIT = 4096


@dataclass(frozen=True)
class SelectedExample:
    example_id: str
    score: float  # 0 when the request had no scores
    relabel: bool  # already labeled, chosen for another annotation
    predicted_class: int  # -1 without probabilities


@dataclass(frozen=True)
class _Part:
    """The unlabeled or the labeled half of the candidates."""

    scores: StoredArray | None  # None: a method without scores, rows from the embeddings
    rows: int
    ids: list[str]
    probabilities: StoredArray | None
    relabel: bool


def _given(ref: common_pb2.ArrayRef | None) -> bool:
    return ref is not None and bool(ref.uri)


def select_batch(
    store: ObjectStore,
    unlabeled_scores: common_pb2.ArrayRef | None,
    batch_size: int,
    *,
    labeled_scores: common_pb2.ArrayRef | None = None,
    exclude_example_ids: Iterable[str] = (),
    allow_relabel: bool = False,
    seed: int = 0,
    max_per_class: int = 0,
    unlabeled_probabilities: common_pb2.ArrayRef | None = None,
    labeled_probabilities: common_pb2.ArrayRef | None = None,
    batch_method: int = 0,
    unlabeled_embeddings: common_pb2.ArrayRef | None = None,
    labeled_embeddings: common_pb2.ArrayRef | None = None,
) -> list[SelectedExample]:
    selector = batch_selector_for(batch_method)
    method = common_pb2.BatchMethod.Name(batch_method or DEFAULT_BATCH_METHOD)
    if batch_size <= 0:
        raise InvalidArgument(f"batch_size is {batch_size}: ask for at least one example")
    if max_per_class < 0:
        raise InvalidArgument(f"max_per_class is {max_per_class}: use a positive cap, or 0 for none")
    if selector.needs.embeddings and not _given(unlabeled_embeddings):
        raise InvalidArgument(f"{method} needs unlabeled_embeddings: set it to the pool's embeddings")
    if _given(unlabeled_scores):
        assert unlabeled_scores is not None
        parts = [_open_part(store, unlabeled_scores, unlabeled_probabilities, "unlabeled", relabel=False)]
        if allow_relabel and _given(labeled_scores):
            assert labeled_scores is not None
            parts.append(_open_part(store, labeled_scores, labeled_probabilities, "labeled", relabel=True))
    elif not selector.needs.scores and unlabeled_embeddings is not None:
        parts = [_embedding_part(store, unlabeled_embeddings, unlabeled_probabilities)]
    else:
        raise InvalidArgument(f"unlabeled_scores.uri is empty: {method} ranks the pool by its scores")
    if max_per_class and any(p.probabilities is None for p in parts):
        missing = [
            f"{'labeled' if p.relabel else 'unlabeled'}_probabilities" for p in parts if not p.probabilities
        ]
        raise InvalidArgument(
            f"max_per_class needs the predicted classes: set {' and '.join(missing)}, or max_per_class=0"
        )

    scores = np.concatenate([_read_scores(store, p.scores) if p.scores else np.zeros(p.rows) for p in parts])
    ids = [i for p in parts for i in p.ids]
    excluded = set(exclude_example_ids)
    eligible = np.fromiter((i not in excluded for i in ids), dtype=bool, count=len(ids)) if excluded else None
    candidates = np.arange(len(scores)) if eligible is None else np.flatnonzero(eligible)

    classes = None
    if max_per_class:  # the cap needs every candidate's class (every part has probabilities, see above)
        arrays = [p.probabilities for p in parts if p.probabilities is not None]
        classes = np.concatenate([predicted_classes(store, array) for array in arrays])
    embeddings, labeled = None, None
    if selector.needs.embeddings:
        assert unlabeled_embeddings is not None
        embeddings, labeled = _embeddings(store, parts, unlabeled_embeddings, labeled_embeddings, method)
    request = BatchRequest(
        scores, candidates, batch_size, seed, max_per_class, classes,
        embeddings=embeddings, labeled_embeddings=labeled, unlabeled_rows=parts[0].rows,
    )  # fmt: skip
    rows = selector.select(request)
    if len(rows) > batch_size:  # a bug in the plug-in, not in the request
        raise RuntimeError(f"batch_method {batch_method} chose {len(rows)} rows for a batch of {batch_size}")
    predicted = classes[rows] if classes is not None else _predicted_classes(store, parts, rows)

    unlabeled_rows = parts[0].rows
    batch = [
        SelectedExample(ids[r], float(scores[r]), bool(r >= unlabeled_rows), int(c))
        for r, c in zip(rows.tolist(), predicted.tolist(), strict=True)
    ]
    SELECTOR_SELECTED.inc(len(batch))
    return batch


def _embeddings(
    store: ObjectStore,
    parts: list[_Part],
    unlabeled_ref: common_pb2.ArrayRef,
    labeled_ref: common_pb2.ArrayRef | None,
    method: str,
) -> tuple[StoredEmbeddings, np.ndarray | None]:
    """The rows' embeddings, and every labeled example's when given, checked against the parts.

    Either array may hold more examples than the request's rows (e.g. the round's pool embeddings):
    rows are then found by example id. When labeled_embeddings is the very array of
    unlabeled_embeddings, the labeled examples are those of labeled_scores, or else its examples
    that have no unlabeled row."""
    first = parts[0]
    ids = first.ids if first.scores else None  # else the ids came from these very embeddings
    unlabeled, own_ids, row_map = open_by_id(store, unlabeled_ref, "unlabeled_embeddings", ids)
    relabel = parts[1] if len(parts) > 1 else None
    if not _given(labeled_ref):
        if relabel is not None:
            raise InvalidArgument(
                f"{method} with allow_relabel needs labeled_embeddings, rows as in labeled_scores: set "
                "it, or leave labeled_scores out"
            )
        return StoredEmbeddings(store, unlabeled, row_map=row_map), None
    assert labeled_ref is not None
    labeled_ids = relabel.ids if relabel else None
    if labeled_ref.uri == unlabeled_ref.uri and labeled_ids is None and own_ids is not None:
        unlabeled_set = set(first.ids)
        labeled_ids = [i for i in own_ids if i not in unlabeled_set]
    array, _, labeled_map = open_by_id(
        store, labeled_ref, "labeled_embeddings", labeled_ids, "labeled_scores"
    )
    if array.shape[1] != unlabeled.shape[1]:
        raise InvalidArgument(
            f"labeled_embeddings have {array.shape[1]} columns but unlabeled_embeddings have "
            f"{unlabeled.shape[1]}: both must come from the same model"
        )
    labeled = read_all(store, array) if labeled_map is None else read_rows(store, array, labeled_map)
    return StoredEmbeddings(store, unlabeled, labeled if relabel else None, row_map), labeled


def _embedding_part(
    store: ObjectStore, embeddings_ref: common_pb2.ArrayRef, probs_ref: common_pb2.ArrayRef | None
) -> _Part:
    """The unlabeled rows of a request without scores: those of unlabeled_embeddings."""
    array = open_array(store, embeddings_ref, "unlabeled_embeddings", ndim=2)
    if not array.example_ids_uri:
        raise InvalidArgument(
            "unlabeled_embeddings.example_ids_uri is empty: without unlabeled_scores the selector takes "
            "the example ids from the embeddings"
        )
    ids = read_ids(store, array)
    assert ids is not None
    return _Part(None, array.rows, ids, _probabilities(store, probs_ref, "unlabeled", array.rows), False)


def _open_part(
    store: ObjectStore,
    scores_ref: common_pb2.ArrayRef,
    probs_ref: common_pb2.ArrayRef | None,
    kind: str,
    relabel: bool,
) -> _Part:
    scores = open_array(store, scores_ref, f"{kind}_scores", ndim=1)
    if scores.dtype.kind != "f":
        raise InvalidArgument(f"{kind}_scores has dtype {scores.dtype}: scores must be float")
    if not scores.example_ids_uri:
        raise InvalidArgument(f"{kind}_scores.example_ids_uri is empty: the selector returns example ids")
    ids = read_ids(store, scores)
    assert ids is not None
    return _Part(scores, scores.rows, ids, _probabilities(store, probs_ref, kind, scores.rows), relabel)


def _probabilities(
    store: ObjectStore, probs_ref: common_pb2.ArrayRef | None, kind: str, rows: int
) -> StoredArray | None:
    if not _given(probs_ref):
        return None
    assert probs_ref is not None
    probabilities = open_array(store, probs_ref, f"{kind}_probabilities", ndim=2)
    if probabilities.rows != rows:
        raise InvalidArgument(
            f"{kind}_probabilities has {probabilities.rows} rows but there are {rows} {kind} examples: "
            "rows must be the same examples in the same order"
        )
    return probabilities


def _read_scores(store: ObjectStore, array: StoredArray) -> np.ndarray:
    out = np.empty(array.rows, dtype=np.float64)
    for start, rows in store.iter_array_rows(array.key, CHUNK_ROWS):
        out[start : start + len(rows)] = rows
    nan = np.flatnonzero(np.isnan(out))
    if len(nan):
        raise InvalidArgument(f"{array.name} ({array.uri}) has NaN at row {nan[0]}: rescore the examples")
    return out


def _predicted_classes(store: ObjectStore, parts: list[_Part], rows: np.ndarray) -> np.ndarray:
    predicted = np.full(len(rows), -1, dtype=np.int64)
    first = 0
    for part in parts:
        inside = (rows >= first) & (rows < first + part.rows)
        if part.probabilities is not None and inside.any():
            local = rows[inside] - first
            if len(local) <= ROW_READ_LIMIT:
                predicted[inside] = predicted_classes_of_rows(store, part.probabilities, local)
            else:
                predicted[inside] = predicted_classes(store, part.probabilities)[local]
        first += part.rows
    return predicted
