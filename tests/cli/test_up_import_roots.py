"""`labelloop up` tells the store where it may import files from: --import-root, else
LABELLOOP_IMPORT_ROOTS, else the folder it is started in; LocalCluster hands that to the store."""

from __future__ import annotations

from pathlib import Path

import pytest
from labelloop.cli.local import LocalCluster
from labelloop.cli.main import build_parser
from labelloop.cli.up import import_roots
from labelloop.core.config import Settings, StorageConfig


@pytest.mark.parametrize(
    ("argv", "env", "expected"),
    [
        (["--import-root", "/data", "--import-root", "/more"], "/ignored", [Path("/data"), Path("/more")]),
        ([], "/a:/b", [Path("/a"), Path("/b")]),
        ([], "", [Path.cwd()]),
    ],
)
def test_import_roots_of_up(argv: list[str], env: str, expected: list[Path]) -> None:
    args = build_parser().parse_args(["up", *argv])
    settings = Settings.from_env({"LABELLOOP_IMPORT_ROOTS": env})
    assert import_roots(args, settings) == expected


def test_the_store_process_gets_the_roots(tmp_path: Path) -> None:
    cluster = LocalCluster(StorageConfig(root=tmp_path), tmp_path, import_roots=[tmp_path / "in", "/x"])
    assert cluster.env_for("store")["LABELLOOP_IMPORT_ROOTS"] == f"{tmp_path / 'in'}:/x"
    assert Settings.from_env(cluster.env_for("store")).import_roots == (tmp_path / "in", Path("/x"))
    # Without roots anywhere, the store imports from the object store only.
    bare = LocalCluster(StorageConfig(root=tmp_path), tmp_path, settings=Settings())
    assert bare.env_for("store")["LABELLOOP_IMPORT_ROOTS"] == ""
