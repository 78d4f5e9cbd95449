"""The report's PNG plots (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # after choosing the backend

COLORS = {
    "activelab": "tab:red",
    "least_confidence": "tab:orange",
    "margin": "tab:green",
    "entropy": "tab:purple",
    "random": "tab:gray",
    "good_random": "tab:brown",
    "budget_aware": "tab:blue",
}
STYLES = {"least_confidence": "--"}  # dashed: it lies on ActiveLab's curve with one label per example


def learning_curves(dataset: str, result: dict[str, Any], path: Path) -> Path:
    figure, axes = plt.subplots(figsize=(7, 4.5))
    for strategy, curve in result["curves"].items():
        x, mean = curve["labeled"], curve["mean"]
        low = [m - s for m, s in zip(mean, curve["std"], strict=True)]
        high = [m + s for m, s in zip(mean, curve["std"], strict=True)]
        color = COLORS.get(strategy)
        axes.plot(x, mean, STYLES.get(strategy, "-"), marker="o", ms=3, color=color, label=strategy)
        axes.fill_between(x, low, high, color=color, alpha=0.12)
    seeds = max(c["seeds"] for c in result["curves"].values())
    axes.set_title(f"{dataset}: test accuracy, mean ± std over {seeds} seed(s)")
    axes.set_xlabel(result.get("x_axis", "labeled examples"))
    axes.set_ylabel("test accuracy")
    axes.grid(True, alpha=0.3)
    axes.legend()
    return _save(figure, path)


def overhead(dataset: str, result: dict[str, Any], path: Path) -> Path:
    stages = ["snapshot", "fit", "predict", "trainer_job_overhead", "evaluate", "score", "select", "label"]
    table = result["attribution"]
    figure, axes = plt.subplots(figsize=(7, 3.2))
    for row, side in enumerate(("reference", "services")):
        left = 0.0
        for i, stage in enumerate(stages):
            width = table.get(stage, {}).get(side, 0.0)
            axes.barh(row, width, left=left, color=plt.cm.tab10(i), label=stage if row == 0 else None)
            left += width
    axes.set_yticks([0, 1], ["in-process loop", "five services"])
    axes.set_xlabel("mean seconds per round")
    axes.set_title(f"{dataset}: where a round's time goes")
    axes.legend(fontsize=7, ncol=4, loc="lower center", bbox_to_anchor=(0.5, 1.12))
    return _save(figure, path)


def scale(result: dict[str, Any], path_rate: Path, path_memory: Path) -> list[Path]:
    sizes = sorted(result["sizes"].values(), key=lambda v: v["rows"])
    figures = []
    for metric, path, label in (
        ("examples_per_second", path_rate, "examples / s"),
        ("peak_rss_bytes", path_memory, "peak RSS (GiB)"),
    ):
        figure, axes = plt.subplots(figsize=(6, 4))
        for variant in ("with_labels", "unlabeled_only"):
            for tool, marker in (("scorer", "o"), ("cleanlab", "s")):
                points = [
                    (s["rows"], s[variant][tool][metric])
                    for s in sizes
                    if metric in s.get(variant, {}).get(tool, {})
                ]
                if not points:
                    continue
                x, y = zip(*points, strict=True)
                if metric == "peak_rss_bytes":
                    y = tuple(v / 2**30 for v in y)
                style = "-" if variant == "with_labels" else ":"
                axes.plot(x, y, style, marker=marker, label=f"{tool} ({variant.replace('_', ' ')})")
        axes.set_xscale("log")
        axes.set_yscale("log")
        axes.set_xlabel("pool size (rows, 100 classes)")
        axes.set_ylabel(label)
        axes.grid(True, which="both", alpha=0.3)
        axes.legend(fontsize=8)
        figures.append(_save(figure, path))
    return figures


def _save(figure: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
