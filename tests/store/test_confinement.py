"""The store reads manifests and images only from its import roots and the object store, and a
dataset never references objects another resource owns.

A refusal must read the same whether the file outside exists or not: the messages are compared
with the path itself taken out.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
from labelloop.core.errors import InvalidArgument
from labelloop.core.storage import LocalStore, ObjectStore
from labelloop.sample_data import write_digits_images
from labelloop.store import DatasetStore

from tests.store.conftest import contents


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    """An import root with a tabular manifest, and a folder outside it with another."""
    inside, outside = tmp_path / "inside", tmp_path / "outside"
    for folder in (inside, outside):
        folder.mkdir()
        pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "label": ["a", "b"] * 2}).to_csv(
            folder / "m.csv", index=False
        )
    return inside, outside


def refusal(datasets: DatasetStore, manifest: str, **columns: str) -> str:
    with pytest.raises(InvalidArgument) as info:
        datasets.create_dataset("refused", manifest, label_column="label", **columns)
    return str(info.value)


def test_manifests_are_read_only_from_import_roots(tmp_path: Path, folders: tuple[Path, Path]) -> None:
    inside, outside = folders
    store = LocalStore(tmp_path / "store")
    datasets = DatasetStore(store, import_roots=[inside])
    before = contents(store)
    (inside / "link.csv").symlink_to(outside / "m.csv")
    (inside / "sub").mkdir()
    refused = {
        "outside": str(outside / "m.csv"),
        "dot-dot": f"{inside}/sub/../../outside/m.csv",
        "symlink": str(inside / "link.csv"),
        "file URI": (outside / "m.csv").as_uri(),
    }
    for name, manifest in refused.items():
        message = refusal(datasets, manifest)
        assert "is not inside the store's import roots" in message, name
        assert str(inside) in message and "LABELLOOP_IMPORT_ROOTS" in message, name
    # Existing or not, a file outside reads the same: the message names only what the caller sent.
    assert not (outside / "n.csv").exists()
    assert refusal(datasets, str(outside / "m.csv")) == refusal(datasets, str(outside / "n.csv")).replace(
        "n.csv", "m.csv"
    )
    assert contents(store) == before
    # Inside the root, the same file reads (and only there does a missing file say so).
    assert datasets.create_dataset("d", str(inside / "m.csv"), label_column="label").example_count == 4
    assert "does not exist" in refusal(datasets, str(inside / "no.csv"))


def test_a_store_without_import_roots_says_which_setting_to_set(
    tmp_path: Path, folders: tuple[Path, Path]
) -> None:
    inside, _ = folders
    store = LocalStore(tmp_path / "store")
    message = refusal(DatasetStore(store), str(inside / "m.csv"))
    assert "imports files from no folder: set LABELLOOP_IMPORT_ROOTS" in message
    assert refusal(DatasetStore(store), str(inside / "n.csv")).replace("n.csv", "m.csv") == message
    # The object store is always readable.
    store.put_file("uploads/m.csv", inside / "m.csv")
    info = DatasetStore(store).create_dataset("d", store.uri("uploads/m.csv"), label_column="label")
    assert info.example_count == 4


def test_images_are_copied_only_from_import_roots(tmp_path: Path) -> None:
    inside, outside = tmp_path / "inside", tmp_path / "outside"
    manifest = write_digits_images(inside, size=8, limit=4)
    write_digits_images(outside, size=8, limit=4)
    store = LocalStore(tmp_path / "store")
    datasets = DatasetStore(store, import_roots=[inside])
    before = contents(store)
    frame = pd.read_csv(manifest)
    os.symlink(outside / frame["image_path"].iloc[1], inside / "linked.png")
    cases = {
        "relative, up and out": "../outside/" + frame["image_path"].iloc[0],
        "absolute": str(outside / frame["image_path"].iloc[0]),
        "symlink": "linked.png",
        "absolute, missing": str(outside / "images" / "none.png"),
    }
    for name, image in cases.items():
        frame.loc[2, "image_path"] = image
        frame.to_csv(inside / "bad.csv", index=False)
        message = refusal(datasets, str(inside / "bad.csv"), image_column="image_path")
        assert f"manifest row 3: image '{image[:40]}" in message, name
        assert "is not inside the store's import roots" in message, name
    assert contents(store) == before
    info = datasets.create_dataset("d", str(manifest), image_column="image_path", label_column="label")
    assert info.example_count == 4 and len(list(store.list("datasets/d/files/"))) == 4


def test_a_dataset_cannot_reference_another_datasets_files(
    datasets: DatasetStore, object_store: ObjectStore, image_manifest: Path
) -> None:
    datasets.create_dataset("first", str(image_manifest), image_column="image_path", label_column="label")
    files = list(object_store.list("datasets/first/files/"))
    borrowed = pd.DataFrame(
        {"image_path": [object_store.uri(k) for k in files[:3]], "label": ["0", "1", "2"]}
    )
    object_store.put_bytes("uploads/borrowed.csv", borrowed.to_csv(index=False).encode())
    relative = borrowed.assign(image_path=["../" + k for k in files[:3]])
    object_store.put_bytes("uploads/relative.csv", relative.to_csv(index=False).encode())
    for manifest in ("uploads/borrowed.csv", "uploads/relative.csv"):
        message = refusal(datasets, object_store.uri(manifest), image_column="image_path")
        assert "manifest row 1: image" in message and "is under datasets/" in message, manifest
        assert "copy it to a folder of its own" in message
    assert [d.dataset_id for d in datasets.list_datasets().items] == ["first"]
    # Copied to a folder of its own, the same images are referenced.
    for key in files[:3]:
        object_store.put_bytes("uploads/" + key, object_store.get_bytes(key))
    own = borrowed.assign(image_path=[object_store.uri("uploads/" + k) for k in files[:3]])
    object_store.put_bytes("uploads/own.csv", own.to_csv(index=False).encode())
    datasets.create_dataset("second", object_store.uri("uploads/own.csv"), image_column="image_path",
                            label_column="label")  # fmt: skip
    datasets.delete_dataset("first")
    assert len(datasets.read_examples("second")) == 3
    assert all(object_store.exists(k) for k in datasets.read_examples("second")["image_path"])
