"""select_batch with embeddings (DIVERSE, TYPICAL): the request fields, their checks, reading only the
rows a method needs (both backends), and SelectorService over real gRPC."""

from __future__ import annotations

import grpc
import numpy as np
import pytest
from labelloop.core.errors import InvalidArgument
from labelloop.core.storage import LocalStore, ObjectStore
from labelloop.selector import embeddings as stored_embeddings
from labelloop.selector.batch import BATCH_SELECTORS
from labelloop.selector.batch.base import BatchNeeds, BatchRequest
from labelloop.selector.embeddings import StoredEmbeddings, open_by_id
from labelloop.selector.selection import select_batch
from labelloop.v1 import common_pb2 as c
from labelloop.v1 import selector_pb2 as pb

from tests.scorer.data import put_array
from tests.selector.blobs import blobs

DIVERSE, TYPICAL = c.BATCH_METHOD_DIVERSE, c.BATCH_METHOD_TYPICAL


def names(prefix: str, count: int) -> list[str]:
    return [f"{prefix}{i}" for i in range(count)]


def blob_pool(store: ObjectStore) -> tuple[dict[str, c.ArrayRef], np.ndarray]:
    """Four blobs of 30 unlabeled examples (ids u0..u119), blob 0 holding the lowest scores; two
    labeled examples (l0, l1) in blob 3."""
    points, blob = blobs([30, 30, 30, 30])
    scores = np.where(blob == 0, 0.0, 0.5) + np.linspace(0, 0.1, len(blob))
    labeled = points[blob == 3][:2] + 0.05
    refs = {
        "unlabeled_scores": put_array(store, "u.npy", scores, names("u", 120)),
        "unlabeled_embeddings": put_array(store, "ue.npy", points, names("u", 120)),
        "labeled_scores": put_array(store, "l.npy", np.array([0.01, 0.9]), names("l", 2)),
        "labeled_embeddings": put_array(store, "le.npy", labeled, names("l", 2)),
    }
    return refs, blob


def blob_of(batch, blob: np.ndarray) -> list[int]:
    return [int(blob[int(e.example_id[1:])]) if e.example_id[0] == "u" else -1 for e in batch]


def test_diverse_spreads_and_relabels_through_select_batch(object_store: ObjectStore) -> None:
    refs, blob = blob_pool(object_store)
    lowest = select_batch(object_store, refs["unlabeled_scores"], 4)
    assert blob_of(lowest, blob) == [0, 0, 0, 0]
    batch = select_batch(
        object_store, refs["unlabeled_scores"], 4, batch_method=DIVERSE,
        unlabeled_embeddings=refs["unlabeled_embeddings"],
    )  # fmt: skip
    # 40 candidates: blob 0's 30 and blob 1's 10 lowest; one cluster each at least.
    assert set(blob_of(batch, blob)) == {0, 1} and [e.score for e in batch] == sorted(e.score for e in batch)
    relabel = select_batch(
        object_store, refs["unlabeled_scores"], 4, batch_method=DIVERSE, allow_relabel=True,
        labeled_scores=refs["labeled_scores"], labeled_embeddings=refs["labeled_embeddings"],
        unlabeled_embeddings=refs["unlabeled_embeddings"], exclude_example_ids=["u0"],
    )  # fmt: skip
    assert relabel[0].example_id == "u1"
    assert any(e.example_id == "l0" and e.relabel for e in relabel)  # lone in blob 3: its own cluster


def test_typical_needs_no_scores_and_skips_labeled_clusters(object_store: ObjectStore) -> None:
    refs, blob = blob_pool(object_store)
    batch = select_batch(
        object_store, None, 3, batch_method=TYPICAL, unlabeled_embeddings=refs["unlabeled_embeddings"],
        labeled_embeddings=refs["labeled_embeddings"],
    )  # fmt: skip
    assert sorted(blob_of(batch, blob)) == [0, 1, 2]  # blob 3 holds the labeled examples
    assert all(e.score == 0 and not e.relabel and e.predicted_class == -1 for e in batch)
    # Given scores, they are reported (and the rows are the scores' rows).
    scored = select_batch(
        object_store, refs["unlabeled_scores"], 3, batch_method=TYPICAL,
        unlabeled_embeddings=refs["unlabeled_embeddings"], labeled_embeddings=refs["labeled_embeddings"],
    )  # fmt: skip
    assert [e.example_id for e in scored] == [e.example_id for e in batch]
    assert [e.score for e in scored] != [0, 0, 0]


