"""Sharded prediction: which rows a shard predicts, where it writes them, and merging the shards.

A PREDICT job over a large pool can run as a Kubernetes Indexed Job (see executors/kubernetes.py):
every pod runs the ordinary job with LABELLOOP_SHARD_COUNT=N and JOB_COMPLETION_INDEX=i and predicts
only slice i of each split (pool and test alike). Slices are contiguous ranges of the split's rows in
the order of the dataset's examples table (the order an unsharded job writes them in), cut at
`i * n // N`, so the shards never overlap, cover every row, and concatenated in index order give
exactly the arrays of an unsharded job.

Shard i writes under `{output_prefix}shards/` (or LABELLOOP_SHARD_PREFIX):

    {i}.npy, {i}.ids.json              its pool slice: probabilities and example ids
    {i}.test.npy, {i}.test.ids.json    its test slice
    {i}.embeddings.npy                 its pool slice's embeddings (every shard with pool rows)
    {i}.status.json                    its progress (the pods of one Job must not share status.json)
    {i}.done.json                      written last: the shard's summary; its presence means "done"

merge_shards() then assembles the standard pool_*/test_* arrays, pool_embeddings.npy and result.json
chunk by chunk, never holding a whole split in memory.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from labelloop.core import layout
from labelloop.core.errors import FailedPrecondition, NotFound
from labelloop.core.storage import ArrayWriter, ObjectStore

log = logging.getLogger(__name__)

SHARD_COUNT_ENV = "LABELLOOP_SHARD_COUNT"
SHARD_PREFIX_ENV = "LABELLOOP_SHARD_PREFIX"
SHARD_INDEX_ENV = "JOB_COMPLETION_INDEX"  # set by Kubernetes on the pods of an Indexed Job
SHARDS_FOLDER = "shards/"
SPLITS = ("pool", "test")
MERGE_CHUNK_ROWS = 65_536
RESULT_FILE = "result.json"
_LISTED = 20  # shard numbers named in an error message, at most


def _prefix(output_prefix: str) -> str:
    return output_prefix.rstrip("/") + "/"


def shards_prefix(output_prefix: str) -> str:
    """The default folder of a sharded prediction's shard outputs."""
    return _prefix(output_prefix) + SHARDS_FOLDER


def slice_bounds(n_rows: int, index: int, count: int) -> tuple[int, int]:
    """Rows [lo, hi) of shard `index` of `count`: contiguous, disjoint, together all n_rows rows."""
    if not 0 <= index < count:
        raise ValueError(f"shard index {index} is outside 0..{count - 1}")
    return index * n_rows // count, (index + 1) * n_rows // count


@dataclass(frozen=True)
class Shard:
    """One shard of a sharded prediction: index of count, writing under prefix."""

    index: int
    count: int
    prefix: str  # the shards folder, ends with "/"

    @classmethod
    def from_env(cls, env: Mapping[str, str], output_prefix: str) -> Shard | None:
        """The shard this process predicts, or None for an ordinary (unsharded) job."""
        raw = (env.get(SHARD_COUNT_ENV) or "").strip()
        if not raw:
            return None
        try:
            count = int(raw)
        except ValueError:
            raise FailedPrecondition(f"{SHARD_COUNT_ENV}={raw!r} is not a whole number") from None
        if count <= 1:
            return None
        index_raw = (env.get(SHARD_INDEX_ENV) or "").strip()
        if not index_raw:
            raise FailedPrecondition(
                f"{SHARD_COUNT_ENV}={count} but {SHARD_INDEX_ENV} is not set: a sharded prediction runs as "
                "a Kubernetes Indexed Job, which sets it"
            )
        try:
            index = int(index_raw)
        except ValueError:
            raise FailedPrecondition(f"{SHARD_INDEX_ENV}={index_raw!r} is not a whole number") from None
        if not 0 <= index < count:
            raise FailedPrecondition(f"{SHARD_INDEX_ENV}={index} is outside 0..{count - 1}")
        prefix = (env.get(SHARD_PREFIX_ENV) or "").strip() or shards_prefix(output_prefix)
        return cls(index, count, _prefix(prefix))

    def bounds(self, n_rows: int) -> tuple[int, int]:
        return slice_bounds(n_rows, self.index, self.count)

    def probabilities_key(self, split: str) -> str:
        return probabilities_key(self.prefix, self.index, split)

    def ids_key(self, split: str) -> str:
        return ids_key(self.prefix, self.index, split)

    @property
    def embeddings_key(self) -> str:
        return embeddings_key(self.prefix, self.index)

    @property
    def done_key(self) -> str:
        return done_key(self.prefix, self.index)

    @property
    def status_key(self) -> str:
        return status_key(self.prefix, self.index)


def probabilities_key(folder: str, index: int, split: str) -> str:
    return f"{folder}{index}.npy" if split == "pool" else f"{folder}{index}.{split}.npy"


