"""Executors chosen by name (LABELLOOP_TRAINER_EXECUTOR) from the registry, imported only when chosen."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from labelloop.core.config import Settings, StorageConfig
from labelloop.core.errors import InvalidArgument
from labelloop.trainer.__main__ import build
from labelloop.trainer.executors.base import Executor
from labelloop.trainer.executors.registry import EXECUTORS, executor_class


@pytest.mark.parametrize("name", sorted(EXECUTORS))
def test_every_registered_name_is_an_executor(name: str) -> None:
    cls = executor_class(name)
    assert issubclass(cls, Executor) and cls.__module__.startswith("labelloop.trainer.executors.")


def test_an_unknown_executor_names_the_choices_before_touching_the_store(tmp_path: Path) -> None:
    settings = Settings(
        storage=StorageConfig(backend="local", root=tmp_path / "store"), trainer_executor="slurm"
    )
    with pytest.raises(InvalidArgument) as error:
        build(settings)
    assert str(error.value) == (
        "LABELLOOP_TRAINER_EXECUTOR='slurm' is not an executor: use one of " + ", ".join(sorted(EXECUTORS))
    )
    assert not (tmp_path / "store").exists()


def test_the_kubernetes_client_is_imported_only_for_the_kubernetes_executor() -> None:
    probe = (
        "import sys\n"
        "import labelloop.trainer.__main__\n"
        "from labelloop.trainer.executors.registry import executor_class\n"
        "executor_class('local')\n"
        "print('kubernetes' in sys.modules)\n"
        "executor_class('kubernetes')\n"
        "print('kubernetes' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True).stdout
    assert out.split() == ["False", "True"]