def bad(store: ObjectStore, method: int, **changes) -> str:
    refs, _ = blob_pool(store)
    fields = {**refs, **changes}
    scores = fields.pop("unlabeled_scores")
    with pytest.raises(InvalidArgument) as info:
        select_batch(store, scores, 2, batch_method=method, allow_relabel=True, **fields)
    return str(info.value)


def test_missing_and_mismatched_embeddings_are_refused(tmp_path) -> None:
    store = LocalStore(tmp_path)
    points, _ = blobs([60, 60])
    assert bad(store, DIVERSE, unlabeled_embeddings=None) == (
        "BATCH_METHOD_DIVERSE needs unlabeled_embeddings: set it to the pool's embeddings"
    )
    assert "BATCH_METHOD_TYPICAL needs unlabeled_embeddings" in bad(
        store, TYPICAL, unlabeled_scores=None, unlabeled_embeddings=None
    )
    assert bad(store, c.BATCH_METHOD_LOWEST_SCORES, unlabeled_scores=None).startswith(
        "unlabeled_scores.uri is empty: BATCH_METHOD_LOWEST_SCORES ranks the pool by its scores"
    )
    assert "unlabeled_scores.uri is empty" in bad(store, DIVERSE, unlabeled_scores=None)
    assert "DIVERSE with allow_relabel needs labeled_embeddings" in bad(
        store, DIVERSE, labeled_embeddings=None
    )
    short = put_array(store, "short.npy", points[:100], names("u", 100))
    assert bad(store, DIVERSE, unlabeled_embeddings=short) == (
        "unlabeled_embeddings has no row for example 'u100' (row 100 of the scores): give the embeddings "
        "of every example, in the same order or named by the array's example ids"
    )
    unnamed = put_array(store, "unnamed.npy", points[:100])
    assert "unlabeled_embeddings has 100 rows but the scores have 120" in bad(
        store, DIVERSE, unlabeled_embeddings=unnamed
    )
    twice = put_array(store, "twice.npy", np.concatenate([points, points[:1]]), [*names("u", 120), "u0"])
    assert "names an example twice" in bad(store, DIVERSE, unlabeled_embeddings=twice)
    assert "labeled_embeddings has no row for example 'l1' (row 1 of labeled_scores)" in bad(
        store, DIVERSE, labeled_embeddings=put_array(store, "lone.npy", points[:1], ["l0"])
    )
    assert "labeled_embeddings have 3 columns but unlabeled_embeddings have 8" in bad(
        store, TYPICAL, labeled_embeddings=put_array(store, "l3.npy", np.ones((2, 3)), names("l", 2))
    )
    assert "dtype int64: store embeddings as float" in bad(
        store, DIVERSE, unlabeled_embeddings=put_array(store, "int.npy", np.ones((120, 2), np.int64))
    )
    assert "unlabeled_embeddings.example_ids_uri is empty" in bad(
        store, TYPICAL, unlabeled_scores=None, unlabeled_embeddings=put_array(store, "noids.npy", points)
    )
    nan = points.copy()
    nan[3, 1] = np.nan
    assert "unlabeled_embeddings" in bad(
        store, DIVERSE, unlabeled_embeddings=put_array(store, "nan.npy", nan)
    )
    assert "row 3 has NaN or infinite values" in bad(
        store, TYPICAL, unlabeled_embeddings=put_array(store, "nan.npy", nan)
    )


def test_rows_are_found_by_example_id_in_a_larger_array(object_store: ObjectStore) -> None:
    """One array holding every example (shuffled, with others besides) gives the batch that arrays with
    the scores' rows give, for the unlabeled rows and the labeled ones."""
    refs, _ = blob_pool(object_store)
    unlabeled, labeled = object_store.get_array("ue.npy"), object_store.get_array("le.npy")
    values = np.concatenate([unlabeled, labeled, np.full((5, 8), 99.0, np.float32)])
    ids = [*names("u", 120), *names("l", 2), *names("other", 5)]
    order = np.random.default_rng(3).permutation(len(ids))
    pool = put_array(object_store, "pool.npy", values[order], [ids[i] for i in order])
    for method, relabel in ((DIVERSE, False), (DIVERSE, True), (TYPICAL, False)):
        asked = dict(
            batch_method=method, allow_relabel=relabel, labeled_scores=refs["labeled_scores"], seed=2
        )
        split = select_batch(
            object_store, refs["unlabeled_scores"], 6, unlabeled_embeddings=refs["unlabeled_embeddings"],
            labeled_embeddings=refs["labeled_embeddings"], **asked,
        )  # fmt: skip
        found = select_batch(
            object_store, refs["unlabeled_scores"], 6, unlabeled_embeddings=pool,
            labeled_embeddings=pool if relabel else refs["labeled_embeddings"], **asked,
        )  # fmt: skip
        assert [e.example_id for e in found] == [e.example_id for e in split]


