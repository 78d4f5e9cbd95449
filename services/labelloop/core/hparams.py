"""The pure checks of a TrainerConfig: shared by the trainer (when a run is requested) and the
controller (when an experiment is created, so a bad config fails before any label is bought).

Nothing here imports AutoGluon or torch: only the request's syntax is checked (modes, counts,
dotted hyperparameter keys with YAML values, checkpoint names). Whether a checkpoint can be loaded
is the trainer's business when it runs.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Mapping
from typing import Any

import yaml

from labelloop.core.errors import InvalidArgument
from labelloop.core.names import shown
from labelloop.v1 import trainer_pb2

# TrainerConfig.mode as JobSpec.config["mode"].
FINE_TUNE, LINEAR_PROBE = "fine_tune", "linear_probe"
MODES = {
    trainer_pb2.TRAINING_MODE_UNSPECIFIED: FINE_TUNE,
    trainer_pb2.TRAINING_MODE_FINE_TUNE: FINE_TUNE,
    trainer_pb2.TRAINING_MODE_LINEAR_PROBE: LINEAR_PROBE,
}
TIMM_CHECKPOINT_KEY = "model.timm_image.checkpoint_name"
# Built-in checkpoint sources: "labelloop:random/<timm arch>", "labelloop:imagenet/<arch>",
# "labelloop:text/<model>", and the raw pixels as a linear probe's image "backbone".
BUILTIN_PREFIX = "labelloop:"
IMAGENET_ARCHES = ("mobilenetv2_100",)
TEXT_MODELS = ("all-minilm-l6-v2",)
PIXELS = "labelloop:pixels"

# A process runs offline when one of these is set to a true value (1, true, yes, on): no network call is
# made to find out. `labelloop up` sets HF_HUB_OFFLINE=1 for every service unless the environment says
# otherwise; trainer jobs run with it too (trainer/job.py).
OFFLINE_VARIABLES = ("LABELLOOP_OFFLINE", "HF_HUB_OFFLINE")
OFFLINE_ALTERNATIVES = (
    "'labelloop:imagenet/mobilenetv2_100' (images), 'labelloop:text/all-minilm-l6-v2' (text), "
    "'labelloop:pixels' (images, linear probe only), 'labelloop:random/<timm architecture>' "
    "(untrained), or a folder in the object store ('s3://bucket/prefix/', 'file:///path/')"
)

# Bounds on what a request may carry (each ends up in every run's job spec).
MAX_HYPERPARAMETERS = 200
MAX_KEY_LENGTH = 200
MAX_VALUE_LENGTH = 4096
MAX_CHECKPOINTS = 16
MAX_SOURCE_LENGTH = 1024


def check_source(source: str) -> None:
    """Cheap syntax check of a checkpoint source, to reject a bad request before a job starts."""
    if not source.strip():
        raise InvalidArgument(
            "checkpoint source is empty: give a hub name, a folder or 'labelloop:random/<arch>'"
        )
    if len(source) > MAX_SOURCE_LENGTH:
        raise InvalidArgument(
            f"checkpoint source {shown(source)} is longer than {MAX_SOURCE_LENGTH} characters"
        )
    if not source.startswith(BUILTIN_PREFIX):
        return
    kind, _, arch = source[len(BUILTIN_PREFIX) :].partition("/")
    if kind == "random" and arch:
        return
    if kind == "imagenet" and arch in IMAGENET_ARCHES:
        return
    if kind == "text" and arch in TEXT_MODELS:
        return
    if source == PIXELS:
        return
    raise InvalidArgument(
        f"unknown built-in checkpoint {shown(source)}: use 'labelloop:random/<timm architecture>', "
        + ", ".join(f"'labelloop:imagenet/{a}'" for a in IMAGENET_ARCHES)
        + " or "
        + ", ".join(f"'labelloop:text/{m}'" for m in TEXT_MODELS)
    )


def offline_setting(env: Mapping[str, str] | None = None) -> str:
    """`NAME=value` of the variable that makes this process offline, or "" when it is online."""
    env = os.environ if env is None else env
    for name in OFFLINE_VARIABLES:
        if env.get(name, "").strip().lower() in ("1", "true", "yes", "on"):
            return f"{name}={env[name].strip()}"
    return ""


def needs_download(source: str) -> bool:
    """A hub name ('resnet18', 'bert-base-uncased', 'org/model'): not built in, not a store folder and
    not a local folder (absolute, './', '~' or ending in '/'). Syntax only: the controller cannot see the
    trainer's disk, so a relative folder name reads as a hub name."""
    return not (
        source.startswith(BUILTIN_PREFIX)
        or "://" in source
        or source.endswith("/")
        or source.startswith(("/", "./", "../", "~"))
    )


def check_offline_checkpoints(
    config: trainer_pb2.TrainerConfig, field: str = "config", offline: str = ""
) -> None:
    """Refuses a checkpoint only a download can resolve when `offline` (an offline_setting()) is set;
    nothing is checked online. Looks at `checkpoints` and at `*checkpoint_name` hyperparameters."""
    if not offline:
        return
    named = [(f"{field}.checkpoints[{i}] ({c.key})", c.source) for i, c in enumerate(config.checkpoints)]
    named += [
        (f"{field}.hyperparameters[{key!r}]", value)
        for key, value in parse_hyperparameters(dict(config.hyperparameters)).items()
        if key.endswith("checkpoint_name") and isinstance(value, str)
    ]
    for where, source in named:
        if needs_download(source.strip()):
            raise InvalidArgument(
                f"{where} is {shown(source)}, a hub name that needs a download, and the services run "
                f"offline ({offline}): change it to a checkpoint that ships with LabelLoop, "
                f"{OFFLINE_ALTERNATIVES}, or an absolute local folder; with internet access, start "
                "the controller and trainer with HF_HUB_OFFLINE=0 and LABELLOOP_OFFLINE unset"
            )


