import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from labelloop.v1 import common_pb2 as _common_pb2
from labelloop.v1 import trainer_pb2 as _trainer_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ExperimentState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EXPERIMENT_STATE_UNSPECIFIED: _ClassVar[ExperimentState]
    EXPERIMENT_STATE_CREATED: _ClassVar[ExperimentState]
    EXPERIMENT_STATE_RUNNING: _ClassVar[ExperimentState]
    EXPERIMENT_STATE_PAUSED: _ClassVar[ExperimentState]
    EXPERIMENT_STATE_SUCCEEDED: _ClassVar[ExperimentState]
    EXPERIMENT_STATE_FAILED: _ClassVar[ExperimentState]
    EXPERIMENT_STATE_CANCELLED: _ClassVar[ExperimentState]

class FailureKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FAILURE_KIND_UNSPECIFIED: _ClassVar[FailureKind]
    FAILURE_KIND_FAULT: _ClassVar[FailureKind]
    FAILURE_KIND_PERMANENT: _ClassVar[FailureKind]

class RoundStage(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ROUND_STAGE_UNSPECIFIED: _ClassVar[RoundStage]
    ROUND_STAGE_SNAPSHOT: _ClassVar[RoundStage]
    ROUND_STAGE_TRAIN: _ClassVar[RoundStage]
    ROUND_STAGE_EVALUATE: _ClassVar[RoundStage]
    ROUND_STAGE_SCORE: _ClassVar[RoundStage]
    ROUND_STAGE_SELECT: _ClassVar[RoundStage]
    ROUND_STAGE_LABEL: _ClassVar[RoundStage]
    ROUND_STAGE_DONE: _ClassVar[RoundStage]

class InitialSelection(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    INITIAL_SELECTION_UNSPECIFIED: _ClassVar[InitialSelection]
    INITIAL_SELECTION_TYPICAL: _ClassVar[InitialSelection]
    INITIAL_SELECTION_RANDOM: _ClassVar[InitialSelection]

class LabeledProbabilities(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LABELED_PROBABILITIES_UNSPECIFIED: _ClassVar[LabeledProbabilities]
    LABELED_PROBABILITIES_OUT_OF_SAMPLE: _ClassVar[LabeledProbabilities]
    LABELED_PROBABILITIES_IN_SAMPLE: _ClassVar[LabeledProbabilities]
EXPERIMENT_STATE_UNSPECIFIED: ExperimentState
EXPERIMENT_STATE_CREATED: ExperimentState
EXPERIMENT_STATE_RUNNING: ExperimentState
EXPERIMENT_STATE_PAUSED: ExperimentState
EXPERIMENT_STATE_SUCCEEDED: ExperimentState
EXPERIMENT_STATE_FAILED: ExperimentState
EXPERIMENT_STATE_CANCELLED: ExperimentState
FAILURE_KIND_UNSPECIFIED: FailureKind
FAILURE_KIND_FAULT: FailureKind
FAILURE_KIND_PERMANENT: FailureKind
ROUND_STAGE_UNSPECIFIED: RoundStage
ROUND_STAGE_SNAPSHOT: RoundStage
ROUND_STAGE_TRAIN: RoundStage
ROUND_STAGE_EVALUATE: RoundStage
ROUND_STAGE_SCORE: RoundStage
ROUND_STAGE_SELECT: RoundStage
ROUND_STAGE_LABEL: RoundStage
ROUND_STAGE_DONE: RoundStage
INITIAL_SELECTION_UNSPECIFIED: InitialSelection
INITIAL_SELECTION_TYPICAL: InitialSelection
INITIAL_SELECTION_RANDOM: InitialSelection
LABELED_PROBABILITIES_UNSPECIFIED: LabeledProbabilities
LABELED_PROBABILITIES_OUT_OF_SAMPLE: LabeledProbabilities
LABELED_PROBABILITIES_IN_SAMPLE: LabeledProbabilities

class InitialLabels(_message.Message):
    __slots__ = ("per_class", "example_ids", "count", "selection")
    PER_CLASS_FIELD_NUMBER: _ClassVar[int]
    EXAMPLE_IDS_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    SELECTION_FIELD_NUMBER: _ClassVar[int]
    per_class: int
    example_ids: _containers.RepeatedScalarFieldContainer[str]
    count: int
    selection: InitialSelection
    def __init__(self, per_class: _Optional[int] = ..., example_ids: _Optional[_Iterable[str]] = ..., count: _Optional[int] = ..., selection: _Optional[_Union[InitialSelection, str]] = ...) -> None: ...

class StoppingRule(_message.Message):
    __slots__ = ("max_rounds", "label_budget", "target_accuracy")
    MAX_ROUNDS_FIELD_NUMBER: _ClassVar[int]
    LABEL_BUDGET_FIELD_NUMBER: _ClassVar[int]
    TARGET_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    max_rounds: int
    label_budget: int
    target_accuracy: float
    def __init__(self, max_rounds: _Optional[int] = ..., label_budget: _Optional[int] = ..., target_accuracy: _Optional[float] = ...) -> None: ...

class SimulatedOracle(_message.Message):
    __slots__ = ("label_column", "noise_rate", "annotator_count", "annotator_accuracies")
    LABEL_COLUMN_FIELD_NUMBER: _ClassVar[int]
    NOISE_RATE_FIELD_NUMBER: _ClassVar[int]
    ANNOTATOR_COUNT_FIELD_NUMBER: _ClassVar[int]
    ANNOTATOR_ACCURACIES_FIELD_NUMBER: _ClassVar[int]
    label_column: str
    noise_rate: float
    annotator_count: int
    annotator_accuracies: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, label_column: _Optional[str] = ..., noise_rate: _Optional[float] = ..., annotator_count: _Optional[int] = ..., annotator_accuracies: _Optional[_Iterable[float]] = ...) -> None: ...

class ExternalLabelers(_message.Message):
    __slots__ = ("timeout_seconds",)
    TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    timeout_seconds: float
    def __init__(self, timeout_seconds: _Optional[float] = ...) -> None: ...

class LabelingRules(_message.Message):
    __slots__ = ("annotators_per_example", "lease_seconds", "quorum", "deadline_seconds")
    ANNOTATORS_PER_EXAMPLE_FIELD_NUMBER: _ClassVar[int]
    LEASE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    QUORUM_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    annotators_per_example: int
    lease_seconds: float
    quorum: float
    deadline_seconds: float
    def __init__(self, annotators_per_example: _Optional[int] = ..., lease_seconds: _Optional[float] = ..., quorum: _Optional[float] = ..., deadline_seconds: _Optional[float] = ...) -> None: ...

class LabelingQueue(_message.Message):
    __slots__ = ("rules",)
    RULES_FIELD_NUMBER: _ClassVar[int]
    rules: LabelingRules
    def __init__(self, rules: _Optional[_Union[LabelingRules, _Mapping]] = ...) -> None: ...

class LabelStudioProject(_message.Message):
    __slots__ = ("url", "api_token_env", "project_id", "rules", "webhook_url", "reconcile_seconds")
    URL_FIELD_NUMBER: _ClassVar[int]
    API_TOKEN_ENV_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    RULES_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_URL_FIELD_NUMBER: _ClassVar[int]
    RECONCILE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    url: str
    api_token_env: str
    project_id: int
    rules: LabelingRules
    webhook_url: str
    reconcile_seconds: float
    def __init__(self, url: _Optional[str] = ..., api_token_env: _Optional[str] = ..., project_id: _Optional[int] = ..., rules: _Optional[_Union[LabelingRules, _Mapping]] = ..., webhook_url: _Optional[str] = ..., reconcile_seconds: _Optional[float] = ...) -> None: ...

class ExperimentConfig(_message.Message):
    __slots__ = ("dataset", "initial_labels", "strategy", "batch_size", "stopping_rule", "trainer", "simulated_oracle", "external_labelers", "labeling_queue", "label_studio", "allow_relabel", "max_per_class", "seed", "batch_method", "labeled_probabilities")
    DATASET_FIELD_NUMBER: _ClassVar[int]
    INITIAL_LABELS_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    STOPPING_RULE_FIELD_NUMBER: _ClassVar[int]
    TRAINER_FIELD_NUMBER: _ClassVar[int]
    SIMULATED_ORACLE_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_LABELERS_FIELD_NUMBER: _ClassVar[int]
    LABELING_QUEUE_FIELD_NUMBER: _ClassVar[int]
    LABEL_STUDIO_FIELD_NUMBER: _ClassVar[int]
    ALLOW_RELABEL_FIELD_NUMBER: _ClassVar[int]
    MAX_PER_CLASS_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    BATCH_METHOD_FIELD_NUMBER: _ClassVar[int]
    LABELED_PROBABILITIES_FIELD_NUMBER: _ClassVar[int]
    dataset: str
    initial_labels: InitialLabels
    strategy: _common_pb2.Strategy
    batch_size: int
    stopping_rule: StoppingRule
    trainer: _trainer_pb2.TrainerConfig
    simulated_oracle: SimulatedOracle
    external_labelers: ExternalLabelers
    labeling_queue: LabelingQueue
    label_studio: LabelStudioProject
    allow_relabel: bool
    max_per_class: int
    seed: int
    batch_method: _common_pb2.BatchMethod
    labeled_probabilities: LabeledProbabilities
    def __init__(self, dataset: _Optional[str] = ..., initial_labels: _Optional[_Union[InitialLabels, _Mapping]] = ..., strategy: _Optional[_Union[_common_pb2.Strategy, str]] = ..., batch_size: _Optional[int] = ..., stopping_rule: _Optional[_Union[StoppingRule, _Mapping]] = ..., trainer: _Optional[_Union[_trainer_pb2.TrainerConfig, _Mapping]] = ..., simulated_oracle: _Optional[_Union[SimulatedOracle, _Mapping]] = ..., external_labelers: _Optional[_Union[ExternalLabelers, _Mapping]] = ..., labeling_queue: _Optional[_Union[LabelingQueue, _Mapping]] = ..., label_studio: _Optional[_Union[LabelStudioProject, _Mapping]] = ..., allow_relabel: _Optional[bool] = ..., max_per_class: _Optional[int] = ..., seed: _Optional[int] = ..., batch_method: _Optional[_Union[_common_pb2.BatchMethod, str]] = ..., labeled_probabilities: _Optional[_Union[LabeledProbabilities, str]] = ...) -> None: ...

class Experiment(_message.Message):
    __slots__ = ("name", "display_name", "config", "state", "current_round", "current_stage", "labeled_count", "labels_used", "latest_test_accuracy", "rounds_completed", "status_message", "annotation_set", "create_time", "update_time", "failure_kind")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CURRENT_ROUND_FIELD_NUMBER: _ClassVar[int]
    CURRENT_STAGE_FIELD_NUMBER: _ClassVar[int]
    LABELED_COUNT_FIELD_NUMBER: _ClassVar[int]
    LABELS_USED_FIELD_NUMBER: _ClassVar[int]
    LATEST_TEST_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    ROUNDS_COMPLETED_FIELD_NUMBER: _ClassVar[int]
    STATUS_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ANNOTATION_SET_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    FAILURE_KIND_FIELD_NUMBER: _ClassVar[int]
    name: str
    display_name: str
    config: ExperimentConfig
    state: ExperimentState
    current_round: int
    current_stage: RoundStage
    labeled_count: int
    labels_used: int
    latest_test_accuracy: float
    rounds_completed: int
    status_message: str
    annotation_set: str
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    failure_kind: FailureKind
    def __init__(self, name: _Optional[str] = ..., display_name: _Optional[str] = ..., config: _Optional[_Union[ExperimentConfig, _Mapping]] = ..., state: _Optional[_Union[ExperimentState, str]] = ..., current_round: _Optional[int] = ..., current_stage: _Optional[_Union[RoundStage, str]] = ..., labeled_count: _Optional[int] = ..., labels_used: _Optional[int] = ..., latest_test_accuracy: _Optional[float] = ..., rounds_completed: _Optional[int] = ..., status_message: _Optional[str] = ..., annotation_set: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., failure_kind: _Optional[_Union[FailureKind, str]] = ...) -> None: ...

class Round(_message.Message):
    __slots__ = ("name", "number", "stage", "labeled_count", "test_accuracy", "stage_seconds", "seconds", "selected_example_ids", "snapshot", "model_uri", "start_time", "end_time", "training_operation", "progress_message", "labels_awaited", "training_epoch", "training_max_epochs")
    class StageSecondsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    LABELED_COUNT_FIELD_NUMBER: _ClassVar[int]
    TEST_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    STAGE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    SELECTED_EXAMPLE_IDS_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    MODEL_URI_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    TRAINING_OPERATION_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    LABELS_AWAITED_FIELD_NUMBER: _ClassVar[int]
    TRAINING_EPOCH_FIELD_NUMBER: _ClassVar[int]
    TRAINING_MAX_EPOCHS_FIELD_NUMBER: _ClassVar[int]
    name: str
    number: int
    stage: RoundStage
    labeled_count: int
    test_accuracy: float
    stage_seconds: _containers.ScalarMap[str, float]
    seconds: float
    selected_example_ids: _containers.RepeatedScalarFieldContainer[str]
    snapshot: str
    model_uri: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    training_operation: str
    progress_message: str
    labels_awaited: int
    training_epoch: int
    training_max_epochs: int
    def __init__(self, name: _Optional[str] = ..., number: _Optional[int] = ..., stage: _Optional[_Union[RoundStage, str]] = ..., labeled_count: _Optional[int] = ..., test_accuracy: _Optional[float] = ..., stage_seconds: _Optional[_Mapping[str, float]] = ..., seconds: _Optional[float] = ..., selected_example_ids: _Optional[_Iterable[str]] = ..., snapshot: _Optional[str] = ..., model_uri: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., training_operation: _Optional[str] = ..., progress_message: _Optional[str] = ..., labels_awaited: _Optional[int] = ..., training_epoch: _Optional[int] = ..., training_max_epochs: _Optional[int] = ...) -> None: ...

class CreateExperimentRequest(_message.Message):
    __slots__ = ("experiment_id", "display_name", "config", "start")
    EXPERIMENT_ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    experiment_id: str
    display_name: str
    config: ExperimentConfig
    start: bool
    def __init__(self, experiment_id: _Optional[str] = ..., display_name: _Optional[str] = ..., config: _Optional[_Union[ExperimentConfig, _Mapping]] = ..., start: _Optional[bool] = ...) -> None: ...

class CreateExperimentResponse(_message.Message):
    __slots__ = ("experiment",)
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    experiment: Experiment
    def __init__(self, experiment: _Optional[_Union[Experiment, _Mapping]] = ...) -> None: ...

class GetExperimentRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetExperimentResponse(_message.Message):
    __slots__ = ("experiment",)
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    experiment: Experiment
    def __init__(self, experiment: _Optional[_Union[Experiment, _Mapping]] = ...) -> None: ...

class ListExperimentsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListExperimentsResponse(_message.Message):
    __slots__ = ("experiments", "next_page_token")
    EXPERIMENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    experiments: _containers.RepeatedCompositeFieldContainer[Experiment]
    next_page_token: str
    def __init__(self, experiments: _Optional[_Iterable[_Union[Experiment, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class StartExperimentRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class StartExperimentResponse(_message.Message):
    __slots__ = ("experiment",)
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    experiment: Experiment
    def __init__(self, experiment: _Optional[_Union[Experiment, _Mapping]] = ...) -> None: ...

class PauseExperimentRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class PauseExperimentResponse(_message.Message):
    __slots__ = ("experiment",)
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    experiment: Experiment
    def __init__(self, experiment: _Optional[_Union[Experiment, _Mapping]] = ...) -> None: ...

class ResumeExperimentRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ResumeExperimentResponse(_message.Message):
    __slots__ = ("experiment",)
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    experiment: Experiment
    def __init__(self, experiment: _Optional[_Union[Experiment, _Mapping]] = ...) -> None: ...

class CancelExperimentRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class CancelExperimentResponse(_message.Message):
    __slots__ = ("experiment",)
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    experiment: Experiment
    def __init__(self, experiment: _Optional[_Union[Experiment, _Mapping]] = ...) -> None: ...

class DeleteExperimentRequest(_message.Message):
    __slots__ = ("name", "force")
    NAME_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    name: str
    force: bool
    def __init__(self, name: _Optional[str] = ..., force: _Optional[bool] = ...) -> None: ...

class DeleteExperimentResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListRoundsRequest(_message.Message):
    __slots__ = ("parent", "page_size", "page_token")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    parent: str
    page_size: int
    page_token: str
    def __init__(self, parent: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListRoundsResponse(_message.Message):
    __slots__ = ("rounds", "next_page_token")
    ROUNDS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    rounds: _containers.RepeatedCompositeFieldContainer[Round]
    next_page_token: str
    def __init__(self, rounds: _Optional[_Iterable[_Union[Round, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class WatchExperimentRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class WatchExperimentResponse(_message.Message):
    __slots__ = ("experiment", "round")
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    ROUND_FIELD_NUMBER: _ClassVar[int]
    experiment: Experiment
    round: Round
    def __init__(self, experiment: _Optional[_Union[Experiment, _Mapping]] = ..., round: _Optional[_Union[Round, _Mapping]] = ...) -> None: ...
