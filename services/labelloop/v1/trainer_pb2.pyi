import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from labelloop.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TrainingMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRAINING_MODE_UNSPECIFIED: _ClassVar[TrainingMode]
    TRAINING_MODE_FINE_TUNE: _ClassVar[TrainingMode]
    TRAINING_MODE_LINEAR_PROBE: _ClassVar[TrainingMode]
TRAINING_MODE_UNSPECIFIED: TrainingMode
TRAINING_MODE_FINE_TUNE: TrainingMode
TRAINING_MODE_LINEAR_PROBE: TrainingMode

class Checkpoint(_message.Message):
    __slots__ = ("key", "source")
    KEY_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    key: str
    source: str
    def __init__(self, key: _Optional[str] = ..., source: _Optional[str] = ...) -> None: ...

class TrainerConfig(_message.Message):
    __slots__ = ("time_limit_seconds", "presets", "hyperparameters", "checkpoints", "num_gpus", "seed", "mode", "fine_tune_from_labels")
    class HyperparametersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TIME_LIMIT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    PRESETS_FIELD_NUMBER: _ClassVar[int]
    HYPERPARAMETERS_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINTS_FIELD_NUMBER: _ClassVar[int]
    NUM_GPUS_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    FINE_TUNE_FROM_LABELS_FIELD_NUMBER: _ClassVar[int]
    time_limit_seconds: float
    presets: str
    hyperparameters: _containers.ScalarMap[str, str]
    checkpoints: _containers.RepeatedCompositeFieldContainer[Checkpoint]
    num_gpus: int
    seed: int
    mode: TrainingMode
    fine_tune_from_labels: int
    def __init__(self, time_limit_seconds: _Optional[float] = ..., presets: _Optional[str] = ..., hyperparameters: _Optional[_Mapping[str, str]] = ..., checkpoints: _Optional[_Iterable[_Union[Checkpoint, _Mapping]]] = ..., num_gpus: _Optional[int] = ..., seed: _Optional[int] = ..., mode: _Optional[_Union[TrainingMode, str]] = ..., fine_tune_from_labels: _Optional[int] = ...) -> None: ...

class RunResult(_message.Message):
    __slots__ = ("model_uri", "pool_probabilities", "test_probabilities", "classes", "fit_seconds", "predict_seconds", "test_accuracy", "pool_embeddings", "embed_seconds", "predictions_uri", "predicted_count")
    MODEL_URI_FIELD_NUMBER: _ClassVar[int]
    POOL_PROBABILITIES_FIELD_NUMBER: _ClassVar[int]
    TEST_PROBABILITIES_FIELD_NUMBER: _ClassVar[int]
    CLASSES_FIELD_NUMBER: _ClassVar[int]
    FIT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    PREDICT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    TEST_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    POOL_EMBEDDINGS_FIELD_NUMBER: _ClassVar[int]
    EMBED_SECONDS_FIELD_NUMBER: _ClassVar[int]
    PREDICTIONS_URI_FIELD_NUMBER: _ClassVar[int]
    PREDICTED_COUNT_FIELD_NUMBER: _ClassVar[int]
    model_uri: str
    pool_probabilities: _common_pb2.ArrayRef
    test_probabilities: _common_pb2.ArrayRef
    classes: _containers.RepeatedScalarFieldContainer[str]
    fit_seconds: float
    predict_seconds: float
    test_accuracy: float
    pool_embeddings: _common_pb2.ArrayRef
    embed_seconds: float
    predictions_uri: str
    predicted_count: int
    def __init__(self, model_uri: _Optional[str] = ..., pool_probabilities: _Optional[_Union[_common_pb2.ArrayRef, _Mapping]] = ..., test_probabilities: _Optional[_Union[_common_pb2.ArrayRef, _Mapping]] = ..., classes: _Optional[_Iterable[str]] = ..., fit_seconds: _Optional[float] = ..., predict_seconds: _Optional[float] = ..., test_accuracy: _Optional[float] = ..., pool_embeddings: _Optional[_Union[_common_pb2.ArrayRef, _Mapping]] = ..., embed_seconds: _Optional[float] = ..., predictions_uri: _Optional[str] = ..., predicted_count: _Optional[int] = ...) -> None: ...

