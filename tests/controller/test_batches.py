"""The SELECT step's embeddings: the round's one pool embeddings array goes to the selector as it is
(no split copies of it are written), and the selector, finding rows by example id, picks the same
batch as it did from split copies (unlabeled rows, then labeled rows in the labels' order)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from labelloop.controller import arrays
from labelloop.controller.batches import attach_embeddings
from labelloop.core.errors import InvalidArgument
from labelloop.core.storage import LocalStore
from labelloop.selector.selection import select_batch
from labelloop.v1 import common_pb2, selector_pb2

from tests.scorer.data import put_array
from tests.selector.blobs import blobs

DIVERSE, TYPICAL = common_pb2.BATCH_METHOD_DIVERSE, common_pb2.BATCH_METHOD_TYPICAL
ROUND = "experiments/e/rounds/3/"


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "store")


def pool_round(store: LocalStore) -> tuple[common_pb2.ArrayRef, list[str], arrays.SplitArrays]:
    """A pool of 200 examples in 5 blobs (ids shuffled against the blobs), 30 of them labeled, and the
    round's probabilities split into unlabeled and labeled rows as the SCORE step does."""
    points, _ = blobs([40] * 5, dim=16, spread=3.0, seed=5)
    rng = np.random.default_rng(1)
    order = rng.permutation(len(points))
    ids = [f"x{i:03d}" for i in order]
    embeddings = put_array(store, "runs/r3/pool_embeddings.npy", points, ids)
    probabilities = rng.dirichlet(np.ones(4), size=len(points)).astype(np.float32)
    pool = put_array(store, "runs/r3/pool_probabilities.npy", probabilities, ids)
    labeled = [ids[i] for i in rng.choice(len(ids), size=30, replace=False)]
    split = arrays.split_pool(store, pool, labeled, ROUND, with_labeled=True)
    return embeddings, labeled, split


def split_copies(
    store: LocalStore, embeddings: common_pb2.ArrayRef, labeled: list[str], labels_order: bool
) -> tuple[common_pb2.ArrayRef, common_pb2.ArrayRef]:
    """What the SELECT step wrote before: the unlabeled rows in pool order and the labeled rows in the
    order of the labels (or, labels_order False, of the pool), each a copy with its own ids."""
    values = store.get_array(store.ref_to_key(embeddings.uri))
    ids = store.get_json(store.ref_to_key(embeddings.example_ids_uri))
    row = {example_id: i for i, example_id in enumerate(ids)}
    unlabeled = [i for i in ids if i not in set(labeled)]
    if not labels_order:
        labeled = [i for i in ids if i in set(labeled)]
    return (
        put_array(store, "old/unlabeled_embeddings.npy", values[[row[i] for i in unlabeled]], unlabeled),
        put_array(store, "old/labeled_embeddings.npy", values[[row[i] for i in labeled]], labeled),
    )


def scores(store: LocalStore, split: arrays.SplitArrays, seed: int) -> dict[str, common_pb2.ArrayRef]:
    """Seeded scores of the unlabeled and labeled rows (lower: some compete), in their split orders."""
    rng = np.random.default_rng(seed)
    assert split.labeled is not None
    unlabeled_ids = arrays.read_ids(store, split.unlabeled)
    labeled_ids = arrays.read_ids(store, split.labeled)
    return {
        "unlabeled_scores": put_array(store, f"s{seed}/u.npy", rng.random(len(unlabeled_ids)), unlabeled_ids),
        "labeled_scores": put_array(store, f"s{seed}/l.npy", 0.2 * rng.random(len(labeled_ids)), labeled_ids),
    }


def selected(store: LocalStore, request: selector_pb2.SelectBatchRequest) -> list[tuple[str, bool]]:
    def given(name: str) -> common_pb2.ArrayRef | None:
        return getattr(request, name) if request.HasField(name) else None

    batch = select_batch(
        store,
        given("unlabeled_scores"),
        request.batch_size,
        labeled_scores=given("labeled_scores"),
        allow_relabel=request.allow_relabel,
        seed=request.seed,
        batch_method=request.batch_method,
        unlabeled_embeddings=given("unlabeled_embeddings"),
        labeled_embeddings=given("labeled_embeddings"),
        exclude_example_ids=list(request.exclude_example_ids),
    )
    return [(e.example_id, e.relabel) for e in batch]


@pytest.mark.parametrize(
    ("method", "relabel"), [(DIVERSE, False), (DIVERSE, True), (TYPICAL, False)], ids=str
)
def test_the_pool_array_gives_the_batch_the_split_copies_gave(
    store: LocalStore, method: int, relabel: bool
) -> None:
    """DIVERSE reads labeled rows only when they compete, in labeled_scores' order: the same batch.
    TYPICAL clusters every labeled example's embedding too; without labeled scores the selector takes
    them in the pool's order, and the batch is the one the pool-ordered copies gave."""
    embeddings, labeled, split = pool_round(store)
    old_unlabeled, old_labeled = split_copies(store, embeddings, labeled, labels_order=method == DIVERSE)
    for seed in range(3):
        request = selector_pb2.SelectBatchRequest(
            batch_size=12, seed=seed, batch_method=method, allow_relabel=relabel, **scores(store, split, seed)
        )
        request.exclude_example_ids.extend(arrays.read_ids(store, split.unlabeled)[5:9])
        before = set(store.list(ROUND))
        attach_embeddings(request, embeddings, has_labeled=True)
        assert set(store.list(ROUND)) == before  # nothing written: no split copies
        assert request.unlabeled_embeddings == embeddings and request.labeled_embeddings == embeddings

        old = selector_pb2.SelectBatchRequest()
        old.CopyFrom(request)
        old.unlabeled_embeddings.CopyFrom(old_unlabeled)
        old.labeled_embeddings.CopyFrom(old_labeled)
        batch = selected(store, request)
        assert len(batch) == 12 and batch == selected(store, old)
        assert any(flag for _, flag in batch) == relabel or method == TYPICAL


def test_no_embeddings_for_scores_only_methods_or_rounds_without_them(store: LocalStore) -> None:
    embeddings, _, _ = pool_round(store)
    lowest = selector_pb2.SelectBatchRequest(batch_method=common_pb2.BATCH_METHOD_LOWEST_SCORES)
    attach_embeddings(lowest, embeddings, has_labeled=True)
    assert not lowest.HasField("unlabeled_embeddings") and not lowest.HasField("labeled_embeddings")
    diverse = selector_pb2.SelectBatchRequest(batch_method=DIVERSE)
    attach_embeddings(diverse, None, has_labeled=True)
    assert not diverse.HasField("unlabeled_embeddings")
    attach_embeddings(diverse, embeddings, has_labeled=False)  # round 0 of a label-free start
    assert diverse.unlabeled_embeddings == embeddings and not diverse.HasField("labeled_embeddings")


def test_a_pool_array_missing_a_scored_example_is_refused(store: LocalStore) -> None:
    embeddings, _, split = pool_round(store)
    ids = store.get_json(store.ref_to_key(embeddings.example_ids_uri))
    values = store.get_array(store.ref_to_key(embeddings.uri))
    gone = arrays.read_ids(store, split.unlabeled)[7]
    kept = [i for i, example_id in enumerate(ids) if example_id != gone]
    short = put_array(store, "short.npy", values[kept], [ids[i] for i in kept])
    request = selector_pb2.SelectBatchRequest(batch_size=3, batch_method=DIVERSE, **scores(store, split, 0))
    attach_embeddings(request, short, has_labeled=True)
    with pytest.raises(InvalidArgument, match=f"unlabeled_embeddings has no row for example '{gone}'"):
        selected(store, request)
