"""A real Prometheus scrapes the five services during a real experiment and stores what the
controller reports: per-round accuracy and labeled examples, stage durations, labels, gRPC calls.
Every dashboard query then runs against that Prometheus.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from labelloop.cli.local import SERVICES, LocalCluster
from labelloop.client import LabelLoopClient
from labelloop.v1 import experiments_pb2

from tests.observability.catalog import BOUNDED_LABELS
from tests.observability.dashboard import GRAFANA_VARIABLES, load, targets
from tests.observability.jsonlogs import assert_json_lines
from tests.observability.learning_curve import learning_curves, render
from tests.support.cluster import client_for, fast_trainer, ingest_tabular_digits, scrape
from tests.support.prometheus import (
    MISSING,
    PrometheusServer,
    prometheus_binary,
    promtool_binary,
    start_prometheus,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # trains small AutoGluon models

EXPERIMENT = "obs-digits-activelab"
MAX_ROUNDS = 2
BATCH_SIZE = 15
PER_CLASS = 2
LABEL_BUDGET = 200
ROWS = 240
# Labels Prometheus adds to every series, and the histogram bucket label.
SCRAPE_LABELS = {"__name__", "job", "instance", "le"}


@dataclass
class Finished:
    experiment: experiments_pb2.Experiment
    rounds: list[experiments_pb2.Round]
    example_ids: set[str]
    prometheus: PrometheusServer


@pytest.fixture(scope="module")
def prometheus(
    services: LocalCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PrometheusServer]:
    if prometheus_binary() is None:
        pytest.skip(MISSING)
    targets = {service: f"127.0.0.1:{services.ports[service].metrics}" for service in SERVICES}
    server = start_prometheus(tmp_path_factory.mktemp("prometheus"), targets, scrape_interval="1s")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def finished(
    services: LocalCluster, prometheus: PrometheusServer, tmp_path_factory: pytest.TempPathFactory
) -> Finished:
    """A short experiment (tabular digits, numeric MLP), run to the end while Prometheus scrapes."""
    prometheus.wait_for_scrape(time.time())  # scraping before anything happens
    client: LabelLoopClient = client_for(services)
    folder = tmp_path_factory.mktemp("dataset")
    dataset = ingest_tabular_digits(client, folder, "obs-digits", rows=ROWS)
    example_ids = set(pd.read_csv(folder / "manifest.csv")["id"])
    client.create_experiment(
        EXPERIMENT,
        dataset=dataset,
        strategy="activelab",
        per_class=PER_CLASS,
        batch_size=BATCH_SIZE,
        max_rounds=MAX_ROUNDS,
        label_budget=LABEL_BUDGET,
        trainer=fast_trainer(),
        seed=3,
        start=True,
    )
    experiment = client.wait(EXPERIMENT, timeout=600)
    assert experiment.state == experiments_pb2.EXPERIMENT_STATE_SUCCEEDED, experiment.status_message
    rounds = sorted(client.list_rounds(EXPERIMENT), key=lambda r: r.number)
    prometheus.wait_for_scrape(time.time())  # a scrape that began after the experiment ended
    return Finished(experiment, rounds, example_ids, prometheus)


def by_label(prometheus: PrometheusServer, expr: str, label: str) -> dict[str, float]:
    samples = prometheus.query(expr)
    values = {sample["metric"][label]: float(sample["value"][1]) for sample in samples}
    assert len(values) == len(samples), f"{expr}: several series per {label}: {samples}"
    return values


def single(prometheus: PrometheusServer, expr: str) -> float:
    samples = prometheus.query(expr)
    assert len(samples) == 1, f"{expr}: expected one series, got {samples}"
    return float(samples[0]["value"][1])


def test_experiment_ran_several_rounds(finished: Finished) -> None:
    assert [r.number for r in finished.rounds] == list(range(MAX_ROUNDS + 1))
    assert finished.experiment.rounds_completed == MAX_ROUNDS + 1
    assert all(r.test_accuracy > 0 for r in finished.rounds)
    assert finished.rounds[-1].labeled_count > finished.rounds[0].labeled_count


def test_every_round_accuracy_in_prometheus_equals_list_rounds(finished: Finished) -> None:
    selector = f'{{experiment="{EXPERIMENT}"}}'
    accuracy = by_label(finished.prometheus, f"labelloop_round_test_accuracy{selector}", "round")
    labeled = by_label(finished.prometheus, f"labelloop_round_labeled_examples{selector}", "round")
    assert set(accuracy) == set(labeled) == {str(r.number) for r in finished.rounds}
    for round_ in finished.rounds:
        assert accuracy[str(round_.number)] == pytest.approx(round_.test_accuracy, rel=1e-12, abs=0)
        assert labeled[str(round_.number)] == round_.labeled_count


def test_learning_curve_picture_from_prometheus(finished: Finished, tmp_path: Path) -> None:
    """The XY chart's join (labeled examples and accuracy on experiment+round), outside Grafana."""
    curves = learning_curves(finished.prometheus.url, [EXPERIMENT])
    expected = [(r.number, float(r.labeled_count), r.test_accuracy) for r in finished.rounds]
    assert list(curves) == [EXPERIMENT] and len(curves[EXPERIMENT]) == len(expected)
    for point, want in zip(curves[EXPERIMENT], expected, strict=True):
        assert point == pytest.approx(want, rel=1e-12)
    picture = render(curves, tmp_path / "learning-curve.png")
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and picture.stat().st_size > 5000


