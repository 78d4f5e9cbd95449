"""LocalCluster's lifecycle: starting twice (`with cluster.start():` enters again) must not start a
second process that loses its ports to the first and leaves the first running after stop()."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from labelloop.core.config import StorageConfig

from tests.support.cluster import cluster

pytestmark = pytest.mark.integration


def test_starting_again_keeps_the_running_processes_and_stop_ends_them(tmp_path: Path) -> None:
    local = cluster(tmp_path, StorageConfig(backend="local", root=tmp_path / "data"), services=("selector",))
    with local.start():  # __enter__ starts again
        process = local.processes["selector"]
        assert local.running("selector")
        local.start()
        assert local.processes["selector"] is process
        with pytest.raises(RuntimeError, match="selector is already running"):
            local.start_service("selector")
    assert process.returncode is not None and not local.running("selector")
    with pytest.raises(ProcessLookupError):
        os.kill(process.pid, 0)  # reaped, not left behind
    local.restart("selector")  # a stopped service starts again
    try:
        assert local.running("selector") and local.processes["selector"] is not process
    finally:
        local.stop()