# AutoGluon's numeric settings that LabelLoop's presets and users set most: a value of another type
# fails only once a run starts, after labels were bought, so it is refused at the door.
NUMERIC_KEYS = {
    "optim.lr": float,
    "optim.weight_decay": float,
    "optim.max_epochs": int,
    "optim.patience": int,
    "optim.warmup_steps": float,
    "env.batch_size": int,
    "env.per_gpu_batch_size": int,
    "env.num_workers": int,
    "env.num_workers_inference": int,
}


# The first part of a key: AutoGluon MultiModal's config groups (autogluon/multimodal/configs/), and
# "linear_probe" for the trainer's own probe. Anything else would be ignored or fail only in training.
SECTIONS = frozenset({"model", "data", "optim", "env", "matcher", "distiller", "pretrain", "linear_probe"})


def _checked_number(key: str, value: Any) -> Any:
    """The value of a numeric key as a number ("1e-3", which YAML 1.1 reads as text, too)."""
    kind = NUMERIC_KEYS.get(key)
    if kind is None or value is None:
        return value
    if kind is float and isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = float(value)
    fits = isinstance(value, int) if kind is int else isinstance(value, (int, float))
    if not fits or isinstance(value, bool) or not 0 <= value < math.inf:
        raise InvalidArgument(
            f"hyperparameter {key!r} must be a non-negative {'integer' if kind is int else 'number'}, "
            f"got {shown(value)}"
        )
    return value


def parse_hyperparameters(raw: dict[str, str]) -> dict[str, Any]:
    """Dotted keys to YAML values: {"env.batch_size": "32"} -> {"env.batch_size": 32}."""
    if len(raw) > MAX_HYPERPARAMETERS:
        raise InvalidArgument(f"{len(raw)} hyperparameters: at most {MAX_HYPERPARAMETERS} are accepted")
    parsed = {}
    for key, text in raw.items():
        if not key or key.count(".") < 1 or len(key) > MAX_KEY_LENGTH or key != key.strip():
            raise InvalidArgument(
                f"hyperparameter key {shown(key)} must be dotted, e.g. 'optim.max_epochs' "
                f"(at most {MAX_KEY_LENGTH} characters, no surrounding spaces)"
            )
        section = key.split(".", 1)[0]
        if section not in SECTIONS:
            raise InvalidArgument(
                f"hyperparameter {shown(key)} is in no known section: a key starts with one of "
                f"{', '.join(sorted(SECTIONS))} (e.g. 'optim.max_epochs', 'linear_probe.c')"
            )
        if len(text) > MAX_VALUE_LENGTH:
            raise InvalidArgument(
                f"hyperparameter {key!r}: its value is {len(text)} characters, at most {MAX_VALUE_LENGTH}"
            )
        try:
            parsed[key] = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError as error:
            problem = str(error).replace("\n", " ")[:200]
            raise InvalidArgument(
                f"hyperparameter {key!r}: {shown(text)} is not valid YAML ({problem})"
            ) from None
        parsed[key] = _checked_number(key, parsed[key])
    return parsed


def check_trainer_config(config: trainer_pb2.TrainerConfig, field: str = "config") -> str:
    """Checks what a TrainerConfig can be checked for without the trainer's libraries; returns its
    mode (FINE_TUNE or LINEAR_PROBE). `field` names it in messages ("config" or "config.trainer")."""
    if config.time_limit_seconds < 0:
        raise InvalidArgument(f"{field}.time_limit_seconds must be >= 0 (0 means no limit)")
    if config.num_gpus < -1:
        raise InvalidArgument(f"{field}.num_gpus must be -1 (all visible), 0 (CPU) or a positive count")
    if config.fine_tune_from_labels < 0:
        raise InvalidArgument(
            f"{field}.fine_tune_from_labels must be >= 0 "
            "(0 never switches from the linear probe to fine-tuning)"
        )
    if config.mode not in MODES:
        raise InvalidArgument(
            f"{field}.mode {config.mode} is unknown: "
            "use TRAINING_MODE_FINE_TUNE or TRAINING_MODE_LINEAR_PROBE"
        )
    parse_hyperparameters(dict(config.hyperparameters))
    if len(config.checkpoints) > MAX_CHECKPOINTS:
        raise InvalidArgument(f"{field}.checkpoints has {len(config.checkpoints)}: at most {MAX_CHECKPOINTS}")
    for checkpoint in config.checkpoints:
        if not checkpoint.key:
            raise InvalidArgument(
                f"checkpoint {shown(checkpoint.source)} has no key: set e.g. {TIMM_CHECKPOINT_KEY!r}"
            )
        check_source(checkpoint.source)
    mode = MODES[config.mode]
    fine_tunes = mode == FINE_TUNE or config.fine_tune_from_labels > 0
    if fine_tunes and PIXELS in {c.source for c in config.checkpoints}:
        raise InvalidArgument(
            f"{PIXELS!r} is a linear-probe backbone (the raw pixels), no network to fine-tune: "
            "use TRAINING_MODE_LINEAR_PROBE with fine_tune_from_labels 0, or an image checkpoint"
        )
    return mode
