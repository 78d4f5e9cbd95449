"""Reads a dataset's examples and a snapshot's labels into the DataFrames AutoGluon fits on."""

from __future__ import annotations

import hashlib
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from labelloop.core import tables
from labelloop.core.errors import FailedPrecondition
from labelloop.core.storage import LocalStore, ObjectStore
from labelloop.trainer.contract import JobSpec

log = logging.getLogger(__name__)

LABEL = "__label__"  # the training label column; never clashes with a feature column
# The warm worker keeps the last examples table it parsed when it is at most this large: every round
# of an experiment reads the same one (parsing 1,800 rows of 64 features takes 4 ms of a 40 ms job).
PARSED_EXAMPLES_BYTES = 64 << 20
# Only the last table (key, digest of its bytes, table): a worker serves one experiment's rounds.
_parsed_examples: tuple[str, bytes, pd.DataFrame] | None = None
_parsed_lock = threading.Lock()


def load_examples(spec: JobSpec, store: ObjectStore, cache_dir: Path) -> pd.DataFrame:
    """example_id, split, the feature columns and the image column as local file paths."""
    examples = _read_examples(store, spec.examples_key)
    needed = [
        "example_id",
        "split",
        *spec.feature_columns,
        *([spec.image_column] if spec.image_column else []),
    ]
    missing = [c for c in needed if c not in examples.columns]
    if missing:
        raise FailedPrecondition(f"{store.uri(spec.examples_key)} lacks the columns {missing}")
    if not spec.feature_columns and not spec.image_column:
        raise FailedPrecondition("the dataset has neither an image column nor feature columns to train on")
    examples["example_id"] = examples["example_id"].astype(str)
    if spec.image_column:
        examples[spec.image_column] = local_image_paths(store, examples[spec.image_column], cache_dir)
    return examples


def _read_examples(store: ObjectStore, key: str) -> pd.DataFrame:
    """The examples table, parsed again only when its bytes changed: they are read and hashed every
    time, so a dataset recreated under the same name is never served from the cache."""
    data = store.get_bytes(key)
    if len(data) > PARSED_EXAMPLES_BYTES:
        return tables.frame_of(data)
    global _parsed_examples
    digest = hashlib.blake2b(data, digest_size=16).digest()
    with _parsed_lock:
        if _parsed_examples is None or _parsed_examples[:2] != (key, digest):
            _parsed_examples = (key, digest, tables.frame_of(data))
        return _parsed_examples[2].copy()  # callers add and convert columns


def local_image_paths(store: ObjectStore, keys: pd.Series, cache_dir: Path) -> list[str]:
    """Image keys as local paths: the files themselves for a local store, a download cache for S3."""
    keys = keys.astype(str).map(store.ref_to_key)
    if isinstance(store, LocalStore):
        return [str(store.path(k)) for k in keys]
    root = cache_dir / "objects" / store.uri("").replace("://", "/").strip("/")

    def fetch(key: str) -> str:
        path = root / key
        if not path.exists():  # objects are immutable, so a cached copy stays valid
            tmp = path.with_name(f".tmp-{path.name}")
            store.get_file(key, tmp)
            tmp.replace(path)
        return str(path)

    with ThreadPoolExecutor(8) as pool:  # many small objects: latency-bound, not CPU-bound
        return list(pool.map(fetch, keys))


def labeled_rows(spec: JobSpec, store: ObjectStore, examples: pd.DataFrame) -> pd.DataFrame:
    """The labeled pool examples: their example_id, model input columns and snapshot label in LABEL, in
    the examples' order. `examples` is the whole table (load_examples); labels of test examples are
    left out, as labels of unknown ids are."""
    labels = tables.read_arrow(store.get_bytes(spec.labels_key), ["example_id", "label"])
    label_ids = np.array([str(i) for i in labels.column("example_id").to_pylist()], dtype=object)
    label_names = np.array([str(n) for n in labels.column("label").to_pylist()], dtype=object)
    unknown = sorted(set(label_names) - set(spec.classes))
    if unknown:
        raise FailedPrecondition(
            f"snapshot labels {unknown[:5]} are not among the dataset classes {spec.classes}"
        )
    columns = [c for c in (spec.image_column, *spec.feature_columns) if c]
    # An index lookup, not a merge (3x faster): example ids are unique (the store's ingest ensures it).
    # Rows are taken before columns, so only the labeled rows are copied.
    position = pd.Index(examples["example_id"]).get_indexer(label_ids)
    found = np.flatnonzero(position >= 0)
    missing = len(label_ids) - len(found)
    if missing:
        log.warning("%d labeled example ids are not in the dataset; they are skipped", missing)
    in_pool = examples["split"].to_numpy()[position[found]] == "pool"
    found = found[in_pool]
    if not len(found):
        raise FailedPrecondition(
            f"snapshot {store.uri(spec.labels_key)} has no labeled examples of this dataset's pool"
        )
    found = found[np.argsort(position[found], kind="stable")]
    # Only the model's inputs: the dataset's ground-truth column may itself be named "label".
    frame = examples.iloc[position[found]][["example_id", *columns]].reset_index(drop=True)
    frame[LABEL] = label_names[found]
    if frame[LABEL].nunique() < 2:
        raise FailedPrecondition(
            f"the labeled set has only the class {frame[LABEL].iloc[0]!r}: a classifier needs examples "
            "of at least 2 classes; label more examples before training"
        )
    return frame


def model_inputs(spec: JobSpec, frame: pd.DataFrame) -> pd.DataFrame:
    return frame[[c for c in (spec.image_column, *spec.feature_columns) if c]]
