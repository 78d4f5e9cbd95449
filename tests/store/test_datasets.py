"""Ingesting manifests into datasets, on a local folder and on a real S3 server."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest
from labelloop.core.errors import InvalidArgument, NotFound
from labelloop.core.storage import LocalStore, ObjectStore
from labelloop.store import DatasetStore
from PIL import Image

from tests.store.conftest import IMAGE_COUNT


def test_ingest_images_copies_and_references_files(
    datasets: DatasetStore, object_store: ObjectStore, image_manifest: Path
) -> None:
    info = datasets.create_dataset(
        "digits", str(image_manifest), image_column="image_path", label_column="label",
        test_fraction=0.25, seed=3,
    )  # fmt: skip
    assert info.classes == [str(d) for d in range(10)]
    assert (info.example_count, info.pool_count + info.test_count) == (IMAGE_COUNT, IMAGE_COUNT)
    assert info.test_count == 6 and info.feature_columns == []
    frame = datasets.read_examples("digits")
    assert list(frame.columns) == ["example_id", "split", "image_path", "label"]
    assert frame["example_id"].is_unique and frame["example_id"].str.match(r"^ex-[0-9a-f]{16}$").all()
    assert sorted(frame["label"]) == sorted(pd.read_csv(image_manifest, dtype=str)["label"])
    first = frame["image_path"].iloc[0]
    assert first == "datasets/digits/files/images/00000.png"
    # The copy is the same image, readable from the store.
    stored = Image.open(io.BytesIO(object_store.get_bytes(first)))
    assert stored.size == (16, 16) and stored.mode == "RGB"
    assert set(object_store.list("datasets/digits/files/")) == set(frame["image_path"])
    assert object_store.exists("datasets/digits/dataset.json")


def test_ids_are_stable_across_reingest_and_split_is_seeded(
    datasets: DatasetStore, image_manifest: Path
) -> None:
    options = {"image_column": "image_path", "label_column": "label", "test_fraction": 0.5, "seed": 7}
    datasets.create_dataset("first", str(image_manifest), **options)
    first = datasets.read_examples("first")
    datasets.delete_dataset("first")
    datasets.create_dataset("first", image_manifest.as_uri(), **options)  # file:// URI this time
    again = datasets.read_examples("first")
    assert list(again["example_id"]) == list(first["example_id"])
    assert list(again["split"]) == list(first["split"])
    # Stratified: every class with 2+ examples has a test example.
    counts = first["label"].value_counts()
    tested = set(first.loc[first["split"] == "test", "label"])
    assert {label for label, n in counts.items() if n >= 2} <= tested


def test_ingest_tabular_with_split_column_and_duplicate_rows(
    datasets: DatasetStore, tmp_path: Path, tabular_manifest: Path
) -> None:
    frame = pd.read_csv(tabular_manifest)
    frame = pd.concat([frame, frame.iloc[[0, 0]]], ignore_index=True)  # two exact copies of row 1
    manifest = tmp_path / "dup.parquet"
    frame.to_parquet(manifest)
    info = datasets.create_dataset("tab", str(manifest), label_column="label", split_column="split")
    assert info.feature_columns == ["x", "colour"]
    assert (info.pool_count, info.test_count, info.classes) == (11, 3, ["a", "b", "c"])
    examples = datasets.read_examples("tab")
    ids = list(examples["example_id"])
    assert ids[12] == ids[0] + "-2" and ids[13] == ids[0] + "-3"
    assert examples["x"].dtype == float and examples["colour"].iloc[1] == "green"


def test_explicit_ids_classes_and_unlabeled_rows(datasets: DatasetStore, tmp_path: Path) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text("id,text,label\n007,hello,spam\n008,world,\n009,again,ham\n")
    info = datasets.create_dataset(
        "texts", str(manifest), id_column="id", label_column="label", classes=["ham", "spam", "eggs"]
    )
    assert info.classes == ["ham", "spam", "eggs"] and info.feature_columns == ["text"]
    examples = datasets.read_examples("texts")
    assert list(examples["example_id"]) == ["007", "008", "009"]  # kept as text, zeros and all
    assert list(examples["label"]) == ["spam", None, "ham"]


def test_manifest_inside_the_store_references_its_images(
    datasets: DatasetStore, object_store: ObjectStore, image_manifest: Path
) -> None:
    # Upload the manifest and images to the store; the dataset then points at them, no copies.
    for path in sorted(image_manifest.parent.rglob("*")):
        if path.is_file():
            object_store.put_file("uploads/" + path.relative_to(image_manifest.parent).as_posix(), path)
    before = set(object_store.list(""))
    datasets.create_dataset(
        "in-store", object_store.uri("uploads/manifest.csv"), image_column="image_path", label_column="label"
    )
    examples = datasets.read_examples("in-store")
    assert examples["image_path"].iloc[0] == "uploads/images/00000.png"
    added = set(object_store.list("")) - before
    assert added == {"datasets/in-store/dataset.json", "datasets/in-store/examples.parquet"}


def test_get_list_delete_and_pagination(datasets: DatasetStore, tabular_manifest: Path) -> None:
    for name in ("c-set", "a-set", "b-set"):
        datasets.create_dataset(name, str(tabular_manifest), label_column="label", split_column="split")
    first = datasets.list_datasets(page_size=2)
    assert [d.dataset_id for d in first.items] == ["a-set", "b-set"] and first.next_page_token
    second = datasets.list_datasets(page_size=2, page_token=first.next_page_token)
    assert [d.dataset_id for d in second.items] == ["c-set"] and second.next_page_token == ""

    pool = datasets.list_examples("a-set", split="pool", page_size=4)
    assert pool.total_size == 9 and len(pool.items) == 4 and {e.split for e in pool.items} == {"pool"}
    seen = [e.example_id for e in pool.items]
    while pool.next_page_token:
        pool = datasets.list_examples("a-set", split="pool", page_size=4, page_token=pool.next_page_token)
        seen += [e.example_id for e in pool.items]
    expected = datasets.read_examples("a-set").query("split == 'pool'")["example_id"]
    assert seen == list(expected)
    assert pool.items[-1].features == {"x": "8.0", "colour": "blue"}
    # A token from another listing is rejected, not silently reused.
    with pytest.raises(InvalidArgument, match="page_token"):
        datasets.list_examples("a-set", split="test", page_token=first.next_page_token)
    with pytest.raises(InvalidArgument, match="page_token"):
        datasets.list_datasets(page_token="not-a-token")

    datasets.delete_dataset("b-set")
    assert [d.dataset_id for d in datasets.list_datasets().items] == ["a-set", "c-set"]
    with pytest.raises(NotFound, match="datasets/b-set does not exist"):
        datasets.get_dataset("b-set")
    with pytest.raises(NotFound, match="datasets/b-set does not exist"):
        datasets.delete_dataset("b-set")


def test_local_store_path_inside_root_is_referenced(tmp_path: Path) -> None:
    """On the local backend a plain path into the store folder counts as inside the store."""
    from labelloop.sample_data import write_digits_images

    store = LocalStore(tmp_path / "root")
    manifest = write_digits_images(tmp_path / "root" / "uploads", size=8, limit=3)
    DatasetStore(store).create_dataset("d", str(manifest), image_column="image_path", label_column="label")
    assert list(store.list("datasets/d/files/")) == []
    assert DatasetStore(store).read_examples("d")["image_path"].iloc[2] == "uploads/images/00002.png"
