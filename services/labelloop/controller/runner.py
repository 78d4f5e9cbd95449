"""The round state machine of one experiment, run on its own thread.

SNAPSHOT -> TRAIN -> EVALUATE -> (stop?) -> SCORE -> SELECT -> LABEL -> next round. Each step ends
with one commit (round record, then experiment record) and every step is idempotent on replay:
fixed snapshot ids, trainer and annotation request ids, deterministic (seeded) arrays and choices.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING

from labelloop.controller import arrays, training
from labelloop.controller.clients import Interrupted, call
from labelloop.controller.dataset import DatasetView
from labelloop.controller.initial import initial_example_ids
from labelloop.controller.labelers import oracle_labels
from labelloop.controller.labelset import LabelSet
from labelloop.controller.records import TERMINAL, RoundRecord, now, round_prefix
from labelloop.controller.stopping import next_batch_size, stop_reason
from labelloop.controller.training import is_lost, progress_text, run_seconds, training_request
from labelloop.controller.validation import oracle_column
from labelloop.core import metrics
from labelloop.core.errors import FailedPrecondition, LabelLoopError, NotFound
from labelloop.core.logs import log_context
from labelloop.v1 import (
    common_pb2,
    dataset_store_pb2,
    experiments_pb2,
    scorer_pb2,
    selector_pb2,
    trainer_pb2,
)

if TYPE_CHECKING:
    from labelloop.controller.experiments import Entry, Experiments

log = logging.getLogger(__name__)

SNAPSHOT = experiments_pb2.ROUND_STAGE_SNAPSHOT
TRAIN = experiments_pb2.ROUND_STAGE_TRAIN
EVALUATE = experiments_pb2.ROUND_STAGE_EVALUATE
SCORE = experiments_pb2.ROUND_STAGE_SCORE
SELECT = experiments_pb2.ROUND_STAGE_SELECT
LABEL = experiments_pb2.ROUND_STAGE_LABEL
DONE = experiments_pb2.ROUND_STAGE_DONE
RUNNING = experiments_pb2.EXPERIMENT_STATE_RUNNING
PAUSED = experiments_pb2.EXPERIMENT_STATE_PAUSED
CANCELLED = experiments_pb2.EXPERIMENT_STATE_CANCELLED

MAIN_STAGES = ("snapshot", "train", "evaluate", "score", "select", "label")


class StopRequested(Interrupted):
    """The experiment left RUNNING (paused or cancelled) in the middle of a step."""


def snapshot_id(experiment_id: str, number: int) -> str:
    """The round's snapshot id, "{experiment}-r{n}": snapshots belong to the dataset, which several
    experiments may share."""
    suffix = f"-r{number}"
    if len(experiment_id) + len(suffix) <= 63:
        return experiment_id + suffix
    digest = hashlib.sha1(experiment_id.encode()).hexdigest()[:8]
    return f"{experiment_id[: 63 - len(suffix) - 9]}-{digest}{suffix}"


def derived_seed(seed: int, *parts: int) -> int:
    """A seed per round and purpose, stable across restarts."""
    text = ":".join(str(p) for p in (seed, *parts))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big") >> 1


class RoundRunner:
    def __init__(self, entry: Entry, host: Experiments):
        self.entry, self.host = entry, host
        self.store, self.stubs = host.store, host.stubs
        self.id = entry.id
        self.config = experiments_pb2.ExperimentConfig()
        self.config.CopyFrom(entry.experiment.config)
        self.dataset = self.config.dataset
        self.view: DatasetView | None = None
        self._snapshots: dict[int, dataset_store_pb2.Snapshot] = {}
        self.labels = LabelSet(self.stubs.store, self.store, self.dataset, self.id, self._interrupted)
        self.steps: dict[int, Callable[[RoundRecord], None]] = {
            SNAPSHOT: self.snapshot,
            TRAIN: self.train,
            EVALUATE: self.evaluate,
            SCORE: self.score,
            SELECT: self.select,
            LABEL: self.label,
        }

    # Driver -----------------------------------------------------------------------------------

    def run(self) -> None:
        with log_context(self.id):
            try:
                self.view = self.host.load_view(self.config, retry_seconds=600, interrupted=self._interrupted)
                while True:
                    with self.entry.lock:
                        if self.host.runner_exiting(self.entry):
                            return
                        record = self._current()
                    with log_context(self.id, record.round.number):
                        self.steps[record.round.stage](record)
            except Interrupted:
                log.info("stopped in the middle of a step; it is replayed on resume")
            except LabelLoopError as error:
                self._fail(str(error))
            except Exception as error:
                log.exception("round step crashed")
                self._fail(f"internal error: {type(error).__name__}: {error}")
            finally:
                with self.entry.lock:
                    if self.entry.thread is threading.current_thread():
                        self.entry.thread = None
                        if self.entry.state == RUNNING:  # resumed while this thread was stopping
                            self.host.spawn(self.entry)

    def _current(self) -> RoundRecord:
        """The round to work on; moves on to a new round if the current one is done. Lock held."""
        experiment = self.entry.experiment
        record = self.entry.round(experiment.current_round)
        if record is not None and record.round.stage == DONE:
            experiment.current_round += 1
            record = self.entry.round(experiment.current_round)
        if record is None:
            number = experiment.current_round
            record = RoundRecord(
                round=experiments_pb2.Round(
                    name=f"{experiment.name}/rounds/{number}",
                    number=number,
                    stage=SNAPSHOT,
                    start_time=now(),
                )
            )
            self.entry.commit(record)
        experiment.current_stage = record.round.stage
        return record

    def _interrupted(self) -> bool:
        return self.entry.state != RUNNING

    def _check_cancelled(self) -> None:
        if self.entry.state == CANCELLED:
            raise StopRequested

    def _advance(self, record: RoundRecord, key: str, started: float, stage: int) -> None:
        """Records a finished step and moves the round on. Lock held; the caller commits."""
        seconds = time.perf_counter() - started
        record.round.stage_seconds[key] = seconds
        record.round.stage = stage
        record.round.progress_message = ""
        self.entry.experiment.current_stage = stage
        metrics.STAGE_SECONDS.labels(self.id, key).observe(seconds)

    def _fail(self, message: str) -> None:
        log.error("experiment failed: %s", message)
        with self.entry.lock:
            if self.entry.state in TERMINAL:
                return
            self.entry.experiment.state = experiments_pb2.EXPERIMENT_STATE_FAILED
            self.entry.experiment.status_message = message
            self.entry.commit()
        metrics.EXPERIMENT_STATE.labels(self.id).set(0)
        metrics.EXPERIMENT_AWAITING.labels(self.id).set(0)

    def _progress(self, record: RoundRecord, message: str) -> None:
        with self.entry.lock:
            if record.round.progress_message != message:
                record.round.progress_message = message
                self.entry.touch()

    # SNAPSHOT ---------------------------------------------------------------------------------

    def snapshot(self, record: RoundRecord) -> None:
        started = time.perf_counter()
        number = record.round.number
        if number == 0:
            self._initial_labels(record)
        snapshot = self.labels.create_snapshot(snapshot_id(self.id, number))
        self._snapshots[number] = snapshot
        with self.entry.lock:
            record.label_wait_started = 0.0  # the initial labels' wait is over
            record.round.snapshot = snapshot.name
            record.round.labeled_count = snapshot.labeled_count
            record.annotations_before = snapshot.annotation_count
            self.entry.experiment.labeled_count = snapshot.labeled_count
            self.entry.experiment.labels_used = snapshot.annotation_count
            self._advance(record, "snapshot", started, TRAIN)
            self.entry.commit(record)
        self._budget_metrics()

    def _initial_labels(self, record: RoundRecord) -> None:
        assert self.view is not None
        column = oracle_column(self.config, self.view)
        truth = self.view.truth.get(column)
        ids = initial_example_ids(
            self.config.initial_labels, self.view.pool_ids, truth, self.view.classes, self.config.seed
        )
        if self.config.HasField("simulated_oracle"):
            labels = oracle_labels(
                self.config.simulated_oracle,
                ids,
                self.view.ground_truth(column),
                self.view.classes,
                seed=(self.config.seed, 0, 1),
            )
            self.labels.append(labels, f"{self.id}-initial")
        else:
            self._wait_for_labels(record, ids, {})

    def _snapshot_of(self, record: RoundRecord) -> dataset_store_pb2.Snapshot:
        number = record.round.number
        if number not in self._snapshots:
            self._snapshots[number] = self.labels.get_snapshot(record.round.snapshot)
        return self._snapshots[number]

    def _snapshot_labels(self, record: RoundRecord) -> tuple[list[str], dict[str, int]]:
        return self.labels.snapshot_labels(self._snapshot_of(record))

    # TRAIN ------------------------------------------------------------------------------------

    def train(self, record: RoundRecord) -> None:
        started = time.perf_counter()
        number = record.round.number
        request = training_request(
            self.id,
            number,
            record.train_attempt,
            record.round.snapshot,
            self.config.trainer,
            self.config.seed,
            self.store.uri(round_prefix(self.id, number)),
        )
        operation = call(
            self.stubs.trainer.CreateTrainingRun,
            request,
            what="starting the training run",
            interrupted=self._interrupted,
        ).operation
        if record.round.training_operation != operation.name:
            with self.entry.lock:
                record.round.training_operation = operation.name  # so that Cancel can stop it
                self.entry.commit(record)
        operation = self._await_operation(record, operation.name)
        if operation is None or operation.state != common_pb2.OPERATION_STATE_SUCCEEDED:
            self._training_failed(record, operation)
            return
        result = operation.result
        if list(result.classes) and self.view and list(result.classes) != self.view.classes:
            raise FailedPrecondition(
                f"the trainer's class order {list(result.classes)} differs from the dataset's "
                f"{self.view.classes}"
            )
        with self.entry.lock:
            record.round.model_uri = result.model_uri
            record.round.test_accuracy = result.test_accuracy
            record.set_array("pool", result.pool_probabilities)
            record.set_array("test", result.test_probabilities)
            record.round.stage_seconds["fit"] = result.fit_seconds
            record.round.stage_seconds["predict"] = result.predict_seconds
            self._advance(record, "train", started, EVALUATE)
            # The trainer's own split of the train stage, for the stage-duration histogram.
            metrics.STAGE_SECONDS.labels(self.id, "fit").observe(result.fit_seconds)
            metrics.STAGE_SECONDS.labels(self.id, "predict").observe(result.predict_seconds)
            # A replay after a crash only waited for the tail of the run: take the trainer's time.
            record.round.stage_seconds["train"] = max(
                record.round.stage_seconds["train"], run_seconds(operation)
            )
            self.entry.commit(record)

    def _await_operation(self, record: RoundRecord, name: str) -> trainer_pb2.Operation | None:
        """Polls the operation until it is done; None if the trainer lost it."""
        while True:
            self._check_cancelled()
            try:
                operation = call(
                    self.stubs.trainer.GetOperation,
                    trainer_pb2.GetOperationRequest(name=name),
                    what=f"reading {name}",
                    interrupted=lambda: self.entry.state == CANCELLED,
                ).operation
            except NotFound:
                return None
            if operation.state in training.DONE:
                return operation
            self._progress(record, progress_text(operation))
            time.sleep(self.host.poll_seconds)

    def _training_failed(self, record: RoundRecord, operation: trainer_pb2.Operation | None) -> None:
        self._check_cancelled()
        lost = is_lost(operation)
        why = "the trainer lost the operation" if operation is None else operation.error.message
        if not lost or record.train_attempt + 1 >= training.MAX_TRAIN_ATTEMPTS:
            raise FailedPrecondition(
                f"training round {record.round.number} failed: {why or 'no reason given'} "
                f"(operation {record.round.training_operation})"
            )
        log.warning("training run lost (%s); retrying as attempt %d", why, record.train_attempt + 1)
        with self.entry.lock:
            record.train_attempt += 1
            record.round.progress_message = f"retrying training: {why}"
            self.entry.commit(record)

    # EVALUATE ---------------------------------------------------------------------------------

    def evaluate(self, record: RoundRecord) -> None:
        started = time.perf_counter()
        assert self.view is not None
        truth = self.view.truth.get(self.view.label_column)
        test = record.array("test")
        accuracy = record.round.test_accuracy  # the trainer's number when there is no ground truth
        if truth and test is not None and test.uri and test.shape and test.shape[0]:
            accuracy = arrays.accuracy(self.store, test, truth, self.view.classes)
        number = record.round.number
        metrics.ROUND_TEST_ACCURACY.labels(self.id, str(number)).set(accuracy)
        metrics.ROUND_LABELED.labels(self.id, str(number)).set(record.round.labeled_count)
        metrics.EXPERIMENT_TEST_ACCURACY.labels(self.id).set(accuracy)
        experiment = self.entry.experiment
        selectable = self.view.pool_count - record.round.labeled_count
        if self.config.allow_relabel:
            selectable += record.round.labeled_count
        reason = stop_reason(self.config.stopping_rule, number, experiment.labels_used, accuracy, selectable)
        with self.entry.lock:
            record.round.test_accuracy = accuracy
            experiment.latest_test_accuracy = accuracy
            if not reason:
                self._advance(record, "evaluate", started, SCORE)
                self.entry.commit(record)
                return
            self._advance(record, "evaluate", started, DONE)
            self._finish_round(record)
            if experiment.state in (RUNNING, PAUSED):
                experiment.state = experiments_pb2.EXPERIMENT_STATE_SUCCEEDED
                experiment.status_message = reason
            self.entry.commit(record)
        log.info("experiment done: %s", reason)
        metrics.EXPERIMENT_STATE.labels(self.id).set(0)

    def _finish_round(self, record: RoundRecord) -> None:
        """Lock held; the caller commits."""
        record.round.end_time.CopyFrom(now())
        # Work time of the round: excludes time paused or with the controller down.
        record.round.seconds = sum(record.round.stage_seconds.get(k, 0.0) for k in MAIN_STAGES)
        self.entry.experiment.rounds_completed = record.round.number + 1
        metrics.EXPERIMENT_ROUNDS.labels(self.id).set(record.round.number + 1)

    # SCORE ------------------------------------------------------------------------------------

    def score(self, record: RoundRecord) -> None:
        started = time.perf_counter()
        number = record.round.number
        labeled_ids, _ = self._snapshot_labels(record)
        pool = record.array("pool")
        if pool is None:
            raise FailedPrecondition(f"round {number} has no pool probabilities: the trainer wrote none")
        # ActiveLab also scores unlabeled examples against annotator quality learned on labeled ones.
        with_labeled = self.config.allow_relabel or self.config.strategy == common_pb2.STRATEGY_ACTIVELAB
        prefix = round_prefix(self.id, number)
        split = arrays.split_pool(self.store, pool, labeled_ids, prefix, with_labeled)
        request = scorer_pb2.ScoreExamplesRequest(
            strategy=self.config.strategy,
            unlabeled_probabilities=[split.unlabeled],
            output_uri=self.store.uri(prefix + "scores/"),
            seed=derived_seed(self.config.seed, number, 2),
        )
        if split.labeled is not None:  # rows in the order of the snapshot's labels_multiannotator
            snapshot = self._snapshot_of(record)
            shape, dtype, _ = self.store.array_header(
                self.store.ref_to_key(snapshot.labels_multiannotator_uri)
            )
            request.labeled_probabilities.append(split.labeled)
            request.labels_multiannotator.CopyFrom(
                common_pb2.ArrayRef(
                    uri=snapshot.labels_multiannotator_uri,
                    shape=list(shape),
                    dtype=dtype.name,
                    example_ids_uri=split.labeled.example_ids_uri,
                )
            )
        response = call(
            self.stubs.scorer.ScoreExamples,
            request,
            what="scoring examples",
            timeout=900,
            interrupted=self._interrupted,
        )
        with self.entry.lock:
            record.set_array("unlabeled", split.unlabeled)
            if split.labeled is not None:
                record.set_array("labeled", split.labeled)
            record.set_array("unlabeled_scores", response.unlabeled_scores)
            if response.HasField("labeled_scores") and response.labeled_scores.uri:
                record.set_array("labeled_scores", response.labeled_scores)
            self._advance(record, "score", started, SELECT)
            self.entry.commit(record)

    # SELECT -----------------------------------------------------------------------------------

    def select(self, record: RoundRecord) -> None:
        started = time.perf_counter()
        number = record.round.number
        limit = next_batch_size(
            self.config.batch_size, self.config.stopping_rule, self.entry.experiment.labels_used
        )
        labeled_ids, _ = self._snapshot_labels(record)
        request = selector_pb2.SelectBatchRequest(
            unlabeled_scores=record.array("unlabeled_scores"),
            batch_size=limit,
            exclude_example_ids=sorted(self._pending(record, set(labeled_ids))),
            allow_relabel=self.config.allow_relabel,
            seed=derived_seed(self.config.seed, number, 3),
            max_per_class=self.config.max_per_class,
        )
        if self.config.allow_relabel and record.array("labeled_scores") is not None:
            request.labeled_scores.CopyFrom(record.array("labeled_scores"))
        if self.config.max_per_class:
            request.unlabeled_probabilities.CopyFrom(record.array("unlabeled"))
            if self.config.allow_relabel and record.array("labeled") is not None:
                request.labeled_probabilities.CopyFrom(record.array("labeled"))
        response = call(
            self.stubs.selector.SelectBatch,
            request,
            what="selecting the batch",
            interrupted=self._interrupted,
        )
        chosen = [e.example_id for e in response.examples]
        with self.entry.lock:
            del record.round.selected_example_ids[:]
            record.round.selected_example_ids.extend(chosen)
            record.relabel_ids = [e.example_id for e in response.examples if e.relabel]
            if chosen:
                self._advance(record, "select", started, LABEL)
            else:  # nothing left to select: this round was the last one
                self._advance(record, "select", started, DONE)
                self._finish_round(record)
                if self.entry.state in (RUNNING, PAUSED):
                    self.entry.experiment.state = experiments_pb2.EXPERIMENT_STATE_SUCCEEDED
                    self.entry.experiment.status_message = "the selector found no examples left to label"
            self.entry.commit(record)
        metrics.EXPERIMENT_AWAITING.labels(self.id).set(len(chosen))

    def _pending(self, record: RoundRecord, labeled: set[str]) -> set[str]:
        """Examples selected in earlier rounds that still have no label."""
        with self.entry.lock:
            earlier = [r.round for r in self.entry.rounds[: record.round.number]]
        return {i for r in earlier for i in r.selected_example_ids if i not in labeled}

    # LABEL ------------------------------------------------------------------------------------

    def label(self, record: RoundRecord) -> None:
        started = time.perf_counter()
        assert self.view is not None
        number = record.round.number
        selected = list(record.round.selected_example_ids)
        if self.config.HasField("simulated_oracle"):
            existing = self.labels.annotators_by_example() if record.relabel_ids else {}
            labels = oracle_labels(
                self.config.simulated_oracle,
                selected,
                self.view.ground_truth(oracle_column(self.config, self.view)),
                self.view.classes,
                seed=(self.config.seed, number, 4),
                first_turn=record.annotations_before,
                existing=existing,
            )
            self.labels.append(labels, f"{self.id}-r{number}-label")
            labels_used = record.annotations_before + len(labels)
        else:
            _, before = self._snapshot_labels(record)
            labels_used = self._wait_for_labels(record, selected, before)
        newly_labeled = len(set(selected) - set(record.relabel_ids))
        with self.entry.lock:
            experiment = self.entry.experiment
            experiment.labels_used = labels_used
            experiment.labeled_count = record.round.labeled_count + newly_labeled
            self._advance(record, "label", started, DONE)
            self._finish_round(record)
            following = RoundRecord(
                round=experiments_pb2.Round(
                    name=f"{experiment.name}/rounds/{number + 1}",
                    number=number + 1,
                    stage=SNAPSHOT,
                    start_time=now(),
                )
            )
            experiment.current_round = number + 1
            experiment.current_stage = SNAPSHOT
            self.entry.commit(record, following)
        metrics.EXPERIMENT_AWAITING.labels(self.id).set(0)
        metrics.EXPERIMENT_LABELED.labels(self.id).set(experiment.labeled_count)
        self._budget_metrics()

    def _wait_for_labels(self, record: RoundRecord, ids: list[str], before: dict[str, int]) -> int:
        """Waits until every example in `ids` has one more annotation than in `before`; returns
        the number of annotations in the log then."""
        timeout = self.config.external_labelers.timeout_seconds
        if not record.label_wait_started:
            with self.entry.lock:
                record.label_wait_started = time.time()
                self.entry.commit(record)
        while True:
            annotations = self.labels.annotations()
            counts = Counter(a.example_id for a in annotations)
            missing = [i for i in ids if counts[i] <= before.get(i, 0)]
            metrics.EXPERIMENT_AWAITING.labels(self.id).set(len(missing))
            if not missing:
                return len(annotations)
            waited = time.time() - record.label_wait_started
            if timeout and waited > timeout:
                raise FailedPrecondition(
                    f"labelers gave no label to {len(missing)} of {len(ids)} selected examples within "
                    f"{timeout:g}s (e.g. {missing[:3]}): add them with AppendAnnotations to annotation set "
                    f"{self.id!r}, or raise external_labelers.timeout_seconds (0 waits forever)"
                )
            self._progress(record, f"label: waiting for {len(missing)} of {len(ids)} labels")
            if self._interrupted():
                raise StopRequested
            time.sleep(max(self.host.poll_seconds, 1.0))

    def _budget_metrics(self) -> None:
        budget = self.config.stopping_rule.label_budget
        if budget:
            metrics.EXPERIMENT_BUDGET_LEFT.labels(self.id).set(budget - self.entry.experiment.labels_used)
        metrics.EXPERIMENT_LABELED.labels(self.id).set(self.entry.experiment.labeled_count)
