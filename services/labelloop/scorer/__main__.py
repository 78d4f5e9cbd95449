"""`python -m labelloop.scorer`: the scorer service, configured by LABELLOOP_* variables."""

from __future__ import annotations

from labelloop.core.config import Settings
from labelloop.core.server import Registrar, run_service
from labelloop.core.storage import open_store
from labelloop.scorer.scoring import Scorer
from labelloop.scorer.service import registrar


def build(settings: Settings) -> Registrar:
    return registrar(Scorer(open_store(settings.storage)))


if __name__ == "__main__":
    run_service("scorer", build)
