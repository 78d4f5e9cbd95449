"""The API definition: generated code is current, and the protos follow buf's STANDARD lint rules."""

from __future__ import annotations

import filecmp
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from grpc_tools import protoc

ROOT = Path(__file__).resolve().parents[2]
PROTOS = sorted((ROOT / "protos" / "labelloop" / "v1").glob("*.proto"))
GENERATED = ROOT / "services" / "labelloop" / "v1"


def test_generated_code_matches_protos(tmp_path: Path) -> None:
    """Fails when someone edits a .proto without running `make protos`."""
    include = Path(protoc.__file__).parent / "_proto"
    args = [
        "protoc", f"-I{ROOT / 'protos'}", f"-I{include}", f"--python_out={tmp_path}",
        f"--grpc_python_out={tmp_path}", f"--pyi_out={tmp_path}", *map(str, PROTOS),
    ]  # fmt: skip
    assert protoc.main(args) == 0
    fresh = tmp_path / "labelloop" / "v1"
    names = sorted(p.name for p in fresh.iterdir())
    assert names == sorted(
        p.name for p in GENERATED.iterdir() if p.name not in ("__init__.py", "__pycache__")
    )
    _, mismatch, errors = filecmp.cmpfiles(fresh, GENERATED, names, shallow=False)
    assert not mismatch and not errors, f"stale generated code, run `make protos`: {mismatch + errors}"


def test_buf_lint() -> None:
    buf = Path(sys.executable).parent / "buf"
    buf_path = str(buf) if buf.exists() else shutil.which("buf")
    if buf_path is None:
        pytest.skip("buf is not installed (pip install buf-bin)")
    result = subprocess.run([buf_path, "lint"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_generated_code_imports() -> None:
    from labelloop.v1 import experiments_pb2, experiments_pb2_grpc

    assert experiments_pb2.ExperimentState.Name(0) == "EXPERIMENT_STATE_UNSPECIFIED"
    assert hasattr(experiments_pb2_grpc, "ExperimentServiceStub")
