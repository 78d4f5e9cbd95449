"""Checks of an ExperimentConfig, first on its own, then against the dataset it names.

INVALID_ARGUMENT: the request itself is wrong. FAILED_PRECONDITION: the request is well formed but
the dataset cannot support it (too few pool examples, no ground truth to simulate an oracle with).
"""

from __future__ import annotations

from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper

from labelloop.controller.dataset import DatasetView
from labelloop.controller.initial import initial_example_ids, needs_embeddings
from labelloop.controller.labelers import labeler_for
from labelloop.core import names
from labelloop.core.api import defined_values
from labelloop.core.errors import FailedPrecondition, InvalidArgument
from labelloop.core.hparams import check_offline_checkpoints, check_trainer_config, offline_setting
from labelloop.v1 import common_pb2, experiments_pb2, trainer_pb2

MAX_DISPLAY_NAME_LENGTH = 256
MAX_INITIAL_IDS = 100_000
MAX_EXAMPLE_ID_LENGTH = 1024


def check_display_name(display_name: str) -> None:
    if len(display_name) > MAX_DISPLAY_NAME_LENGTH:
        raise InvalidArgument(
            f"display_name is {len(display_name)} characters: at most {MAX_DISPLAY_NAME_LENGTH}"
        )


def check_config(config: experiments_pb2.ExperimentConfig) -> str:
    """Checks what needs no dataset; returns the dataset id."""
    if not config.dataset:
        raise InvalidArgument("config.dataset is empty: name the dataset as 'datasets/{dataset}'")
    (dataset_id,) = names.parse(config.dataset, "datasets")
    names.check_id(dataset_id, "dataset id")
    check_strategy(config.strategy)
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
    check_initial(config.initial_labels)
    if config.max_per_class < 0:
        raise InvalidArgument(f"config.max_per_class={config.max_per_class} must be >= 0 (0: no cap)")
    check_enum(config.batch_method, common_pb2.BatchMethod, "config.batch_method")
    check_enum(
        config.labeled_probabilities, experiments_pb2.LabeledProbabilities, "config.labeled_probabilities"
    )
    check_enum(config.trainer.mode, trainer_pb2.TrainingMode, "config.trainer.mode")
    # The trainer's own checks of its config (hyperparameters, checkpoints), before a label is bought.
    check_trainer_config(config.trainer, "config.trainer")
    # Offline (HF_HUB_OFFLINE or LABELLOOP_OFFLINE in the controller's environment), a hub name would
    # fail in the trainer's first job: refused here with the offline alternatives.
    check_offline_checkpoints(config.trainer, "config.trainer", offline_setting())
    labeler_for(config).check()
    return dataset_id


def check_initial(initial: experiments_pb2.InitialLabels) -> None:
    """Exactly one of per_class, example_ids, count; selection only with count."""
    if len(initial.example_ids) > MAX_INITIAL_IDS:
        raise InvalidArgument(
            f"config.initial_labels.example_ids names {len(initial.example_ids)} examples: at most "
            f"{MAX_INITIAL_IDS}"
        )
    if long := [i for i, e in enumerate(initial.example_ids) if len(e) > MAX_EXAMPLE_ID_LENGTH]:
        raise InvalidArgument(
            f"config.initial_labels.example_ids {long[:10]} are longer than {MAX_EXAMPLE_ID_LENGTH} "
            "characters: no example id is"
        )
    if initial.per_class < 0 or initial.count < 0:
        raise InvalidArgument(
            f"config.initial_labels: per_class={initial.per_class} and count={initial.count} must be >= 0"
        )
    chosen = [
        name
        for name, is_set in (
            ("per_class", initial.per_class > 0),
            ("example_ids", bool(initial.example_ids)),
            ("count", initial.count > 0),
        )
        if is_set
    ]
    if len(chosen) != 1:
        problem = f"sets {' and '.join(chosen)}" if chosen else "sets nothing"
        raise InvalidArgument(
            f"config.initial_labels {problem}: set exactly one of count (this many examples chosen "
            "without labels by selection: typical or random), example_ids (the examples you name) or "
            "per_class (random examples per ground-truth class, to reproduce cleanlab's reference)"
        )
    check_enum(initial.selection, experiments_pb2.InitialSelection, "config.initial_labels.selection")
    if initial.selection and not initial.count:
        raise InvalidArgument(
            "config.initial_labels.selection chooses how `count` examples are picked: set count too"
        )