def test_experiment_gauges_match_the_controller(finished: Finished) -> None:
    experiment, prometheus = finished.experiment, finished.prometheus

    def value(metric: str) -> float:
        return single(prometheus, f'{metric}{{experiment="{EXPERIMENT}"}}')

    assert value("labelloop_experiment_test_accuracy") == pytest.approx(
        experiment.latest_test_accuracy, rel=1e-12
    )
    assert experiment.latest_test_accuracy == finished.rounds[-1].test_accuracy
    assert value("labelloop_experiment_labeled_examples") == experiment.labeled_count
    assert value("labelloop_experiment_rounds_completed") == experiment.rounds_completed
    assert value("labelloop_experiment_label_budget_remaining") == LABEL_BUDGET - experiment.labels_used
    assert value("labelloop_experiment_examples_awaiting_label") == 0
    assert value("labelloop_experiment_running") == 0
    # Every label bought reached the store once: the initial set and one batch per labeling round.
    assert value("labelloop_labels_received_total") == experiment.labels_used
    assert experiment.labels_used == finished.rounds[0].labeled_count + MAX_ROUNDS * BATCH_SIZE


def stage_histogram(finished: Finished) -> tuple[dict[str, float], dict[str, float]]:
    selector = f'{{experiment="{EXPERIMENT}"}}'
    stage = "labelloop_round_stage_duration_seconds"
    counts = by_label(finished.prometheus, f"{stage}_count{selector}", "stage")
    sums = by_label(finished.prometheus, f"{stage}_sum{selector}", "stage")
    return counts, sums


def test_stage_durations_match_the_rounds(finished: Finished) -> None:
    """Each stage's count and total seconds equal the rounds' Round.stage_seconds."""
    counts, sums = stage_histogram(finished)
    assert {"snapshot", "train", "evaluate", "score", "select", "label"} <= set(counts)
    for stage in counts:
        seconds = [r.stage_seconds[stage] for r in finished.rounds if stage in r.stage_seconds]
        assert counts[stage] == len(seconds), stage
        assert sums[stage] == pytest.approx(sum(seconds), rel=1e-9), stage
    # The last round trains and evaluates only.
    assert counts["train"] == MAX_ROUNDS + 1 and counts["label"] == MAX_ROUNDS


def test_time_to_next_batch_is_what_labelers_waited(finished: Finished) -> None:
    """One observation per batch after the first: the round's snapshot to select seconds."""
    selector = f'{{experiment="{EXPERIMENT}"}}'
    name = "labelloop_time_to_next_batch_seconds"
    count = single(finished.prometheus, f"{name}_count{selector}")
    total = single(finished.prometheus, f"{name}_sum{selector}")
    waits = [
        sum(r.stage_seconds[s] for s in ("snapshot", "train", "evaluate", "score", "select"))
        for r in finished.rounds[1:]
        if "select" in r.stage_seconds
    ]
    assert count == len(waits) == MAX_ROUNDS - 1
    assert total == pytest.approx(sum(waits), rel=1e-9)


def test_stage_histogram_has_every_stage_the_issue_names(finished: Finished) -> None:
    """The observability issue: a duration histogram for train, predict, score, select, label,
    evaluate. Rounds report predict seconds (Round.stage_seconds["predict"]); the histogram must too."""
    counts, _ = stage_histogram(finished)
    missing = {"train", "predict", "score", "select", "label", "evaluate"} - set(counts)
    reported = sorted({key for r in finished.rounds for key in r.stage_seconds})
    assert not missing, (
        f"labelloop_round_stage_duration_seconds has no stage {sorted(missing)}; the controller "
        f"records {sorted(counts)} (Round.stage_seconds keys: {reported})"
    )


