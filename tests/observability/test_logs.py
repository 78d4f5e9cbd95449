"""Logs are JSON lines (level, service, message) tagged with the experiment and round in progress."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from labelloop.cli.local import SERVICES, LocalCluster
from labelloop.core.config import StorageConfig
from labelloop.core.logs import JsonFormatter, log_context

from tests.observability.jsonlogs import assert_json_lines
from tests.support.cluster import cluster


@pytest.fixture
def capture() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger writing through the services' JSON formatter into a buffer (root stays untouched)."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(JsonFormatter("controller"))
    logger = logging.getLogger("tests.observability.json")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, buffer
    logger.handlers.clear()


def lines(buffer: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def test_log_context_tags_lines_with_experiment_and_round(capture) -> None:
    logger, buffer = capture
    logger.info("before")
    with log_context("exp-a", 0):
        logger.info("round %d starts", 0)
        with log_context("exp-a", 1):
            logger.warning("nested")
        logger.info("back")
    with log_context("exp-b"):
        logger.info("no round yet")
    logger.info("after")
    before, started, nested, back, no_round, after = lines(buffer)
    assert "experiment" not in before and "round" not in before
    assert (started["experiment"], started["round"], started["message"]) == ("exp-a", 0, "round 0 starts")
    assert (nested["round"], nested["level"]) == (1, "WARNING")
    assert (back["experiment"], back["round"]) == ("exp-a", 0), "the inner context is undone"
    assert no_round["experiment"] == "exp-b" and "round" not in no_round
    assert "experiment" not in after and "round" not in after
    for entry in (before, started, nested, back, no_round, after):
        assert entry["service"] == "controller" and entry["logger"] == "tests.observability.json"
        assert entry["time"].endswith("Z")


def test_explicit_fields_and_exceptions(capture) -> None:
    logger, buffer = capture
    with log_context("exp-a", 2):
        logger.info("for another experiment", extra={"experiment": "exp-z", "round": 7})
        try:
            raise ValueError("bad batch")
        except ValueError:
            logger.exception("step failed")
    explicit, failed = lines(buffer)
    assert (explicit["experiment"], explicit["round"]) == ("exp-z", 7)
    assert failed["level"] == "ERROR" and (failed["experiment"], failed["round"]) == ("exp-a", 2)
    assert "ValueError: bad batch" in failed["exception"]


def test_context_is_per_thread(capture) -> None:
    """Worker threads of a gRPC server do not inherit another request's experiment."""
    import threading

    logger, buffer = capture
    with log_context("exp-a", 3):
        thread = threading.Thread(target=lambda: logger.info("other thread"))
        thread.start()
        thread.join()
        logger.info("this thread")
    other, this = lines(buffer)
    assert "experiment" not in other
    assert (this["experiment"], this["round"]) == ("exp-a", 3)


def test_python_warnings_become_json_lines() -> None:
    """Libraries warn through `warnings` (AutoGluon's imports do): those lines are JSON too."""
    code = textwrap.dedent(
        """
        import logging, warnings
        from labelloop.core.logs import log_context, setup_logging

        setup_logging("trainer")
        with log_context("exp-w", 4):
            warnings.warn("pkg_resources is deprecated")
        logging.getLogger("x").info("done")
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    warning, done = assert_json_lines(result.stderr, "trainer")
    assert warning["level"] == "WARNING" and warning["logger"] == "py.warnings"
    assert "UserWarning: pkg_resources is deprecated" in warning["message"]
    assert (warning["experiment"], warning["round"]) == ("exp-w", 4)
    assert done["message"] == "done"


@pytest.mark.integration
def test_a_service_process_logs_only_json_lines_until_it_stops(tmp_path: Path) -> None:
    """A whole life of `python -m labelloop.selector`: start, serve, SIGTERM, exit 0."""
    selector = cluster(
        tmp_path, StorageConfig(backend="local", root=tmp_path / "data"), services=("selector",)
    )
    selector.extra_env["LABELLOOP_LOG_LEVEL"] = "DEBUG"
    with selector:
        port = selector.ports["selector"].grpc
        selector.stop_service("selector")
        assert selector.processes["selector"].returncode == 0
    entries = assert_json_lines(selector.log_path("selector").read_text(), "selector")
    messages = [entry["message"] for entry in entries]
    assert any(f"serving gRPC on port {port}" in message for message in messages), messages
    assert any("received signal 15" in message for message in messages), messages


@pytest.mark.integration
def test_every_running_service_logs_json_lines(services: LocalCluster) -> None:
    for service in SERVICES:
        entries = assert_json_lines(services.log_path(service).read_text(), service)
        assert entries, f"{service} logged nothing"
