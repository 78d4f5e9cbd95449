"""Checkpoint sources resolve to something AutoGluon's timm model loads, offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from labelloop.core.errors import InvalidArgument
from labelloop.core.storage import LocalStore, ObjectStore, upload_folder
from labelloop.trainer import checkpoints


def load_like_autogluon(folder: Path) -> torch.nn.Module:
    """What TimmAutoModelForImagePrediction does with a checkpoint directory."""
    import timm

    config = json.loads((folder / "config.json").read_text())
    return timm.create_model(
        config["architecture"], checkpoint_path=str(folder / "pytorch_model.bin"), num_classes=0
    )


def test_random_timm_checkpoint_loads_and_is_cached(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    path = Path(checkpoints.resolve("labelloop:random/resnet18", store, tmp_path / "cache"))
    assert path.name == "resnet18"  # named after the architecture: a saved predictor reloads by name
    config = json.loads((path / "config.json").read_text())
    assert config["architecture"] == "resnet18" and config["num_features"] == 512
    assert "url" not in config["pretrained_cfg"] and "hf_hub_id" not in config["pretrained_cfg"]
    model = load_like_autogluon(path).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 32, 32)).shape == (1, 512)
    mtime = (path / "pytorch_model.bin").stat().st_mtime_ns
    assert checkpoints.resolve("labelloop:random/resnet18", store, tmp_path / "cache") == str(path)
    assert (path / "pytorch_model.bin").stat().st_mtime_ns == mtime  # cached, not rebuilt


def test_imagenet_mobilenet_matches_torchvision(tmp_path: Path) -> None:
    torchvision = pytest.importorskip("torchvision")
    path = Path(
        checkpoints.resolve("labelloop:imagenet/mobilenetv2_100", LocalStore(tmp_path / "s"), tmp_path)
    )
    features = load_like_autogluon(path).eval()
    state = torch.load(checkpoints.mobilenet_wheel_file(), map_location="cpu", weights_only=True)
    reference = torchvision.models.mobilenet_v2()
    reference.load_state_dict(state)
    reference.eval()
    timm_model = checkpoints.convert_torchvision_mobilenetv2(state).eval()  # type: ignore[attr-defined]
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        assert torch.allclose(
            timm_model(x), reference(x), atol=1e-5
        )  # the whole network, classifier included
        pooled = reference.features(x).mean(dim=(2, 3))  # torchvision's pooled features
        assert torch.allclose(features(x), pooled, atol=1e-5)  # what AutoGluon's head sees


@pytest.mark.parametrize(
    "source", ["resnet18", "google/electra-small-discriminator", "timm/resnet18.a1_in1k"]
)
def test_hub_names_pass_through(tmp_path: Path, source: str) -> None:
    assert checkpoints.resolve(source, LocalStore(tmp_path), tmp_path / "cache") == source


def test_local_directory_is_used_in_place(tmp_path: Path) -> None:
    folder = tmp_path / "my-model"
    folder.mkdir()
    assert checkpoints.resolve(str(folder), LocalStore(tmp_path / "s"), tmp_path / "c") == str(folder)


def test_store_folder_is_downloaded(object_store: ObjectStore, tmp_path: Path) -> None:
    built = checkpoints.random_timm("resnet18", tmp_path / "build")
    upload_folder(object_store, built, "checkpoints/resnet18/")
    cache = tmp_path / "cache"
    for source in (object_store.uri("checkpoints/resnet18/"), "checkpoints/resnet18/"):
        path = Path(checkpoints.resolve(source, object_store, cache))
        assert path.name == "resnet18" and cache in path.parents
        assert (path / "pytorch_model.bin").read_bytes() == (built / "pytorch_model.bin").read_bytes()
    load_like_autogluon(path)


@pytest.mark.parametrize(
    "source", ["labelloop:imagenet/resnet50", "labelloop:random/", "labelloop:pretrained/x", "  "]
)
def test_bad_builtin_sources_are_rejected(source: str) -> None:
    with pytest.raises(InvalidArgument, match="checkpoint"):
        checkpoints.check_source(source)


def test_unknown_random_architecture(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="timm has no architecture"):
        checkpoints.resolve("labelloop:random/not-a-net", LocalStore(tmp_path), tmp_path)


def test_uri_of_another_store_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="not inside this store"):
        checkpoints.resolve("s3://elsewhere/ckpt/", LocalStore(tmp_path), tmp_path)
