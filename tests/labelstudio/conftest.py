"""One real Label Studio for the package's tests (its first start takes most of a minute)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.labelstudio.server import LabelStudio, ensure_venv, start_label_studio
from tests.support.ports import free_port


@pytest.fixture(scope="package")
def label_studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabelStudio]:
    problem = ensure_venv()
    if problem:
        pytest.skip(f"no Label Studio virtualenv: {problem}")
    server = start_label_studio(tmp_path_factory.mktemp("label-studio"), free_port())
    yield server
    server.stop()
