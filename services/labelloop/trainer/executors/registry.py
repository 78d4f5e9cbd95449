"""Executors by name: the values of LABELLOOP_TRAINER_EXECUTOR (and of the chart's trainer.executor).

Each name maps to "module:Class", imported only when chosen, so a trainer that runs jobs locally
never imports the Kubernetes client. Adding an executor is one module under executors/ with an
Executor subclass, plus one line here.
"""

from __future__ import annotations

import importlib

from labelloop.core.errors import InvalidArgument
from labelloop.trainer.executors.base import Executor

EXECUTORS: dict[str, str] = {
    "local": "labelloop.trainer.executors.local:LocalExecutor",
    "kubernetes": "labelloop.trainer.executors.kubernetes:KubernetesExecutor",
}


def executor_class(name: str) -> type[Executor]:
    """The Executor subclass registered as `name`; InvalidArgument naming the choices otherwise."""
    if name not in EXECUTORS:
        choices = ", ".join(sorted(EXECUTORS))
        raise InvalidArgument(f"LABELLOOP_TRAINER_EXECUTOR={name!r} is not an executor: use one of {choices}")
    module_name, _, class_name = EXECUTORS[name].partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    if not (isinstance(cls, type) and issubclass(cls, Executor)):
        raise TypeError(f"{EXECUTORS[name]} (executor {name!r}) is not an Executor subclass")
    return cls
