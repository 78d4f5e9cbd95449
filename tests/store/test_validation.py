"""Bad input: the right error, a message that says what to fix, and nothing stored changed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from labelloop.core.errors import AlreadyExists, InvalidArgument, LabelLoopError, NotFound
from labelloop.core.storage import ObjectStore
from labelloop.store import DatasetStore
from labelloop.store.models import Annotation

from tests.store.conftest import contents


def _manifest(tmp_path: Path, text: str, name: str = "m.csv") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def _images(tmp_path: Path, image_manifest: Path, break_row: int, content: bytes | None) -> str:
    """The image manifest with row break_row's file replaced by content (None: deleted)."""
    frame = pd.read_csv(image_manifest)
    target = image_manifest.parent / frame["image_path"].iloc[break_row - 1]
    if content is None:
        target.unlink()
    else:
        target.write_bytes(content)
    return str(image_manifest)


# (case, error, message part, make manifest_uri, create_dataset options)
IMAGE = {"image_column": "image_path", "label_column": "label"}
CASES: list[tuple[str, type[LabelLoopError], str, Callable[[Path, Path], str], dict]] = [
    ("unparseable", InvalidArgument, "cannot parse manifest",
     lambda t, _: _manifest(t, "garbage", "m.parquet"), {}),
    ("empty", InvalidArgument, "has no rows",
     lambda t, _: _manifest(t, "x,label\n"), {"label_column": "label"}),
    ("no columns", InvalidArgument, "cannot parse manifest", lambda t, _: _manifest(t, ""), {}),
    ("missing column", InvalidArgument, "lacks column(s) ['lbl']",
     lambda t, _: _manifest(t, "x,label\n1,a\n"), {"label_column": "lbl"}),
    ("wrong suffix", InvalidArgument, "must end in .csv or .parquet",
     lambda t, _: _manifest(t, "x\n1\n", "m.txt"), {}),
    ("no manifest", InvalidArgument, "does not exist", lambda t, _: str(t / "nope.csv"), {}),
    ("foreign uri", InvalidArgument, "not inside this store", lambda t, _: "s3://elsewhere/m.csv", {}),
    ("reserved column", InvalidArgument, "reserved by the store",
     lambda t, _: _manifest(t, "split,label\n1,a\n"), {"label_column": "label"}),
    ("label outside classes", InvalidArgument, "labels ['z'] outside classes ['a', 'b'] (manifest rows [2])",
     lambda t, _: _manifest(t, "x,label\n1,a\n2,z\n"), {"label_column": "label", "classes": ["a", "b"]}),
    ("no classes", InvalidArgument, "no class set", lambda t, _: _manifest(t, "x\n1\n"), {}),
    ("bad split value", InvalidArgument, "manifest rows [2] hold ['train']",
     lambda t, _: _manifest(t, "x,s,label\n1,pool,a\n2,train,a\n"),
     {"split_column": "s", "label_column": "label"}),
    ("duplicate ids", InvalidArgument, "repeats ids ['7']",
     lambda t, _: _manifest(t, "id,x,label\n7,1,a\n7,2,a\n"), {"id_column": "id", "label_column": "label"}),
    ("bad fraction", InvalidArgument, "test_fraction 1.5 must be in [0, 1)",
     lambda t, _: _manifest(t, "x,label\n1,a\n"), {"label_column": "label", "test_fraction": 1.5}),
    ("missing image", InvalidArgument, "manifest row 5: image 'images/00004.png'",
     lambda t, m: _images(t, m, 5, None), IMAGE),
    ("unreadable image", InvalidArgument, "manifest row 3: image 'images/00002.png'",
     lambda t, m: _images(t, m, 3, b"\x89PNG garbage, not an image"), IMAGE),
    ("empty image path", InvalidArgument, "manifest row 1: image column 'img' is empty",
     lambda t, _: _manifest(t, "img,label\n,b\na.png,a\n"), {"image_column": "img", "label_column": "label"}),
]  # fmt: skip


@pytest.mark.parametrize(("case", "error", "message", "make", "options"), CASES, ids=[c[0] for c in CASES])
def test_bad_manifest_stores_nothing(
    datasets: DatasetStore,
    object_store: ObjectStore,
    tmp_path: Path,
    image_manifest: Path,
    case: str,
    error: type[LabelLoopError],
    message: str,
    make: Callable[[Path, Path], str],
    options: dict,
) -> None:
    uri = make(tmp_path, image_manifest)
    before = contents(object_store)
    with pytest.raises(error) as info:
        datasets.create_dataset("bad", uri, **options)
    assert message in str(info.value)
    assert "missing image" not in case or "does not exist" in str(info.value)
    assert "unreadable" not in case or "is not a readable image" in str(info.value)
    assert contents(object_store) == before


