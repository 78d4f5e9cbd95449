"""Shared core used by every service: config, storage, gRPC server bootstrap, metrics, logs."""
