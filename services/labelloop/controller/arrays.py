"""Array plumbing between trainer and scorer: split the pool's probabilities into unlabeled and
labeled rows, and measure test accuracy, reading the arrays chunk by chunk. The arrays come from the
trainer, so a bad one is a FAILED_PRECONDITION of the experiment, not an invalid request."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from labelloop.core.arrays import array_ref, read_example_ids, write_ids
from labelloop.core.errors import FailedPrecondition
from labelloop.core.layout import example_ids_key, probabilities_key
from labelloop.core.storage import ArrayWriter, ObjectStore
from labelloop.v1 import common_pb2, dataset_store_pb2

CHUNK_ROWS = 8192


@dataclass
class SplitArrays:
    unlabeled: common_pb2.ArrayRef
    labeled: common_pb2.ArrayRef | None  # rows in the order of the snapshot's labels_multiannotator


def read_ids(store: ObjectStore, ref: common_pb2.ArrayRef, rows: int | None = None) -> list[str]:
    if not ref.example_ids_uri:
        raise FailedPrecondition(f"array {ref.uri} has no example_ids_uri: the trainer must write row ids")
    return read_example_ids(store, ref.example_ids_uri, name=ref.uri, rows=rows, error=FailedPrecondition)


def split_pool(
    store: ObjectStore,
    pool: common_pb2.ArrayRef,
    labeled_ids: list[str],
    prefix: str,
    with_labeled: bool,
    chunk_rows: int = CHUNK_ROWS,
) -> SplitArrays:
    """Writes the unlabeled rows as probabilities_key(prefix, "unlabeled") (+ ids) and, if asked, the
    labeled rows in the order of `labeled_ids` as probabilities_key(prefix, "labeled") (+ ids)."""
    pool_key = store.ref_to_key(pool.uri)
    shape, dtype, _ = store.array_header(pool_key)
    pool_ids = read_ids(store, pool, rows=shape[0])
    position = {example_id: i for i, example_id in enumerate(labeled_ids)}
    in_pool = set(pool_ids)
    missing = [i for i in labeled_ids if i not in in_pool]
    if missing:
        raise FailedPrecondition(
            f"{len(missing)} labeled examples have no row in {pool.uri}, e.g. {missing[:3]}: "
            "the trainer must predict every pool example"
        )
    is_labeled = np.fromiter((i in position for i in pool_ids), dtype=bool, count=len(pool_ids))
    unlabeled_ids = [i for i, flag in zip(pool_ids, is_labeled, strict=True) if not flag]
    columns = tuple(shape[1:])

    unlabeled_key, labeled_key = probabilities_key(prefix, "unlabeled"), probabilities_key(prefix, "labeled")
    unlabeled_writer = ArrayWriter(store, unlabeled_key, (len(unlabeled_ids), *columns), dtype)
    labeled_writer = (
        ArrayWriter(store, labeled_key, (len(labeled_ids), *columns), dtype) if with_labeled else None
    )
    writers = [w for w in (unlabeled_writer, labeled_writer) if w is not None]
    try:
        written = 0
        for start, rows in store.iter_array_rows(pool_key, chunk_rows):
            flags = is_labeled[start : start + len(rows)]
            kept = rows[~flags]
            unlabeled_writer.write(written, kept)
            written += len(kept)
            if labeled_writer is not None:
                for offset in np.flatnonzero(flags):
                    labeled_writer.write(position[pool_ids[start + offset]], rows[offset : offset + 1])
    except BaseException:
        for writer in writers:
            writer.abort()
        raise
    for writer in writers:
        writer.close()
    unlabeled_ids_uri = write_ids(store, example_ids_key(prefix, "unlabeled"), unlabeled_ids)
    unlabeled = array_ref(store, unlabeled_key, (len(unlabeled_ids), *columns), dtype, unlabeled_ids_uri)
    labeled = None
    if labeled_writer is not None:
        labeled_ids_uri = write_ids(store, example_ids_key(prefix, "labeled"), labeled_ids)
        labeled = array_ref(store, labeled_key, (len(labeled_ids), *columns), dtype, labeled_ids_uri)
    return SplitArrays(unlabeled=unlabeled, labeled=labeled)


def accuracy(
    store: ObjectStore,
    probabilities: common_pb2.ArrayRef,
    truth: dict[str, str],
    classes: list[str],
    chunk_rows: int = CHUNK_ROWS,
) -> float:
    """Share of rows whose most probable class equals the ground truth (rows without truth skipped)."""
    ids = read_ids(store, probabilities)
    index = {c: i for i, c in enumerate(classes)}
    expected = np.array([index.get(truth.get(i, ""), -1) for i in ids], dtype=np.int64)
    correct = counted = 0
    for start, rows in store.iter_array_rows(store.ref_to_key(probabilities.uri), chunk_rows):
        want = expected[start : start + len(rows)]
        known = want >= 0
        correct += int((rows.argmax(axis=1)[known] == want[known]).sum())
        counted += int(known.sum())
    if counted == 0:
        raise FailedPrecondition(f"no test example of {probabilities.uri} has a ground-truth label")
    return correct / counted


def annotations_ref(
    store: ObjectStore, snapshot: dataset_store_pb2.Snapshot, labeled_ids_uri: str
) -> common_pb2.ArrayRef:
    """The snapshot's labels_multiannotator, whose rows are the labeled rows split_pool wrote."""
    shape, dtype, _ = store.array_header(store.ref_to_key(snapshot.labels_multiannotator_uri))
    return common_pb2.ArrayRef(
        uri=snapshot.labels_multiannotator_uri,
        shape=list(shape),
        dtype=dtype.name,
        example_ids_uri=labeled_ids_uri,
    )