def check_enum(value: int, enum_type: EnumTypeWrapper, field: str) -> None:
    """0 (unset: the documented default) or a value the API defines."""
    if value == 0 or value in defined_values(enum_type):
        return
    choices = ", ".join(enum_type.Name(v) for v in defined_values(enum_type))
    raise InvalidArgument(f"{field}={value} is not defined: choose one of {choices} (or leave it unset)")


def check_strategy(strategy: int) -> None:
    """Any value the API defines: which inputs a strategy uses is the scorer's business."""
    if strategy in defined_values(common_pb2.Strategy):
        return
    choices = ", ".join(common_pb2.Strategy.Name(v) for v in defined_values(common_pb2.Strategy))
    if strategy == common_pb2.STRATEGY_UNSPECIFIED:
        problem = "config.strategy is unset"
    else:
        problem = f"config.strategy={strategy} is not a strategy"
    raise InvalidArgument(f"{problem}: choose one of {choices}")


def truth_column(config: experiments_pb2.ExperimentConfig, view: DatasetView) -> str:
    """The ground-truth column the experiment reads: its labeler's, else the dataset's label column."""
    return labeler_for(config).truth_column or view.label_column


def check_against_dataset(config: experiments_pb2.ExperimentConfig, view: DatasetView) -> list[str]:
    """Checks the config against the dataset; returns the initial example ids (none yet for a typical
    first set: the trainer's embeddings choose it when the experiment starts)."""
    classes = len(view.classes)
    if config.batch_size > view.pool_count:
        raise FailedPrecondition(
            f"config.batch_size={config.batch_size} exceeds the {view.pool_count} pool examples of "
            f"{view.name}: lower batch_size"
        )
    labeler = labeler_for(config)
    column = labeler.truth_column or view.label_column
    labeler_field = config.WhichOneof("labeler")
    readers = [labeler_field] if labeler.needs_truth else []
    readers += ["initial_labels.per_class"] if config.initial_labels.per_class else []
    if readers:
        if not column:
            raise FailedPrecondition(
                f"{view.name} has no ground-truth label column, which {' and '.join(readers)} need: "
                "use external_labelers and initial_labels.example_ids"
            )
        if column not in view.columns:
            field = f"{labeler_field}.label_column" if labeler.truth_column else "the dataset's label_column"
            raise InvalidArgument(
                f"{field} {column!r} is not a column of {view.name}: "
                f"use one of {[c for c in view.columns if c not in ('example_id', 'split')]}"
            )
    per_class = config.initial_labels.per_class
    if per_class and per_class * classes > view.pool_count:
        raise FailedPrecondition(
            f"initial_labels.per_class={per_class} x {classes} classes needs {per_class * classes} "
            f"examples but the pool has {view.pool_count}: lower per_class"
        )
    truth = view.ground_truth(column) if column in view.truth else None
    initial_labels = config.initial_labels
    if needs_embeddings(initial_labels):  # chosen from the trainer's embeddings once it starts
        initial: list[str] = []
        size = initial_labels.count
        if size > view.pool_count:
            raise FailedPrecondition(
                f"initial_labels.count={size} exceeds the {view.pool_count} pool examples of "
                f"{view.name}: lower count"
            )
    else:
        initial = initial_example_ids(initial_labels, view.pool_ids, truth, view.classes, config.seed)
        size = len(initial)
    if size < classes:
        raise InvalidArgument(
            f"{size} initial labels for {classes} classes: start with at least as many examples as "
            "classes (raise initial_labels.count, or name more example_ids)"
        )
    budget = config.stopping_rule.label_budget
    if budget and budget <= size:
        raise InvalidArgument(
            f"stopping_rule.label_budget={budget} leaves nothing to buy after {size} initial "
            "labels: raise label_budget"
        )
    return initial
