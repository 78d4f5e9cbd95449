"""Smoke tests of the benchmark harness on tiny configurations: results.json's schema and the plots.

No timings are checked. The first test runs the in-process path: AutoGluon is swapped for
scikit-learn's logistic regression (the harness's fitter hook), the services part gets synthetic round
timings, and the scale part runs for real on a 2,000-row pool (each measurement in its own process, as
in the real benchmark). The second runs a clean and a noisy scenario through the five services.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from bench.config import BenchConfig, CurveConfig, ScaleConfig, clean, config_for, noisy
from bench.harness import Workspace, run_curves
from bench.overhead import compare
from bench.report import HEADLINES, write_report
from bench.scale import run_scale

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def sklearn_fitter(cfg: CurveConfig, frames: Any) -> Callable[..., Any]:
    from sklearn.linear_model import LogisticRegression

    def fit(train: pd.DataFrame, features: list[str], classes: list[str], seed: int) -> Callable[..., Any]:
        model = LogisticRegression(max_iter=300, random_state=seed).fit(train[features], train["__label__"])

        def predict(frame: pd.DataFrame) -> np.ndarray:
            out = np.zeros((len(frame), len(classes)), dtype=np.float32)
            proba = model.predict_proba(frame[features])
            for j, label in enumerate(model.classes_):
                out[:, classes.index(str(label))] = proba[:, j]
            return out

        return predict

    return fit


def fake_round(number: int, seconds: float, fit: float, services: bool) -> dict[str, Any]:
    stages = {"fit": fit, "predict": 0.5, "evaluate": 0.01, "score": 0.02, "select": 0.01, "label": 0.01}
    if services:
        stages |= {"snapshot": 0.05, "train": fit + 1.0}
    return {"number": number, "labeled": 20 * (number + 1), "test_accuracy": 0.5, "seconds": seconds,
            "stage_seconds": stages}  # fmt: skip


def fake_overhead() -> dict[str, Any]:
    result = {
        "reference": {"rounds": [fake_round(n, 4.0, 3.0, False) for n in range(3)]},
        "services": {
            "startup_seconds": 5.0,
            "ingest_seconds": 1.0,
            "grpc_roundtrip_ms": {"median": 0.5, "p90": 0.9},
            "rounds": [fake_round(n, 4.2, 3.0, True) for n in range(3)],
        },
    }
    return {"datasets": {"digits_tabular": {"config": {}, **result, **compare(result)}}}


def test_tiny_benchmark_writes_results_and_plots(tmp_path: Path) -> None:
    config = replace(
        config_for("tiny"),
        scale=ScaleConfig(pool_sizes=(2_000,), num_classes=10, batch_size=50, check_rows=2_000),
    )
    ws = Workspace(tmp_path / "work")
    run_curves(config, ws, fitter_for=sklearn_fitter)
    run_scale(config, ws)
    ws.save_part("overhead", fake_overhead())
    written = write_report(config, ws, tmp_path / "docs", 1.0)

    folder = tmp_path / "docs" / "benchmarks"
    results = json.loads((folder / "results.json").read_text())
    assert results["schema_version"] == 1 and results["mode"] == "tiny"
    assert set(HEADLINES) <= set(results["headline"])
    assert {"cpu_count", "memory_bytes", "python", "torch", "autogluon.multimodal"} <= set(results["machine"])
    assert "not measured" in results["gpu"]

    ratios = results["headline"]["label_efficiency_ratio"]["digits_tabular"]
    assert set(ratios) == {"activelab", "least_confidence", "random"} and ratios["random"] == 1.0
    curve = results["label_efficiency"]["datasets"]["digits_tabular"]["curves"]["activelab"]
    assert curve["labeled"] == [20, 40] and len(curve["mean"]) == len(curve["std"]) == 2
    same = results["label_efficiency"]["datasets"]["digits_tabular"]["activelab_vs_least_confidence"]
    assert same["rounds_compared"] == 1

    overhead = results["headline"]["service_overhead_ratio"]["digits_tabular"]
    assert len(overhead["per_round"]) == 3 and overhead["total"] > 0

    size = results["scoring_at_scale"]["sizes"]["2000"]
    for variant in ("with_labels", "unlabeled_only"):
        assert size[variant]["scores_allclose"]["allclose"], size[variant]
        assert size[variant]["scorer"]["peak_rss_bytes"] > 0
    assert results["headline"]["scorer_peak_memory_bytes"]["2000"]["scorer"] > 0
    assert results["headline"]["scorer_speedup_vs_cleanlab"]["2000"]["with_labels"] > 0
    # One numpy pass over the same pool, and the scorer's time over it, per variant.
    assert size["numpy_pass"]["seconds"] > 0 and size["numpy_pass"]["peak_rss_bytes"] > 0
    ratios = results["headline"]["scorer_vs_numpy_pass"]["2000"]
    assert ratios == {v: size[v]["vs_numpy_pass"] for v in ("with_labels", "unlabeled_only")}
    assert all(r > 0 for r in ratios.values())
    assert not (tmp_path / "work" / "scale-scratch").exists()  # scratch pools are deleted

    plots = results["plots"]
    assert {"curve:digits_tabular", "overhead:digits_tabular", "scale:rate", "scale:memory"} <= set(plots)
    for name in plots.values():
        assert (folder / name).read_bytes().startswith(PNG_MAGIC)
    doc = (tmp_path / "docs" / "benchmarks.md").read_text()
    assert "## 1. Label efficiency" in doc and "## 4. GPU" in doc and "make bench" in doc
    assert "**scorer_vs_numpy_pass**" in doc and "Scorer over one numpy pass (with labels)" in doc
    assert set(written) >= {tmp_path / "docs" / "benchmarks.md", folder / "results.json"}


@pytest.mark.integration
def test_scenarios_run_through_the_services(tmp_path: Path) -> None:
    """A clean and a noisy scenario through the five services with the tabular preset (a linear probe
    on standardized features: no AutoGluon fit), then results.json's {scenario: {strategy: ratio}}."""
    rows = dict(rows=400, initial_count=20)
    config = BenchConfig(
        "tiny",
        curves=(
            replace(
                clean("digits_tabular", (0,), rounds=2, batch_size=10, **rows),
                strategies=("random", "budget_aware"),
            ),
            replace(
                noisy("digits_tabular", (0,), rounds=2, batch_size=10, **rows),
                strategies=("random", "good_random", "budget_aware"),
            ),
        ),
        overhead=(),
        scale=ScaleConfig(pool_sizes=()),
        curve_path="services",
    )
    ws = Workspace(tmp_path / "work")
    run_curves(config, ws)
    write_report(config, ws, tmp_path / "docs", 1.0)
    results = json.loads((tmp_path / "docs" / "benchmarks" / "results.json").read_text())

    ratios = results["headline"]["label_efficiency_ratio"]
    assert set(ratios) == {"digits_tabular", "digits_tabular_noisy"}
    assert set(ratios["digits_tabular_noisy"]) == {"random", "good_random", "budget_aware"}
    assert ratios["digits_tabular"]["random"] == 1.0
    noisy_result = results["label_efficiency"]["datasets"]["digits_tabular_noisy"]
    assert noisy_result["x_axis"] == "annotations" and noisy_result["config"]["annotator_accuracies"]
    assert noisy_result["ratios_vs_good_random"]["good_random"]["ratio"] == 1.0
    for name, result in results["label_efficiency"]["datasets"].items():
        for strategy, curve in result["curves"].items():
            # The initial set (20, label-free) plus two batches of 10, shared by every strategy.
            assert curve["labeled"] == [20, 30, 40], (name, strategy)
            assert curve["seeds"] == 1 and len(curve["std"]) == 3
        assert "budget_aware" in result["below_random"]["strategies"]
        assert result["seeds_with_different_starts"] == []  # one first labeled set per seed
    # Re-labeling: the noisy budget-aware run bought more annotations than it has labeled examples.
    budget_aware = noisy_result["curves"]["budget_aware"]
    assert budget_aware["labeled_examples"][-1] <= budget_aware["labeled"][-1]
    doc = (tmp_path / "docs" / "benchmarks.md").read_text()
    assert "## Goals" in doc and "### digits_tabular_noisy" in doc

    # The first model against a plain logistic regression on the raw columns, with the same 20 labels
    # (the noisy scenario's are consensus labels, so the two differ).
    checks = {n: r["first_model_vs_linear"] for n, r in results["label_efficiency"]["datasets"].items()}
    for name, check in checks.items():
        assert check["labels"] == 20 and set(check["seeds"]) == {"0"}, name
        assert check["features"] == "the numeric columns as they are"
        assert 0.3 < check["seeds"]["0"]["linear"] <= 1 and check["seeds"]["0"]["first_model"] > 0.3
    assert "First model (20 labels) vs a plain logistic regression on the numeric columns as they are" in doc
    # Each run's arrays left the services' store once its result was cached; the dataset's embedding
    # cache stays for the next run.
    store = ws.root / "services" / "digits_tabular" / "store"
    assert list((store / "experiments").rglob("*.json")) and not list((store / "experiments").rglob("*.npy"))
    assert list((store / "datasets").rglob("embeddings.npy"))
