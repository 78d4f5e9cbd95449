import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TaskState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TASK_STATE_UNSPECIFIED: _ClassVar[TaskState]
    TASK_STATE_OPEN: _ClassVar[TaskState]
    TASK_STATE_LEASED: _ClassVar[TaskState]
    TASK_STATE_DONE: _ClassVar[TaskState]
    TASK_STATE_CLOSED: _ClassVar[TaskState]

class ExportFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EXPORT_FORMAT_UNSPECIFIED: _ClassVar[ExportFormat]
    EXPORT_FORMAT_PARQUET: _ClassVar[ExportFormat]
    EXPORT_FORMAT_CSV: _ClassVar[ExportFormat]
    EXPORT_FORMAT_LABEL_STUDIO_JSON: _ClassVar[ExportFormat]
TASK_STATE_UNSPECIFIED: TaskState
TASK_STATE_OPEN: TaskState
TASK_STATE_LEASED: TaskState
TASK_STATE_DONE: TaskState
TASK_STATE_CLOSED: TaskState
EXPORT_FORMAT_UNSPECIFIED: ExportFormat
EXPORT_FORMAT_PARQUET: ExportFormat
EXPORT_FORMAT_CSV: ExportFormat
EXPORT_FORMAT_LABEL_STUDIO_JSON: ExportFormat

class Prediction(_message.Message):
    __slots__ = ("label", "confidence", "score", "model", "probabilities")
    class ProbabilitiesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    LABEL_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PROBABILITIES_FIELD_NUMBER: _ClassVar[int]
    label: str
    confidence: float
    score: float
    model: str
    probabilities: _containers.ScalarMap[str, float]
    def __init__(self, label: _Optional[str] = ..., confidence: _Optional[float] = ..., score: _Optional[float] = ..., model: _Optional[str] = ..., probabilities: _Optional[_Mapping[str, float]] = ...) -> None: ...

class Task(_message.Message):
    __slots__ = ("name", "example_id", "round", "state", "features", "image_url", "image_url_expire_time", "image_bytes", "prediction", "labels_wanted", "labels_received", "lease_id", "lease_expire_time", "classes")
    class FeaturesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    EXAMPLE_ID_FIELD_NUMBER: _ClassVar[int]
    ROUND_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    IMAGE_URL_FIELD_NUMBER: _ClassVar[int]
    IMAGE_URL_EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    IMAGE_BYTES_FIELD_NUMBER: _ClassVar[int]
    PREDICTION_FIELD_NUMBER: _ClassVar[int]
    LABELS_WANTED_FIELD_NUMBER: _ClassVar[int]
    LABELS_RECEIVED_FIELD_NUMBER: _ClassVar[int]
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    LEASE_EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    CLASSES_FIELD_NUMBER: _ClassVar[int]
    name: str
    example_id: str
    round: int
    state: TaskState
    features: _containers.ScalarMap[str, str]
    image_url: str
    image_url_expire_time: _timestamp_pb2.Timestamp
    image_bytes: bytes
    prediction: Prediction
    labels_wanted: int
    labels_received: int
    lease_id: str
    lease_expire_time: _timestamp_pb2.Timestamp
    classes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., example_id: _Optional[str] = ..., round: _Optional[int] = ..., state: _Optional[_Union[TaskState, str]] = ..., features: _Optional[_Mapping[str, str]] = ..., image_url: _Optional[str] = ..., image_url_expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., image_bytes: _Optional[bytes] = ..., prediction: _Optional[_Union[Prediction, _Mapping]] = ..., labels_wanted: _Optional[int] = ..., labels_received: _Optional[int] = ..., lease_id: _Optional[str] = ..., lease_expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., classes: _Optional[_Iterable[str]] = ...) -> None: ...

class LeaseTasksRequest(_message.Message):
    __slots__ = ("parent", "annotator", "max_tasks", "include_image_bytes")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    ANNOTATOR_FIELD_NUMBER: _ClassVar[int]
    MAX_TASKS_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_IMAGE_BYTES_FIELD_NUMBER: _ClassVar[int]
    parent: str
    annotator: str
    max_tasks: int
    include_image_bytes: bool
    def __init__(self, parent: _Optional[str] = ..., annotator: _Optional[str] = ..., max_tasks: _Optional[int] = ..., include_image_bytes: _Optional[bool] = ...) -> None: ...

class LeaseTasksResponse(_message.Message):
    __slots__ = ("tasks", "labels_awaited")
    TASKS_FIELD_NUMBER: _ClassVar[int]
    LABELS_AWAITED_FIELD_NUMBER: _ClassVar[int]
    tasks: _containers.RepeatedCompositeFieldContainer[Task]
    labels_awaited: int
    def __init__(self, tasks: _Optional[_Iterable[_Union[Task, _Mapping]]] = ..., labels_awaited: _Optional[int] = ...) -> None: ...

