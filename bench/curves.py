"""Label efficiency: test accuracy against labeled examples, per strategy, over seeds.

Runs every (strategy, seed) of a CurveConfig on one path (services or in-process), caching each run,
then summarises: mean/std/min/max per labeled count, and the label-efficiency ratio
    labels random needs to reach its final mean accuracy / labels the strategy needs for it,
both read off linearly interpolated mean curves (a curve that never reaches it gives no ratio,
only the bound "< random's labels / the last labeled count").
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
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
    return f"curve-{cfg.name}-{strategy}-s{seed}-{path}"


def run_key(cfg: CurveConfig, strategy: str, seed: int) -> dict[str, Any]:
    """What one run depends on: not the other seeds or strategies (adding seeds reuses runs)."""
    key = asdict(cfg)
    del key["seeds"], key["strategies"]
    if cfg.preset:  # the preset's settings, not just its name: a changed preset reruns
        from labelloop import presets

        key["preset_settings"] = asdict(presets.preset_for(cfg.preset))
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


def cached_runs(
    cfg: CurveConfig, cache: RunCache, path: str
) -> tuple[dict[str, dict[int, Run]], list[tuple[str, int, str, dict[str, Any]]]]:
    """The runs of cfg already in the cache, and (strategy, seed, name, key) of those still to run."""
    runs: dict[str, dict[int, Run]] = {}
    todo: list[tuple[str, int, str, dict[str, Any]]] = []
    for seed in cfg.seeds:
        for strategy in cfg.strategies:
            name = run_name(cfg, strategy, seed, path)
            key = run_key(cfg, strategy, seed)
            result = cache.get(name, key)
            if result is None:
                todo.append((strategy, seed, name, key))
            else:
                runs.setdefault(strategy, {})[seed] = result
    return runs, todo


def run_curves_services(
    cfg: CurveConfig,
    experiment: Callable[[str, str, int], Run],
    cache: RunCache,
    parallel: int = 1,
    cached: Callable[[Run], None] | None = None,
) -> dict[str, dict[int, Run]]:
    """experiment(experiment_id, strategy, seed) runs one experiment through the services; up to
    `parallel` of them at a time. Finished runs come from the cache; cached(run) is called once a run's
    result is in the cache (e.g. to delete what the run left in the services' store)."""
    runs, todo = cached_runs(cfg, cache, "services")

    def one(strategy: str, seed: int, name: str, key: dict[str, Any]) -> tuple[str, int, Run | None]:
        log.info("running %s", name)
        started = time.monotonic()
        try:
            result = experiment(name.replace("_", "-").lower(), strategy, seed)
        except Exception:  # one failed run must not stop the others; it is not cached, so it reruns
            log.exception("%s failed", name)
            return strategy, seed, None
        cache.put(name, key, result)
        if cached is not None:
            cached(result)
        log.info("finished %s in %.0f s: final accuracy %.3f", name, time.monotonic() - started,
                 result[-1]["test_accuracy"] if result else float("nan"))  # fmt: skip
        return strategy, seed, result

    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        for strategy, seed, result in pool.map(lambda job: one(*job), todo):
            if result is not None:
                runs.setdefault(strategy, {})[seed] = result
    failed = [name for strategy, seed, name, _ in todo if seed not in runs.get(strategy, {})]
    if failed:
        raise RuntimeError(f"{len(failed)} run(s) failed (see the log above): {', '.join(failed)}")
    # The configured order, whatever order the runs finished in.
    return {s: {seed: runs[s][seed] for seed in cfg.seeds} for s in cfg.strategies if s in runs}


# Analysis -------------------------------------------------------------------------------------


def summarise(runs: dict[str, dict[int, Run]]) -> dict[str, dict[str, Any]]:
    """Per strategy: labels bought (annotations: the x axis) and the mean/std/min/max accuracy over
    seeds at each. Clean runs have one annotation per labeled example; noisy ones may buy several."""
    out: dict[str, dict[str, Any]] = {}  # lists of numbers, and the seed count
    for strategy, by_seed in runs.items():
        length = min(len(run) for run in by_seed.values())  # a run the selector ended early: shortest
        first = next(iter(by_seed.values()))[:length]
        x_key = "annotations" if "annotations" in first[0] else "labeled"
        acc = np.array([[r["test_accuracy"] for r in run[:length]] for run in by_seed.values()], dtype=float)
        out[strategy] = {
            "labeled": [int(r[x_key]) for r in first],
            "labeled_examples": [int(r["labeled"]) for r in first],
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


def efficiency_ratios(
    summary: dict[str, dict[str, list[float]]], baseline: str = "random"
) -> dict[str, dict[str, Any]]:
    """Per strategy: labels needed for the baseline's final mean accuracy, and the baseline's labels /
    those."""
    base = summary[baseline]
    target = float(base["mean"][-1])
    random_needed = labels_to_reach(base["labeled"], base["mean"], target)
    assert random_needed is not None  # the baseline reaches its own final accuracy at the latest at the end
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


def below_random(summary: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Per strategy: the label counts where its mean accuracy is more than one standard deviation (over
    random's seeds) below random's mean (a cold-start loss shows here), and whether random flattened
    (its last two rounds within one point of accuracy)."""
    random = summary["random"]
    out: dict[str, Any] = {"random_last_two_rounds_within_one_point": None, "strategies": {}}
    if len(random["mean"]) >= 2:
        out["random_last_two_rounds_within_one_point"] = bool(
            abs(random["mean"][-1] - random["mean"][-2]) <= 0.01
        )
    for strategy, curve in summary.items():
        if strategy == "random":
            continue
        rows = zip(
            curve["labeled"], curve["mean"], random["labeled"], random["mean"], random["std"], strict=False
        )
        out["strategies"][strategy] = [x for x, m, rx, rm, rs in rows if x == rx and m < rm - rs - 1e-12]
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


def different_starts(runs: dict[str, dict[int, Run]]) -> list[int]:
    """Seeds whose strategies' first models differ: every strategy of a seed starts from the same labeled
    set, so their round-0 accuracies must be equal (a difference means the services' code changed
    between runs)."""
    return sorted(seed for seed, values in _first_accuracies(runs).items() if len(values) > 1)


def _first_accuracies(runs: dict[str, dict[int, Run]]) -> dict[int, set[float]]:
    firsts: dict[int, set[float]] = {}
    for by_seed in runs.values():
        for seed, run in by_seed.items():
            firsts.setdefault(seed, set()).add(round(float(run[0]["test_accuracy"]), 6))
    return firsts


def analyse(runs: dict[str, dict[int, Run]], noisy: bool = False) -> dict[str, Any]:
    summary = summarise(runs)
    result: dict[str, Any] = {
        "x_axis": "annotations" if noisy else "labeled examples",
        "curves": summary,
        "ratios": efficiency_ratios(summary) if "random" in summary else {},
        "activelab_vs_least_confidence": None if noisy else activelab_vs_least_confidence(runs),
        "seeds_with_different_starts": different_starts(runs),
        "largest_start_difference": round(
            max((max(r) - min(r) for r in _first_accuracies(runs).values()), default=0.0), 4
        ),
        "seconds_per_round": round(
            float(np.mean([r["seconds"] for by in runs.values() for run in by.values() for r in run])), 2
        ),
    }
    if "random" in summary:
        result["below_random"] = below_random(summary)
    if "good_random" in summary:
        result["ratios_vs_good_random"] = efficiency_ratios(summary, "good_random")
    return result


def cache_dir_for(workdir: Path) -> Path:
    return workdir / "cache"
