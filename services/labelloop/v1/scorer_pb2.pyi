from labelloop.v1 import common_pb2 as _common_pb2
from labelloop.v1 import labeling_pb2 as _labeling_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ScoreExamplesRequest(_message.Message):
    __slots__ = ("strategy", "unlabeled_probabilities", "labeled_probabilities", "labels_multiannotator", "output_uri", "seed", "chunk_size")
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    UNLABELED_PROBABILITIES_FIELD_NUMBER: _ClassVar[int]
    LABELED_PROBABILITIES_FIELD_NUMBER: _ClassVar[int]
    LABELS_MULTIANNOTATOR_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_URI_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    CHUNK_SIZE_FIELD_NUMBER: _ClassVar[int]
    strategy: _common_pb2.Strategy
    unlabeled_probabilities: _containers.RepeatedCompositeFieldContainer[_common_pb2.ArrayRef]
    labeled_probabilities: _containers.RepeatedCompositeFieldContainer[_common_pb2.ArrayRef]
    labels_multiannotator: _common_pb2.ArrayRef
    output_uri: str
    seed: int
    chunk_size: int
    def __init__(self, strategy: _Optional[_Union[_common_pb2.Strategy, str]] = ..., unlabeled_probabilities: _Optional[_Iterable[_Union[_common_pb2.ArrayRef, _Mapping]]] = ..., labeled_probabilities: _Optional[_Iterable[_Union[_common_pb2.ArrayRef, _Mapping]]] = ..., labels_multiannotator: _Optional[_Union[_common_pb2.ArrayRef, _Mapping]] = ..., output_uri: _Optional[str] = ..., seed: _Optional[int] = ..., chunk_size: _Optional[int] = ...) -> None: ...

class ScoreExamplesResponse(_message.Message):
    __slots__ = ("unlabeled_scores", "labeled_scores", "scored_count")
    UNLABELED_SCORES_FIELD_NUMBER: _ClassVar[int]
    LABELED_SCORES_FIELD_NUMBER: _ClassVar[int]
    SCORED_COUNT_FIELD_NUMBER: _ClassVar[int]
    unlabeled_scores: _common_pb2.ArrayRef
    labeled_scores: _common_pb2.ArrayRef
    scored_count: int
    def __init__(self, unlabeled_scores: _Optional[_Union[_common_pb2.ArrayRef, _Mapping]] = ..., labeled_scores: _Optional[_Union[_common_pb2.ArrayRef, _Mapping]] = ..., scored_count: _Optional[int] = ...) -> None: ...

class AssessLabelsRequest(_message.Message):
    __slots__ = ("labels_multiannotator", "labeled_probabilities", "annotators", "classes", "output_uri")
    LABELS_MULTIANNOTATOR_FIELD_NUMBER: _ClassVar[int]
    LABELED_PROBABILITIES_FIELD_NUMBER: _ClassVar[int]
    ANNOTATORS_FIELD_NUMBER: _ClassVar[int]
    CLASSES_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_URI_FIELD_NUMBER: _ClassVar[int]
    labels_multiannotator: _common_pb2.ArrayRef
    labeled_probabilities: _common_pb2.ArrayRef
    annotators: _containers.RepeatedScalarFieldContainer[str]
    classes: _containers.RepeatedScalarFieldContainer[str]
    output_uri: str
    def __init__(self, labels_multiannotator: _Optional[_Union[_common_pb2.ArrayRef, _Mapping]] = ..., labeled_probabilities: _Optional[_Union[_common_pb2.ArrayRef, _Mapping]] = ..., annotators: _Optional[_Iterable[str]] = ..., classes: _Optional[_Iterable[str]] = ..., output_uri: _Optional[str] = ...) -> None: ...

class AssessLabelsResponse(_message.Message):
    __slots__ = ("method", "labeled_count", "annotation_count", "mean_consensus_quality", "annotators", "consensus_uri", "labels_uri", "annotators_uri")
    METHOD_FIELD_NUMBER: _ClassVar[int]
    LABELED_COUNT_FIELD_NUMBER: _ClassVar[int]
    ANNOTATION_COUNT_FIELD_NUMBER: _ClassVar[int]
    MEAN_CONSENSUS_QUALITY_FIELD_NUMBER: _ClassVar[int]
    ANNOTATORS_FIELD_NUMBER: _ClassVar[int]
    CONSENSUS_URI_FIELD_NUMBER: _ClassVar[int]
    LABELS_URI_FIELD_NUMBER: _ClassVar[int]
    ANNOTATORS_URI_FIELD_NUMBER: _ClassVar[int]
    method: str
    labeled_count: int
    annotation_count: int
    mean_consensus_quality: float
    annotators: _containers.RepeatedCompositeFieldContainer[_labeling_pb2.AnnotatorQuality]
    consensus_uri: str
    labels_uri: str
    annotators_uri: str
    def __init__(self, method: _Optional[str] = ..., labeled_count: _Optional[int] = ..., annotation_count: _Optional[int] = ..., mean_consensus_quality: _Optional[float] = ..., annotators: _Optional[_Iterable[_Union[_labeling_pb2.AnnotatorQuality, _Mapping]]] = ..., consensus_uri: _Optional[str] = ..., labels_uri: _Optional[str] = ..., annotators_uri: _Optional[str] = ...) -> None: ...
