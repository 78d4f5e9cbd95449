"""`python -m labelloop.selector`: the selector service, configured by LABELLOOP_* variables."""

from __future__ import annotations

from labelloop.core.config import Settings
from labelloop.core.server import Registrar, run_service
from labelloop.core.storage import open_store
from labelloop.selector.service import registrar


def build(settings: Settings) -> Registrar:
    return registrar(open_store(settings.storage))


if __name__ == "__main__":
    run_service("selector", build)
