"""Out-of-sample probabilities for labeled examples across rounds: each round keeps its model's rows of
the examples it selects, and a later round gives the scorer, for every labeled example, the row of the
earliest round that selected it (the first set keeps the current model's row)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from labelloop.controller import arrays, held_out
from labelloop.controller.records import RoundRecord
from labelloop.core.arrays import array_ref, write_ids
from labelloop.core.storage import LocalStore
from labelloop.v1 import common_pb2

IDS = [f"e{i:02d}" for i in range(12)]


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "store")


def model_rows(store: LocalStore, folder: str, round_number: int, ids: list[str]) -> common_pb2.ArrayRef:
    """Pool rows of round n's model: row of example e{i} is [n, i] (easy to recognise)."""
    values = np.array([[round_number, int(i[1:])] for i in ids], dtype=np.float32)
    key = f"{folder}pool_probabilities.npy"
    store.put_array(key, values)
    return array_ref(store, key, values.shape, values.dtype, write_ids(store, f"{folder}pool_ids.json", ids))


def labeled_rows(store: LocalStore, round_number: int, labeled: list[str]) -> common_pb2.ArrayRef:
    folder = f"r{round_number}/"
    pool = model_rows(store, folder, round_number, IDS)
    return arrays.split_pool(store, pool, labeled, folder, with_labeled=True).labeled  # type: ignore[return-value]


@pytest.mark.parametrize("chunk_rows", [1, 5, 100])
def test_gather_rows_reads_any_rows_in_any_order(store: LocalStore, chunk_rows: int) -> None:
    pool = model_rows(store, "g/", 7, IDS)
    rows = np.array([11, 0, 5, 5, 3], dtype=np.int64)
    got = held_out.gather_rows(store, pool, rows, chunk_rows=chunk_rows)
    assert got[:, 1].tolist() == [11, 0, 5, 5, 3] and set(got[:, 0]) == {7}


def test_labeled_rows_come_from_the_earliest_round_that_selected_them(store: LocalStore) -> None:
    first_set = ["e00", "e01"]
    kept: list[common_pb2.ArrayRef] = []
    labeled = list(first_set)
    # Rounds 0, 1, 2 select batches; round 1 also picks e00 (a labeled one) for another label.
    batches = [["e05", "e03"], ["e07", "e00"], ["e09"]]
    for number, batch in enumerate(batches):
        folder = f"r{number}/"
        pool = model_rows(store, folder, number, IDS)
        split = arrays.split_pool(store, pool, labeled, folder, with_labeled=True)
        ref = held_out.keep_selected_rows(store, split.unlabeled, batch, folder)
        assert ref is not None
        # Only the new examples: e00 was labeled (and trained on) already.
        assert arrays.read_ids(store, ref) == [i for i in batch if i not in labeled]
        kept.append(ref)
        labeled += [i for i in batch if i not in labeled]

    # Round 3 scores: its model (number 3) trained on everything labeled so far.
    order = ["e07", "e00", "e09", "e03", "e01", "e05"]  # the snapshot's row order
    current = labeled_rows(store, 3, order)
    oos, replaced = held_out.out_of_sample(store, current, kept, "r3/")
    values = store.get_array(store.ref_to_key(oos.uri))
    by_id = dict(zip(order, values[:, 0].tolist(), strict=True))
    assert by_id == {"e05": 0, "e03": 0, "e07": 1, "e09": 2, "e00": 3, "e01": 3}  # first set: in-sample
    assert values[:, 1].tolist() == [int(i[1:]) for i in order]  # each row is its own example's
    assert replaced == 4 and oos.example_ids_uri == current.example_ids_uri
    assert oos.uri.endswith("r3/labeled_out_of_sample_probabilities.npy")
    # The in-sample rows are left as they were (the selector's class cap reads them).
    assert set(store.get_array(store.ref_to_key(current.uri))[:, 0]) == {3}


def test_nothing_is_kept_when_every_selected_example_was_labeled(store: LocalStore) -> None:
    split = arrays.split_pool(store, model_rows(store, "r0/", 0, IDS), ["e01"], "r0/", with_labeled=True)
    assert held_out.keep_selected_rows(store, split.unlabeled, ["e01"], "r0/") is None


def test_kept_rows_survive_a_restart_in_the_round_record(store: LocalStore) -> None:
    split = arrays.split_pool(store, model_rows(store, "r0/", 0, IDS), [], "r0/", with_labeled=False)
    ref = held_out.keep_selected_rows(store, split.unlabeled, ["e04"], "r0/")
    assert ref is not None
    record = RoundRecord.first_step("experiments/x", 0)
    record.set_array(held_out.SELECTED, ref)
    assert RoundRecord.from_json(record.to_json()).array(held_out.SELECTED) == ref


def test_an_example_kept_by_two_rounds_takes_the_earliest_row(store: LocalStore) -> None:
    """E.g. selected in round 0, left unlabeled by people, and selected again later: the earliest model
    is the last one that certainly had not trained on it."""
    kept = []
    for number in (0, 1):
        split = arrays.split_pool(
            store, model_rows(store, f"r{number}/", number, IDS), [], f"r{number}/", False
        )
        ref = held_out.keep_selected_rows(store, split.unlabeled, ["e04"], f"r{number}/")
        assert ref is not None
        kept.append(ref)
    oos, replaced = held_out.out_of_sample(store, labeled_rows(store, 2, ["e04"]), kept, "r2/")
    assert store.get_array(store.ref_to_key(oos.uri)).tolist() == [[0.0, 4.0]] and replaced == 1


class CountingStore(LocalStore):
    def __init__(self, root: Path):
        super().__init__(root)
        self.reads: list[str] = []

    def get_bytes(self, key: str) -> bytes:
        self.reads.append(key)
        return super().get_bytes(key)


def test_a_runner_reads_each_rounds_kept_rows_once(tmp_path: Path) -> None:
    """Every round reads all earlier rounds' kept rows: KeptRows holds them, so a round's rows are read
    from the store at most once per runner (not at all when it kept them itself), with the same result."""
    store = CountingStore(tmp_path / "store")
    kept_rows, refs, labeled = held_out.KeptRows(), [], ["e00"]
    for number, batch in enumerate([["e03"], ["e05"], ["e07"]]):
        split = arrays.split_pool(
            store, model_rows(store, f"r{number}/", number, IDS), labeled, f"r{number}/", True
        )
        ref = held_out.keep_selected_rows(store, split.unlabeled, batch, f"r{number}/", kept_rows)
        assert ref is not None
        refs.append(ref)
        labeled += batch
    current = labeled_rows(store, 3, labeled)
    store.reads.clear()
    for _ in range(2):
        with_cache = held_out.out_of_sample(store, current, refs, "r3/", kept_rows)
    assert not [k for k in store.reads if "selected" in k]
    restarted = held_out.KeptRows()  # a new runner after a restart reads them from the store, once
    for _ in range(2):
        after_restart = held_out.out_of_sample(store, current, refs, "r3/", restarted)
    assert len([k for k in store.reads if "selected" in k]) == 2 * len(refs)  # rows and ids, once each
    plain = held_out.out_of_sample(store, current, refs, "r3/")
    values = [
        store.get_array(store.ref_to_key(r.uri)).tolist() for r, _ in (with_cache, after_restart, plain)
    ]
    assert values[0] == values[1] == values[2] and with_cache[1] == plain[1] == 3
