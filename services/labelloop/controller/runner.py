"""The round state machine of one experiment: its stages, and the loop that runs them in turn.

SNAPSHOT -> TRAIN -> EVALUATE -> (stop?) -> SCORE -> SELECT -> LABEL -> next round. Each step ends
with one commit (round record, then experiment record) and every step is idempotent on replay:
fixed snapshot ids, trainer and annotation request ids, deterministic (seeded) arrays and choices.
Which thread runs the loop, and when, is threads.py's business; the runner sees a RoundContext.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import partial

from labelloop.controller import arrays, held_out
from labelloop.controller.batches import SCORES_ONLY, attach_embeddings, explain_failure
from labelloop.controller.clients import Interrupted, call
from labelloop.controller.cold_start import first_set_ids
from labelloop.controller.consensus import assess_round, report_to_json
from labelloop.controller.context import RoundContext
from labelloop.controller.dataset import DatasetView, fetch_view
from labelloop.controller.ids import derived_seed, initial_labels_request_id, label_request_id, snapshot_id
from labelloop.controller.label_step import batch_predictions, labeling_context, pause_for_labels
from labelloop.controller.labelers import Labeler, LabelRequest, labeler_for
from labelloop.controller.labelers.rules import DeadlinePassed
from labelloop.controller.labelset import LabelSet
from labelloop.controller.operations import await_operation, retry_lost
from labelloop.controller.records import RoundRecord, now, stage_key
from labelloop.controller.stopping import next_batch_size, stop_reason
from labelloop.controller.training import run_seconds, training_request
from labelloop.core import layout, metrics
from labelloop.core.api import TERMINAL_EXPERIMENT_STATES
from labelloop.core.errors import FailedPrecondition, LabelLoopError
from labelloop.core.logs import log_context
from labelloop.v1 import common_pb2, dataset_store_pb2, experiments_pb2, scorer_pb2, selector_pb2, trainer_pb2

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
SUCCEEDED = experiments_pb2.EXPERIMENT_STATE_SUCCEEDED
IN_SAMPLE = experiments_pb2.LABELED_PROBABILITIES_IN_SAMPLE

# The stages whose seconds add up to a round's work time (fit and predict are parts of train).
MAIN_STAGES = tuple(stage_key(s) for s in (SNAPSHOT, TRAIN, EVALUATE, SCORE, SELECT, LABEL))


def run_rounds(context: RoundContext) -> None:
    """Runs steps until the experiment leaves RUNNING; a step that fails fails the experiment."""
    with log_context(context.id):
        try:
            config = experiments_pb2.ExperimentConfig()
            with context.lock:
                config.CopyFrom(context.experiment.config)
            labeler = labeler_for(config)
            view = fetch_view(
                context.stubs.store,
                context.store,
                config.dataset,
                labeler.truth_column,
                retry_seconds=600,
                interrupted=context.interrupted,
            )
            runner = RoundRunner(context, config, view, labeler)
            while True:
                with context.lock:
                    if context.interrupted():
                        return
                    record = runner.current()
                number, stage = record.round.number, record.round.stage
                with log_context(context.id, number), context.running_step(number, stage):
                    runner.steps[stage](record)
        except Interrupted:
            log.info("stopped in the middle of a step; it is replayed on resume")
        except DeadlinePassed as error:  # nothing labeled in time: wait for people, do not fail
            pause_for_labels(context, str(error))
        except LabelLoopError as error:
            fail(context, str(error))
        except Exception as error:
            log.exception("round step crashed")
            fail(context, f"internal error: {type(error).__name__}: {error}")


def fail(context: RoundContext, message: str) -> None:
    log.error("experiment failed: %s", message)
    with context.lock:
        if context.experiment.state in TERMINAL_EXPERIMENT_STATES:
            return
        context.experiment.state = experiments_pb2.EXPERIMENT_STATE_FAILED
        context.experiment.status_message = message
        context.commit()
    metrics.EXPERIMENT_STATE.labels(context.id).set(0)
    metrics.EXPERIMENT_AWAITING.labels(context.id).set(0)


class RoundRunner:
    def __init__(
        self,
        context: RoundContext,
        config: experiments_pb2.ExperimentConfig,
        view: DatasetView,
        labeler: Labeler,
    ):
        self.ctx, self.config, self.view, self.labeler = context, config, view, labeler
        self.id = context.id
        self.experiment = context.experiment  # the live record: change it with the lock held
        self.labels = LabelSet(
            context.stubs.store, context.store, config.dataset, self.id, context.interrupted
        )
        # Per round number: its snapshot and the labeled ids and annotation counts it froze.
        self._snapshots: dict[int, dataset_store_pb2.Snapshot] = {}
        self._snapshot_labels: dict[int, tuple[list[str], dict[str, int]]] = {}
        self.steps: dict[int, Callable[[RoundRecord], None]] = {
            SNAPSHOT: self.snapshot,
            TRAIN: self.train,
            EVALUATE: self.evaluate,
            SCORE: self.score,
            SELECT: self.select,
            LABEL: self.label,
        }

    def current(self) -> RoundRecord:
        """The round to work on; moves on to a new round if the current one is done. Lock held."""
        experiment = self.experiment
        record = self.ctx.round(experiment.current_round)
        if record is not None and record.round.stage == DONE:
            experiment.current_round += 1
            record = self.ctx.round(experiment.current_round)
        if record is None:
            record = RoundRecord.first_step(experiment.name, experiment.current_round)
            self.ctx.commit(record)
        experiment.current_stage = record.round.stage
        return record

    # Shared by the steps ----------------------------------------------------------------------

    def _advance(self, record: RoundRecord, started: float, stage: experiments_pb2.RoundStage) -> None:
        """Records a finished step and moves the round on. Lock held; the caller commits."""
        key = stage_key(record.round.stage)
        seconds = time.perf_counter() - started
        record.round.stage_seconds[key] = seconds
        record.round.stage = stage
        record.round.progress_message = ""
        self.experiment.current_stage = stage
        metrics.STAGE_SECONDS.labels(self.id, key).observe(seconds)

    def _finish_round(self, record: RoundRecord) -> None:
        """Lock held; the caller commits."""
        record.round.end_time.CopyFrom(now())
        # Work time of the round: excludes time paused or with the controller down.
        record.round.seconds = sum(record.round.stage_seconds.get(k, 0.0) for k in MAIN_STAGES)
        self.experiment.rounds_completed = record.round.number + 1
        metrics.EXPERIMENT_ROUNDS.labels(self.id).set(record.round.number + 1)

    def _succeed(self, reason: str) -> None:
        """The experiment is done (unless it was cancelled meanwhile). Lock held; the caller commits."""
        if self.experiment.state in (RUNNING, PAUSED):
            self.experiment.state = SUCCEEDED
            self.experiment.status_message = reason

    def _progress(self, record: RoundRecord, message: str) -> None:
        with self.ctx.lock:
            if record.round.progress_message != message:
                record.round.progress_message = message
                self.ctx.touch()

    def _epoch(self, record: RoundRecord, run: trainer_pb2.Operation) -> None:
        with self.ctx.lock:  # shown with the next progress message, which names the epoch too
            record.round.training_epoch, record.round.training_max_epochs = run.epoch, run.max_epochs

    def _budget_metrics(self) -> None:
        budget = self.config.stopping_rule.label_budget
        if budget:
            metrics.EXPERIMENT_BUDGET_LEFT.labels(self.id).set(budget - self.experiment.labels_used)
        metrics.EXPERIMENT_LABELED.labels(self.id).set(self.experiment.labeled_count)

    def _snapshot_of(self, record: RoundRecord) -> dataset_store_pb2.Snapshot:
        number = record.round.number
        if number not in self._snapshots:
            self._snapshots[number] = self.labels.get_snapshot(record.round.snapshot)
        return self._snapshots[number]

    def _labeled(self, record: RoundRecord) -> tuple[list[str], dict[str, int]]:
        """Labeled ids in labels_multiannotator row order, and annotations per example, at the snapshot."""
        number = record.round.number
        if number not in self._snapshot_labels:
            self._snapshot_labels[number] = self.labels.snapshot_labels(self._snapshot_of(record))
        return self._snapshot_labels[number]

    def _ask_labeler(self, record: RoundRecord, request: LabelRequest) -> int:
        progress = lambda message: self._progress(record, message)  # noqa: E731
        context = labeling_context(self.ctx, record, self.labels, self.view, progress)
        return self.labeler.label(request, context)

    # SNAPSHOT ---------------------------------------------------------------------------------

    def snapshot(self, record: RoundRecord) -> None:
        started = time.perf_counter()
        number = record.round.number
        if number == 0:
            self._initial_labels(record)
        snapshot = self.labels.create_snapshot(snapshot_id(self.id, number))
        self._snapshots[number] = snapshot
        assessed = time.perf_counter()
        report, consensus_labels = assess_round(self.ctx, self.config, self.view.classes, snapshot, number)
        consensus_seconds = time.perf_counter() - assessed
        metrics.STAGE_SECONDS.labels(self.id, "consensus").observe(consensus_seconds)
        with self.ctx.lock:
            record.labeling_report, record.consensus_labels_uri = report_to_json(report), consensus_labels
            record.round.stage_seconds["consensus"] = consensus_seconds  # a part of snapshot, as fit of train
            record.label_wait_started = 0.0  # the initial labels' wait is over
            record.round.labels_awaited = 0
            del record.round.selected_example_ids[:]  # they showed the initial set while it was labeled
            record.round.snapshot = snapshot.name
            record.round.labeled_count = snapshot.labeled_count
            record.annotations_before = snapshot.annotation_count
            self.experiment.labeled_count = snapshot.labeled_count
            self.experiment.labels_used = snapshot.annotation_count
            self._advance(record, started, TRAIN)
            self.ctx.commit(record)
        self._budget_metrics()

    def _initial_labels(self, record: RoundRecord) -> None:
        column = self.labeler.truth_column or self.view.label_column
        ids = first_set_ids(
            self.ctx, self.config, self.view, column, record, lambda message: self._progress(record, message)
        )
        request = LabelRequest(
            ids,
            request_id=initial_labels_request_id(self.id),
            seed=(self.config.seed, 0, 1),
            experiment_seed=self.config.seed,
            round=0,
            first_set=True,
        )
        self._ask_labeler(record, request)

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
            self.ctx.store.uri(layout.round_prefix(self.id, number)),
        )
        request.labels_uri = record.consensus_labels_uri  # CROWDLAB's consensus, if this round has one
        request.skip_pool_embeddings = self.config.batch_method in SCORES_ONLY  # no one would read them
        operation = call(
            self.ctx.stubs.trainer.CreateTrainingRun,
            request,
            what="starting the training run",
            interrupted=self.ctx.interrupted,
        ).operation
        if record.round.training_operation != operation.name:
            with self.ctx.lock:
                record.round.training_operation = operation.name  # so that Cancel can stop it
                self.ctx.commit(record)
        follow = partial(await_operation, self.ctx, operation.name, seen=partial(self._epoch, record))
        done = follow(partial(self._progress, record))
        if done is None or done.state != common_pb2.OPERATION_STATE_SUCCEEDED:

            def next_attempt() -> None:
                record.train_attempt += 1

            retry_lost(self.ctx, record, done, f"training round {number}", record.train_attempt, next_attempt)
            return
        result = done.result
        if list(result.classes) and list(result.classes) != self.view.classes:
            raise FailedPrecondition(
                f"the trainer's class order {list(result.classes)} differs from the dataset's "
                f"{self.view.classes}"
            )
        with self.ctx.lock:
            record.round.model_uri = result.model_uri
            record.round.test_accuracy = result.test_accuracy
            record.set_array("pool", result.pool_probabilities)
            record.set_array("test", result.test_probabilities)
            record.round.stage_seconds["fit"] = result.fit_seconds
            record.round.stage_seconds["predict"] = result.predict_seconds
            if result.HasField("pool_embeddings") and result.pool_embeddings.uri:
                record.set_array("pool_embeddings", result.pool_embeddings)
                record.round.stage_seconds["embed"] = result.embed_seconds
            self._advance(record, started, EVALUATE)
            # The trainer's own split of the train stage, for the stage-duration histogram.
            metrics.STAGE_SECONDS.labels(self.id, "fit").observe(result.fit_seconds)
            metrics.STAGE_SECONDS.labels(self.id, "predict").observe(result.predict_seconds)
            # A replay after a crash only waited for the tail of the run: take the trainer's time.
            record.round.stage_seconds["train"] = max(record.round.stage_seconds["train"], run_seconds(done))
            self.ctx.commit(record)

    # EVALUATE ---------------------------------------------------------------------------------

    def evaluate(self, record: RoundRecord) -> None:
        started = time.perf_counter()
        truth = self.view.truth.get(self.view.label_column)
        test = record.array("test")
        accuracy = record.round.test_accuracy  # the trainer's number when there is no ground truth
        if truth and test is not None and test.uri and test.shape and test.shape[0]:
            accuracy = arrays.accuracy(self.ctx.store, test, truth, self.view.classes)
        number = record.round.number
        metrics.ROUND_TEST_ACCURACY.labels(self.id, str(number)).set(accuracy)
        metrics.ROUND_LABELED.labels(self.id, str(number)).set(record.round.labeled_count)
        metrics.EXPERIMENT_TEST_ACCURACY.labels(self.id).set(accuracy)
        selectable = self.view.pool_count - record.round.labeled_count
        if self.config.allow_relabel:
            selectable += record.round.labeled_count
        rule = self.config.stopping_rule
        reason = stop_reason(rule, number, self.experiment.labels_used, accuracy, selectable)
        with self.ctx.lock:
            record.round.test_accuracy = accuracy
            self.experiment.latest_test_accuracy = accuracy
            if not reason:
                self._advance(record, started, SCORE)
                self.ctx.commit(record)
                return
            self._advance(record, started, DONE)
            self._finish_round(record)
            self._succeed(reason)
            self.ctx.commit(record)
        log.info("experiment done: %s", reason)
        metrics.EXPERIMENT_STATE.labels(self.id).set(0)

    # SCORE ------------------------------------------------------------------------------------

    def score(self, record: RoundRecord) -> None:
        """Hands the scorer the unlabeled rows, the labeled rows and their annotations; the strategy uses
        what it needs (ActiveLab learns annotator quality from the labeled rows, re-labeling scores them)."""
        started = time.perf_counter()
        number = record.round.number
        labeled_ids, _ = self._labeled(record)
        pool = record.array("pool")
        if pool is None:
            raise FailedPrecondition(f"round {number} has no pool probabilities: the trainer wrote none")
        prefix = layout.round_prefix(self.id, number)
        store = self.ctx.store
        split = arrays.split_pool(store, pool, labeled_ids, prefix, with_labeled=bool(labeled_ids))
        request = scorer_pb2.ScoreExamplesRequest(
            strategy=self.config.strategy,
            unlabeled_probabilities=[split.unlabeled],
            output_uri=store.uri(layout.scores_prefix(prefix)),
            seed=derived_seed(self.config.seed, number, 2),
        )
        labeled = split.labeled
        if labeled is not None:  # rows in the order of the snapshot's labels_multiannotator
            if self.config.labeled_probabilities != IN_SAMPLE:
                labeled = self._out_of_sample(record, labeled)
            request.labeled_probabilities.append(labeled)
            request.labels_multiannotator.CopyFrom(
                arrays.annotations_ref(store, self._snapshot_of(record), labeled.example_ids_uri)
            )
        response = call(
            self.ctx.stubs.scorer.ScoreExamples,
            request,
            what="scoring examples",
            timeout=900,
            interrupted=self.ctx.interrupted,
        )
        with self.ctx.lock:
            record.set_array("unlabeled", split.unlabeled)
            if split.labeled is not None:
                record.set_array("labeled", split.labeled)
            if labeled is not None and labeled is not split.labeled:
                record.set_array(held_out.OUT_OF_SAMPLE, labeled)
            record.set_array("unlabeled_scores", response.unlabeled_scores)
            if response.HasField("labeled_scores") and response.labeled_scores.uri:
                record.set_array("labeled_scores", response.labeled_scores)
            self._advance(record, started, SELECT)
            self.ctx.commit(record)

    def _out_of_sample(self, record: RoundRecord, labeled: common_pb2.ArrayRef) -> common_pb2.ArrayRef:
        """The labeled rows as the models that had not trained on them predicted them (held_out.py)."""
        number = record.round.number
        kept = [r.array(held_out.SELECTED) for r in self.ctx.earlier_records(number)]
        prefix = layout.round_prefix(self.id, number)
        selected = [ref for ref in kept if ref is not None]
        ref, replaced = held_out.out_of_sample(self.ctx.store, labeled, selected, prefix, self.ctx.kept_rows)
        log.info("out-of-sample rows for %d of %d labeled examples", replaced, ref.shape[0])
        return ref

    # SELECT -----------------------------------------------------------------------------------

    def select(self, record: RoundRecord) -> None:
        started = time.perf_counter()
        number = record.round.number
        limit = next_batch_size(
            self.config.batch_size, self.config.stopping_rule, self.experiment.labels_used
        )
        labeled_ids, _ = self._labeled(record)
        request = selector_pb2.SelectBatchRequest(
            unlabeled_scores=record.array("unlabeled_scores"),
            batch_size=limit,
            exclude_example_ids=sorted(self._pending(record, set(labeled_ids))),
            allow_relabel=self.config.allow_relabel,
            seed=derived_seed(self.config.seed, number, 3),
            max_per_class=self.config.max_per_class,
        )
        unlabeled, labeled = record.array("unlabeled"), record.array("labeled")
        labeled_scores = record.array("labeled_scores")
        if self.config.allow_relabel and labeled_scores is not None:
            request.labeled_scores.CopyFrom(labeled_scores)
        if self.config.max_per_class and unlabeled is not None:  # the cap counts predicted classes
            request.unlabeled_probabilities.CopyFrom(unlabeled)
            if self.config.allow_relabel and labeled is not None:
                request.labeled_probabilities.CopyFrom(labeled)
        request.batch_method = self.config.batch_method
        prefix = layout.round_prefix(self.id, number)
        if unlabeled is not None:
            attach_embeddings(request, record.array("pool_embeddings"), bool(labeled_ids))
        try:
            response = call(
                self.ctx.stubs.selector.SelectBatch,
                request,
                what="selecting the batch",
                interrupted=self.ctx.interrupted,
            )
        except LabelLoopError as error:
            raise explain_failure(error, request, number) from None
        chosen = [e.example_id for e in response.examples]
        kept = None
        if self.config.labeled_probabilities != IN_SAMPLE and chosen and unlabeled is not None:
            kept = held_out.keep_selected_rows(self.ctx.store, unlabeled, chosen, prefix, self.ctx.kept_rows)
        with self.ctx.lock:
            del record.round.selected_example_ids[:]
            record.round.selected_example_ids.extend(chosen)
            if kept is not None:  # the newly selected examples' out-of-sample rows, for later rounds
                record.set_array(held_out.SELECTED, kept)
            record.relabel_ids = [e.example_id for e in response.examples if e.relabel]
            if chosen:
                self._advance(record, started, LABEL)
            else:  # nothing left to select: this round was the last one
                self._advance(record, started, DONE)
                self._finish_round(record)
                self._succeed("the selector found no examples left to label")
            self.ctx.commit(record)
        metrics.EXPERIMENT_AWAITING.labels(self.id).set(len(chosen))
        if chosen and record.round.number > 0:  # round 0's snapshot also waits for the first labels
            to_batch = sum(record.round.stage_seconds.get(k, 0.0) for k in MAIN_STAGES[:-1])
            metrics.TIME_TO_NEXT_BATCH.labels(self.id).observe(to_batch)

    def _pending(self, record: RoundRecord, labeled: set[str]) -> set[str]:
        """Examples handed to labelers before (earlier rounds' batches and the first labeled set)
        that had no label at the snapshot: people may still label them, so they are not chosen again."""
        earlier = self.ctx.earlier_rounds(record.round.number)
        first = self.ctx.round(0)
        handed_out = {i for r in earlier for i in r.selected_example_ids}
        handed_out.update(first.initial_ids if first is not None else ())
        return handed_out - labeled

    # LABEL ------------------------------------------------------------------------------------

    def label(self, record: RoundRecord) -> None:
        started = time.perf_counter()
        number = record.round.number
        selected = list(record.round.selected_example_ids)
        _, counts_before = self._labeled(record)
        request = LabelRequest(
            selected,
            request_id=label_request_id(self.id, number),
            seed=(self.config.seed, number, 4),
            annotations_before=record.annotations_before,
            counts_before=counts_before,
            relabel=bool(record.relabel_ids),
            experiment_seed=self.config.seed,
            round=number,
            predictions=lambda: batch_predictions(
                self.ctx.store, record, self.experiment.name, self.view.classes, selected
            ),
        )
        labels_used = self._ask_labeler(record, request)
        # labeled_count moves with the next round's snapshot, which counts the log (people may label
        # part of a batch, and late labels of earlier ones): reading the whole log here as well cost a
        # round trip per round that grew with every label.
        with self.ctx.lock:
            experiment = self.experiment
            experiment.labels_used = labels_used
            record.round.labels_awaited = 0
            self._advance(record, started, DONE)
            self._finish_round(record)
            following = RoundRecord.first_step(experiment.name, number + 1)
            experiment.current_round = number + 1
            experiment.current_stage = SNAPSHOT
            self.ctx.commit(record, following)
        metrics.EXPERIMENT_AWAITING.labels(self.id).set(0)
        self._budget_metrics()
