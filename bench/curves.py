"""Label efficiency: test accuracy against labeled examples, per strategy, over seeds.

Runs every (strategy, seed) of a CurveConfig on one path (services or in-process), caching each run,
then summarises: mean/std/min/max per labeled count, and the label-efficiency ratio
    labels random needs to reach its final mean accuracy / labels the strategy needs for it,
both read off linearly interpolated mean curves (a curve that never reaches it gives no ratio,
only the bound "< random's labels / the last labeled count").
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from bench.config import CurveConfig
from bench.data import Frames
from bench.loop import Fitter, run_loop
from bench.runs import RunCache

log = logging.getLogger(__name__)

Run = list[dict[str, Any]]  # one dict per round: number, labeled, test_accuracy, seconds, ...


def run_name(cfg: CurveConfig, strategy: str, seed: int, path: str) -> str:
    return f"curve-{cfg.dataset}-{strategy}-s{seed}-{path}"


def run_key(cfg: CurveConfig, strategy: str, seed: int) -> dict[str, Any]:
    """What one run depends on: not the other seeds or strategies (adding seeds reuses runs)."""
    key = asdict(cfg)
    del key["seeds"], key["strategies"]
    return key | {"strategy": strategy, "seed": seed}


def run_curves_inprocess(
    cfg: CurveConfig, frames: Frames, fitter: Fitter, cache: RunCache
) -> dict[str, dict[int, Run]]:
    runs: dict[str, dict[int, Run]] = {}
    for seed in cfg.seeds:
        for strategy in cfg.strategies:
            name = run_name(cfg, strategy, seed, "inprocess")
            key = run_key(cfg, strategy, seed)
            result = cache.get(name, key)
            if result is None:
                log.info("running %s", name)
                rounds = run_loop(
                    frames, fitter, strategy=strategy, seed=seed, per_class=cfg.per_class,
                    batch_size=cfg.batch_size, rounds=cfg.rounds,
                )  # fmt: skip
                result = [asdict(r) for r in rounds]
                cache.put(name, key, result)
            runs.setdefault(strategy, {})[seed] = result
    return runs


def run_curves_services(
    cfg: CurveConfig, experiment: Callable[[str, str, int], Run], cache: RunCache
) -> dict[str, dict[int, Run]]:
    """experiment(experiment_id, strategy, seed) runs one experiment through the services."""
    runs: dict[str, dict[int, Run]] = {}
    for seed in cfg.seeds:
        for strategy in cfg.strategies:
            name = run_name(cfg, strategy, seed, "services")
            key = run_key(cfg, strategy, seed)
            result = cache.get(name, key)
            if result is None:
                log.info("running %s", name)
                experiment_id = name.replace("_", "-").lower()
                result = experiment(experiment_id, strategy, seed)
                cache.put(name, key, result)
            runs.setdefault(strategy, {})[seed] = result
    return runs


# Analysis -------------------------------------------------------------------------------------


def summarise(runs: dict[str, dict[int, Run]]) -> dict[str, dict[str, Any]]:
    """Per strategy: labeled counts and the mean/std/min/max accuracy over seeds at each."""
    out: dict[str, dict[str, Any]] = {}  # lists of numbers, and the seed count
    for strategy, by_seed in runs.items():
        labeled = [r["labeled"] for r in next(iter(by_seed.values()))]
        acc = np.array([[r["test_accuracy"] for r in run] for run in by_seed.values()], dtype=float)
        out[strategy] = {
            "labeled": [int(x) for x in labeled],
            "mean": acc.mean(axis=0).round(4).tolist(),
            "std": acc.std(axis=0).round(4).tolist(),
            "min": acc.min(axis=0).round(4).tolist(),
            "max": acc.max(axis=0).round(4).tolist(),
            "seeds": len(by_seed),
        }
    return out


def labels_to_reach(labeled: list[float], mean: list[float], target: float) -> float | None:
    """First labeled count where the linearly interpolated mean curve reaches target; None if never."""
    for i, accuracy in enumerate(mean):
        if accuracy >= target - 1e-12:
            if i == 0:
                return float(labeled[0])
            x0, x1, y0, y1 = labeled[i - 1], labeled[i], mean[i - 1], mean[i]
            return float(x0 + (x1 - x0) * (target - y0) / (y1 - y0))
    return None


def efficiency_ratios(summary: dict[str, dict[str, list[float]]]) -> dict[str, dict[str, Any]]:
    """Per strategy: labels needed for random's final mean accuracy, and random's labels / those."""
    random = summary["random"]
    target = float(random["mean"][-1])
    random_needed = labels_to_reach(random["labeled"], random["mean"], target)
    assert random_needed is not None  # random reaches its own final accuracy at the latest at the end
    out: dict[str, dict[str, Any]] = {}
    for strategy, curve in summary.items():
        needed = labels_to_reach(curve["labeled"], curve["mean"], target)
        last = float(curve["labeled"][-1])
        out[strategy] = {
            "target_accuracy": round(target, 4),
            "random_labels": round(random_needed, 1),
            "labels_needed": None if needed is None else round(needed, 1),
            "ratio": None if needed is None else round(random_needed / needed, 3),
            # Never reached within the run: the strategy needs more than `last` labels.
            "display": f"{random_needed / needed:.2f}x" if needed else f"< {random_needed / last:.2f}x",
        }
    return out


def activelab_vs_least_confidence(runs: dict[str, dict[int, Run]]) -> dict[str, Any] | None:
    """With one label per example ActiveLab ranks unlabeled rows as least confidence does: compare."""
    if "activelab" not in runs or "least_confidence" not in runs:
        return None
    same_rounds = total_rounds = 0
    max_diff = 0.0
    for seed, a_run in runs["activelab"].items():
        l_run = runs["least_confidence"].get(seed)
        if l_run is None:
            continue
        for a, b in zip(a_run, l_run, strict=False):
            max_diff = max(max_diff, abs(a["test_accuracy"] - b["test_accuracy"]))
            if "selected" in a and a.get("selected"):
                total_rounds += 1
                same_rounds += sorted(a["selected"]) == sorted(b.get("selected", []))
    return {
        "max_accuracy_difference": round(max_diff, 4),
        "rounds_with_identical_batches": same_rounds,
        "rounds_compared": total_rounds,
    }


def analyse(runs: dict[str, dict[int, Run]]) -> dict[str, Any]:
    summary = summarise(runs)
    return {
        "curves": summary,
        "ratios": efficiency_ratios(summary) if "random" in summary else {},
        "activelab_vs_least_confidence": activelab_vs_least_confidence(runs),
        "seconds_per_round": round(
            float(np.mean([r["seconds"] for by in runs.values() for run in by.values() for r in run])), 2
        ),
    }


def cache_dir_for(workdir: Path) -> Path:
    return workdir / "cache"
