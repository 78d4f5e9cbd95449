"""Input rules of AppendAnnotations: pool examples only, request ids bound to their content, no
pair twice in a request, bounded annotators and sizes, and messages that never echo unbounded input.
Each rule is checked in the domain (both backends) and over gRPC (the status code callers see)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from labelloop.core.config import Settings, StorageConfig
from labelloop.core.errors import AlreadyExists, InvalidArgument, LabelLoopError, NotFound
from labelloop.core.server import Server, channel
from labelloop.core.storage import LocalStore, ObjectStore
from labelloop.store import DatasetStore
from labelloop.store import annotations as log_
from labelloop.store.models import Annotation
from labelloop.store.service import registrar
from labelloop.v1 import dataset_store_pb2 as pb
from labelloop.v1 import dataset_store_pb2_grpc as pb_grpc

from tests.store.conftest import contents
from tests.support.ports import free_port

POOL_ROWS, TEST_ROWS = 9, 3  # the tabular manifest's explicit split


@pytest.fixture
def ids(datasets: DatasetStore, tabular_manifest: Path) -> list[str]:
    """Dataset "tab": ids[:9] in the pool, ids[9:] in the test split, classes a, b, c."""
    datasets.create_dataset("tab", str(tabular_manifest), label_column="label", split_column="split")
    return list(datasets.read_examples("tab")["example_id"])


def refused(
    datasets: DatasetStore, store: ObjectStore, error: type[LabelLoopError], request: list[Annotation],
    request_id: str = "req-bad", annotation_set: str = "s",
) -> str:  # fmt: skip
    """Appends, expects `error`, checks that nothing was stored; returns the message."""
    before = contents(store)
    with pytest.raises(error) as info:
        datasets.append_annotations("tab", annotation_set, request, request_id)
    assert contents(store) == before
    return str(info.value)


def test_test_split_examples_are_refused_by_name(
    datasets: DatasetStore, object_store: ObjectStore, ids: list[str]
) -> None:
    test_ids = ids[POOL_ROWS:]
    message = refused(
        datasets, object_store, InvalidArgument,
        [Annotation(ids[0], "ann", "a"), *(Annotation(i, "ann", "b") for i in test_ids)],
    )  # fmt: skip
    assert f"3 example id(s) are in the test split of datasets/tab: {sorted(test_ids)}" in message
    assert "label only pool examples" in message
    assert datasets.append_annotations("tab", "s", [Annotation(ids[0], "ann", "a")], "ok").appended_count == 1


def test_reused_request_id_with_other_content_is_refused_saying_what_differs(
    datasets: DatasetStore, object_store: ObjectStore, ids: list[str]
) -> None:
    first = [Annotation(ids[0], "alice", "a"), Annotation(ids[1], "bob", "b")]
    assert datasets.append_annotations("tab", "s", first, "req-1").appended_count == 2
    changed_label = [first[0], Annotation(ids[1], "bob", "c")]
    message = refused(datasets, object_store, AlreadyExists, changed_label, request_id="req-1")
    assert "request_id 'req-1' was already used in annotation set 's' for a different request" in message
    assert "annotation 1 differs: label 'b' stored, 'c' sent" in message
    longer = [*first, Annotation(ids[2], "carol", "a")]
    message = refused(datasets, object_store, AlreadyExists, longer, request_id="req-1")
    assert "the stored request has 2 annotations, this one 3" in message
    # The very same request again is a retry: stored once, reported as a duplicate.
    retry = datasets.append_annotations("tab", "s", first, "req-1")
    assert (retry.appended_count, retry.duplicate) == (0, True)
    # Annotator names are stored stripped, so a retry that differs only in padding is the same request.
    padded = [Annotation(ids[0], " alice ", "a"), Annotation(ids[1], "bob", "b")]
    assert datasets.append_annotations("tab", "s", padded, "req-1").duplicate
    assert [(a.example_id, a.label) for a in datasets.list_annotations("tab", "s").items] == [
        (ids[0], "a"), (ids[1], "b"),
    ]  # fmt: skip


def test_a_pair_twice_in_one_request_is_refused(
    datasets: DatasetStore, object_store: ObjectStore, ids: list[str]
) -> None:
    request = [
        Annotation(ids[0], "alice", "a"),
        Annotation(ids[1], "alice", "a"),
        Annotation(ids[0], "alice ", "b"),
    ]
    message = refused(datasets, object_store, InvalidArgument, request)
    assert (
        f"1 (example, annotator) pair(s) appear more than once in the request: ('{ids[0]}', 'alice')"
        in message
    )
    # Another annotator on the same example, or the same annotator later, is fine.
    datasets.append_annotations("tab", "s", [*request[:2], Annotation(ids[0], "bob", "b")], "r1")
    datasets.append_annotations("tab", "s", [Annotation(ids[0], "alice", "b")], "r2")
    assert len(datasets.list_annotations("tab", "s").items) == 4


def test_annotators_per_set_are_bounded(
    datasets: DatasetStore, object_store: ObjectStore, ids: list[str]
) -> None:
    """The 1001st annotator of a set is refused (a snapshot's matrix has a column per annotator);
    other sets have their own count."""
    limit, pool = log_.MAX_ANNOTATORS_PER_SET, ids[:POOL_ROWS]
    names = [f"annotator-{n:04d}" for n in range(limit)]
    per_request = 500  # (example, annotator) pairs stay distinct: annotator n labels pool[n % 9]
    for start in range(0, limit, per_request):
        batch = [Annotation(pool[n % len(pool)], names[n], "a") for n in range(start, start + per_request)]
        datasets.append_annotations("tab", "crowd", batch, f"fill-{start}")
    message = refused(
        datasets, object_store, InvalidArgument,
        [Annotation(pool[0], "annotator-0000", "b"), Annotation(pool[1], "newcomer", "b")],
        annotation_set="crowd",
    )  # fmt: skip
    assert f"annotation set 'crowd' has {limit} annotators and this request adds 1 more" in message
    # A known annotator may go on labeling; a fresh store process counts the same from the log.
    datasets.append_annotations("tab", "crowd", [Annotation(pool[0], "annotator-0000", "b")], "again")
    fresh = DatasetStore(object_store)
    with pytest.raises(InvalidArgument, match="adds 1 more"):
        fresh.append_annotations("tab", "crowd", [Annotation(pool[1], "newcomer", "b")], "late")
    fresh.append_annotations("tab", "other", [Annotation(pool[1], "newcomer", "b")], "elsewhere")


def test_sizes_are_bounded_and_messages_never_echo_unbounded_input(
    datasets: DatasetStore, object_store: ObjectStore, ids: list[str]
) -> None:
    huge = "x" * 100_000
    pool = ids[:POOL_ROWS]
    too_many = [
        Annotation(pool[n % len(pool)], f"a{n}", "a") for n in range(log_.MAX_ANNOTATIONS_PER_REQUEST + 1)
    ]
    cases: list[tuple[type[LabelLoopError], list[Annotation], str, str]] = [
        (InvalidArgument, too_many, "req", "10001 annotations in one request: send at most 10000"),
        (InvalidArgument, [Annotation(pool[0], "a" * 129, "a")], "req",
         "annotations [0] have an annotator longer than 128 characters"),
        (NotFound, [Annotation(huge, "ann", "a")], "req", "1 example id(s) not in datasets/tab: ['xxx"),
        (NotFound, [Annotation(f"ex-{n}", "ann", "a") for n in range(50)], "req", "and 40 more"),
        (InvalidArgument, [Annotation(pool[0], "ann", huge)], "req", "are not classes of datasets/tab"),
        (InvalidArgument, [Annotation(pool[0], "ann", "a")], huge, "request_id 'xxx"),
    ]  # fmt: skip
    for error, request, request_id, expected in cases:
        message = refused(datasets, object_store, error, request, request_id=request_id)
        assert expected in message
        assert len(message) < 1500, message[:200]
    with pytest.raises(InvalidArgument) as info:
        datasets.append_annotations("tab", huge, [Annotation(pool[0], "ann", "a")], "req")
    assert "(100000 characters)" in str(info.value) and len(str(info.value)) < 500
    with pytest.raises(InvalidArgument) as info:
        datasets.get_dataset(huge)
    assert len(str(info.value)) < 500


# Over gRPC: each rule answers with its status code -----------------------------------------------


@pytest.fixture(scope="module")
def stub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[pb_grpc.DatasetStoreServiceStub]:
    root = tmp_path_factory.mktemp("store-rules")
    settings = Settings(
        storage=StorageConfig(backend="local", root=root / "data"),
        grpc_port=free_port(),
        metrics_port=free_port(),
        bind_host="127.0.0.1",
    )
    server = Server(
        "store",
        settings,
        registrar(
            DatasetStore(LocalStore(settings.storage.root), import_roots=[tmp_path_factory.getbasetemp()])
        ),
    )
    server.start()
    manifest = root / "m.csv"
    manifest.write_text(
        "id,x,label,split\n"
        + "".join(f"e{i},{i},{'ab'[i % 2]},{'pool' if i < 6 else 'test'}\n" for i in range(8))
    )
    stub = pb_grpc.DatasetStoreServiceStub(channel(f"127.0.0.1:{server.port}"))
    stub.CreateDataset(
        pb.CreateDatasetRequest(
            dataset_id="tab",
            manifest_uri=str(manifest),
            label_column="label",
            split_column="split",
            id_column="id",
        ),
        timeout=30,
    )
    stub.AppendAnnotations(_append_request("stored", [("e0", "ann", "a")]), timeout=10)
    yield stub
    server.stop(grace=1)


def _append_request(request_id: str, rows: list[tuple[str, str, str]]) -> pb.AppendAnnotationsRequest:
    return pb.AppendAnnotationsRequest(
        parent="datasets/tab",
        request_id=request_id,
        annotations=[pb.Annotation(example_id=e, annotator=a, label=label) for e, a, label in rows],
    )


GRPC_CASES = {
    "test split": ("new-1", [("e6", "ann", "a")], grpc.StatusCode.INVALID_ARGUMENT, "in the test split"),
    "changed retry": ("stored", [("e0", "ann", "b")], grpc.StatusCode.ALREADY_EXISTS,
                      "label 'a' stored, 'b' sent"),
    "pair twice": ("new-2", [("e1", "ann", "a"), ("e1", "ann", "b")], grpc.StatusCode.INVALID_ARGUMENT,
                   "appear more than once"),
    "long name": ("new-3", [("e1", "ann", "a")], grpc.StatusCode.INVALID_ARGUMENT,
                  "longer than 512 characters"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(GRPC_CASES))
def test_rules_answer_with_status_codes(stub: pb_grpc.DatasetStoreServiceStub, case: str) -> None:
    request_id, rows, code, message = GRPC_CASES[case]
    request = _append_request(request_id, rows)
    if case == "long name":
        request.parent = "datasets/" + "t" * 10_000
    with pytest.raises(grpc.RpcError) as info:
        stub.AppendAnnotations(request, timeout=10)
    assert (info.value.code(), message in info.value.details()) == (code, True), info.value.details()
    listed = stub.ListAnnotations(pb.ListAnnotationsRequest(parent="datasets/tab"), timeout=10)
    assert [(a.example_id, a.label) for a in listed.annotations] == [("e0", "a")]


def test_dataset_sizes_that_grow_later_steps_are_bounded(
    datasets: DatasetStore, object_store: ObjectStore, tmp_path: Path
) -> None:
    """Classes (a probability column each, repeated by every annotation) and names are bounded; the
    messages quote at most a few values, each cut short."""
    many = tmp_path / "many.csv"
    many.write_text("x,label\n" + "".join(f"{i},c{i}\n" for i in range(1001)))
    long_label = tmp_path / "long.csv"
    long_label.write_text("x,label\n1,a\n2," + "b" * 500 + "\n")
    cases = [
        (dict(manifest_uri=str(many), label_column="label"), "1001 classes: at most 1000"),
        (dict(manifest_uri=str(long_label), label_column="label"),
         "1 class name(s) are longer than 128 characters, e.g. 'bbbb"),
        (dict(manifest_uri=str(long_label), label_column="label", classes=["a", "b"]),
         "has labels ['bbbb"),
        (dict(manifest_uri=str(many), label_column="label", display_name="d" * 300),
         "display_name is 300 characters: at most 256"),
    ]  # fmt: skip
    for options, expected in cases:
        before = contents(object_store)
        with pytest.raises(InvalidArgument) as info:
            datasets.create_dataset("bounded", **options)  # type: ignore[arg-type]
        assert expected in str(info.value)
        assert len(str(info.value)) < 1000
        assert contents(object_store) == before
