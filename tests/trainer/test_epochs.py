"""The epoch of a fine-tuning fit: Lightning's callback (registered as an entry point, so every
Trainer has it, AutoGluon's too), the heartbeat's progress message, and the Operation's fields."""

from __future__ import annotations

import time
from importlib.metadata import entry_points
from pathlib import Path

import lightning.pytorch as pl
import torch
from labelloop.core.storage import LocalStore
from labelloop.trainer import epochs
from labelloop.trainer.contract import JobState
from labelloop.trainer.models import _heartbeat
from labelloop.trainer.operations import OperationRecord, to_proto
from torch.utils.data import DataLoader, TensorDataset


class Tiny(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)

    def training_step(self, batch: list[torch.Tensor], index: int) -> torch.Tensor:
        x, y = batch
        return torch.nn.functional.mse_loss(self.layer(x), y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_every_lightning_trainer_tells_the_listener_its_epochs(tmp_path: Path) -> None:
    names = [e.value for e in entry_points(group="lightning.pytorch.callbacks_factory")]
    assert "labelloop.trainer.epochs:callbacks" in names  # pyproject.toml registers it
    data = DataLoader(TensorDataset(torch.randn(8, 2), torch.randn(8, 1)), batch_size=4)
    seen: list[tuple[int, int]] = []
    trainer = pl.Trainer(
        max_epochs=3,
        default_root_dir=tmp_path,
        enable_progress_bar=False,
        enable_checkpointing=False,
        logger=False,
        enable_model_summary=False,
    )
    with epochs.following(lambda epoch, most: seen.append((epoch, most))):
        trainer.fit(Tiny(), data)
    assert seen == [(1, 3), (2, 3), (3, 3)]
    seen.clear()
    pl.Trainer(max_epochs=1, default_root_dir=tmp_path, logger=False, enable_progress_bar=False).fit(
        Tiny(), data
    )
    assert seen == []  # no listener outside following(): nothing told


def test_the_heartbeat_names_the_epoch_and_counts_it_as_progress() -> None:
    reports: list[tuple[float, str]] = []
    with _heartbeat(lambda p, m: reports.append((p, m)), 0.1, 0.5, None, "fitting") as beat:
        beat.epoch(1, 5)
        assert reports[-1][1].startswith("fitting, epoch 1/5 (")  # the first epoch at once
        beat.epoch(2, 5)
        beat.epoch(3, 5)  # epochs within a second: the latest is reported a second later
        assert len(reports) == 1
        time.sleep(2.5)
    assert len(reports) <= 4  # about once a second
    progress, message = reports[-1]
    assert message.startswith("fitting, epoch 3/5 (") and message.endswith(" s)")
    assert abs(progress - (0.1 + 0.4 * 2 / 5)) < 1e-9  # two of five epochs done
    assert epochs.epoch_of(message) == (3, 5)
    assert epochs.epoch_of("fitting, epoch 7 (3 s)") == (7, 0) and epochs.epoch_of("fitting (3 s)") == (0, 0)


def test_a_running_operation_carries_the_epoch_as_fields(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    record = OperationRecord(
        id="op", kind="train", request_id="r", state=JobState.RUNNING, message="fitting, epoch 2/10 (9 s)"
    )
    operation = to_proto(record, store)
    assert (operation.epoch, operation.max_epochs) == (2, 10)
    record.state, record.message = JobState.SUCCEEDED, "done"
    assert to_proto(record, store).epoch == 0
