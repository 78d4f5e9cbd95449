from labelloop.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SelectBatchRequest(_message.Message):
    __slots__ = ("unlabeled_scores", "labeled_scores", "batch_size", "exclude_example_ids", "allow_relabel", "seed", "max_per_class", "unlabeled_probabilities", "labeled_probabilities", "batch_method", "unlabeled_embeddings", "labeled_embeddings")
    UNLABELED_SCORES_FIELD_NUMBER: _ClassVar[int]
    LABELED_SCORES_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_EXAMPLE_IDS_FIELD_NUMBER: _ClassVar[int]
    ALLOW_RELABEL_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    MAX_PER_CLASS_FIELD_NUMBER: _ClassVar[int]
    UNLABELED_PROBABILITIES_FIELD_NUMBER: _ClassVar[int]
    LABELED_PROBABILITIES_FIELD_NUMBER: _ClassVar[int]
    BATCH_METHOD_FIELD_NUMBER: _ClassVar[int]
    UNLABELED_EMBEDDINGS_FIELD_NUMBER: _ClassVar[int]
    LABELED_EMBEDDINGS_FIELD_NUMBER: _ClassVar[int]
    unlabeled_scores: _common_pb2.ArrayRef
    labeled_scores: _common_pb2.ArrayRef
    batch_size: int
    exclude_example_ids: _containers.RepeatedScalarFieldContainer[str]
    allow_relabel: bool
    seed: int
    max_per_class: int
    unlabeled_probabilities: _common_pb2.ArrayRef
    labeled_probabilities: _common_pb2.ArrayRef
    batch_method: _common_pb2.BatchMethod
    unlabeled_embeddings: _common_pb2.ArrayRef
    labeled_embeddings: _common_pb2.ArrayRef
    def __init__(self, unlabeled_scores: _Optional[_Union[_common_pb2.ArrayRef, _Mapping]] = ..., labeled_scores: _Optional[_Union[_common_pb2.ArrayRef, _Mapping]] = ..., batch_size: _Optional[int] = ..., exclude_example_ids: _Optional[_Iterable[str]] = ..., allow_relabel: _Optional[bool] = ..., seed: _Optional[int] = ..., max_per_class: _Optional[int] = ..., unlabeled_probabilities: _Optional[_Union[_common_pb2.ArrayRef, _Mapping]] = ..., labeled_probabilities: _Optional[_Union[_common_pb2.ArrayRef, _Mapping]] = ..., batch_method: _Optional[_Union[_common_pb2.BatchMethod, str]] = ..., unlabeled_embeddings: _Optional[_Union[_common_pb2.ArrayRef, _Mapping]] = ..., labeled_embeddings: _Optional[_Union[_common_pb2.ArrayRef, _Mapping]] = ...) -> None: ...

class SelectedExample(_message.Message):
    __slots__ = ("example_id", "score", "relabel", "predicted_class")
    EXAMPLE_ID_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    RELABEL_FIELD_NUMBER: _ClassVar[int]
    PREDICTED_CLASS_FIELD_NUMBER: _ClassVar[int]
    example_id: str
    score: float
    relabel: bool
    predicted_class: int
    def __init__(self, example_id: _Optional[str] = ..., score: _Optional[float] = ..., relabel: _Optional[bool] = ..., predicted_class: _Optional[int] = ...) -> None: ...

class SelectBatchResponse(_message.Message):
    __slots__ = ("examples",)
    EXAMPLES_FIELD_NUMBER: _ClassVar[int]
    examples: _containers.RepeatedCompositeFieldContainer[SelectedExample]
    def __init__(self, examples: _Optional[_Iterable[_Union[SelectedExample, _Mapping]]] = ...) -> None: ...
