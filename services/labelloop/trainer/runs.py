"""The trainer's domain class: validates runs, submits jobs, tracks their operations.

Operations are kept in memory and written to `operations/{id}.json` on every state change, so a
restarted trainer still answers for finished runs. Runs that were in flight when it stopped
become FAILED unless the executor reattaches to them (the local one cannot: its worker died with
the trainer; the Kubernetes one finds its Jobs again).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import grpc

from labelloop.core import layout, metrics, names, tables
from labelloop.core.errors import FailedPrecondition, InvalidArgument, LabelLoopError, NotFound
from labelloop.core.storage import ObjectStore
from labelloop.trainer import embeddings, hparams, newdata
from labelloop.trainer import operations as ops
from labelloop.trainer.catalog import Catalog, DatasetInfo
from labelloop.trainer.contract import JobKind, JobSpec, JobState
from labelloop.trainer.executors.base import Executor
from labelloop.trainer.labels import override_labels_key
from labelloop.trainer.operations import OperationRecord

log = logging.getLogger(__name__)
_POLL_SECONDS = 0.1  # for executors that cannot tell of changes (Kubernetes: its status() caches)
# With an executor that tells of every change: a full resync this often, a safety net only.
RESYNC_SECONDS = 30.0


class Trainer:
    def __init__(
        self,
        store: ObjectStore,
        catalog: Catalog,
        executor: Executor,
        poll_seconds: float = _POLL_SECONDS,
        resync_seconds: float = RESYNC_SECONDS,
    ):
        self.store, self.catalog, self.executor = store, catalog, executor
        self._cond = threading.Condition()
        self._ops: dict[str, OperationRecord] = {}
        self._by_request: dict[str, str] = {}
        self._closed = False
        self._changed: set[str] = set()  # operations whose executor status changed since the last sync
        self._recover()
        # An executor that tells of changes is read only when it does (plus a rare resync, in case);
        # the others are polled every poll_seconds.
        pushes = executor.on_change(self._executor_changed)
        self._tracker = threading.Thread(
            target=self._track,
            args=(resync_seconds if pushes else poll_seconds, pushes),
            name="trainer-track",
            daemon=True,
        )
        self._tracker.start()

    # Runs ---------------------------------------------------------------------------------------

    def create_training_run(
        self,
        snapshot: str,
        config: dict[str, Any],
        output_uri: str = "",
        labels: dict[str, str] | None = None,
        request_id: str = "",
        labels_uri: str = "",
        pool_embeddings: bool = True,
    ) -> OperationRecord:
        """config is TrainerConfig as produced by hparams.config_to_dict (already validated).
        labels_uri: other labels for the snapshot's examples to fit on (trainer/labels.py).
        pool_embeddings: also write the pool's embeddings (False: the caller's selection needs none)."""
        if existing := self._existing(request_id):
            return existing
        dataset, snap = self.catalog.dataset_and_snapshot(snapshot)
        labels_key = snap.labels_key
        if labels_uri:
            labels_key = override_labels_key(self.store, snapshot, snap.labels_key, labels_uri)
        self._check_labels(snapshot, labels_key, dataset)
        if config.get("mode") == hparams.LINEAR_PROBE:
            embeddings.check_backbone(config, bool(dataset.image_column))
        return self._submit(
            JobKind.TRAIN,
            request_id,
            output_uri,
            labels,
            dataset,
            config=config,
            labels_key=labels_key,
            pool_embeddings=pool_embeddings,
        )

    def create_prediction_run(
        self,
        dataset_name: str,
        model_uri: str,
        output_uri: str = "",
        labels: dict[str, str] | None = None,
        request_id: str = "",
        manifest_uri: str = "",
        image_column: str = "",
        id_column: str = "",
    ) -> OperationRecord:
        """Predicts a dataset's pool and test split, or (manifest_uri) the rows of a table of new examples."""
        if existing := self._existing(request_id):
            return existing
        if bool(dataset_name) == bool(manifest_uri):
            raise InvalidArgument(
                "set exactly one of dataset ('datasets/{dataset}') and manifest_uri (a CSV or Parquet file "
                "of new examples in the object store)"
            )
        if dataset_name:
            names.parse(dataset_name, "datasets")
            if image_column or id_column:
                raise InvalidArgument("image_column and id_column go with manifest_uri, not with dataset")
        if not model_uri:
            raise InvalidArgument("model_uri is empty: give the model folder of a finished training run")
        try:
            model_key = self.store.ref_to_key(model_uri).rstrip("/") + "/"
        except InvalidArgument as error:
            raise InvalidArgument(f"model_uri: {error}") from None
        if not any(True for _ in self.store.list(model_key)):
            raise NotFound(f"no saved model under {self.store.uri(model_key)}")
        if manifest_uri:
            return self._predict_manifest(
                model_key, manifest_uri, image_column, id_column, output_uri, labels, request_id
            )
        dataset = self.catalog.dataset(dataset_name)
        return self._submit(JobKind.PREDICT, request_id, output_uri, labels, dataset, model_key=model_key)

    def _predict_manifest(
        self,
        model_key: str,
        manifest_uri: str,
        image_column: str,
        id_column: str,
        output_uri: str,
        labels: dict[str, str] | None,
        request_id: str,
    ) -> OperationRecord:
        try:
            manifest_key = self.store.ref_to_key(manifest_uri)
        except InvalidArgument as error:
            raise InvalidArgument(f"manifest_uri: {error}; upload the manifest to this store") from None
        card = newdata.check_request(self.store, model_key, manifest_key, image_column, id_column)
        rows = DatasetInfo(
            name=card.dataset,
            classes=card.classes,
            examples_key=manifest_key,
            image_column=image_column or card.image_column,
            feature_columns=card.feature_columns,
        )
        return self._submit(
            JobKind.PREDICT_NEW,
            request_id,
            output_uri,
            labels,
            rows,
            model_key=model_key,
            id_column=id_column,
        )

    def create_embedding_run(
        self,
        dataset_name: str,
        config: dict[str, Any],
        output_uri: str = "",
        labels: dict[str, str] | None = None,
        request_id: str = "",
    ) -> OperationRecord:
        """Embeds the dataset's pool with the configured backbone alone (no labels); cached per dataset."""
        if existing := self._existing(request_id):
            return existing
        names.parse(dataset_name, "datasets")
        dataset = self.catalog.dataset(dataset_name)
        if not dataset.image_column and not dataset.feature_columns:
            raise FailedPrecondition(f"{dataset_name} has no image column nor feature columns to embed")
        embeddings.check_backbone(config, bool(dataset.image_column))
        return self._submit(JobKind.EMBED, request_id, output_uri, labels, dataset, config=config)

    def _existing(self, request_id: str) -> OperationRecord | None:
        with self._cond:
            op_id = self._by_request.get(request_id) if request_id else None
            return replace(self._ops[op_id]) if op_id else None

    def _check_labels(self, snapshot: str, labels_key: str, dataset: DatasetInfo) -> None:
        try:
            column = tables.read_arrow(self.store.get_bytes(labels_key), ["label"]).column("label")
        except NotFound:
            raise NotFound(
                f"snapshot {snapshot} has no labels ({self.store.uri(labels_key)} is missing)"
            ) from None
        present = {str(label) for label in column.drop_null().unique().to_pylist()}
        if len(column) == 0:
            raise FailedPrecondition(
                f"snapshot {snapshot} has no labeled examples: label some, then snapshot again"
            )
        if len(present) < 2:
            raise FailedPrecondition(
                f"snapshot {snapshot} has labels of only {sorted(present)}: a classifier needs at least 2 "
                "classes; label examples of another class, then snapshot again"
            )
        unknown = sorted(present - set(dataset.classes))
        if unknown:
            raise FailedPrecondition(
                f"snapshot {snapshot} has labels {unknown[:5]} outside the dataset classes"
            )

    def _output_prefix(self, output_uri: str, op_id: str) -> str:
        if not output_uri:
            return f"runs/{op_id}/"
        try:
            key = self.store.ref_to_key(output_uri)
        except InvalidArgument as error:
            raise InvalidArgument(f"output_uri: {error}; use a folder of this store") from None
        if not key.strip("/") or key.startswith((layout.OPERATIONS_PREFIX, layout.DATASETS_PREFIX)):
            raise InvalidArgument(
                f"output_uri {output_uri!r} must be a folder of its own, not the store root, operations/ "
                "or datasets/ (e.g. 'experiments/e1/rounds/1/')"
            )
        if hasattr(self.store, "path"):
            self.store.path(key)  # LocalStore: InvalidArgument if the key escapes the root
        return key.rstrip("/") + "/"

    def _submit(
        self,
        kind: JobKind,
        request_id: str,
        output_uri: str,
        labels: dict[str, str] | None,
        dataset: DatasetInfo,
        **spec_fields: Any,
    ) -> OperationRecord:
        op_id = names.new_id("op-")
        spec = JobSpec(
            job_id=op_id,
            kind=kind,
            examples_key=dataset.examples_key,
            output_prefix=self._output_prefix(output_uri, op_id),
            classes=dataset.classes,
            image_column=dataset.image_column,
            feature_columns=dataset.feature_columns,
            label_column=dataset.label_column,
            labels=dict(labels or {}),
            dataset=dataset.name,
            **spec_fields,
        )
        if len(dataset.classes) < 2:
            raise FailedPrecondition(
                f"{dataset.name} has {len(dataset.classes)} classes; a classifier needs 2+"
            )
        record = OperationRecord(
            id=op_id, kind=str(kind), request_id=request_id, labels=dict(labels or {}), spec=spec.to_dict()
        )
        with self._cond:
            if existing := self._existing(request_id):  # a concurrent retry won the race
                return existing
            ops.save(self.store, record)
            self._ops[op_id] = record
            if request_id:
                self._by_request[request_id] = op_id
        try:
            self.executor.submit(spec)
        except LabelLoopError as error:
            self._update(
                op_id, state=JobState.FAILED, error_code=error.code.value[0], error_message=str(error)
            )
        except Exception as error:
            msg = f"the executor could not start the job: {error}"
            self._update(
                op_id,
                state=JobState.FAILED,
                error_code=grpc.StatusCode.UNAVAILABLE.value[0],
                error_message=msg,
            )
        self._refresh_active_gauge()
        return self.get(record.name)

    # Operations -------------------------------------------------------------------------------------

    def get(self, name: str) -> OperationRecord:
        op_id = ops.operation_id(name)
        with self._cond:
            if op_id not in self._ops:
                raise ops.not_found(name)
            return replace(self._ops[op_id])

    def list(
        self, filter_text: str = "", page_size: int = 0, page_token: str = ""
    ) -> tuple[list[OperationRecord], str]:
        terms = ops.parse_filter(filter_text)
        with self._cond:
            records = sorted(self._ops.values(), key=lambda r: (r.create_time, r.id))
            chosen = [replace(r) for r in records if ops.matches(r, terms)]
        return ops.page(chosen, page_size, page_token)

    def watch(
        self, name: str, is_active: Any = lambda: True, heartbeat: float = 1.0
    ) -> Iterator[OperationRecord]:
        """Yields the operation now and on every change, until it is done or is_active() is False."""
        record = self.get(name)
        yield record
        op_id, version = record.id, record.version

        def changed() -> bool:
            return self._ops[op_id].version != version or self._closed

        while not record.state.done and not self._closed:
            with self._cond:
                self._cond.wait_for(changed, heartbeat)
                current = replace(self._ops[op_id])
            if not is_active():
                return
            if current.version != version:
                record, version = current, current.version
                yield record

    def cancel(self, name: str) -> OperationRecord:
        record = self.get(name)
        if record.state.done:
            return record
        with contextlib.suppress(NotFound):  # the executor never saw it (or forgot it): nothing to stop
            self.executor.cancel(record.id)
        self._update(record.id, state=JobState.CANCELLED, message="cancelled")
        return self.get(name)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._tracker.join(5)

    # Tracking -----------------------------------------------------------------------------------

    def _update(self, op_id: str, **changes: Any) -> None:
        with self._cond:
            record = self._ops[op_id]
            if record.state.done:
                return  # final states never change (a late executor update after cancel, say)
            for k, v in changes.items():
                setattr(record, k, v)
            record.update_time = time.time()
            snapshot = replace(record, version=record.version + 1)
        if "state" in changes or snapshot.version % 5 == 0:
            ops.save(self.store, snapshot)  # progress is saved now and then, state changes always
        if snapshot.state.done:
            self._record_metrics(snapshot)
            self._refresh_active_gauge()
        with self._cond:  # watchers hear of the change once it is saved and counted
            record.version += 1
            self._cond.notify_all()

    def _record_metrics(self, record: OperationRecord) -> None:
        metrics.TRAINER_RUNS.labels(str(record.state)).inc()
        if record.state == JobState.SUCCEEDED:
            if record.kind == JobKind.TRAIN:
                metrics.TRAINER_FIT_SECONDS.observe(float(record.result.get("fit_seconds") or 0.0))
            if record.kind != JobKind.EMBED:  # an embedding run predicts nothing
                metrics.TRAINER_PREDICT_SECONDS.observe(float(record.result.get("predict_seconds") or 0.0))

    def _refresh_active_gauge(self) -> None:
        with self._cond:
            metrics.TRAINER_ACTIVE.set(sum(not r.state.done for r in self._ops.values()))

    def _executor_changed(self, op_id: str) -> None:
        """The executor's listener: wakes the tracker for this operation (from the executor's thread)."""
        with self._cond:
            self._changed.add(op_id)
            self._cond.notify_all()

    def _track(self, seconds: float, pushes: bool) -> None:
        """Syncs operations with the executor: those it reported changed as soon as it does, every
        active one each `seconds` (the poll of an executor that cannot report, else a rare resync)."""
        resync_at = time.monotonic() + seconds
        while not self._closed:
            with self._cond:
                self._cond.wait_for(
                    lambda: self._closed or bool(self._changed), max(0.0, resync_at - time.monotonic())
                )
                if time.monotonic() >= resync_at or not pushes:
                    chosen = {r.id for r in self._ops.values() if not r.state.done} | self._changed
                    resync_at = time.monotonic() + seconds
                else:
                    chosen = set(self._changed)
                self._changed.clear()
                active = [i for i in chosen if i in self._ops and not self._ops[i].state.done]
            for op_id in active:
                try:
                    self._sync(op_id)
                except Exception:
                    log.exception("syncing operation %s failed", op_id)

    def _sync(self, op_id: str) -> None:
        try:
            status = self.executor.status(op_id)
        except NotFound:
            self._update(
                op_id,
                state=JobState.FAILED,
                error_code=grpc.StatusCode.ABORTED.value[0],
                error_message="the executor lost the job (it restarted?): create the run again",
            )
            return
        with self._cond:
            record = self._ops[op_id]
            same = (record.state, record.progress, record.message) == (
                status.state,
                status.progress,
                status.message,
            )
        if same:
            return
        changes: dict[str, Any] = {
            "state": status.state,
            "progress": status.progress,
            "message": status.message,
        }
        if status.state == JobState.SUCCEEDED:
            changes["result"] = status.result
        if status.state == JobState.FAILED:
            changes["error_code"] = _error_code(status.error)
            changes["error_message"] = status.error or "the job failed"
        if status.state == record.state:
            changes.pop("state")  # progress only: saved now and then, not on every tick
        self._update(op_id, **changes)

    def _recover(self) -> None:
        """Loads persisted operations; in-flight ones fail unless the executor reattaches to them."""
        for record in ops.load_all(self.store):
            self._ops[record.id] = record
            if record.request_id:
                self._by_request[record.request_id] = record.id
            if not record.state.done and not self._reattach(record):
                record.state = JobState.FAILED
                record.error_code = grpc.StatusCode.ABORTED.value[0]
                record.error_message = (
                    "the trainer restarted while this run was in progress and its executor cannot "
                    "reattach to it: create the run again"
                )
                record.update_time = time.time()
                ops.save(self.store, record)
        self._refresh_active_gauge()

    def _reattach(self, record: OperationRecord) -> bool:
        try:
            spec = JobSpec.from_dict(record.spec)
        except (KeyError, TypeError, ValueError) as error:  # a record without (or with an older) spec
            log.warning("operation %s has no usable job spec (%s): cannot reattach", record.id, error)
            return False
        return self.executor.reattach(spec)


def _error_code(error: str) -> int:
    """Jobs report "FailedPrecondition: ..." for domain errors: keep their code, else INTERNAL."""
    from labelloop.core import errors

    cls = getattr(errors, error.split(":", 1)[0].strip(), None)
    if isinstance(cls, type) and issubclass(cls, LabelLoopError):
        return cls.code.value[0]
    return grpc.StatusCode.INTERNAL.value[0]
