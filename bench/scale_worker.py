"""One measurement in its own process, so its peak RSS is its own: `python -m bench.scale_worker
{scorer|cleanlab|numpy_pass|selector} ARGS_JSON`. Prints one JSON line: seconds, peak_rss_bytes,
base_rss_bytes (after imports, before the measurement).
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np


def _rss_now() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def _peak_rss() -> int:
    """VmHWM: this process image's peak RSS. Not getrusage's ru_maxrss, which after fork + exec also
    counts the parent's RSS at the fork."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def scorer(args: dict[str, Any]) -> dict[str, Any]:
    from labelloop.core.storage import LocalStore
    from labelloop.scorer.scoring import Scorer
    from labelloop.v1 import common_pb2

    store = LocalStore(Path(args["root"]))
    refs: dict[str, Any] = {}
    if args["labeled"]:
        refs["labeled_probabilities"] = [common_pb2.ArrayRef(uri=store.uri(args["labeled_key"]))]
        refs["labels_multiannotator"] = common_pb2.ArrayRef(uri=store.uri(args["labels_key"]))
    base = _rss_now()
    started = time.perf_counter()
    Scorer(store).score(
        common_pb2.STRATEGY_ACTIVELAB,
        [common_pb2.ArrayRef(uri=store.uri(args["pool_key"]))],
        output_uri=store.uri(args["output"]),
        **refs,
    )
    return {"seconds": time.perf_counter() - started, "base_rss_bytes": base}


def cleanlab(args: dict[str, Any]) -> dict[str, Any]:
    from cleanlab.multiannotator import get_active_learning_scores

    root = Path(args["root"])
    labels = probs = None
    if args["labeled"]:
        labels = np.load(root / args["labels_key"])
        probs = np.load(root / args["labeled_key"])
    base = _rss_now()
    started = time.perf_counter()
    pool = np.load(root / args["pool_key"])  # the whole array in memory, as cleanlab needs it
    load = time.perf_counter() - started
    started = time.perf_counter()
    _, scores = get_active_learning_scores(labels, probs, pool)
    seconds = time.perf_counter() - started
    np.save(root / args["output"], np.asarray(scores, dtype=np.float64))
    return {"seconds": seconds, "load_seconds": load, "base_rss_bytes": base}


def numpy_pass(args: dict[str, Any]) -> dict[str, Any]:
    """The floor a chunked scorer is held to: one row max and one row sum over the whole pool, as
    numpy computes them on the array in memory (the load is timed apart, as for cleanlab)."""
    root = Path(args["root"])
    base = _rss_now()
    started = time.perf_counter()
    pool = np.load(root / args["pool_key"])
    load = time.perf_counter() - started
    started = time.perf_counter()
    np.max(pool, axis=1)
    np.sum(pool, axis=1)
    return {"seconds": time.perf_counter() - started, "load_seconds": load, "base_rss_bytes": base}


def selector(args: dict[str, Any]) -> dict[str, Any]:
    from labelloop.core.storage import LocalStore
    from labelloop.selector.batch.lowest_scores import select
    from labelloop.selector.selection import select_batch
    from labelloop.v1 import common_pb2

    store = LocalStore(Path(args["root"]))
    base = _rss_now()
    scores = store.get_array(args["scores_key"])
    rows = np.arange(len(scores))
    started = time.perf_counter()
    select(scores, rows, args["batch_size"], seed=0)
    topk = time.perf_counter() - started
    started = time.perf_counter()
    np.argsort(scores, kind="stable")[: args["batch_size"]]
    argsort = time.perf_counter() - started
    del scores, rows
    ref = common_pb2.ArrayRef(uri=store.uri(args["scores_key"]), example_ids_uri=store.uri(args["ids_key"]))
    started = time.perf_counter()
    batch = select_batch(store, ref, args["batch_size"], seed=0)
    end_to_end = time.perf_counter() - started
    assert len(batch) == args["batch_size"]
    return {
        "seconds": end_to_end,
        "topk_seconds": topk,
        "argsort_seconds": argsort,
        "base_rss_bytes": base,
    }


def main() -> int:
    kind, args = sys.argv[1], json.loads(sys.argv[2])
    kinds = {"scorer": scorer, "cleanlab": cleanlab, "numpy_pass": numpy_pass, "selector": selector}
    result = kinds[kind](args)
    result["peak_rss_bytes"] = _peak_rss()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
