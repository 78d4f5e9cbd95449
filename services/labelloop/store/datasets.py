"""DatasetStore: datasets, their annotation logs and snapshots, on any ObjectStore.

The gRPC servicer is a thin layer over this class; other services import it to read
examples and snapshot labels straight from the object store.

A dataset exists iff its dataset.json exists, and a snapshot iff its snapshot.json exists:
both are written last, and deleted first.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from labelloop.core import paging, tables
from labelloop.core.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from labelloop.core.layout import (
    DATASETS_PREFIX,
    dataset_key,
    dataset_prefix,
    files_prefix,
    snapshot_key,
    snapshot_prefix,
    snapshots_prefix,
)
from labelloop.core.metrics import STORE_ANNOTATIONS, STORE_EXAMPLES_INGESTED
from labelloop.core.names import check_id, shown
from labelloop.core.storage import ObjectStore
from labelloop.store import annotations as log_
from labelloop.store.appends import AnnotationLogs, LogId
from labelloop.store.consensus import consensus
from labelloop.store.images import ImagePlan, copy_images, plan_images
from labelloop.store.locks import dataset_lock
from labelloop.store.manifest import (
    MAX_DISPLAY_NAME_LENGTH,
    IngestSpec,
    check_columns,
    check_labels,
    example_ids,
    read_manifest,
    splits,
)
from labelloop.store.models import (
    POOL,
    SPLITS,
    TEST,
    Annotation,
    AppendResult,
    DatasetInfo,
    Example,
    Page,
    SnapshotInfo,
    now,
)
from labelloop.store.roots import Sources
from labelloop.store.usage import experiments_using

log = logging.getLogger(__name__)

_CACHED_DATASETS = 8  # examples.parquet frames kept in memory, for paging through them

# The datasets appends found, by (object store, dataset id), for every DatasetStore of the process:
# dataset.json never changes, and only the store deletes it, dropping the entry under the dataset's
# exclusive lock, which appends hold shared - so an append need not read it again.
_live: dict[tuple[str, str], DatasetInfo] = {}


class DatasetStore:
    def __init__(self, store: ObjectStore, import_roots: Sequence[Path] = ()):
        """`import_roots`: the only local folders manifests and images are read from (roots.py);
        none: only the object store."""
        self.store = store
        self.sources = Sources(store, import_roots)
        self._cache: OrderedDict[tuple[str, str], pd.DataFrame] = OrderedDict()
        self._split_cache: OrderedDict[tuple[str, str], dict[str, str]] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._logs = AnnotationLogs(store)

    # Datasets -------------------------------------------------------------------------------

    def create_dataset(
        self,
        dataset_id: str,
        manifest_uri: str,
        *,
        display_name: str = "",
        image_column: str = "",
        feature_columns: Sequence[str] = (),
        label_column: str = "",
        split_column: str = "",
        test_fraction: float = 0.0,
        classes: Sequence[str] = (),
        id_column: str = "",
        seed: int = 0,
        text_columns: Sequence[str] = (),
    ) -> DatasetInfo:
        """Ingests a manifest. Validates everything (every image opened) before writing anything."""
        check_id(dataset_id, "dataset_id")
        if len(display_name) > MAX_DISPLAY_NAME_LENGTH:
            raise InvalidArgument(
                f"display_name is {len(display_name)} characters: at most {MAX_DISPLAY_NAME_LENGTH}"
            )
        spec = IngestSpec(
            dataset_id=dataset_id,
            manifest_uri=manifest_uri,
            display_name=display_name,
            image_column=image_column,
            feature_columns=tuple(feature_columns),
            label_column=label_column,
            split_column=split_column,
            test_fraction=test_fraction,
            classes=tuple(classes),
            id_column=id_column,
            seed=seed,
            text_columns=tuple(text_columns),
        )
        with dataset_lock(dataset_id).exclusive():
            if self.store.exists(dataset_key(dataset_id)):
                raise AlreadyExists(
                    f"dataset datasets/{dataset_id} already exists: delete it or pick another id"
                )
            _live.pop((self.store.uri(""), dataset_id), None)  # one deleted by hand, if any
            frame, info, plan = self._prepare(spec)
            table = _parquet_bytes(frame, spec.manifest_uri)
            self._write_dataset(info, table, plan)
        STORE_EXAMPLES_INGESTED.inc(info.example_count)
        log.info(
            "created dataset %s: %d examples, %d classes", info.name, info.example_count, len(info.classes)
        )
        return info

    def _prepare(self, spec: IngestSpec) -> tuple[pd.DataFrame, DatasetInfo, ImagePlan | None]:
        manifest = read_manifest(self.sources, spec)
        check_columns(manifest, spec)
        labels = check_labels(manifest, spec)
        ids = example_ids(manifest, spec)
        split = splits(manifest, spec, ids, labels)
        columns: dict[str, object] = {"example_id": ids, "split": split}
        plan = None
        if spec.image_column:
            plan = plan_images(self.sources, manifest, spec.image_column, files_prefix(spec.dataset_id))
            columns[spec.image_column] = plan.keys
        for name in manifest.feature_columns:
            columns[name] = manifest.frame[name]  # a Series keeps nullable and text dtypes
        if labels is not None:
            columns[spec.label_column] = labels.to_numpy()
        frame = pd.DataFrame(columns)
        info = DatasetInfo(
            dataset_id=spec.dataset_id,
            display_name=spec.display_name or spec.dataset_id,
            classes=manifest.classes,
            example_count=len(frame),
            pool_count=split.count(POOL),
            test_count=split.count(TEST),
            image_column=spec.image_column,
            feature_columns=manifest.feature_columns,
            label_column=spec.label_column,
            create_time=now(),
            manifest_uri=spec.manifest_uri,
            seed=spec.seed,
            test_fraction=spec.test_fraction,
        )
        return frame, info, plan

    def _write_dataset(self, info: DatasetInfo, table: bytes, plan: ImagePlan | None) -> None:
        prefix = dataset_prefix(info.dataset_id)
        # Leftovers of a crashed ingest or delete: without dataset.json they belong to nothing.
        self.store.delete_prefix(prefix)
        try:
            if plan is not None:
                copy_images(self.store, plan)
            self.store.put_bytes(info.examples_key, table)
            self.store.put_json(dataset_key(info.dataset_id), info.to_json())
        except BaseException:
            self.store.delete_prefix(prefix)
            raise

    def get_dataset(self, dataset_id: str) -> DatasetInfo:
        check_id(dataset_id, "dataset id")
        try:
            return DatasetInfo.from_json(self.store.get_json(dataset_key(dataset_id)))
        except NotFound:
            raise NotFound(f"dataset datasets/{dataset_id} does not exist") from None

    def list_datasets(self, page_size: int = 0, page_token: str = "") -> Page[DatasetInfo]:
        # One level only: a dataset's folder also holds every image file.
        ids = [d for d in self.store.list_folders(DATASETS_PREFIX) if self.store.exists(dataset_key(d))]
        page, next_token = paging.paginate("datasets", ids, page_size, page_token)
        infos = []
        for dataset_id in page:
            try:
                infos.append(self.get_dataset(dataset_id))
            except NotFound:  # deleted since the listing
                continue
        return Page(infos, next_token, len(ids))

    def delete_dataset(self, dataset_id: str, force: bool = False) -> None:
        """Deletes the dataset with its files, annotations and snapshots. While experiments use it
        (usage.py) the delete is refused unless forced: they then fail when they next read it."""
        check_id(dataset_id, "dataset id")
        with dataset_lock(dataset_id).exclusive():
            self.get_dataset(dataset_id)
            if users := experiments_using(self.store, dataset_id):
                if not force:
                    more = f" and {len(users) - 10} more" if len(users) > 10 else ""
                    raise FailedPrecondition(
                        f"datasets/{dataset_id} is used by {len(users)} experiment(s) that have not ended: "
                        f"{users[:10]}{more}; cancel or delete them first, or delete the dataset with force "
                        "(they then fail, saying it does not exist)"
                    )
                log.warning("deleting datasets/%s with force while %s use it", dataset_id, users)
            _live.pop((self.store.uri(""), dataset_id), None)
            self.store.delete(dataset_key(dataset_id))  # first: from here on it does not exist
            removed = self.store.delete_prefix(dataset_prefix(dataset_id))
        with self._cache_lock:
            for key in [k for k in self._cache if k[0] == dataset_id]:
                del self._cache[key]
            for key in [k for k in self._split_cache if k[0] == dataset_id]:
                del self._split_cache[key]
        self._logs.forget(dataset_id)
        log.info("deleted dataset datasets/%s (%d objects)", dataset_id, removed + 1)

    # Examples -------------------------------------------------------------------------------

    def read_examples(self, dataset_id: str) -> pd.DataFrame:
        """examples.parquet as a DataFrame: example_id, split, image key, features, label."""
        return self._examples(self.get_dataset(dataset_id)).copy()

    def _examples(self, info: DatasetInfo) -> pd.DataFrame:
        """The cached frame; datasets are immutable, and a re-created one has a new create_time."""
        cache_key = (info.dataset_id, info.create_time.isoformat())
        with self._cache_lock:
            if cache_key in self._cache:
                self._cache.move_to_end(cache_key)
                return self._cache[cache_key]
        frame = tables.read_frame(self.store, info.examples_key)
        with self._cache_lock:
            self._cache[cache_key] = frame
            while len(self._cache) > _CACHED_DATASETS:
                self._cache.popitem(last=False)
        return frame

    def list_examples(
        self, dataset_id: str, split: str = "", page_size: int = 0, page_token: str = ""
    ) -> Page[Example]:
        """Examples in examples.parquet order; split "" lists both splits."""
        if split and split not in SPLITS:
            raise InvalidArgument(f"split {shown(split)} is not one of {list(SPLITS)} (or empty for all)")
        info = self.get_dataset(dataset_id)
        frame = self._examples(info)
        if split:
            frame = frame[frame["split"] == split]
        page, next_token = paging.paginate(
            f"examples/{dataset_id}/{split}", range(len(frame)), page_size, page_token
        )
        rows = frame.iloc[page]
        examples = [
            Example(
                example_id=row["example_id"],
                split=row["split"],
                image_key=str(row[info.image_column]) if info.image_column else "",
                features={c: _text(row[c]) for c in info.feature_columns},
            )
            for row in rows.to_dict("records")
        ]
        return Page(examples, next_token, len(frame))

    # Annotations ----------------------------------------------------------------------------

    def append_annotations(
        self, dataset_id: str, annotation_set: str, annotations: Sequence[Annotation], request_id: str
    ) -> AppendResult:
        """Appends one request to the log; a retried request_id stores nothing and says duplicate.

        The request's rules (annotations.check_request) are checked first; a request id stored
        before with other content is refused with AlreadyExists.
        """
        annotation_set = log_.check_set(annotation_set)
        log_.check_request_id(request_id)
        stamped = [Annotation(a.example_id, a.annotator.strip(), a.label) for a in annotations]
        # Shared: appends run side by side (appends.py); a delete or snapshot waits for them.
        with dataset_lock(dataset_id).shared():
            info = _live.get((self.store.uri(""), dataset_id)) or self.get_dataset(dataset_id)
            _live[(self.store.uri(""), dataset_id)] = info
            log_.check_request(annotations, info.classes, self._splits(info), info.name)
            stored = self._logs.append(_log_id(info, annotation_set), request_id, stamped)
        if not stored:
            log.info("request %s already in %s/annotations/%s: not stored again", request_id, info.name,
                     annotation_set)  # fmt: skip
            return AppendResult(appended_count=0, duplicate=True)
        STORE_ANNOTATIONS.inc(len(stamped))
        return AppendResult(appended_count=len(stamped), duplicate=False)

    def _splits(self, info: DatasetInfo) -> dict[str, str]:
        """example id -> split, cached like the frame it comes from."""
        cache_key = (info.dataset_id, info.create_time.isoformat())
        with self._cache_lock:
            if cache_key in self._split_cache:
                return self._split_cache[cache_key]
        frame = self._examples(info)
        splits = dict(zip(frame["example_id"], frame["split"], strict=True))
        with self._cache_lock:
            self._split_cache[cache_key] = splits
            while len(self._split_cache) > _CACHED_DATASETS:
                self._split_cache.popitem(last=False)
        return splits

    def list_annotations(
        self, dataset_id: str, annotation_set: str = "", page_size: int = 0, page_token: str = ""
    ) -> Page[Annotation]:
        """The log in append order. A set nobody has appended to yet is empty."""
        annotation_set = log_.check_set(annotation_set)
        info = self.get_dataset(dataset_id)
        annotations = self._logs.read(_log_id(info, annotation_set))
        page, next_token = paging.paginate(
            f"annotations/{dataset_id}/{annotation_set}", annotations, page_size, page_token
        )
        return Page(page, next_token, len(annotations))

    # Snapshots ------------------------------------------------------------------------------

    def create_snapshot(self, dataset_id: str, snapshot_id: str, annotation_set: str = "") -> SnapshotInfo:
        """Freezes the log's labeled set. Creating an existing snapshot again returns it unchanged."""
        check_id(snapshot_id, "snapshot_id")
        annotation_set = log_.check_set(annotation_set)
        with dataset_lock(dataset_id).exclusive():
            info = self.get_dataset(dataset_id)
            existing = self._find_snapshot(dataset_id, snapshot_id)
            if existing is not None:
                if existing.annotation_set != annotation_set:
                    raise AlreadyExists(
                        f"snapshot {existing.name} already exists for annotation set "
                        f"{existing.annotation_set!r}, not {annotation_set!r}: pick another snapshot_id"
                    )
                return existing
            annotations = self._logs.read(_log_id(info, annotation_set))
            labeled = consensus(annotations, info.classes)
            snapshot = SnapshotInfo(
                dataset_id=dataset_id,
                snapshot_id=snapshot_id,
                annotation_set=annotation_set,
                labeled_count=len(labeled.labels_multiannotator),
                annotation_count=len(annotations),
                annotator_count=len(labeled.annotators),
                create_time=now(),
            )
            prefix = snapshot_prefix(dataset_id, snapshot_id)
            self.store.delete_prefix(prefix)  # leftovers of a crashed attempt
            try:
                self.store.put_bytes(snapshot.labels_key, labeled.labels)
                self.store.put_array(snapshot.labels_multiannotator_key, labeled.labels_multiannotator)
                self.store.put_json(snapshot.annotators_key, labeled.annotators)
                self.store.put_json(snapshot.snapshot_key, snapshot.to_json())
            except BaseException:
                self.store.delete_prefix(prefix)
                raise
        log.info("created snapshot %s: %d labeled examples", snapshot.name, snapshot.labeled_count)
        return snapshot

    def _find_snapshot(self, dataset_id: str, snapshot_id: str) -> SnapshotInfo | None:
        try:
            return SnapshotInfo.from_json(self.store.get_json(snapshot_key(dataset_id, snapshot_id)))
        except NotFound:
            return None

    def get_snapshot(self, dataset_id: str, snapshot_id: str) -> SnapshotInfo:
        check_id(snapshot_id, "snapshot id")
        self.get_dataset(dataset_id)
        snapshot = self._find_snapshot(dataset_id, snapshot_id)
        if snapshot is None:
            raise NotFound(f"snapshot datasets/{dataset_id}/snapshots/{snapshot_id} does not exist")
        return snapshot

    def list_snapshots(self, dataset_id: str, page_size: int = 0, page_token: str = "") -> Page[SnapshotInfo]:
        self.get_dataset(dataset_id)
        prefix = snapshots_prefix(dataset_id)
        ids = [k[len(prefix) :].split("/")[0] for k in self.store.list(prefix) if _is_snapshot_key(k, prefix)]
        page, next_token = paging.paginate(f"snapshots/{dataset_id}", ids, page_size, page_token)
        found = (self._find_snapshot(dataset_id, s) for s in page)
        return Page([s for s in found if s is not None], next_token, len(ids))

    def read_snapshot_labels(self, dataset_id: str, snapshot_id: str) -> pd.DataFrame:
        """labels.parquet: example_id, label (consensus), annotation_count."""
        snapshot = self.get_snapshot(dataset_id, snapshot_id)
        return tables.read_frame(self.store, snapshot.labels_key)

    def read_labels_multiannotator(self, dataset_id: str, snapshot_id: str) -> tuple[np.ndarray, list[str]]:
        """cleanlab's labels_multiannotator (rows as in labels.parquet) and its annotator columns."""
        snapshot = self.get_snapshot(dataset_id, snapshot_id)
        matrix = self.store.get_array(snapshot.labels_multiannotator_key)
        return matrix, list(self.store.get_json(snapshot.annotators_key))


def _log_id(info: DatasetInfo, annotation_set: str) -> LogId:
    return (info.dataset_id, info.create_time.isoformat(), annotation_set)


def _is_snapshot_key(key: str, prefix: str) -> bool:
    parts = key[len(prefix) :].split("/")
    return len(parts) == 2 and parts[1] == "snapshot.json"


def _text(value: object) -> str:
    """A feature value as the string the API returns; missing values are empty."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    return str(value)


def _parquet_bytes(frame: pd.DataFrame, what: str) -> bytes:
    try:
        return tables.frame_bytes(frame)
    except (pa.ArrowException, ValueError, TypeError) as error:  # e.g. a column mixing numbers and text
        raise InvalidArgument(f"cannot store the columns of {what!r} as Parquet: {error}") from None
