"""The scorer's domain logic: read probabilities chunk by chunk, score them, publish score arrays.

Outputs are float64 .npy files, `{output_uri}/unlabeled_scores.npy` and (when labeled probabilities
are given) `{output_uri}/labeled_scores.npy`, 8 bytes a row: exact enough to compare with cleanlab to
1e-12 and small next to the [rows, classes] probabilities they come from. Each output carries the
example_ids_uri of its input. Inputs are validated chunk by chunk while scoring, so outputs are
written to local temp files first and uploaded only once every chunk has passed: a bad request
stores nothing.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from labelloop.core.errors import InvalidArgument
from labelloop.core.metrics import SCORER_EXAMPLES, SCORER_SECONDS
from labelloop.core.storage import ArrayWriter, ObjectStore
from labelloop.scorer import strategies as st
from labelloop.scorer.arrays import (
    StoredArray,
    check_probability_array,
    iter_probabilities,
    open_array,
    read_ids,
    read_probabilities,
)
from labelloop.v1 import common_pb2

log = logging.getLogger(__name__)

# Default chunk: about a million probabilities per model (4-8 MB), small enough to stay in cache-
# friendly territory and to bound memory, large enough that per-chunk overhead does not matter.
DEFAULT_CHUNK_ELEMENTS = 1 << 20
SCORE_DTYPE = np.float64
SCORING_THREADS = max(1, min(8, os.cpu_count() or 1))


@dataclass(frozen=True)
class ScoreResult:
    unlabeled_scores: common_pb2.ArrayRef
    labeled_scores: common_pb2.ArrayRef | None
    scored_count: int


@dataclass(frozen=True)
class _Inputs:
    unlabeled: list[StoredArray]
    labeled: list[StoredArray]
    labels: StoredArray | None
    num_classes: int
    chunk_rows: int


class Scorer:
    def __init__(self, store: ObjectStore):
        self.store = store

    def score(
        self,
        strategy: int,
        unlabeled_probabilities: Sequence[common_pb2.ArrayRef],
        labeled_probabilities: Sequence[common_pb2.ArrayRef] = (),
        labels_multiannotator: common_pb2.ArrayRef | None = None,
        output_uri: str = "",
        seed: int = 0,
        chunk_size: int = 0,
    ) -> ScoreResult:
        name = st.strategy_name(strategy)
        started = time.perf_counter()
        if not output_uri:
            raise InvalidArgument("output_uri is empty: set it to a folder URI in the object store")
        prefix = self.store.ref_to_key(output_uri).rstrip("/") + "/"
        inputs = self._open_inputs(strategy, unlabeled_probabilities, labeled_probabilities,
                                   labels_multiannotator, chunk_size)  # fmt: skip
        labeled_scores, params = self._score_labeled(strategy, inputs, seed)
        unlabeled_key = prefix + "unlabeled_scores.npy"
        writer = ArrayWriter(self.store, unlabeled_key, (inputs.unlabeled[0].rows,), SCORE_DTYPE)
        try:
            self._score_unlabeled(strategy, inputs, params, seed, writer)
        except BaseException:
            writer.abort()
            raise
        # Every input has passed: publish.
        writer.close()
        result_unlabeled = self._ref(unlabeled_key, inputs.unlabeled[0])
        result_labeled = None
        if labeled_scores is not None:
            labeled_key = prefix + "labeled_scores.npy"
            self.store.put_array(labeled_key, labeled_scores.astype(SCORE_DTYPE))
            result_labeled = self._ref(labeled_key, inputs.labeled[0])

        count = inputs.unlabeled[0].rows + (len(labeled_scores) if labeled_scores is not None else 0)
        SCORER_EXAMPLES.labels(name).inc(count)
        SCORER_SECONDS.labels(name).observe(time.perf_counter() - started)
        log.info("scored %d examples with %s into %s", count, name, self.store.uri(prefix))
        return ScoreResult(result_unlabeled, result_labeled, count)

    # Inputs -------------------------------------------------------------------------------------

    def _open_inputs(
        self,
        strategy: int,
        unlabeled_refs: Sequence[common_pb2.ArrayRef],
        labeled_refs: Sequence[common_pb2.ArrayRef],
        labels_ref: common_pb2.ArrayRef | None,
        chunk_size: int,
    ) -> _Inputs:
        if chunk_size < 0:
            raise InvalidArgument(f"chunk_size is {chunk_size}: use a row count > 0, or 0 for the default")
        if not unlabeled_refs:
            raise InvalidArgument("unlabeled_probabilities is empty: give one ArrayRef per model")
        if labeled_refs and len(labeled_refs) != len(unlabeled_refs):
            raise InvalidArgument(
                f"{len(unlabeled_refs)} unlabeled_probabilities but {len(labeled_refs)} "
                "labeled_probabilities: give one of each per model, in the same model order"
            )
        unlabeled = self._open_group(unlabeled_refs, "unlabeled_probabilities")
        labeled = self._open_group(labeled_refs, "labeled_probabilities")
        num_classes = unlabeled[0].shape[1]
        if labeled and labeled[0].shape[1] != num_classes:
            raise InvalidArgument(
                f"labeled_probabilities have {labeled[0].shape[1]} classes but unlabeled_probabilities have "
                f"{num_classes}: both must use the dataset's class order"
            )

        labels = None
        if strategy == st.ACTIVELAB:  # the baselines do not use annotator labels
            has_labels = labels_ref is not None and bool(labels_ref.uri)
            if labeled and not has_labels:
                raise InvalidArgument(
                    "ActiveLab needs labels_multiannotator to score labeled_probabilities: "
                    "pass both or neither"
                )
            if has_labels and not labeled:
                raise InvalidArgument(
                    "labels_multiannotator was given without labeled_probabilities: ActiveLab needs the "
                    "labeled examples' probabilities too (pass both or neither)"
                )
            if has_labels:
                assert labels_ref is not None
                labels = open_array(self.store, labels_ref, "labels_multiannotator", ndim=2)
                if labels.rows != labeled[0].rows:
                    raise InvalidArgument(
                        f"labels_multiannotator has {labels.rows} rows but labeled_probabilities have "
                        f"{labeled[0].rows}: rows must be the same examples in the same order"
                    )
        chunk_rows = chunk_size or max(1, DEFAULT_CHUNK_ELEMENTS // (num_classes * len(unlabeled)))
        return _Inputs(unlabeled, labeled, labels, num_classes, chunk_rows)

    def _open_group(self, refs: Sequence[common_pb2.ArrayRef], field: str) -> list[StoredArray]:
        """One probability array per model: same rows, same classes, same example ids."""
        arrays = [open_array(self.store, ref, f"{field}[{i}]", ndim=2) for i, ref in enumerate(refs)]
        for array in arrays:
            check_probability_array(array)
            if array.shape != arrays[0].shape:
                raise InvalidArgument(
                    f"{array.name} has shape {list(array.shape)} but {arrays[0].name} has "
                    f"{list(arrays[0].shape)}: every model must predict the same examples and classes"
                )
        ids = [read_ids(self.store, a) for a in arrays]
        for array, array_ids in zip(arrays[1:], ids[1:], strict=True):
            if array_ids is not None and ids[0] is not None and array_ids != ids[0]:
                raise InvalidArgument(
                    f"{array.name} lists other example ids than {arrays[0].name}: "
                    "rows must be the same examples"
                )
        return arrays

    def _read_labels(self, labels: StoredArray, num_classes: int) -> np.ndarray:
        values = self.store.get_array(labels.key)
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

    # Scoring ------------------------------------------------------------------------------------

    def _score_labeled(
        self, strategy: int, inputs: _Inputs, seed: int
    ) -> tuple[np.ndarray | None, st.ActiveLabParams | None]:
        """Labeled sets are small: read them whole, validate, score (ActiveLab through cleanlab)."""
        models = len(inputs.unlabeled)
        if not inputs.labeled:
            params = st.ActiveLabParams.unlabeled_only(inputs.num_classes, models)
            return None, params if strategy == st.ACTIVELAB else None
        probs = [read_probabilities(self.store, a, inputs.chunk_rows) for a in inputs.labeled]
        if strategy == st.ACTIVELAB:
            assert inputs.labels is not None
            params, scores = st.fit_activelab(self._read_labels(inputs.labels, inputs.num_classes), probs)
            return scores, params
        if strategy == st.RANDOM:
            return st.random_scores(_rng(seed, stream=1), len(probs[0])), None
        return _baseline(strategy, probs), None

    def _score_unlabeled(
        self,
        strategy: int,
        inputs: _Inputs,
        params: st.ActiveLabParams | None,
        seed: int,
        writer: ArrayWriter,
    ) -> None:
        """Reads chunks in order and scores them on a small thread pool (numpy releases the GIL).

        At most 2 chunks per worker are in flight, so memory stays bounded by the chunk size.
        Random scores come from one sequential stream and are drawn in order on this thread.
        """
        rng = _rng(seed, stream=0)
        streams = [iter_probabilities(self.store, a, inputs.chunk_rows) for a in inputs.unlabeled]

        def score_chunk(start: int, rows: list[np.ndarray], sums: list[np.ndarray]) -> None:
            if strategy == st.ACTIVELAB:
                assert params is not None
                writer.write(start, st.score_unlabeled(params, rows, sums))
            else:
                writer.write(start, _baseline(strategy, rows))

        with ThreadPoolExecutor(max_workers=SCORING_THREADS, thread_name_prefix="score") as pool:
            in_flight: deque[Future[None]] = deque()
            for chunk in zip(*streams, strict=True):
                start, rows = chunk[0][0], [c[1] for c in chunk]
                if strategy == st.RANDOM:
                    writer.write(start, st.random_scores(rng, len(rows[0])))
                    continue
                in_flight.append(pool.submit(score_chunk, start, rows, [c[2] for c in chunk]))
                if len(in_flight) >= 2 * SCORING_THREADS:
                    in_flight.popleft().result()
            for future in in_flight:
                future.result()

    def _ref(self, key: str, source: StoredArray) -> common_pb2.ArrayRef:
        return common_pb2.ArrayRef(
            uri=self.store.uri(key),
            shape=[source.rows],
            dtype=np.dtype(SCORE_DTYPE).name,
            example_ids_uri=source.example_ids_uri,
        )


def _rng(seed: int, stream: int) -> np.random.Generator:
    """Separate streams for unlabeled and labeled rows: adding a labeled set leaves the unlabeled
    scores of a seed unchanged. Negative int64 seeds are folded into [0, 2**64)."""
    return np.random.default_rng([seed % 2**64, stream])


def _baseline(strategy: int, chunks: Sequence[np.ndarray]) -> np.ndarray:
    probs = st.mean_probabilities(chunks)
    if strategy == st.LEAST_CONFIDENCE:
        return st.least_confidence_scores(probs)
    if strategy == st.MARGIN:
        return st.margin_scores(probs)
    if strategy == st.ENTROPY:
        return st.entropy_scores(probs)
    raise InvalidArgument(f"strategy {strategy} has no baseline scorer")
