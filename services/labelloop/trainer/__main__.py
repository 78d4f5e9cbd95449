"""`python -m labelloop.trainer`: serves TrainerService until SIGTERM."""

from __future__ import annotations

from labelloop.core.channels import CallerCredentials
from labelloop.core.config import Settings
from labelloop.core.server import Registrar, run_service
from labelloop.core.storage import open_store
from labelloop.trainer.catalog import GrpcCatalog
from labelloop.trainer.executors.registry import executor_class
from labelloop.trainer.runs import Trainer
from labelloop.trainer.service import register

_trainer: Trainer | None = None


def build(settings: Settings) -> Registrar:
    global _trainer
    executor_type = executor_class(settings.trainer_executor)  # an unknown name fails before any I/O
    store = open_store(settings.storage)
    _trainer = Trainer(
        store,
        GrpcCatalog(settings.store_address, store, credentials=CallerCredentials.of(settings.security)),
        executor_type.from_settings(settings, store),
    )
    return register(_trainer)


def ready() -> None:
    """Returns once a run submitted now starts at once (the local worker has imported AutoGluon)."""
    if _trainer is not None:
        _trainer.executor.wait_ready()


def stop() -> None:
    if _trainer is not None:
        _trainer.close()
        _trainer.executor.close()


if __name__ == "__main__":
    run_service("trainer", build, on_stop=stop, ready=ready)