class SubmitLabelRequest(_message.Message):
    __slots__ = ("task", "lease_id", "annotator", "label", "request_id")
    TASK_FIELD_NUMBER: _ClassVar[int]
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    ANNOTATOR_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    task: str
    lease_id: str
    annotator: str
    label: str
    request_id: str
    def __init__(self, task: _Optional[str] = ..., lease_id: _Optional[str] = ..., annotator: _Optional[str] = ..., label: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class SubmitLabelResponse(_message.Message):
    __slots__ = ("task",)
    TASK_FIELD_NUMBER: _ClassVar[int]
    task: Task
    def __init__(self, task: _Optional[_Union[Task, _Mapping]] = ...) -> None: ...

class SkipTaskRequest(_message.Message):
    __slots__ = ("task", "lease_id", "annotator", "reason")
    TASK_FIELD_NUMBER: _ClassVar[int]
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    ANNOTATOR_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    task: str
    lease_id: str
    annotator: str
    reason: str
    def __init__(self, task: _Optional[str] = ..., lease_id: _Optional[str] = ..., annotator: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class SkipTaskResponse(_message.Message):
    __slots__ = ("task",)
    TASK_FIELD_NUMBER: _ClassVar[int]
    task: Task
    def __init__(self, task: _Optional[_Union[Task, _Mapping]] = ...) -> None: ...

class ListTasksRequest(_message.Message):
    __slots__ = ("parent", "round", "state", "page_size", "page_token")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    ROUND_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    parent: str
    round: int
    state: TaskState
    page_size: int
    page_token: str
    def __init__(self, parent: _Optional[str] = ..., round: _Optional[int] = ..., state: _Optional[_Union[TaskState, str]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListTasksResponse(_message.Message):
    __slots__ = ("tasks", "next_page_token")
    TASKS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    tasks: _containers.RepeatedCompositeFieldContainer[Task]
    next_page_token: str
    def __init__(self, tasks: _Optional[_Iterable[_Union[Task, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class AnnotatorQuality(_message.Message):
    __slots__ = ("annotator", "quality", "label_count", "agreement_with_consensus")
    ANNOTATOR_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    LABEL_COUNT_FIELD_NUMBER: _ClassVar[int]
    AGREEMENT_WITH_CONSENSUS_FIELD_NUMBER: _ClassVar[int]
    annotator: str
    quality: float
    label_count: int
    agreement_with_consensus: float
    def __init__(self, annotator: _Optional[str] = ..., quality: _Optional[float] = ..., label_count: _Optional[int] = ..., agreement_with_consensus: _Optional[float] = ...) -> None: ...

class LabelingReport(_message.Message):
    __slots__ = ("name", "method", "labeled_count", "annotation_count", "annotator_count", "mean_consensus_quality", "annotators", "consensus_uri")
    NAME_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    LABELED_COUNT_FIELD_NUMBER: _ClassVar[int]
    ANNOTATION_COUNT_FIELD_NUMBER: _ClassVar[int]
    ANNOTATOR_COUNT_FIELD_NUMBER: _ClassVar[int]
    MEAN_CONSENSUS_QUALITY_FIELD_NUMBER: _ClassVar[int]
    ANNOTATORS_FIELD_NUMBER: _ClassVar[int]
    CONSENSUS_URI_FIELD_NUMBER: _ClassVar[int]
    name: str
    method: str
    labeled_count: int
    annotation_count: int
    annotator_count: int
    mean_consensus_quality: float
    annotators: _containers.RepeatedCompositeFieldContainer[AnnotatorQuality]
    consensus_uri: str
    def __init__(self, name: _Optional[str] = ..., method: _Optional[str] = ..., labeled_count: _Optional[int] = ..., annotation_count: _Optional[int] = ..., annotator_count: _Optional[int] = ..., mean_consensus_quality: _Optional[float] = ..., annotators: _Optional[_Iterable[_Union[AnnotatorQuality, _Mapping]]] = ..., consensus_uri: _Optional[str] = ...) -> None: ...

class GetLabelingReportRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetLabelingReportResponse(_message.Message):
    __slots__ = ("report",)
    REPORT_FIELD_NUMBER: _ClassVar[int]
    report: LabelingReport
    def __init__(self, report: _Optional[_Union[LabelingReport, _Mapping]] = ...) -> None: ...

class ExportLabelsRequest(_message.Message):
    __slots__ = ("name", "format")
    NAME_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    name: str
    format: ExportFormat
    def __init__(self, name: _Optional[str] = ..., format: _Optional[_Union[ExportFormat, str]] = ...) -> None: ...

class ExportLabelsResponse(_message.Message):
    __slots__ = ("labels_uri", "annotations_uri", "annotators_uri", "model_uri", "round")
    LABELS_URI_FIELD_NUMBER: _ClassVar[int]
    ANNOTATIONS_URI_FIELD_NUMBER: _ClassVar[int]
    ANNOTATORS_URI_FIELD_NUMBER: _ClassVar[int]
    MODEL_URI_FIELD_NUMBER: _ClassVar[int]
    ROUND_FIELD_NUMBER: _ClassVar[int]
    labels_uri: str
    annotations_uri: str
    annotators_uri: str
    model_uri: str
    round: int
    def __init__(self, labels_uri: _Optional[str] = ..., annotations_uri: _Optional[str] = ..., annotators_uri: _Optional[str] = ..., model_uri: _Optional[str] = ..., round: _Optional[int] = ...) -> None: ...
