"""Metric names follow Prometheus conventions (checked by promtool) and labels stay bounded."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Gauge, generate_latest

from tests.observability.catalog import (
    BOUNDED_LABELS,
    TABLE_END,
    TABLE_START,
    MetricInfo,
    catalog,
    core_metric_objects,
    markdown_table,
    owner_by_name,
    parse_exposition,
)
from tests.support.prometheus import promtool_binary

# Label names that would mean one series per example, annotation, file or request.
UNBOUNDED_LABEL = re.compile(
    r"example|annotat|item|sample|file|path|uri|url|key|request|trace|user|_id$|^id$"
)

# Metrics the observability issue asks for: name -> (type, labels).
REQUIRED = {
    "labelloop_experiment_test_accuracy": ("gauge", ("experiment",)),
    "labelloop_experiment_labeled_examples": ("gauge", ("experiment",)),
    "labelloop_experiment_label_budget_remaining": ("gauge", ("experiment",)),
    "labelloop_experiment_rounds_completed": ("gauge", ("experiment",)),
    "labelloop_round_stage_duration_seconds": ("histogram", ("experiment", "stage")),
    "labelloop_experiment_examples_awaiting_label": ("gauge", ("experiment",)),
    "labelloop_labels_received_total": ("counter", ("experiment",)),
    "labelloop_round_test_accuracy": ("gauge", ("experiment", "round")),
    "labelloop_round_labeled_examples": ("gauge", ("experiment", "round")),
    "grpc_server_handled_total": ("counter", ("grpc_service", "grpc_method", "grpc_type", "grpc_code")),
    "grpc_server_handling_seconds": ("histogram", ("grpc_service", "grpc_method", "grpc_type")),
    "labelloop_trainer_fit_seconds": ("histogram", ()),
    "labelloop_trainer_predict_seconds": ("histogram", ()),
    "labelloop_scorer_examples_scored_total": ("counter", ("strategy",)),
}
SAMPLE_VALUES = {
    "experiment": "promtool-check",
    "round": "0",
    "stage": "train",
    "state": "succeeded",
    "strategy": "activelab",
    "grpc_service": "labelloop.v1.ExperimentService",
    "grpc_method": "ListRounds",
    "grpc_type": "unary",
    "grpc_code": "OK",
}


@pytest.fixture(scope="module")
def exposition() -> Iterator[str]:
    """The text /metrics serves for the core metrics, with one sample in every labelled family.

    The metric objects are the real ones (module-level in labelloop.core.metrics), registered
    into a registry of their own; the samples added here are removed again afterwards.
    """
    registry = CollectorRegistry(auto_describe=True)
    touched = []
    for info in catalog():
        registry.register(info.metric)
        values = [SAMPLE_VALUES[label] for label in info.labels]
        child = info.metric.labels(*values) if values else info.metric
        if values:
            touched.append((info.metric, values))
        if info.kind == "counter":
            child.inc(0)
        elif info.kind == "gauge":
            child.set(0.5)
        else:
            child.observe(0.5)
    try:
        yield generate_latest(registry).decode()
    finally:
        for metric, values in touched:
            metric.remove(*values)


def run_promtool(text: str) -> subprocess.CompletedProcess[str]:
    promtool = promtool_binary()
    if promtool is None:
        pytest.skip("promtool is missing: `make prometheus-install` (Debian package prometheus)")
    return subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60
    )


def test_catalog_holds_every_core_metric() -> None:
    names = [info.name for info in catalog()]
    assert len(names) == len(core_metric_objects()) == len(set(names))
    assert len(names) >= len(REQUIRED)


def test_promtool_accepts_every_core_metric(exposition: str) -> None:
    exposed = parse_exposition(exposition)
    for info in catalog():  # each family really has a sample in what promtool reads
        sample = info.name + ("_count" if info.kind == "histogram" else "")
        assert sample in exposed.samples, info.name
    result = run_promtool(exposition)
    assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), (
        f"promtool check metrics found problems:\n{result.stdout}{result.stderr}"
    )


def test_promtool_flags_a_badly_named_metric() -> None:
    """The check above can fail: promtool does reject a non-base unit and a counter-like gauge."""
    registry = CollectorRegistry()
    Gauge("labelloop_fit_milliseconds", "Fit time in the wrong unit.", registry=registry).set(1)
    Gauge("labelloop_labels_count", "A gauge named like a histogram part.", registry=registry).set(1)
    result = run_promtool(generate_latest(registry).decode())
    assert result.returncode != 0
    assert 'use base unit "seconds"' in result.stdout + result.stderr
    assert 'labelloop_labels_count non-histogram and non-summary metrics should not have "_count" suffix' in (
        result.stdout + result.stderr
    )


@pytest.mark.parametrize("info", catalog(), ids=lambda info: info.name)
def test_name_follows_conventions(info: MetricInfo) -> None:
    assert re.fullmatch(r"[a-z][a-z0-9_]*", info.name), "snake_case"
    if info.name.startswith("grpc_server_"):
        assert all(label.startswith("grpc_") for label in info.labels)
    else:
        assert info.name.startswith("labelloop_"), "domain metrics carry the labelloop_ prefix"
    assert info.name.endswith("_total") == (info.kind == "counter"), "counters, and only they, end in _total"
    if "second" in info.name or "duration" in info.name:
        assert info.name.endswith("_seconds") and info.kind == "histogram", "durations: _seconds histograms"
    assert not re.search(r"_(milli|micro|nano)?seconds_total$|_ms$|_minutes|_percent", info.name)
    assert info.help.endswith("."), "HELP is a sentence"


@pytest.mark.parametrize("info", catalog(), ids=lambda info: info.name)
def test_registered_by_the_service_its_name_names(info: MetricInfo) -> None:
    """Only the registry of the service that records a metric holds it (every one for gRPC metrics)."""
    assert info.service == owner_by_name(info.name)


@pytest.mark.parametrize("info", catalog(), ids=lambda info: info.name)
def test_label_cardinality_is_bounded(info: MetricInfo) -> None:
    for label in info.labels:
        assert not UNBOUNDED_LABEL.search(label), f"{info.name}{{{label}}} would grow with the data"
        assert label in BOUNDED_LABELS, f"{info.name}{{{label}}}: add it to BOUNDED_LABELS with a reason"


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_required_metric_exists(name: str) -> None:
    by_name = {info.name: info for info in catalog()}
    assert name in by_name, f"{name} is missing from labelloop.core.metrics"
    kind, labels = REQUIRED[name]
    assert (by_name[name].kind, by_name[name].labels) == (kind, labels)


def test_stage_histogram_buckets_cover_seconds_to_an_hour() -> None:
    """Stages take from a fraction of a second (select) to many minutes (train on images)."""
    stage = next(info for info in catalog() if info.name == "labelloop_round_stage_duration_seconds")
    bounds = stage.metric._upper_bounds
    assert bounds[0] <= 0.1 and bounds[-2] >= 3600 and bounds[-1] == float("inf")


def test_docs_metrics_table_is_current() -> None:
    """docs/observability.md holds the table `python -m tests.observability.catalog` prints."""
    docs = (Path(__file__).resolve().parents[2] / "docs/observability.md").read_text()
    start, end = docs.index(TABLE_START), docs.index(TABLE_END) + len(TABLE_END)
    assert docs[start:end] + "\n" == markdown_table(), "regenerate: python -m tests.observability.catalog"
