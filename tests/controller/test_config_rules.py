"""CreateExperiment checks the whole config before any label is bought: the trainer's part too
(hyperparameters, checkpoints), and sizes; a bad config stores nothing. ResumeExperiment refuses an
experiment that failed for good, saying why, while it accepts one that stopped on a fault
(test_resume.py)."""

from __future__ import annotations

import time

import grpc
import pytest
from labelloop.cli.local import LocalCluster
from labelloop.client import LabelLoopClient, trainer_config
from labelloop.core.hparams import check_offline_checkpoints, offline_setting
from labelloop.core.storage import open_store
from labelloop.v1 import dataset_store_pb2 as ds
from labelloop.v1 import experiments_pb2 as pb
from labelloop.v1 import trainer_pb2

from tests.support.cluster import ingest_tabular_digits

BAD_CONFIGS = {
    "hyperparameter key not dotted": (
        {"trainer": trainer_config({"epochs": "3"})},
        "hyperparameter key 'epochs' must be dotted",
    ),
    "hyperparameter not YAML": (
        {"trainer": trainer_config({"optim.lr": "[0.1"})},
        "hyperparameter 'optim.lr': '[0.1' is not valid YAML",
    ),
    "hyperparameter of the wrong type": (
        {"trainer": trainer_config({"optim.lr": "abc"})},
        "hyperparameter 'optim.lr' must be a non-negative number, got 'abc'",
    ),
    "unknown built-in checkpoint": (
        {"trainer": trainer_pb2.TrainerConfig(checkpoints=[
            trainer_pb2.Checkpoint(key="model.timm_image.checkpoint_name", source="labelloop:imagenet/vit")
        ])},
        "unknown built-in checkpoint 'labelloop:imagenet/vit'",
    ),
    "checkpoint without key": (
        {"trainer": trainer_pb2.TrainerConfig(checkpoints=[trainer_pb2.Checkpoint(source="resnet18")])},
        "checkpoint 'resnet18' has no key",
    ),
    "pixels fine-tuned": (
        {"trainer": trainer_pb2.TrainerConfig(checkpoints=[
            trainer_pb2.Checkpoint(key="model.timm_image.checkpoint_name", source="labelloop:pixels")
        ])},
        "'labelloop:pixels' is a linear-probe backbone",
    ),
    "negative time limit": (
        {"trainer": trainer_pb2.TrainerConfig(time_limit_seconds=-1)},
        "config.trainer.time_limit_seconds must be >= 0",
    ),
    "huge hyperparameter value": (
        {"trainer": trainer_config({"optim.lr": "1" * 10_000})},
        "its value is 10000 characters, at most 4096",
    ),
    "long display name": ({"display_name": "n" * 1000}, "display_name is 1000 characters: at most 256"),
    "long initial id": (
        {"per_class": 0, "initial_example_ids": ["x" * 2000]},
        "config.initial_labels.example_ids [0] are longer than 1024 characters",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD_CONFIGS))
def test_bad_configs_are_refused_at_creation(
    running: tuple[LocalCluster, LabelLoopClient], case: str
) -> None:
    local, client = running
    overrides, message = BAD_CONFIGS[case]
    store = open_store(local.settings.storage)
    before = sorted(store.list("experiments/"))
    args: dict = dict(dataset="digits", per_class=2, batch_size=10, max_rounds=3, seed=1) | overrides
    with pytest.raises(grpc.RpcError) as info:
        client.create_experiment(f"bad-{abs(hash(case)) % 10_000}", **args)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, info.value.details()
    assert message in info.value.details()
    assert len(info.value.details()) < 1000
    assert sorted(store.list("experiments/")) == before


OFFLINE_ALTERNATIVES = (
    "'labelloop:imagenet/mobilenetv2_100'",
    "'labelloop:text/all-minilm-l6-v2'",
    "'labelloop:pixels'",
    "'labelloop:random/<timm architecture>'",
    "'s3://bucket/prefix/'",
)


