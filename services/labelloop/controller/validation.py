"""Checks of an ExperimentConfig, first on its own, then against the dataset it names.

INVALID_ARGUMENT: the request itself is wrong. FAILED_PRECONDITION: the request is well formed but
the dataset cannot support it (too few pool examples, no ground truth to simulate an oracle with).
"""

from __future__ import annotations

from labelloop.controller.dataset import DatasetView
from labelloop.controller.initial import initial_example_ids
from labelloop.core import names
from labelloop.core.errors import FailedPrecondition, InvalidArgument
from labelloop.v1 import common_pb2, experiments_pb2


def check_config(config: experiments_pb2.ExperimentConfig) -> str:
    """Checks what needs no dataset; returns the dataset id."""
    if not config.dataset:
        raise InvalidArgument("config.dataset is empty: name the dataset as 'datasets/{dataset}'")
    (dataset_id,) = names.parse(config.dataset, "datasets")
    names.check_id(dataset_id, "dataset id")
    if config.strategy == common_pb2.STRATEGY_UNSPECIFIED:
        raise InvalidArgument("config.strategy is unset: choose e.g. STRATEGY_ACTIVELAB or STRATEGY_RANDOM")
    if config.batch_size <= 0:
        raise InvalidArgument(
            f"config.batch_size={config.batch_size}: set how many examples to label per round (> 0)"
        )
    rule = config.stopping_rule
    if rule.max_rounds < 0 or rule.label_budget < 0 or not 0 <= rule.target_accuracy <= 1:
        raise InvalidArgument(
            "config.stopping_rule: max_rounds and label_budget must be >= 0, target_accuracy in [0, 1]"
        )
    if not (rule.max_rounds or rule.label_budget or rule.target_accuracy):
        raise InvalidArgument(
            "config.stopping_rule sets no rule: set max_rounds, label_budget or target_accuracy"
        )
    initial = config.initial_labels
    if initial.per_class < 0:
        raise InvalidArgument(f"config.initial_labels.per_class={initial.per_class} must be >= 0")
    if bool(initial.per_class) == bool(initial.example_ids):
        raise InvalidArgument(
            "config.initial_labels: set exactly one of per_class (random examples per class) or example_ids"
        )
    if config.max_per_class < 0:
        raise InvalidArgument(f"config.max_per_class={config.max_per_class} must be >= 0 (0: no cap)")
    labeler = config.WhichOneof("labeler")
    if labeler is None:
        raise InvalidArgument("config sets no labeler: set simulated_oracle or external_labelers")
    if labeler == "simulated_oracle":
        oracle = config.simulated_oracle
        if not 0 <= oracle.noise_rate < 1:
            raise InvalidArgument(f"simulated_oracle.noise_rate={oracle.noise_rate} must be in [0, 1)")
        if oracle.annotator_count < 0:
            raise InvalidArgument(f"simulated_oracle.annotator_count={oracle.annotator_count} must be >= 0")
    elif config.external_labelers.timeout_seconds < 0:
        raise InvalidArgument("external_labelers.timeout_seconds must be >= 0 (0 waits forever)")
    return dataset_id


def oracle_column(config: experiments_pb2.ExperimentConfig, view: DatasetView) -> str:
    """The ground-truth column the experiment reads ("" when it needs none)."""
    if config.WhichOneof("labeler") == "simulated_oracle" and config.simulated_oracle.label_column:
        return config.simulated_oracle.label_column
    return view.label_column


def check_against_dataset(config: experiments_pb2.ExperimentConfig, view: DatasetView) -> list[str]:
    """Checks the config against the dataset; returns the initial example ids."""
    classes = len(view.classes)
    if config.batch_size > view.pool_count:
        raise FailedPrecondition(
            f"config.batch_size={config.batch_size} exceeds the {view.pool_count} pool examples of "
            f"{view.name}: lower batch_size"
        )
    column = oracle_column(config, view)
    needs_truth = config.WhichOneof("labeler") == "simulated_oracle" or config.initial_labels.per_class
    if needs_truth:
        if not column:
            raise FailedPrecondition(
                f"{view.name} has no ground-truth label column: a simulated oracle and "
                "initial_labels.per_class need one; use external_labelers and initial_labels.example_ids"
            )
        if column not in view.columns:
            raise InvalidArgument(
                f"simulated_oracle.label_column {column!r} is not a column of {view.name}: "
                f"use one of {[c for c in view.columns if c not in ('example_id', 'split')]}"
            )
    per_class = config.initial_labels.per_class
    if per_class and per_class * classes > view.pool_count:
        raise FailedPrecondition(
            f"initial_labels.per_class={per_class} x {classes} classes needs {per_class * classes} "
            f"examples but the pool has {view.pool_count}: lower per_class"
        )
    truth = view.ground_truth(column) if column in view.truth else None
    initial = initial_example_ids(config.initial_labels, view.pool_ids, truth, view.classes, config.seed)
    if len(initial) < classes:
        raise InvalidArgument(
            f"{len(initial)} initial labels for {classes} classes: start with at least one example "
            "per class (more initial_labels.example_ids, or per_class)"
        )
    budget = config.stopping_rule.label_budget
    if budget and budget <= len(initial):
        raise InvalidArgument(
            f"stopping_rule.label_budget={budget} leaves nothing to buy after {len(initial)} initial "
            "labels: raise label_budget"
        )
    return initial
