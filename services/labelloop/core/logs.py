"""Structured JSON-line logs carrying the experiment and round being worked on."""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
import time
from collections.abc import Iterator

_experiment: contextvars.ContextVar[str] = contextvars.ContextVar("experiment", default="")
_round: contextvars.ContextVar[int | None] = contextvars.ContextVar("round", default=None)


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str):
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if experiment := getattr(record, "experiment", "") or _experiment.get():
            entry["experiment"] = experiment
        round_number = getattr(record, "round", None)
        if round_number is None:
            round_number = _round.get()
        if round_number is not None:
            entry["round"] = round_number
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def setup_logging(service: str, level: str = "INFO", fmt: str = "json") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter(service))
    else:
        handler.setFormatter(logging.Formatter(f"%(asctime)s {service} %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Python warnings (e.g. from AutoGluon's imports) become log lines too, not raw stderr text.
    logging.captureWarnings(True)


@contextlib.contextmanager
def log_context(experiment: str = "", round_number: int | None = None) -> Iterator[None]:
    """Tags every log line written inside the block with the experiment and round."""
    experiment_token, round_token = _experiment.set(experiment), _round.set(round_number)
    try:
        yield
    finally:
        _round.reset(round_token)
        _experiment.reset(experiment_token)
