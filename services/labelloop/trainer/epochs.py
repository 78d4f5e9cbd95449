"""The epoch a fine-tuning fit is in, for `labelloop experiments watch`.

AutoGluon's MultiModalPredictor builds its own Lightning Trainer and takes no callbacks, but every
Lightning Trainer also adds the callbacks that installed packages register under the entry-point
group "lightning.pytorch.callbacks_factory" (pyproject.toml names `callbacks` below). That callback
tells the listener `following()` installs in this process; with none installed it does nothing,
so other Lightning users in the same environment are unaffected.

The epoch travels in the job's progress message as "epoch 3/10" (`epoch_text`), the one channel
every executor already carries from the job to its operation; the trainer service reads it back
(`epoch_of`) into the Operation's `epoch` and `max_epochs` fields.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

Listener = Callable[[int, int], None]  # (epoch from 1, max epochs or 0 when unbounded)

_EPOCH = re.compile(r"\bepoch (\d+)(?:/(\d+))?\b")
_lock = threading.Lock()
_listener: Listener | None = None


def epoch_text(epoch: int, max_epochs: int) -> str:
    """ "epoch 3/10" ("epoch 3" without a bound): the form `epoch_of` reads back."""
    return f"epoch {epoch}/{max_epochs}" if max_epochs else f"epoch {epoch}"


def epoch_of(message: str) -> tuple[int, int]:
    """(epoch, max_epochs) from a job's progress message; (0, 0) when it names none."""
    match = _EPOCH.search(message)
    return (int(match[1]), int(match[2] or 0)) if match else (0, 0)


@contextmanager
def following(listener: Listener) -> Iterator[None]:
    """Calls listener(epoch, max_epochs) at the start of every training epoch of a Lightning fit
    run in this process while the block runs (a job process runs one fit at a time)."""
    global _listener
    with _lock:
        _listener = listener
    try:
        yield
    finally:
        with _lock:
            _listener = None


def _tell(epoch: int, max_epochs: int) -> None:
    with _lock:
        listener = _listener
    if listener is not None:
        listener(epoch, max_epochs)


def callbacks() -> list[Any]:
    """The entry point Lightning calls for every Trainer it builds: one EpochCallback."""
    from lightning.pytorch.callbacks import Callback

    class EpochCallback(Callback):
        def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
            if getattr(trainer, "is_global_zero", True):
                most = trainer.max_epochs if trainer.max_epochs and trainer.max_epochs > 0 else 0
                _tell(int(trainer.current_epoch) + 1, int(most))

    return [EpochCallback()]