@pytest.mark.parametrize(
    ("trainer", "where"),
    [
        (
            trainer_pb2.TrainerConfig(
                mode=trainer_pb2.TRAINING_MODE_LINEAR_PROBE,
                checkpoints=[
                    trainer_pb2.Checkpoint(key="model.timm_image.checkpoint_name", source="resnet18")
                ],
            ),
            "config.trainer.checkpoints[0] (model.timm_image.checkpoint_name) is 'resnet18'",
        ),
        (
            trainer_config({"model.hf_text.checkpoint_name": "bert-base-uncased"}),
            "config.trainer.hyperparameters['model.hf_text.checkpoint_name'] is 'bert-base-uncased'",
        ),
    ],
)
def test_a_hub_checkpoint_is_refused_offline_with_the_alternatives(
    running: tuple[LocalCluster, LabelLoopClient], trainer: trainer_pb2.TrainerConfig, where: str
) -> None:
    """The services started by LocalCluster (like `labelloop up`) have HF_HUB_OFFLINE=1: a checkpoint
    that needs a download is refused at creation, naming the setting and what works offline."""
    local, client = running
    store = open_store(local.settings.storage)
    before = sorted(store.list("experiments/"))
    with pytest.raises(grpc.RpcError) as info:
        client.create_experiment(
            f"hub-{abs(hash(where)) % 10_000}",
            dataset="digits",
            per_class=2,
            batch_size=10,
            max_rounds=3,
            trainer=trainer,
        )
    details = info.value.details()
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, details
    assert where in details
    assert "needs a download, and the services run offline (HF_HUB_OFFLINE=1)" in details
    assert all(alternative in details for alternative in OFFLINE_ALTERNATIVES), details
    assert sorted(store.list("experiments/")) == before


def test_offline_checkpoints_are_accepted_offline(running: tuple[LocalCluster, LabelLoopClient]) -> None:
    """Built-in, object-store and absolute-folder checkpoints need no download: created offline."""
    _, client = running
    sources = ["labelloop:imagenet/mobilenetv2_100", "s3://bucket/checkpoints/x/", "/models/resnet18"]
    for i, source in enumerate(sources):
        trainer = trainer_pb2.TrainerConfig(
            mode=trainer_pb2.TRAINING_MODE_LINEAR_PROBE,
            checkpoints=[trainer_pb2.Checkpoint(key="model.timm_image.checkpoint_name", source=source)],
        )
        created = client.create_experiment(
            f"offline-ok-{i}", dataset="digits", per_class=2, batch_size=10, max_rounds=3, trainer=trainer
        )
        assert created.name == f"experiments/offline-ok-{i}"


def test_offline_is_read_from_the_environment_and_online_checks_nothing() -> None:
    assert offline_setting({"HF_HUB_OFFLINE": "1"}) == "HF_HUB_OFFLINE=1"
    assert offline_setting({"LABELLOOP_OFFLINE": "true", "HF_HUB_OFFLINE": "1"}) == "LABELLOOP_OFFLINE=true"
    assert offline_setting({"HF_HUB_OFFLINE": "0"}) == ""
    assert offline_setting({}) == ""
    hub = trainer_config({"model.timm_image.checkpoint_name": "resnet18"})
    check_offline_checkpoints(hub, "config.trainer", offline="")  # online: a hub name is fine
    with pytest.raises(Exception, match="'resnet18', a hub name that needs a download"):
        check_offline_checkpoints(hub, "config.trainer", offline="LABELLOOP_OFFLINE=1")


def test_a_failure_for_good_cannot_be_resumed(running: tuple[LocalCluster, LabelLoopClient]) -> None:
    """The dataset is deleted under the experiment: no resume can fix that, and Resume says so."""
    local, client = running
    ingest_tabular_digits(client, local.log_dir.parent / "doomed-data", dataset_id="doomed", rows=120)
    client.create_experiment("doomed-exp", dataset="doomed", per_class=2, batch_size=10, max_rounds=2, seed=1)
    client.store.DeleteDataset(ds.DeleteDatasetRequest(name="datasets/doomed", force=True), timeout=30)
    client.start("doomed-exp")
    deadline = time.monotonic() + 120
    while (failed := client.get("doomed-exp")).state != pb.EXPERIMENT_STATE_FAILED:
        assert time.monotonic() < deadline, failed
        time.sleep(0.2)
    assert failed.failure_kind == pb.FAILURE_KIND_PERMANENT
    assert "resuming cannot fix this" in failed.status_message
    with pytest.raises(grpc.RpcError) as info:
        client.resume("doomed-exp")
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "FAILED for good, not on a passing fault" in info.value.details()
    assert client.get("doomed-exp").state == pb.EXPERIMENT_STATE_FAILED
