"""`python -m labelloop.store`: the dataset store service, configured by LABELLOOP_* variables."""

from __future__ import annotations

from labelloop.core.config import Settings
from labelloop.core.server import Registrar, run_service
from labelloop.core.storage import open_store
from labelloop.store.datasets import DatasetStore
from labelloop.store.service import registrar


def build(settings: Settings) -> Registrar:
    return registrar(DatasetStore(open_store(settings.storage), settings.import_roots))


if __name__ == "__main__":
    run_service("store", build)
