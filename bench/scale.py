"""Scoring and selection at scale, on synthetic probabilities.

Pools of Dirichlet(alpha=0.1) rows (peaked, like a trained classifier's output), float32, written chunk
by chunk with ArrayWriter into a LocalStore under the workdir's scratch folder (deleted afterwards).
A labeled set of 1,000 rows with 3 annotators (about a third of their labels missing, 20% wrong)
makes ActiveLab fit its temperature and weights, the product's usual case; the unlabeled-only
variant uses cleanlab's defaults. Each measurement runs in its own process (scale_worker.py),
which reports its peak RSS:
- scorer: Scorer.score reading the stored pool in chunks (the service's code, without gRPC);
- cleanlab: cleanlab.multiannotator.get_active_learning_scores on the whole array in memory;
- selector: top-k of the scores (ranking.select, np.argsort for reference) and select_batch end to
  end (reads the scores and the example ids from the store).
Scores of both are compared with np.allclose over the whole pool.
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
    try:
        generate_labeled(store, cfg.num_classes, seed=0)
        for rows in cfg.pool_sizes:
            results["sizes"][str(rows)] = _measure_size(store, scratch, rows, cfg, results["sizes"])
            ws.save_part("scale", results)
            store.delete_prefix("pool/")  # keep at most one pool on disk (10M rows are 4 GB)
            store.delete_prefix("out/")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    ws.save_part("scale", results)
    return results


def _measure_size(
    store: LocalStore, scratch: Path, rows: int, cfg: ScaleConfig, earlier: dict[str, Any]
) -> dict[str, Any]:
    log.info("scale: generating %d x %d probabilities", rows, cfg.num_classes)
    pool_key = f"pool/probs_{rows}.npy"
    generate_pool(store, pool_key, rows, cfg.num_classes, seed=rows)
    out: dict[str, Any] = {"rows": rows, "pool_bytes": rows * cfg.num_classes * 4}
    for variant in VARIANTS:
        labeled = variant == "with_labels"
        common = {
            "root": str(scratch),
            "pool_key": pool_key,
            "labeled": labeled,
            "labeled_key": "labeled/probs.npy",
            "labels_key": "labeled/labels.npy",
        }
        log.info("scale: %d rows, %s: scorer", rows, variant)
        scorer = _best("scorer", {**common, "output": f"out/{variant}/"}, cfg.repeats)
        cleanlab = _cleanlab(common, variant, rows, cfg, earlier)
        entry: dict[str, Any] = {"scorer": _with_rate(scorer, rows), "cleanlab": _with_rate(cleanlab, rows)}
        if "seconds" in scorer and "seconds" in cleanlab:
            entry["speedup"] = round(cleanlab["seconds"] / scorer["seconds"], 2)
            entry["scores_allclose"] = _compare(store, scratch, variant)
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
        cfg.repeats,
    )
    return out


def _cleanlab(
    common: dict[str, Any], variant: str, rows: int, cfg: ScaleConfig, earlier: dict[str, Any]
) -> dict[str, Any]:
    """Skipped (with the reason) when the peak extrapolated from a smaller pool would not fit."""
    smaller = [v for v in earlier.values() if "peak_rss_bytes" in v.get(variant, {}).get("cleanlab", {})]
    if smaller:
        last = max(smaller, key=lambda v: v["rows"])
        peak = last[variant]["cleanlab"]["peak_rss_bytes"]
        expected = peak * rows / last["rows"]
        limit = cfg.cleanlab_memory_share * _available_bytes()
        if expected > limit:
            return {
                "skipped": f"extrapolated peak {expected / 2**30:.1f} GiB > {limit / 2**30:.1f} GiB "
                f"({cfg.cleanlab_memory_share:.0%} of available memory)"
            }
    log.info("scale: %d rows, %s: cleanlab", rows, variant)
    return _best("cleanlab", {**common, "output": f"out/cleanlab_{variant}.npy"}, cfg.repeats)


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
