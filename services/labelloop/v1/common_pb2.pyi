from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class Strategy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STRATEGY_UNSPECIFIED: _ClassVar[Strategy]
    STRATEGY_ACTIVELAB: _ClassVar[Strategy]
    STRATEGY_RANDOM: _ClassVar[Strategy]
    STRATEGY_LEAST_CONFIDENCE: _ClassVar[Strategy]
    STRATEGY_MARGIN: _ClassVar[Strategy]
    STRATEGY_ENTROPY: _ClassVar[Strategy]
    STRATEGY_BUDGET_AWARE: _ClassVar[Strategy]

class BatchMethod(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BATCH_METHOD_UNSPECIFIED: _ClassVar[BatchMethod]
    BATCH_METHOD_LOWEST_SCORES: _ClassVar[BatchMethod]
    BATCH_METHOD_DIVERSE: _ClassVar[BatchMethod]
    BATCH_METHOD_TYPICAL: _ClassVar[BatchMethod]

class OperationState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OPERATION_STATE_UNSPECIFIED: _ClassVar[OperationState]
    OPERATION_STATE_PENDING: _ClassVar[OperationState]
    OPERATION_STATE_RUNNING: _ClassVar[OperationState]
    OPERATION_STATE_SUCCEEDED: _ClassVar[OperationState]
    OPERATION_STATE_FAILED: _ClassVar[OperationState]
    OPERATION_STATE_CANCELLED: _ClassVar[OperationState]
STRATEGY_UNSPECIFIED: Strategy
STRATEGY_ACTIVELAB: Strategy
STRATEGY_RANDOM: Strategy
STRATEGY_LEAST_CONFIDENCE: Strategy
STRATEGY_MARGIN: Strategy
STRATEGY_ENTROPY: Strategy
STRATEGY_BUDGET_AWARE: Strategy
BATCH_METHOD_UNSPECIFIED: BatchMethod
BATCH_METHOD_LOWEST_SCORES: BatchMethod
BATCH_METHOD_DIVERSE: BatchMethod
BATCH_METHOD_TYPICAL: BatchMethod
OPERATION_STATE_UNSPECIFIED: OperationState
OPERATION_STATE_PENDING: OperationState
OPERATION_STATE_RUNNING: OperationState
OPERATION_STATE_SUCCEEDED: OperationState
OPERATION_STATE_FAILED: OperationState
OPERATION_STATE_CANCELLED: OperationState

class ArrayRef(_message.Message):
    __slots__ = ("uri", "shape", "dtype", "example_ids_uri")
    URI_FIELD_NUMBER: _ClassVar[int]
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    EXAMPLE_IDS_URI_FIELD_NUMBER: _ClassVar[int]
    uri: str
    shape: _containers.RepeatedScalarFieldContainer[int]
    dtype: str
    example_ids_uri: str
    def __init__(self, uri: _Optional[str] = ..., shape: _Optional[_Iterable[int]] = ..., dtype: _Optional[str] = ..., example_ids_uri: _Optional[str] = ...) -> None: ...

class OperationError(_message.Message):
    __slots__ = ("code", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: int
    message: str
    def __init__(self, code: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...
