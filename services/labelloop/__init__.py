"""LabelLoop: active learning with AutoML, run as gRPC services."""

__version__ = "0.1.0"