def ids_key(folder: str, index: int, split: str) -> str:
    return f"{folder}{index}.ids.json" if split == "pool" else f"{folder}{index}.{split}.ids.json"


def embeddings_key(folder: str, index: int) -> str:
    return f"{folder}{index}.embeddings.npy"


def done_key(folder: str, index: int) -> str:
    return f"{folder}{index}.done.json"


def status_key(folder: str, index: int) -> str:
    return f"{folder}{index}.status.json"


def _compact(numbers: list[int]) -> str:
    shown = ", ".join(str(n) for n in numbers[:_LISTED])
    return shown + (f" and {len(numbers) - _LISTED} more" if len(numbers) > _LISTED else "")


def missing_shards(store: ObjectStore, folder: str, count: int) -> list[int]:
    """Shards without a done marker (one listing, not one request per shard)."""
    present = set(store.list(folder))
    return [i for i in range(count) if done_key(folder, i) not in present]


def merge_shards(
    store: ObjectStore,
    output_prefix: str,
    count: int,
    *,
    job_id: str = "",
    folder: str = "",
    chunk_rows: int = MERGE_CHUNK_ROWS,
) -> dict[str, Any]:
    """Assembles shards 0..count-1 into pool_/test_ probabilities and ids and result.json; returns it.

    The same keys and content as an unsharded PREDICT job writes, plus "shards". Memory stays bounded
    by chunk_rows rows and one shard's ids. Idempotent: a rerun rewrites the same objects.
    FailedPrecondition names missing shards, and shards that disagree (classes, row ranges, job).
    """
    prefix = _prefix(output_prefix)
    folder = _prefix(folder) if folder else shards_prefix(prefix)
    if count < 1:
        raise FailedPrecondition(f"cannot merge {count} shards")
    missing = missing_shards(store, folder, count)
    if missing:
        raise FailedPrecondition(
            f"cannot merge the sharded prediction under {store.uri(prefix)}: {len(missing)} of {count} "
            f"shards are missing (no done marker): shards {_compact(missing)}"
        )
    summaries = [_summary(store, folder, i) for i in range(count)]
    classes = _check_summaries(summaries, count, job_id, store.uri(folder))

    result: dict[str, Any] = {"classes": classes}
    for split in SPLITS:
        total = int(summaries[0]["totals"][split])
        _merge_split(store, folder, prefix, split, summaries, len(classes), total, chunk_rows)
        result[f"{split}_probabilities_key"] = layout.probabilities_key(prefix, split)
        result[f"{split}_example_ids_key"] = layout.example_ids_key(prefix, split)
        result[f"n_{split}"] = total
    result.update(_merge_embeddings(store, folder, prefix, summaries, chunk_rows))
    known = sum(int(s["test_known"]) for s in summaries)
    correct = sum(int(s["test_correct"]) for s in summaries)
    result["test_accuracy"] = correct / known if known else None
    result["predict_seconds"] = max(float(s["predict_seconds"]) for s in summaries)
    result["embed_seconds"] = max(float(s.get("embed_seconds") or 0.0) for s in summaries)
    result["fit_seconds"] = 0.0
    result["model_key"] = summaries[0]["model_key"]
    result["shards"] = count
    store.put_json(prefix + RESULT_FILE, result)  # last: its presence means the prediction finished
    log.info("merged %d shards into %s", count, store.uri(prefix))
    return result


def _summary(store: ObjectStore, folder: str, index: int) -> dict[str, Any]:
    try:
        summary = store.get_json(done_key(folder, index))
    except (NotFound, ValueError) as error:
        raise FailedPrecondition(f"shard {index}'s done marker cannot be read: {error}") from None
    if not isinstance(summary, dict):
        raise FailedPrecondition(f"shard {index}'s done marker is not a JSON object")
    return summary


def _check_summaries(summaries: list[dict[str, Any]], count: int, job_id: str, where: str) -> list[str]:
    first = summaries[0]
    classes = [str(c) for c in first.get("classes", [])]
    for i, s in enumerate(summaries):
        if s.get("index") != i or s.get("count") != count:
            raise FailedPrecondition(
                f"shard {i} under {where} was written as shard {s.get('index')} of {s.get('count')}, "
                f"not {i} of {count}: a leftover of another run?"
            )
        if job_id and s.get("job_id") != job_id:
            raise FailedPrecondition(
                f"shard {i} under {where} belongs to job {s.get('job_id')!r}, not {job_id!r}"
            )
        if [str(c) for c in s.get("classes", [])] != classes:
            raise FailedPrecondition(
                f"shard {i} has classes {s.get('classes')}, shard 0 has {classes}: the shards disagree"
            )
        if s.get("model_key") != first.get("model_key"):
            raise FailedPrecondition(
                f"shard {i} used model {s.get('model_key')}, shard 0 {first.get('model_key')}"
            )
        for split in SPLITS:
            total = int(first["totals"][split])
            if int(s["totals"][split]) != total or list(s["rows"][split]) != list(
                slice_bounds(total, i, count)
            ):
                raise FailedPrecondition(
                    f"shard {i} predicted {split} rows {s['rows'][split]} of {s['totals'][split]}, "
                    f"expected {list(slice_bounds(total, i, count))} of {total}"
                )
    return classes


