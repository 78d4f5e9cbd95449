"""`python -m labelloop.trainer`: serves TrainerService until SIGTERM."""

from __future__ import annotations

from labelloop.core.config import Settings
from labelloop.core.errors import InvalidArgument
from labelloop.core.server import Registrar, run_service
from labelloop.core.storage import ObjectStore, open_store
from labelloop.trainer.catalog import GrpcCatalog
from labelloop.trainer.executors.base import Executor
from labelloop.trainer.runs import Trainer
from labelloop.trainer.service import register

_trainer: Trainer | None = None


def make_executor(settings: Settings, store: ObjectStore, prestart: bool = True) -> Executor:
    if settings.trainer_executor == "local":
        from labelloop.trainer.executors.local import LocalExecutor

        return LocalExecutor(settings, store, prestart=prestart)  # prestart: import AutoGluon before round 1
    if settings.trainer_executor == "kubernetes":
        # Imported lazily: the kubernetes client is not needed by local runs.
        from labelloop.trainer.executors.kubernetes import KubernetesExecutor

        return KubernetesExecutor(settings, store=store)
    raise InvalidArgument(
        f"LABELLOOP_TRAINER_EXECUTOR={settings.trainer_executor!r}: use 'local' or 'kubernetes'"
    )


def build(settings: Settings) -> Registrar:
    global _trainer
    store = open_store(settings.storage)
    _trainer = Trainer(store, GrpcCatalog(settings.store_address, store), make_executor(settings, store))
    return register(_trainer)


def stop() -> None:
    if _trainer is not None:
        _trainer.close()
        _trainer.executor.close()


if __name__ == "__main__":
    run_service("trainer", build, on_stop=stop)
