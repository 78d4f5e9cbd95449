"""What each benchmark mode runs: data sets, strategies, seeds, rounds, trainer configs, pool sizes.

Every number that shapes a result lives here, so docs/benchmarks.md can quote the configuration the
results came from (results.json carries it too).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
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


@dataclass(frozen=True)
class Variant:
    """How a strategy name of the benchmark maps onto an experiment's settings."""

    strategy: str  # the API's Strategy ("random", "margin", "budget_aware", ...)
    batch_method: str = "lowest_scores"
    allow_relabel: bool = False
    labeled_probabilities: str = ""  # the API's LabeledProbabilities; "": out of sample


# Clean labels: every strategy takes new examples only. "budget_aware" is the preset (typical start,
# margin spread over embedding clusters); the others rank the pool and take the lowest scores.
CLEAN_VARIANTS: dict[str, Variant] = {
    "random": Variant("random"),
    "least_confidence": Variant("least_confidence"),
    "margin": Variant("margin"),
    "entropy": Variant("entropy"),
    "activelab": Variant("activelab"),
    "budget_aware": Variant("budget_aware", batch_method="diverse"),
}
# Noisy annotators, as in ActiveLab's paper: "random" draws from every example, labeled or not (so it
# may buy another label for one); "good_random" only from the least-annotated, i.e. unlabeled ones
# while the budget is below the pool size; ActiveLab and budget-aware weigh a new example against
# another label for a doubtful one.
NOISY_VARIANTS: dict[str, Variant] = {
    "random": Variant("random", allow_relabel=True),
    "good_random": Variant("random"),
    "least_confidence": Variant("least_confidence"),
    "entropy": Variant("entropy"),
    "activelab": Variant("activelab", allow_relabel=True),
    "budget_aware": Variant("budget_aware", batch_method="diverse", allow_relabel=True),
    # ActiveLab scoring labeled examples with the current model, which trained on their labels (issue 9,
    # item 5: what out-of-sample probabilities gain); `make bench-labeled-probabilities`.
    "activelab_in_sample": Variant("activelab", allow_relabel=True, labeled_probabilities="in_sample"),
}
CLEAN_STRATEGIES = ("random", "least_confidence", "margin", "activelab", "budget_aware")
NOISY_STRATEGIES = ("random", "good_random", "least_confidence", "entropy", "activelab", "budget_aware")
# Five annotators between 0.6 and 0.9, each with its own confusions (the simulated oracle's).
NOISY_ANNOTATORS = (0.6, 0.675, 0.75, 0.825, 0.9)
QUICK_CLEAN = ("random", "margin", "budget_aware")
QUICK_NOISY = ("random", "activelab", "budget_aware")


@dataclass(frozen=True)
class CurveConfig:
    """One scenario's label-efficiency experiment: every strategy and seed share all of this.

    Through the services (curve_path "services") the trainer uses the modality's preset
    (labelloop.presets) and every strategy starts from the same label-free initial set
    (initial_count examples chosen by initial_selection with the run's seed); the in-process loop
    (the smoke test, the overhead part) starts from per_class labels per class instead.
    """

    dataset: str  # one of bench.data.DATASETS
    seeds: tuple[int, ...]
    strategies: tuple[str, ...] = STRATEGIES
    per_class: int = 2  # in-process loop only: initial labels per class
    batch_size: int = 20
    rounds: int = 8  # labeling rounds; rounds + 1 models are trained
    test_fraction: float = 0.3
    rows: int = 0  # 0: the whole data set; else the first rows (pool + test)
    hyperparameters: dict[str, str] = field(default_factory=dict)
    checkpoints: dict[str, str] = field(default_factory=dict)
    scenario: str = ""  # results key; defaults to the dataset (noisy ones end in "_noisy")
    preset: str = ""  # labelloop.presets modality: the trainer config of the services path
    initial_count: int = 0  # 0: the preset's (2 x classes)
    initial_selection: str = "typical"
    annotator_accuracies: tuple[float, ...] = ()  # empty: one noise-free annotator
    label_budget: int = 0  # annotations, initial ones included; 0: rounds only

    @property
    def name(self) -> str:
        return self.scenario or self.dataset

    @property
    def noisy(self) -> bool:
        return bool(self.annotator_accuracies)

    def variant(self, strategy: str) -> Variant:
        variants = NOISY_VARIANTS if self.noisy else CLEAN_VARIANTS
        if strategy not in variants:
            raise ValueError(f"unknown strategy {strategy!r} for {self.name}: use one of {sorted(variants)}")
        return variants[strategy]


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
    # Experiments run at the same time on one set of services: while one trains, another scores,
    # selects or waits on a poll, so two keep the 2 cores busier than one.
    parallel: int = 2
    # Summarise the cached runs only (each strategy with the seeds it has); run nothing.
    cached_only: bool = False
    # Take over a run's experiment left in the services' store by an interrupted benchmark (same id and
    # config); off (--fresh) after the services' code changed, so such runs start afresh.
    resume_experiments: bool = True
    # Measure the service overhead again even when a cached run has the same config (--rerun): its
    # figures depend on the services' code, which the config does not name.
    rerun_overhead: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _tabular(seeds: tuple[int, ...], rounds: int, rows: int = 0) -> CurveConfig:
    """The in-process loop's tabular digits (AutoGluon's numeric MLP): the overhead part and smoke test."""
    return CurveConfig(
        "digits_tabular", seeds, rounds=rounds, rows=rows, hyperparameters=dict(TABULAR_HYPERPARAMETERS)
    )


