"""Sharded prediction on Kubernetes: how many shards a PREDICT gets, and merging them when done.

A PREDICT spec whose pool has more than LABELLOOP_PREDICT_SHARD_ROWS rows (default 200000; 0 turns
sharding off) runs as an Indexed Job of ceil(pool / rows) pods, each predicting one shard
(trainer/shards.py); LABELLOOP_PREDICT_SHARD_PARALLELISM caps how many of its pods run at a time
(default: all). A plan file written at submit records the shard count, so the shards can still be
merged after the Job itself is gone (ttlSecondsAfterFinished).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from labelloop.core import tables
from labelloop.core.errors import InvalidArgument
from labelloop.core.storage import ObjectStore
from labelloop.trainer import shards as sharding
from labelloop.trainer.contract import JobKind, JobSpec
from labelloop.trainer.executors.kubernetes.manifests import shard_count
from labelloop.trainer.executors.kubernetes.outputs import RESULT_FILE, read_json

log = logging.getLogger(__name__)

# Rows of the pool per shard of a PREDICT run (0: never shard), and pods of one such Job at a time.
PREDICT_SHARD_ROWS_ENV = "LABELLOOP_PREDICT_SHARD_ROWS"
PREDICT_SHARD_PARALLELISM_ENV = "LABELLOOP_PREDICT_SHARD_PARALLELISM"
DEFAULT_PREDICT_SHARD_ROWS = 200_000
PLAN_FILE = "plan.json"  # in the shards folder: {"job_id": ..., "shards": N}
MAX_SHARD_ERRORS_READ = 20  # shard status files read to explain a failed sharded Job, at most


@dataclass(frozen=True)
class ShardPlan:
    shards: int
    parallelism: int | None  # None: all shards at once


def _int_env(env: Mapping[str, str], name: str, default: int) -> int:
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidArgument(f"{name}={raw!r} is not a whole number") from None
    if value < 0:
        raise InvalidArgument(f"{name} must be >= 0, not {value}")
    return value


class ShardedPredictions:
    """Plans, explains and merges the sharded predictions of one executor."""

    def __init__(self, store: ObjectStore, env: Mapping[str, str]):
        self.store = store
        self.rows = _int_env(env, PREDICT_SHARD_ROWS_ENV, DEFAULT_PREDICT_SHARD_ROWS)
        self.parallelism = _int_env(env, PREDICT_SHARD_PARALLELISM_ENV, 0)
        # One merge at a time: two status() calls may both see the Job complete.
        self._merge_lock = threading.Lock()

    def plan(self, spec: JobSpec) -> ShardPlan | None:
        """The shards of a PREDICT with a large pool; None when one ordinary Job runs the spec."""
        if spec.kind != JobKind.PREDICT or not spec.model_key or self.rows <= 0:
            return None
        pool_rows = self._pool_rows(spec)
        shards = shard_count(pool_rows or 0, self.rows)
        if shards <= 1:
            return None
        log.info(
            "job %s predicts %d pool rows in %d shards of <= %d rows",
            spec.job_id,
            pool_rows,
            shards,
            self.rows,
        )
        return ShardPlan(shards, min(self.parallelism, shards) if self.parallelism > 0 else None)

    def write_plan(self, spec: JobSpec, plan: ShardPlan) -> None:
        self.store.put_json(
            sharding.shards_prefix(spec.output_prefix) + PLAN_FILE,
            {"job_id": spec.job_id, "shards": plan.shards},
        )

    def planned_shards(self, job_id: str, prefix: str) -> int | None:
        """The shard count written at submit for this job, None when it was not sharded."""
        plan = read_json(self.store, sharding.shards_prefix(prefix) + PLAN_FILE)
        if not plan or plan.get("job_id") != job_id:
            return None
        try:
            return int(plan["shards"])
        except (KeyError, TypeError, ValueError):
            return None

    def _pool_rows(self, spec: JobSpec) -> int | None:
        """Pool rows of the spec's dataset: dataset.json's pool_count, else counted in examples.parquet.

        None when neither can be read (the job itself then fails with the reason).
        """
        folder = spec.examples_key.rsplit("/", 1)[0] + "/" if "/" in spec.examples_key else ""
        meta = read_json(self.store, folder + "dataset.json")
        if (
            meta is not None
            and meta.get("examples_key", spec.examples_key) == spec.examples_key
            and isinstance(meta.get("pool_count"), int)
        ):
            return int(meta["pool_count"])
        try:
            frame = tables.read_frame(self.store, spec.examples_key, ["split"])
        except Exception as error:
            log.warning("cannot count the pool of %s (%s): one Job predicts it", spec.examples_key, error)
            return None
        return int((frame["split"] == "pool").sum())

    def error(self, prefix: str, failed_indexes: list[int], shards: int) -> str:
        """The first failed shard's own error, from its status file ("" when none says why)."""
        folder = sharding.shards_prefix(prefix)
        # Without the API's list, look at the first few shards only: never one read per shard of many.
        indexes = failed_indexes[:MAX_SHARD_ERRORS_READ] or range(min(shards, MAX_SHARD_ERRORS_READ))
        for index in indexes:
            status = read_json(self.store, sharding.status_key(folder, index))
            if status and status.get("state") == "failed" and status.get("error"):
                return f"shard {index}: {status['error']}"
        return ""

    def merge(self, job_id: str, prefix: str, shards: int) -> dict[str, Any]:
        """Merges a completed sharded prediction once: a later call finds result.json and returns it.

        FailedPrecondition when a shard is missing or the shards disagree.
        """
        with self._merge_lock:
            done = read_json(self.store, prefix + RESULT_FILE)
            if done is not None:
                return done
            log.info("merging %d shards of job %s under %s", shards, job_id, prefix)
            return sharding.merge_shards(self.store, prefix, shards, job_id=job_id)
