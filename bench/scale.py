"""Scoring and selection at scale, on synthetic probabilities.

Pools of Dirichlet(alpha=0.1) rows (peaked, like a trained classifier's output), float32, written chunk
by chunk with ArrayWriter into a LocalStore under the workdir's scratch folder (deleted afterwards).
A labeled set of 1,000 rows with 3 annotators (about a third of their labels missing, 20% wrong)
makes ActiveLab fit its temperature and weights, the product's usual case; the unlabeled-only
variant uses cleanlab's defaults. Each measurement runs in its own process (scale_worker.py),
which reports its peak RSS:
- scorer: Scorer.score reading the stored pool in chunks (the service's code, without gRPC);
- cleanlab: cleanlab.multiannotator.get_active_learning_scores on the whole array in memory;
- numpy_pass: the floor a chunked scorer is held to, `np.max(pool, axis=1)` then `np.sum(pool, axis=1)`
  on the whole float32 array in memory (its load from the page cache timed apart, as for cleanlab);
- selector: top-k of the scores (ranking.select, np.argsort for reference) and select_batch end to
  end (reads the scores and the example ids from the store).
Scores of both are compared with np.allclose over the whole pool. The numpy pass, scorer and cleanlab
runs take turns, best of MIN_REPEATS (cleanlab) or FAST_REPEATS each, so that their ratios come from
one run.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
from labelloop.core.storage import ArrayWriter, LocalStore

from bench.config import BenchConfig, ScaleConfig
from bench.harness import Workspace

log = logging.getLogger(__name__)

GENERATE_CHUNK_ROWS = 250_000
LABELED_ROWS = 1_000
ANNOTATORS = 3
ALPHA = 0.1
VARIANTS = ("with_labels", "unlabeled_only")
MIN_REPEATS = 3
FAST_REPEATS = 5


def generate_pool(store: LocalStore, key: str, rows: int, classes: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    writer = ArrayWriter(store, key, (rows, classes), np.float32)
    for start in range(0, rows, GENERATE_CHUNK_ROWS):
        n = min(GENERATE_CHUNK_ROWS, rows - start)
        gammas = rng.standard_gamma(ALPHA, size=(n, classes), dtype=np.float32)
        gammas[:, 0] += np.float32(1e-6)  # a row of all-underflowed gammas would have no mass
        sums = gammas.sum(axis=1, dtype=np.float64)[:, np.newaxis]
        writer.write(start, (gammas / sums).astype(np.float32))
    writer.close()


def generate_labeled(store: LocalStore, classes: int, seed: int) -> None:
    rng = np.random.default_rng([seed, 1])
    generate_pool(store, "labeled/probs.npy", LABELED_ROWS, classes, seed + 1)
    probs = store.get_array("labeled/probs.npy")
    truth = probs.argmax(axis=1)
    labels = np.tile(truth[:, np.newaxis], (1, ANNOTATORS)).astype(float)
    wrong = rng.random(labels.shape) < 0.2
    labels[wrong] = rng.integers(0, classes, size=int(wrong.sum()))
    labels[rng.random(labels.shape) < 0.33] = np.nan
    labels[np.isnan(labels).all(axis=1), 0] = truth[np.isnan(labels).all(axis=1)]  # every row labeled
    store.put_array("labeled/labels.npy", labels)


# The folder holding bench/: the worker runs as `python -m bench.scale_worker` from any cwd.
_REPO_ROOT = Path(__file__).resolve().parents[1]


def _worker(kind: str, args: dict[str, Any]) -> dict[str, Any]:
    path = os.pathsep.join(p for p in (str(_REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)
    done = subprocess.run(
        [sys.executable, "-m", "bench.scale_worker", kind, json.dumps(args)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": path},
    )
    if done.returncode != 0:
        return {"error": f"exit {done.returncode}: {done.stderr.strip()[-2000:]}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _best(kind: str, args: dict[str, Any], repeats: int) -> dict[str, Any]:
    results = [_worker(kind, args) for _ in range(max(1, repeats))]
    ok = [r for r in results if "error" not in r]
    return min(ok, key=lambda r: r["seconds"]) if ok else results[0]


def _available_bytes() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def run_scale(config: BenchConfig, ws: Workspace) -> dict[str, Any]:
    cfg: ScaleConfig = config.scale
    scratch = ws.root / "scale-scratch"
    shutil.rmtree(scratch, ignore_errors=True)
    store = LocalStore(scratch)
    results: dict[str, Any] = {"config": {"num_classes": cfg.num_classes, "alpha": ALPHA}, "sizes": {}}
    repeats = _repeats(config)
    try:
        generate_labeled(store, cfg.num_classes, seed=0)
        for rows in cfg.pool_sizes:
            results["sizes"][str(rows)] = _measure_size(store, scratch, rows, cfg, results["sizes"], repeats)
            ws.save_part("scale", results)
            store.delete_prefix("pool/")  # keep at most one pool on disk (10M rows are 4 GB)
            store.delete_prefix("out/")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    ws.save_part("scale", results)
    return results


def _measure_size(
    store: LocalStore,
    scratch: Path,
    rows: int,
    cfg: ScaleConfig,
    earlier: dict[str, Any],
    repeats: tuple[int, int],
) -> dict[str, Any]:
    log.info("scale: generating %d x %d probabilities", rows, cfg.num_classes)
    pool_key = f"pool/probs_{rows}.npy"
    generate_pool(store, pool_key, rows, cfg.num_classes, seed=rows)
    out: dict[str, Any] = {"rows": rows, "pool_bytes": rows * cfg.num_classes * 4}
    common = {"root": str(scratch), "pool_key": pool_key, "labeled_key": "labeled/probs.npy",
              "labels_key": "labeled/labels.npy"}  # fmt: skip
    jobs: dict[str, tuple[str, dict[str, Any]]] = {"numpy_pass": ("numpy_pass", common)}
    skipped: dict[str, dict[str, Any]] = {}
    for variant in VARIANTS:
        args = {**common, "labeled": variant == "with_labels"}
        jobs[f"scorer/{variant}"] = ("scorer", {**args, "output": f"out/{variant}/"})
        reason = _cleanlab_skip(variant, rows, cfg, earlier)
        if reason:
            skipped[variant] = {"skipped": reason}
        else:
            jobs[f"cleanlab/{variant}"] = ("cleanlab", {**args, "output": f"out/cleanlab_{variant}.npy"})
    log.info("scale: %d rows: %s, best of %d (cleanlab %d)", rows, ", ".join(jobs), repeats[1], repeats[0])
    best = _best_interleaved(jobs, *repeats)
    numpy_pass = out["numpy_pass"] = best["numpy_pass"]
    for variant in VARIANTS:
        scorer = _with_rate(best[f"scorer/{variant}"], rows)
        cleanlab = skipped.get(variant) or _with_rate(best[f"cleanlab/{variant}"], rows)
        entry: dict[str, Any] = {"scorer": scorer, "cleanlab": cleanlab}
        if "seconds" in scorer and "seconds" in cleanlab:
            entry["speedup"] = round(cleanlab["seconds"] / scorer["seconds"], 2)
            entry["scores_allclose"] = _compare(store, scratch, variant)
        if "seconds" in scorer and "seconds" in numpy_pass:
            entry["vs_numpy_pass"] = round(scorer["seconds"] / numpy_pass["seconds"], 2)
        out[variant] = entry
    # The selector on the with-labels scores (example ids are needed end to end: write them once).
    ids_key = f"pool/ids_{rows}.json"
    store.put_bytes(ids_key, json.dumps([f"ex-{i}" for i in range(rows)]).encode())
    log.info("scale: %d rows: selector", rows)
    out["selector"] = _best(
        "selector",
        {
            "root": str(scratch),
            "scores_key": "out/with_labels/unlabeled_scores.npy",
            "ids_key": ids_key,
            "batch_size": cfg.batch_size,
        },
        repeats[0],
    )
    return out


def _repeats(config: BenchConfig) -> tuple[int, int]:
    """(cleanlab's, the others') timings per measurement. On 2 cores shared with other work one timing
    is mostly noise: at least MIN_REPEATS (cleanlab, selector), and FAST_REPEATS for the runs of a few
    seconds (numpy pass, scorer). The tiny mode checks the harness only: one each."""
    if config.mode == "tiny":
        return config.scale.repeats, config.scale.repeats
    return max(MIN_REPEATS, config.scale.repeats), max(FAST_REPEATS, config.scale.repeats)


def _best_interleaved(
    jobs: dict[str, tuple[str, dict[str, Any]]], repeats: int, fast_repeats: int
) -> dict[str, dict[str, Any]]:
    """Each job's fastest run, the jobs taking turns (numpy pass, scorer, cleanlab, then again), so a
    busy spell on the machine slows all of them rather than one: their ratios are from one run.
    cleanlab runs `repeats` times, the others `fast_repeats` times."""
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in jobs}
    for turn in range(max(repeats, fast_repeats)):
        for name, (kind, args) in jobs.items():
            if turn < (repeats if kind == "cleanlab" else fast_repeats):
                runs[name].append(_worker(kind, args))
    best = {}
    for name, results in runs.items():
        ok = [r for r in results if "error" not in r]
        best[name] = min(ok, key=lambda r: r["seconds"]) if ok else results[0]
    return best


def _cleanlab_skip(variant: str, rows: int, cfg: ScaleConfig, earlier: dict[str, Any]) -> str:
    """Why cleanlab is not run at this size (empty when it is): the peak extrapolated from a smaller
    pool would not fit in memory."""
    smaller = [v for v in earlier.values() if "peak_rss_bytes" in v.get(variant, {}).get("cleanlab", {})]
    if not smaller:
        return ""
    last = max(smaller, key=lambda v: v["rows"])
    expected = last[variant]["cleanlab"]["peak_rss_bytes"] * rows / last["rows"]
    limit = cfg.cleanlab_memory_share * _available_bytes()
    if expected <= limit:
        return ""
    return (
        f"extrapolated peak {expected / 2**30:.1f} GiB > {limit / 2**30:.1f} GiB "
        f"({cfg.cleanlab_memory_share:.0%} of available memory)"
    )


def _with_rate(result: dict[str, Any], rows: int) -> dict[str, Any]:
    if "seconds" in result:
        result = {**result, "examples_per_second": round(rows / result["seconds"])}
    return result


def _compare(store: LocalStore, scratch: Path, variant: str) -> dict[str, Any]:
    ours = store.get_array(f"out/{variant}/unlabeled_scores.npy")
    theirs = np.load(scratch / f"out/cleanlab_{variant}.npy")
    return {
        # numpy's default tolerances: cleanlab computes float32 input in float32 (1e-7 relative).
        "allclose": bool(np.allclose(ours, theirs)),
        "max_abs_difference": float(np.max(np.abs(ours - theirs))) if len(ours) else 0.0,
        "rows_compared": len(ours),
    }
