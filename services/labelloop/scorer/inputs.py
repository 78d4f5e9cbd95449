"""The scorer's inputs: open and check the arrays a request names, as far as its strategy needs them.

Pool arrays are only opened here (header and example ids); their rows are validated chunk by chunk
while scoring. The labeled side is small and read whole by `read_fit_inputs`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from labelloop.core.arrays import (
    StoredArray,
    check_probability_array,
    open_array,
    read_ids,
    read_probabilities,
)
from labelloop.core.errors import InvalidArgument
from labelloop.core.storage import ObjectStore
from labelloop.scorer.strategies.base import FitInputs, Needs
from labelloop.v1 import common_pb2

# Default chunk: about a million probabilities per model (4-8 MB), small enough to stay in cache-
# friendly territory and to bound memory, large enough that per-chunk overhead does not matter.
DEFAULT_CHUNK_ELEMENTS = 1 << 20


@dataclass(frozen=True)
class ScoringInputs:
    unlabeled: list[StoredArray]  # one per model
    labeled: list[StoredArray]  # one per model, or none
    labels: StoredArray | None  # only when the strategy needs them and they were given
    num_classes: int
    chunk_rows: int


def open_inputs(
    store: ObjectStore,
    needs: Needs,
    strategy_name: str,
    unlabeled_refs: Sequence[common_pb2.ArrayRef],
    labeled_refs: Sequence[common_pb2.ArrayRef],
    labels_ref: common_pb2.ArrayRef | None,
    chunk_size: int,
) -> ScoringInputs:
    """Checks a request against the strategy's needs and opens the arrays it names."""
    if chunk_size < 0:
        raise InvalidArgument(f"chunk_size is {chunk_size}: use a row count > 0, or 0 for the default")
    if not unlabeled_refs:
        raise InvalidArgument("unlabeled_probabilities is empty: give one ArrayRef per model")
    _check_needs(needs, strategy_name, unlabeled_refs, labeled_refs)
    if labeled_refs and len(labeled_refs) != len(unlabeled_refs):
        raise InvalidArgument(
            f"{len(unlabeled_refs)} unlabeled_probabilities but {len(labeled_refs)} "
            "labeled_probabilities: give one of each per model, in the same model order"
        )
    unlabeled = _open_group(store, unlabeled_refs, "unlabeled_probabilities")
    labeled = _open_group(store, labeled_refs, "labeled_probabilities")
    num_classes = unlabeled[0].shape[1]
    if labeled and labeled[0].shape[1] != num_classes:
        raise InvalidArgument(
            f"labeled_probabilities have {labeled[0].shape[1]} classes but unlabeled_probabilities have "
            f"{num_classes}: both must use the dataset's class order"
        )
    # Strategies that do not need annotator labels ignore them.
    labels = _open_labels(store, strategy_name, labels_ref, labeled) if needs.labels_multiannotator else None
    chunk_rows = chunk_size or max(1, DEFAULT_CHUNK_ELEMENTS // (num_classes * len(unlabeled)))
    return ScoringInputs(unlabeled, labeled, labels, num_classes, chunk_rows)


def read_fit_inputs(store: ObjectStore, inputs: ScoringInputs, seed: int) -> FitInputs:
    """The labeled side read whole and validated, for the strategy's fit step."""
    labeled = [read_probabilities(store, a, inputs.chunk_rows) for a in inputs.labeled]
    labels = None if inputs.labels is None else read_labels(store, inputs.labels, inputs.num_classes)
    return FitInputs(
        num_classes=inputs.num_classes,
        num_models=len(inputs.unlabeled),
        seed=seed,
        labeled=labeled,
        labels_multiannotator=labels,
    )


def _check_needs(
    needs: Needs,
    strategy_name: str,
    unlabeled_refs: Sequence[common_pb2.ArrayRef],
    labeled_refs: Sequence[common_pb2.ArrayRef],
) -> None:
    if needs.embeddings:
        raise InvalidArgument(
            f"strategy {strategy_name} needs embeddings, which a ScoreExamples request cannot carry yet"
        )
    if not needs.several_models and len(unlabeled_refs) > 1:
        raise InvalidArgument(
            f"strategy {strategy_name} scores with one model, but {len(unlabeled_refs)} "
            "unlabeled_probabilities were given: pass one model's probabilities"
        )
    if not needs.labeled_probabilities and labeled_refs:
        raise InvalidArgument(
            f"strategy {strategy_name} does not score labeled examples: leave labeled_probabilities empty"
        )


def _open_group(store: ObjectStore, refs: Sequence[common_pb2.ArrayRef], field: str) -> list[StoredArray]:
    """One probability array per model: same rows, same classes, same example ids."""
    arrays = [open_array(store, ref, f"{field}[{i}]", ndim=2) for i, ref in enumerate(refs)]
    for array in arrays:
        check_probability_array(array)
        if array.shape != arrays[0].shape:
            raise InvalidArgument(
                f"{array.name} has shape {list(array.shape)} but {arrays[0].name} has "
                f"{list(arrays[0].shape)}: every model must predict the same examples and classes"
            )
    ids = [read_ids(store, a) for a in arrays]
    for array, array_ids in zip(arrays[1:], ids[1:], strict=True):
        if array_ids is not None and ids[0] is not None and array_ids != ids[0]:
            raise InvalidArgument(
                f"{array.name} lists other example ids than {arrays[0].name}: rows must be the same examples"
            )
    return arrays


def _open_labels(
    store: ObjectStore,
    strategy_name: str,
    labels_ref: common_pb2.ArrayRef | None,
    labeled: list[StoredArray],
) -> StoredArray | None:
    """labels_multiannotator comes exactly when labeled_probabilities do, with the same rows."""
    has_labels = labels_ref is not None and bool(labels_ref.uri)
    if labeled and not has_labels:
        raise InvalidArgument(
            f"strategy {strategy_name} needs labels_multiannotator to score labeled_probabilities: "
            "pass both or neither"
        )
    if not has_labels:
        return None
    if not labeled:
        raise InvalidArgument(
            f"labels_multiannotator was given without labeled_probabilities: strategy {strategy_name} "
            "needs the labeled examples' probabilities too (pass both or neither)"
        )
    assert labels_ref is not None
    labels = open_array(store, labels_ref, "labels_multiannotator", ndim=2)
    if labels.rows != labeled[0].rows:
        raise InvalidArgument(
            f"labels_multiannotator has {labels.rows} rows but labeled_probabilities have "
            f"{labeled[0].rows}: rows must be the same examples in the same order"
        )
    return labels


def read_labels(store: ObjectStore, labels: StoredArray, num_classes: int) -> np.ndarray:
    """labels_multiannotator as float64 class indices with NaN for missing, annotators without any label
    here dropped."""
    values = store.get_array(labels.key)
    if values.dtype.kind not in "fiu":
        raise InvalidArgument(
            f"labels_multiannotator has dtype {values.dtype}: use float, with NaN for missing labels"
        )
    values = values.astype(np.float64)
    given = ~np.isnan(values)
    if np.isinf(values).any() or (values[given] != np.round(values[given])).any():
        raise InvalidArgument("labels_multiannotator must hold class indices (whole numbers) or NaN")
    outside = given & ((values < 0) | (values >= num_classes))
    if outside.any():
        row, col = np.argwhere(outside)[0]
        raise InvalidArgument(
            f"labels_multiannotator[{row}, {col}] is {values[row, col]:g}: class indices must be in "
            f"[0, {num_classes})"
        )
    unlabeled_rows = np.flatnonzero(~given.any(axis=1))
    if len(unlabeled_rows):
        raise InvalidArgument(
            f"labels_multiannotator row {unlabeled_rows[0]} has no label: every labeled example needs "
            "at least one (score unlabeled examples through unlabeled_probabilities)"
        )
    # Annotators without any label here carry no information; cleanlab rejects such columns.
    return values[:, given.any(axis=0)]