def test_bad_dataset_id_and_existing_dataset(
    datasets: DatasetStore, object_store: ObjectStore, tabular_manifest: Path
) -> None:
    with pytest.raises(InvalidArgument, match="dataset_id 'Bad_Id' is not a valid id"):
        datasets.create_dataset("Bad_Id", str(tabular_manifest), label_column="label")
    with pytest.raises(InvalidArgument, match="not a valid id"):
        datasets.get_dataset("../etc")
    datasets.create_dataset(
        "tab", str(tabular_manifest), label_column="label", split_column="split", display_name="first"
    )
    before = contents(object_store)
    with pytest.raises(AlreadyExists, match="datasets/tab already exists"):
        datasets.create_dataset(
            "tab", str(tabular_manifest), label_column="label", split_column="split", display_name="second"
        )
    assert contents(object_store) == before
    assert datasets.get_dataset("tab").display_name == "first"


@pytest.fixture
def labeled(datasets: DatasetStore, tabular_manifest: Path) -> list[str]:
    datasets.create_dataset("tab", str(tabular_manifest), label_column="label", split_column="split")
    ids = list(datasets.read_examples("tab")["example_id"])
    datasets.append_annotations("tab", "", [Annotation(ids[0], "ann", "a")], "req-1")
    return ids


def _bad_annotations(ids: list[str]) -> list[tuple[str, type[LabelLoopError], str, dict]]:
    good = [Annotation(ids[1], "ann", "b")]
    return [
        ("unknown example", NotFound, "2 example id(s) not in datasets/tab: ['ex-nope', 'ex-zzz']",
         {"annotations": [*good, Annotation("ex-zzz", "ann", "a"), Annotation("ex-nope", "ann", "a")]}),
        ("label outside classes", InvalidArgument, "labels ['d'] are not classes of datasets/tab",
         {"annotations": [*good, Annotation(ids[2], "ann", "d")]}),
        ("empty annotator", InvalidArgument, "annotations [1] have an empty annotator",
         {"annotations": [*good, Annotation(ids[2], " ", "a")]}),
        ("no request id", InvalidArgument, "request_id is empty", {"request_id": ""}),
        ("bad request id", InvalidArgument, "request_id 'a/b' is not valid", {"request_id": "a/b"}),
        ("bad set", InvalidArgument, "annotation_set 'Set!' is not a valid id", {"annotation_set": "Set!"}),
        ("no annotations", InvalidArgument, "annotations is empty", {"annotations": []}),
        ("no dataset", NotFound, "datasets/nope does not exist", {"dataset_id": "nope"}),
    ]  # fmt: skip


BAD_ANNOTATION_CASES = [c[0] for c in _bad_annotations(["x", "y", "z"])]


@pytest.mark.parametrize("case", BAD_ANNOTATION_CASES)
def test_bad_annotations_store_nothing(
    datasets: DatasetStore, object_store: ObjectStore, labeled: list[str], case: str
) -> None:
    _, error, message, changes = next(c for c in _bad_annotations(labeled) if c[0] == case)
    request = {
        "dataset_id": "tab",
        "annotation_set": "",
        "annotations": [Annotation(labeled[1], "ann", "b")],
        "request_id": "req-2",
    } | changes
    before = contents(object_store)
    with pytest.raises(error) as info:
        datasets.append_annotations(**request)
    assert message in str(info.value)
    assert contents(object_store) == before
    assert len(datasets.list_annotations("tab").items) == 1


def test_bad_snapshot_and_listing_requests(
    datasets: DatasetStore, object_store: ObjectStore, labeled: list[str]
) -> None:
    before = contents(object_store)
    with pytest.raises(InvalidArgument, match="snapshot_id 'R1' is not a valid id"):
        datasets.create_snapshot("tab", "R1")
    with pytest.raises(NotFound, match="snapshot datasets/tab/snapshots/r9 does not exist"):
        datasets.get_snapshot("tab", "r9")
    with pytest.raises(InvalidArgument, match="page_size -1 is negative"):
        datasets.list_snapshots("tab", page_size=-1)
    with pytest.raises(InvalidArgument, match="split 'train' is not one of"):
        datasets.list_examples("tab", split="train")
    assert contents(object_store) == before