def test_trainer_scorer_and_grpc_metrics(finished: Finished) -> None:
    prometheus, rounds = finished.prometheus, len(finished.rounds)
    # A service's metrics are on its own target only (even those without labels).
    fits = by_label(prometheus, "labelloop_trainer_fit_seconds_count", "job")
    assert set(fits) == {"trainer"} and fits["trainer"] >= rounds, fits
    assert single(prometheus, 'labelloop_trainer_predict_seconds_count{job="trainer"}') >= rounds
    assert single(prometheus, 'labelloop_trainer_fit_seconds_sum{job="trainer"}') > 0
    assert single(prometheus, 'labelloop_trainer_runs_total{state="succeeded"}') >= rounds
    assert single(prometheus, "sum(labelloop_trainer_active_runs)") == 0
    scored = by_label(prometheus, "labelloop_scorer_examples_scored_total", "strategy")
    assert scored.get("activelab", 0) > 0, scored
    selected = 'labelloop_selector_selected_examples_total{job="selector"}'
    assert single(prometheus, selected) == MAX_ROUNDS * BATCH_SIZE
    assert single(prometheus, 'labelloop_store_examples_ingested_total{job="store"}') == ROWS
    # The interceptor counts each service's own RPCs, on that service's target.
    handled = prometheus.query('sum by (job, grpc_service) (grpc_server_handled_total{grpc_code="OK"})')
    jobs = {(s["metric"]["job"], s["metric"]["grpc_service"]) for s in handled}
    for job, service in [
        ("controller", "labelloop.v1.ExperimentService"),
        ("store", "labelloop.v1.DatasetStoreService"),
        ("trainer", "labelloop.v1.TrainerService"),
        ("scorer", "labelloop.v1.ScorerService"),
        ("selector", "labelloop.v1.SelectorService"),
    ]:
        assert (job, service) in jobs, f"no OK {service} calls on the {job} target: {sorted(jobs)}"
    buckets = 'grpc_server_handling_seconds_bucket{grpc_method="SelectBatch"}'
    latency = prometheus.query(f"histogram_quantile(0.9, sum by (le) ({buckets}))")
    assert len(latency) == 1 and 0 < float(latency[0]["value"][1]) < 60


def test_promtool_accepts_every_live_metrics_page(services: LocalCluster, finished: Finished) -> None:
    """After an experiment every family has real samples in its owner: lint the real pages."""
    promtool = promtool_binary()
    assert promtool is not None  # the prometheus package brings both
    for service in SERVICES:
        page = scrape(services.metrics_url(service))
        result = subprocess.run(
            [promtool, "check", "metrics"], input=page, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, f"{service}: {result.stdout}{result.stderr}"


def test_labels_stay_bounded(finished: Finished) -> None:
    """No series is labelled with an example id; only the allowed label names exist."""
    prometheus = finished.prometheus
    assert len(finished.example_ids) == ROWS
    names = set(prometheus.api("labels", **{"match[]": '{__name__=~"labelloop_.+|grpc_server_.+"}'}))
    assert names <= set(BOUNDED_LABELS) | SCRAPE_LABELS, names - set(BOUNDED_LABELS) - SCRAPE_LABELS
    for name in names - {"__name__"}:
        values = set(prometheus.api(f"label/{name}/values"))
        assert not values & finished.example_ids, f"label {name} holds example ids"
    series = prometheus.query('count({__name__=~"labelloop_.+"})')
    assert float(series[0]["value"][1]) < 500  # families x (experiments, rounds, stages, buckets)


def test_every_dashboard_query_runs(finished: Finished) -> None:
    """Each panel query (Grafana variables filled in) is valid for Prometheus; the experiment,
    learning-curve, stage and label panels show this experiment's data."""
    variables = GRAFANA_VARIABLES | {"$experiment": EXPERIMENT, "$__range": "1h"}
    empty = []
    for panel, target in targets(load()):
        expr = target["expr"]
        for variable, value in variables.items():
            expr = expr.replace(variable, value)
        result = finished.prometheus.query(expr)  # raises on a query error
        if not result:
            empty.append(panel["title"])
    must_show = {
        "Test accuracy (latest round)",
        "Labeled examples",
        "Labels left in budget",
        "Rounds completed",
        "Learning curve: test accuracy vs labeled examples",
        "Rounds",
        "Mean stage duration",
        "Label throughput",
        "Backlog: examples awaiting a label",
        "Requests by method",
    }
    assert not must_show & set(empty), f"panels without data: {sorted(must_show & set(empty))}"


def test_controller_logs_carry_experiment_and_round(services: LocalCluster, finished: Finished) -> None:
    entries = assert_json_lines(services.log_path("controller").read_text(), "controller")
    tagged = [entry for entry in entries if entry.get("experiment") == EXPERIMENT]
    assert tagged, "no controller log line names the experiment"
    rounds = {entry["round"] for entry in tagged if "round" in entry}
    assert rounds and rounds <= {r.number for r in finished.rounds}, rounds


def test_logs_stay_json_lines_through_an_experiment(services: LocalCluster, finished: Finished) -> None:
    """Also while AutoGluon trains: library output must not break the one-JSON-object-per-line log."""
    for service in SERVICES:
        assert_json_lines(services.log_path(service).read_text(), service)