def test_the_plugin_gets_the_rows_embeddings(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Unlabeled rows then (with allow_relabel) labeled rows, read on demand; every labeled example's
    embedding apart."""
    store = LocalStore(tmp_path)
    seen: list[BatchRequest] = []

    class Recorder:
        needs = BatchNeeds(embeddings=True)

        def select(self, request: BatchRequest) -> np.ndarray:
            seen.append(request)
            return request.candidates[:1]

    monkeypatch.setitem(BATCH_SELECTORS, DIVERSE, Recorder())
    refs, _ = blob_pool(store)
    points = store.get_array("ue.npy")
    select_batch(store, batch_size=1, batch_method=DIVERSE, allow_relabel=True, **refs)
    [request] = seen
    assert request.embeddings is not None and request.labeled_embeddings is not None
    assert (request.embeddings.rows, request.embeddings.dim, request.unlabeled_rows) == (122, 8, 120)
    np.testing.assert_array_equal(request.embeddings.read(np.array([121, 5, 0])), [
        store.get_array("le.npy")[1], points[5], points[0],
    ])  # fmt: skip
    np.testing.assert_array_equal(request.labeled_embeddings, store.get_array("le.npy"))


@pytest.mark.parametrize("ranged_limit", [0, 4096])
def test_stored_embeddings_read_rows_ranged_or_streamed(
    object_store: ObjectStore, monkeypatch: pytest.MonkeyPatch, ranged_limit: int
) -> None:
    monkeypatch.setattr(stored_embeddings, "RANGED_READ_LIMIT", ranged_limit)
    monkeypatch.setattr(stored_embeddings, "RANGED_READ_FRACTION", 0)
    monkeypatch.setattr(stored_embeddings, "CHUNK_BYTES", 7 * 8 * 8)  # 7 float64 rows a chunk
    values = np.random.default_rng(0).normal(size=(50, 8))  # float64, read as float32
    ref = put_array(object_store, "e.npy", values)
    embeddings = StoredEmbeddings(object_store, open_by_id(object_store, ref, "e", None)[0])
    rows = np.array([49, 3, 4, 5, 3, 20, 0])
    np.testing.assert_array_equal(embeddings.read(rows), values[rows].astype(np.float32))
    chunks = list(embeddings.chunks(50))
    assert [start for start, _ in chunks] == list(range(0, 50, 7))
    np.testing.assert_array_equal(np.concatenate([c for _, c in chunks]), values.astype(np.float32))


def test_service_carries_the_embedding_fields(service) -> None:
    store, stub = service
    refs, blob = blob_pool(store)
    typical = stub.SelectBatch(
        pb.SelectBatchRequest(
            batch_size=3,
            batch_method=TYPICAL,
            unlabeled_embeddings=refs["unlabeled_embeddings"],
            labeled_embeddings=refs["labeled_embeddings"],
        ),
        timeout=30,
    )
    assert sorted(blob_of(typical.examples, blob)) == [0, 1, 2]
    diverse = stub.SelectBatch(
        pb.SelectBatchRequest(batch_size=4, batch_method=DIVERSE, **refs, allow_relabel=True), timeout=30
    )
    assert {e.example_id for e in diverse.examples} & {"l0"}
    with pytest.raises(grpc.RpcError) as info:
        stub.SelectBatch(
            pb.SelectBatchRequest(
                batch_size=2, batch_method=DIVERSE, unlabeled_scores=refs["unlabeled_scores"]
            ),
            timeout=30,
        )
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "BATCH_METHOD_DIVERSE needs unlabeled_embeddings" in info.value.details()