def _merge_split(
    store: ObjectStore,
    folder: str,
    prefix: str,
    split: str,
    summaries: list[dict[str, Any]],
    n_classes: int,
    total: int,
    chunk_rows: int,
) -> None:
    headers = []
    for i, s in enumerate(summaries):
        key = probabilities_key(folder, i, split)
        try:
            shape, dtype, _ = store.array_header(key)
        except NotFound:
            raise FailedPrecondition(f"shard {i} is done but {store.uri(key)} is missing") from None
        lo, hi = s["rows"][split]
        if shape != (hi - lo, n_classes):
            raise FailedPrecondition(
                f"shard {i}'s {split} probabilities have shape {shape}, expected {(hi - lo, n_classes)} "
                f"({n_classes} classes): the shards disagree on the class count"
            )
        headers.append(dtype)
    dtype = np.dtype(np.float32)
    if any(d != dtype for d in headers):
        raise FailedPrecondition(
            f"shard {split} probabilities must be float32, found {sorted(set(map(str, headers)))}"
        )

    out_key = layout.probabilities_key(prefix, split)
    if total == 0:
        store.put_array(out_key, np.zeros((0, n_classes), np.float32))
    else:
        writer = ArrayWriter(store, out_key, (total, n_classes), dtype)
        try:
            for i, s in enumerate(summaries):
                lo = int(s["rows"][split][0])
                if s["rows"][split][1] == lo:
                    continue
                for start, rows in store.iter_array_rows(probabilities_key(folder, i, split), chunk_rows):
                    writer.write(lo + start, rows)
        except BaseException:
            writer.abort()
            raise
        writer.close()
    _merge_ids(store, folder, layout.example_ids_key(prefix, split), split, summaries)


def _merge_embeddings(
    store: ObjectStore, folder: str, prefix: str, summaries: list[dict[str, Any]], chunk_rows: int
) -> dict[str, Any]:
    """pool_embeddings.npy from the shards' slices; {} when the shards wrote none (older jobs)."""
    with_rows = [(i, s) for i, s in enumerate(summaries) if s["rows"]["pool"][1] > s["rows"]["pool"][0]]
    dims = {int(s["embedding_dims"]) for _, s in with_rows if "embedding_dims" in s}
    if not with_rows or not dims:
        return {}
    if len(dims) > 1 or any("embedding_dims" not in s for _, s in with_rows):
        raise FailedPrecondition(f"the shards disagree on the embedding width: {sorted(dims)}")
    (width,) = dims
    out_key = layout.embeddings_key(prefix, "pool")
    writer = ArrayWriter(store, out_key, (int(summaries[0]["totals"]["pool"]), width), np.dtype(np.float32))
    try:
        for i, s in with_rows:
            key = embeddings_key(folder, i)
            lo, hi = (int(r) for r in s["rows"]["pool"])
            try:
                shape, dtype, _ = store.array_header(key)
            except NotFound:
                raise FailedPrecondition(f"shard {i} is done but {store.uri(key)} is missing") from None
            if shape != (hi - lo, width) or dtype != np.dtype(np.float32):
                raise FailedPrecondition(
                    f"shard {i}'s embeddings are {dtype} {shape}, expected float32 {(hi - lo, width)}"
                )
            for start, rows in store.iter_array_rows(key, chunk_rows):
                writer.write(lo + start, rows)
    except BaseException:
        writer.abort()
        raise
    writer.close()
    return {
        "pool_embeddings_key": out_key,
        "pool_example_ids_key": layout.example_ids_key(prefix, "pool"),
        "embedding_dims": width,
    }


def _merge_ids(
    store: ObjectStore, folder: str, out_key: str, split: str, summaries: Iterable[dict[str, Any]]
) -> None:
    """Concatenates the shards' id lists into one JSON list, one shard in memory at a time."""
    tmp = Path(tempfile.mkdtemp(prefix="labelloop-ids-"))
    try:
        path = tmp / "ids.json"
        with open(path, "w") as out:
            out.write("[")
            first = True
            for i, s in enumerate(summaries):
                key = ids_key(folder, i, split)
                try:
                    ids = store.get_json(key)
                except NotFound:
                    raise FailedPrecondition(f"shard {i} is done but {store.uri(key)} is missing") from None
                lo, hi = s["rows"][split]
                if not isinstance(ids, list) or len(ids) != hi - lo:
                    raise FailedPrecondition(
                        f"{store.uri(key)} does not list the shard's {hi - lo} example ids"
                    )
                for example_id in ids:
                    out.write(("" if first else ",") + json.dumps(str(example_id)))
                    first = False
            out.write("]")
        store.put_file(out_key, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
