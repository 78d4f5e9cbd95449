"""The scorer's domain logic: read probabilities chunk by chunk, score them, publish score arrays.

The strategy is a plug-in (strategies/): it says what it needs, fits on the labeled side and scores
the pool's chunks; this module opens the inputs (inputs.py), runs the chunks and writes the outputs,
the same way for every strategy.

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
from typing import Any

import numpy as np

from labelloop.core.arrays import StoredArray, array_ref, check_probability_rows
from labelloop.core.errors import InvalidArgument
from labelloop.core.metrics import SCORER_EXAMPLES, SCORER_SECONDS
from labelloop.core.storage import ArrayWriter, ObjectStore
from labelloop.scorer.inputs import ScoringInputs, open_inputs, read_fit_inputs
from labelloop.scorer.strategies import strategy_for, strategy_name
from labelloop.scorer.strategies.base import PoolChunk, Strategy
from labelloop.v1 import common_pb2

log = logging.getLogger(__name__)

SCORE_DTYPE = np.dtype(np.float64)
SCORING_THREADS = max(1, min(8, os.cpu_count() or 1))


@dataclass(frozen=True)
class ScoreResult:
    unlabeled_scores: common_pb2.ArrayRef
    labeled_scores: common_pb2.ArrayRef | None
    scored_count: int


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
        plugin = strategy_for(strategy)
        name = strategy_name(strategy)
        started = time.perf_counter()
        if not output_uri:
            raise InvalidArgument("output_uri is empty: set it to a folder URI in the object store")
        prefix = self.store.ref_to_key(output_uri).rstrip("/") + "/"
        inputs = open_inputs(self.store, plugin.needs, name, unlabeled_probabilities, labeled_probabilities,
                             labels_multiannotator, chunk_size)  # fmt: skip
        fitted = plugin.fit(read_fit_inputs(self.store, inputs, seed))
        labeled_scores = fitted.labeled_scores
        labeled_rows = inputs.labeled[0].rows if inputs.labeled else 0
        if labeled_scores is not None:
            _check_length(labeled_scores, labeled_rows, name, "labeled examples")
        unlabeled_key = prefix + "unlabeled_scores.npy"
        writer = ArrayWriter(self.store, unlabeled_key, (inputs.unlabeled[0].rows,), SCORE_DTYPE)
        try:
            self._score_pool(plugin, fitted.state, inputs, name, writer)
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

    def _score_pool(
        self, plugin: Strategy[Any], state: Any, inputs: ScoringInputs, name: str, writer: ArrayWriter
    ) -> None:
        """Reads chunks in order and scores them on a small thread pool (numpy releases the GIL).

        At most 2 chunks per worker are in flight, so memory stays bounded by the chunk size.
        A sequential strategy (one random stream) scores its chunks in order on this thread.
        """
        # This thread only reads; each chunk is validated where it is scored, so the validation runs on
        # the workers too (reading alone keeps this thread busy). Futures are collected in order, so
        # the first error raised is the first bad row's.
        streams = [self.store.iter_array_rows(a.key, inputs.chunk_rows) for a in inputs.unlabeled]

        def score_chunk(start: int, rows: list[np.ndarray]) -> None:
            sums = [check_probability_rows(r, a, start) for r, a in zip(rows, inputs.unlabeled, strict=True)]
            chunk = PoolChunk(start, rows, sums)
            scores = plugin.score(state, chunk)
            _check_length(scores, chunk.rows, name, f"pool rows from {chunk.start}")
            writer.write(chunk.start, scores)

        with ThreadPoolExecutor(max_workers=SCORING_THREADS, thread_name_prefix="score") as pool:
            in_flight: deque[Future[None]] = deque()
            for parts in zip(*streams, strict=True):
                start, rows = parts[0][0], [p[1] for p in parts]
                if plugin.needs.sequential:
                    score_chunk(start, rows)
                    continue
                in_flight.append(pool.submit(score_chunk, start, rows))
                if len(in_flight) >= 2 * SCORING_THREADS:
                    in_flight.popleft().result()
            for future in in_flight:
                future.result()

    def _ref(self, key: str, source: StoredArray) -> common_pb2.ArrayRef:
        return array_ref(self.store, key, (source.rows,), SCORE_DTYPE, source.example_ids_uri)


def _check_length(scores: np.ndarray, rows: int, name: str, what: str) -> None:
    """A plug-in's scores must be one per row: a mismatch is a bug in the plug-in, not in the request."""
    if np.shape(scores) != (rows,):
        raise RuntimeError(f"strategy {name} returned scores of shape {np.shape(scores)} for {rows} {what}")