class Operation(_message.Message):
    __slots__ = ("name", "state", "progress", "progress_message", "create_time", "update_time", "error", "result", "labels", "epoch", "max_epochs")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    MAX_EPOCHS_FIELD_NUMBER: _ClassVar[int]
    name: str
    state: _common_pb2.OperationState
    progress: float
    progress_message: str
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    error: _common_pb2.OperationError
    result: RunResult
    labels: _containers.ScalarMap[str, str]
    epoch: int
    max_epochs: int
    def __init__(self, name: _Optional[str] = ..., state: _Optional[_Union[_common_pb2.OperationState, str]] = ..., progress: _Optional[float] = ..., progress_message: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., error: _Optional[_Union[_common_pb2.OperationError, _Mapping]] = ..., result: _Optional[_Union[RunResult, _Mapping]] = ..., labels: _Optional[_Mapping[str, str]] = ..., epoch: _Optional[int] = ..., max_epochs: _Optional[int] = ...) -> None: ...

class CreateTrainingRunRequest(_message.Message):
    __slots__ = ("request_id", "snapshot", "config", "output_uri", "labels", "labels_uri", "skip_pool_embeddings")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_URI_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    LABELS_URI_FIELD_NUMBER: _ClassVar[int]
    SKIP_POOL_EMBEDDINGS_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    snapshot: str
    config: TrainerConfig
    output_uri: str
    labels: _containers.ScalarMap[str, str]
    labels_uri: str
    skip_pool_embeddings: bool
    def __init__(self, request_id: _Optional[str] = ..., snapshot: _Optional[str] = ..., config: _Optional[_Union[TrainerConfig, _Mapping]] = ..., output_uri: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., labels_uri: _Optional[str] = ..., skip_pool_embeddings: _Optional[bool] = ...) -> None: ...

class CreateTrainingRunResponse(_message.Message):
    __slots__ = ("operation",)
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    operation: Operation
    def __init__(self, operation: _Optional[_Union[Operation, _Mapping]] = ...) -> None: ...

class CreatePredictionRunRequest(_message.Message):
    __slots__ = ("request_id", "dataset", "manifest_uri", "model_uri", "output_uri", "labels", "image_column", "id_column")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_URI_FIELD_NUMBER: _ClassVar[int]
    MODEL_URI_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_URI_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    IMAGE_COLUMN_FIELD_NUMBER: _ClassVar[int]
    ID_COLUMN_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    dataset: str
    manifest_uri: str
    model_uri: str
    output_uri: str
    labels: _containers.ScalarMap[str, str]
    image_column: str
    id_column: str
    def __init__(self, request_id: _Optional[str] = ..., dataset: _Optional[str] = ..., manifest_uri: _Optional[str] = ..., model_uri: _Optional[str] = ..., output_uri: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., image_column: _Optional[str] = ..., id_column: _Optional[str] = ...) -> None: ...

class CreatePredictionRunResponse(_message.Message):
    __slots__ = ("operation",)
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    operation: Operation
    def __init__(self, operation: _Optional[_Union[Operation, _Mapping]] = ...) -> None: ...

class CreateEmbeddingRunRequest(_message.Message):
    __slots__ = ("request_id", "dataset", "config", "output_uri", "labels")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_URI_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    dataset: str
    config: TrainerConfig
    output_uri: str
    labels: _containers.ScalarMap[str, str]
    def __init__(self, request_id: _Optional[str] = ..., dataset: _Optional[str] = ..., config: _Optional[_Union[TrainerConfig, _Mapping]] = ..., output_uri: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ...) -> None: ...

class CreateEmbeddingRunResponse(_message.Message):
    __slots__ = ("operation",)
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    operation: Operation
    def __init__(self, operation: _Optional[_Union[Operation, _Mapping]] = ...) -> None: ...

class GetOperationRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetOperationResponse(_message.Message):
    __slots__ = ("operation",)
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    operation: Operation
    def __init__(self, operation: _Optional[_Union[Operation, _Mapping]] = ...) -> None: ...

class ListOperationsRequest(_message.Message):
    __slots__ = ("filter", "page_size", "page_token")
    FILTER_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    filter: str
    page_size: int
    page_token: str
    def __init__(self, filter: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListOperationsResponse(_message.Message):
    __slots__ = ("operations", "next_page_token")
    OPERATIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    operations: _containers.RepeatedCompositeFieldContainer[Operation]
    next_page_token: str
    def __init__(self, operations: _Optional[_Iterable[_Union[Operation, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class WatchOperationRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class WatchOperationResponse(_message.Message):
    __slots__ = ("operation",)
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    operation: Operation
    def __init__(self, operation: _Optional[_Union[Operation, _Mapping]] = ...) -> None: ...

class CancelOperationRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class CancelOperationResponse(_message.Message):
    __slots__ = ("operation",)
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    operation: Operation
    def __init__(self, operation: _Optional[_Union[Operation, _Mapping]] = ...) -> None: ...
