"""Appends run side by side (store/appends.py) and each request is still stored exactly once: under
concurrent clients and a store restart (the fast version of `python -m bench.append_load`), when the
same request races in twice, and when a write fails before or after its object landed."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from labelloop.core.errors import AlreadyExists
from labelloop.core.storage import LocalStore, ObjectStore
from labelloop.store import DatasetStore
from labelloop.store.models import Annotation

from bench import append_load
from tests.conftest import s3_config
from tests.support.seaweedfs import S3Server


@pytest.mark.integration
def test_concurrent_clients_across_a_restart_lose_and_duplicate_nothing(
    s3_server: S3Server, tmp_path: Path
) -> None:
    args = append_load.parser().parse_args(
        ["--clients", "10", "--duration", "5", "--restarts", "1", "--resend-every", "3", "--examples", "300"]
    )
    figures = append_load.measure(args, tmp_path, s3=s3_config(s3_server))
    assert figures["requests"] > 10 and figures["resends"] > 0
    assert figures["failed_attempts"] > 0, "the restart made no call fail: it did not happen mid-run"
    assert figures["labels_acknowledged"] == figures["requests"] * args.annotations
    assert append_load.exact(figures), figures


class FailingWrites(LocalStore):
    """A local store whose next annotation writes fail: before the object lands, or after."""

    def __init__(self, root: Path):
        super().__init__(root)
        self.fail: str | None = None  # "before" or "after"

    def create_exclusive(self, key: str, data: bytes) -> bool:
        if self.fail and "/annotations/" in key:
            when, self.fail = self.fail, None
            if when == "after":
                super().create_exclusive(key, data)
            raise ConnectionError(f"the object store went away {when} writing {key}")
        return super().create_exclusive(key, data)


@pytest.fixture
def failing(tmp_path: Path, tabular_manifest: Path) -> tuple[DatasetStore, FailingWrites]:
    store = FailingWrites(tmp_path / "store")
    datasets = DatasetStore(store, import_roots=[tmp_path])
    datasets.create_dataset("d", str(tabular_manifest), label_column="label", split_column="split")
    return datasets, store


def pool_ids(datasets: DatasetStore) -> list[str]:
    return [e.example_id for e in datasets.list_examples("d", split="pool").items]


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_failed_write_is_stored_once_when_retried(
    failing: tuple[DatasetStore, FailingWrites], when: str
) -> None:
    datasets, store = failing
    request = [Annotation(pool_ids(datasets)[0], "ann", "a")]
    store.fail = when
    with pytest.raises(ConnectionError):
        datasets.append_annotations("d", "", request, "r1")
    retried = datasets.append_annotations("d", "", request, "r1")
    assert retried.duplicate == (when == "after")  # it had landed: the retry only confirms it
    assert datasets.append_annotations("d", "", request, "r1").duplicate
    assert [a.annotator for a in datasets.list_annotations("d").items] == ["ann"]
    # A fresh process (a restart) reads the same log.
    assert DatasetStore(store).append_annotations("d", "", request, "r1").duplicate


def test_the_same_request_racing_in_is_stored_once(datasets: DatasetStore, tabular_manifest: Path) -> None:
    datasets.create_dataset("d", str(tabular_manifest), label_column="label", split_column="split")
    pool = pool_ids(datasets)
    results: list[bool] = []
    barrier = threading.Barrier(16)

    def send(n: int) -> None:
        barrier.wait()
        # Eight ids, each sent by two clients at once, next to each other in the log.
        request = [Annotation(pool[n % 8], f"ann-{n % 8}", "b")]
        results.append(datasets.append_annotations("d", "", request, f"r{n % 8}").duplicate)

    threads = [threading.Thread(target=send, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(results) == [False] * 8 + [True] * 8
    stored = datasets.list_annotations("d").items
    assert sorted(a.annotator for a in stored) == [f"ann-{n}" for n in range(8)]


def test_a_restarted_store_continues_the_log(object_store: ObjectStore, tabular_manifest: Path) -> None:
    first = DatasetStore(object_store, import_roots=[tabular_manifest.parent])
    first.create_dataset("d", str(tabular_manifest), label_column="label", split_column="split")
    pool = pool_ids(first)
    first.append_annotations("d", "", [Annotation(pool[0], "a1", "a")], "r1")
    second = DatasetStore(object_store)  # a new process: learns the log from the store
    assert second.append_annotations("d", "", [Annotation(pool[0], "a1", "a")], "r1").duplicate
    second.append_annotations("d", "", [Annotation(pool[1], "a2", "b")], "r2")
    assert [a.annotator for a in first.list_annotations("d").items] == ["a1", "a2"]
    keys = [k.rsplit("/", 1)[1] for k in object_store.list("datasets/d/annotations/default/")]
    assert keys == ["00000001-r1.json", "00000002-r2.json"]


class SlowWrites(LocalStore):
    """Annotation writes that take a while, as on a busy S3 server: requests arriving meanwhile queue."""

    def create_exclusive(self, key: str, data: bytes) -> bool:
        time.sleep(0.05)
        return super().create_exclusive(key, data)


def test_requests_written_together_are_each_known_after_a_restart(
    tmp_path: Path, tabular_manifest: Path
) -> None:
    object_store = SlowWrites(tmp_path / "store")
    datasets = DatasetStore(object_store, import_roots=[tmp_path])
    datasets.create_dataset("d", str(tabular_manifest), label_column="label", split_column="split")
    pool = pool_ids(datasets)
    requests = {f"r{n:02d}": [Annotation(pool[n % len(pool)], f"ann-{n}", "c")] for n in range(40)}
    barrier = threading.Barrier(len(requests))

    def send(request_id: str) -> None:
        barrier.wait()
        assert not datasets.append_annotations("d", "", requests[request_id], request_id).duplicate

    threads = [threading.Thread(target=send, args=(r,)) for r in requests]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    objects = list(object_store.list("datasets/d/annotations/default/"))
    assert len(objects) < len(requests), "no two requests were written together"
    assert sorted(a.annotator for a in datasets.list_annotations("d").items) == sorted(
        f"ann-{n}" for n in range(40)
    )
    restarted = DatasetStore(object_store)  # learns every request id from the objects' bodies
    for request_id, request in requests.items():
        assert restarted.append_annotations("d", "", request, request_id).duplicate
    with pytest.raises(AlreadyExists, match="annotation 0 differs: label 'c' stored, 'a' sent"):
        restarted.append_annotations("d", "", [Annotation(pool[7], "ann-7", "a")], "r07")
    assert len(restarted.list_annotations("d").items) == 40