def clean(dataset: str, seeds: tuple[int, ...], rounds: int, batch_size: int, **more: Any) -> CurveConfig:
    """A clean-label scenario through the services with the modality's preset (data.PRESET_OF)."""
    from bench.data import PRESET_OF

    return CurveConfig(
        dataset, seeds, strategies=CLEAN_STRATEGIES, batch_size=batch_size, rounds=rounds,
        preset=PRESET_OF[dataset], **more,
    )  # fmt: skip


def noisy(dataset: str, seeds: tuple[int, ...], rounds: int, batch_size: int, **more: Any) -> CurveConfig:
    """Five noisy annotators and a budget of annotations: rounds batches after the initial set."""
    from bench.data import NUM_CLASSES, PRESET_OF

    initial = more.pop("initial_count", 0) or 2 * NUM_CLASSES[dataset]
    return CurveConfig(
        dataset, seeds, strategies=NOISY_STRATEGIES, batch_size=batch_size, rounds=rounds,
        preset=PRESET_OF[dataset], scenario=f"{dataset}_noisy", initial_count=initial,
        annotator_accuracies=NOISY_ANNOTATORS, label_budget=initial + rounds * batch_size, **more,
    )  # fmt: skip


# Fashion-MNIST: 7,000 of the training images (the Debian package's order), 1,000 of them for testing.
FASHION_ROWS, FASHION_TEST = 7_000, 1 / 7
FIVE_SEEDS = (0, 1, 2, 3, 4)


def full_curves(seeds: tuple[int, ...] = FIVE_SEEDS, rounds: int = 20) -> tuple[CurveConfig, ...]:
    """Most informative first: an interrupted run still has the scenarios the goals are about."""
    fashion = {"rows": FASHION_ROWS, "test_fraction": FASHION_TEST}
    return (
        noisy("fashion_mnist", seeds, rounds, 30, **fashion),
        noisy("digits_images", seeds, rounds, 20),
        clean("digits_images", seeds, rounds, 20),
        clean("fashion_mnist", seeds, rounds, 30, **fashion),
        clean("bbc_news", seeds, min(rounds, 15), 10),
        clean("digits_tabular", seeds, rounds, 20),
    )


def config_for(mode: str) -> BenchConfig:
    if mode == "full":
        return BenchConfig(
            mode,
            curves=full_curves(),
            # Tabular digits with the AutoGluon MLP: the same fine-tuned model on both paths.
            overhead=(
                OverheadConfig("digits_tabular", seed=0, hyperparameters=dict(TABULAR_HYPERPARAMETERS)),
            ),
            scale=ScaleConfig(pool_sizes=(100_000, 1_000_000, 10_000_000)),
            curve_path="services",
        )
    if mode == "quick":
        return BenchConfig(
            mode,
            # Within 20 minutes on 2 cores with the other parts: three strategies, two seeds, 10 rounds.
            curves=(
                replace(noisy("digits_images", (0, 1), rounds=10, batch_size=20), strategies=QUICK_NOISY),
                replace(clean("digits_images", (0, 1), rounds=10, batch_size=20), strategies=QUICK_CLEAN),
            ),
            overhead=(
                OverheadConfig(
                    "digits_tabular", seed=0, rounds=3, hyperparameters=dict(TABULAR_HYPERPARAMETERS)
                ),
            ),
            scale=ScaleConfig(pool_sizes=(100_000, 1_000_000)),
            curve_path="services",
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
