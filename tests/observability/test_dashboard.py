"""The Grafana dashboard shipped with the chart queries only metrics the running services expose."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from labelloop.cli.local import SERVICES, LocalCluster

from tests.observability.catalog import EVERY_SERVICE, Exposition, catalog, owner_by_name, parse_exposition
from tests.observability.dashboard import GRAFANA_VARIABLES, all_panels, expressions, load, targets
from tests.observability.promql import FUNCTIONS, analyse, base_name
from tests.support.cluster import scrape
from tests.support.prometheus import promtool_binary


def label_values_metric(query: str) -> tuple[str, str]:
    match = re.fullmatch(r"label_values\(\s*([a-zA-Z_:][\w:]*)(?:\{[^}]*\})?\s*,\s*(\w+)\s*\)", query.strip())
    assert match, f"not a label_values(metric, label) query: {query}"
    return match.group(1), match.group(2)


def metric_names(expr: str) -> set[str]:
    """Metric names of a dashboard expression, label_values() queries included."""
    if expr.strip().startswith("label_values("):
        return {label_values_metric(expr)[0]}
    return analyse(expr).metrics


def test_identity_and_layout() -> None:
    dashboard = load()
    assert dashboard["uid"] == "labelloop" and dashboard["title"] == "LabelLoop"
    assert 36 <= dashboard["schemaVersion"] <= 41
    panels = all_panels(dashboard)
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids)), "panel ids are unique"
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["w"] > 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        assert panel.get("title"), "every panel has a title"


def test_template_variables() -> None:
    variables = {variable["name"]: variable for variable in load()["templating"]["list"]}
    datasource = variables["datasource"]
    assert (datasource["type"], datasource["query"]) == ("datasource", "prometheus")
    experiment = variables["experiment"]
    assert experiment["type"] == "query"
    assert experiment["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
    query = experiment["query"]["query"] if isinstance(experiment["query"], dict) else experiment["query"]
    metric, label = label_values_metric(query)
    assert label == "experiment"
    assert "experiment" in next(info.labels for info in catalog() if info.name == metric)
    assert experiment["multi"] and experiment["includeAll"]


def test_every_query_uses_the_templated_datasource() -> None:
    dashboard = load()
    for panel, target in targets(dashboard):
        expected = {"type": "prometheus", "uid": "${datasource}"}
        assert panel["datasource"] == expected, panel["title"]
        assert target["datasource"] == expected, (panel["title"], target["refId"])
    for panel in all_panels(dashboard):
        assert panel["type"] == "row" or panel.get("targets"), f"{panel['title']} shows nothing"


def test_expressions_use_known_functions_and_name_metrics() -> None:
    for expr in expressions(load()):
        if expr.startswith("label_values("):
            continue
        parsed = analyse(expr)
        assert parsed.metrics, f"no metric in {expr}"
        assert parsed.functions <= FUNCTIONS, f"unknown functions {parsed.functions - FUNCTIONS} in {expr}"


def test_experiment_metrics_are_filtered_by_the_experiment_variable() -> None:
    per_experiment = {info.name for info in catalog() if "experiment" in info.labels}
    histograms = {info.name for info in catalog() if info.kind == "histogram"}
    for _, target in targets(load()):
        names = {base_name(name, histograms) for name in analyse(target["expr"]).metrics}
        if names & per_experiment:
            for name in names & per_experiment:  # each selector of such a metric carries the filter
                assert re.search(rf'{name}\w*\{{[^}}]*experiment=~"\$experiment"', target["expr"]), (
                    f"{name} without the experiment filter: {target['expr']}"
                )


def test_every_metric_named_is_a_core_metric() -> None:
    """Statically: against labelloop.core.metrics (the live test below checks real processes)."""
    families = {info.name for info in catalog()}
    histograms = {info.name for info in catalog() if info.kind == "histogram"}
    for expr in expressions(load()):
        for name in metric_names(expr):
            assert base_name(name, histograms) in families, f"{name} (in {expr}) is not a LabelLoop metric"


def test_issue_panels_are_present() -> None:
    """The panels the observability issue asks for, recognised by what they query."""
    dashboard = load()
    exprs = [target["expr"] for _, target in targets(dashboard)]

    def panel_querying(*needles: str) -> list[str]:
        return [
            panel["title"]
            for panel in all_panels(dashboard)
            if all(any(needle in t["expr"] for t in panel.get("targets", [])) for needle in needles)
        ]

    learning = panel_querying("labelloop_round_test_accuracy", "labelloop_round_labeled_examples")
    assert learning, "learning curve: accuracy vs labeled examples by round"
    assert any(p["type"] == "xychart" for p in all_panels(dashboard) if p["title"] in learning)
    assert panel_querying("labelloop_round_stage_duration_seconds"), "stage durations"
    assert any(re.search(r"rate\(labelloop_labels_received_total", e) for e in exprs), "label throughput"
    assert panel_querying("labelloop_experiment_examples_awaiting_label"), "label backlog"
    assert any('grpc_server_handled_total{grpc_code!="OK"}' in e for e in exprs), "gRPC errors"
    assert any(
        e.startswith("histogram_quantile(") and "grpc_server_handling_seconds_bucket" in e for e in exprs
    ), "gRPC latency"
    assert panel_querying("labelloop_trainer_fit_seconds_bucket"), "trainer fit seconds"
    assert panel_querying("labelloop_trainer_predict_seconds_bucket"), "trainer predict seconds"
    assert panel_querying("labelloop_scorer_examples_scored_total"), "scorer examples scored"


def grafana_free(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"unhandled Grafana variable in {expr}"
    return expr


def test_prometheus_parses_every_expression(tmp_path: Path) -> None:
    """promtool parses each panel query (as a recording rule) with Prometheus's own PromQL parser."""
    promtool = promtool_binary()
    if promtool is None:
        pytest.skip("promtool is missing: `make prometheus-install` (Debian package prometheus)")
    rules = [
        {"record": f"dashboard:panel{panel['id']}_{target['refId']}", "expr": grafana_free(target["expr"])}
        for panel, target in targets(load())
    ]
    (tmp_path / "rules.yml").write_text(json.dumps({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = subprocess.run(
        [promtool, "check", "rules", str(tmp_path / "rules.yml")], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout


@pytest.mark.parametrize(
    ("expr", "metrics", "functions"),
    [
        ('sum by (le, stage) (rate(a_bucket{experiment=~"$experiment"}[$__rate_interval]))', {"a_bucket"},
         {"sum", "rate"}),
        ("sum(rate(x_total[5m])) by (grpc_code) / ignoring(grpc_code) group_left sum(rate(x_total[5m]))",
         {"x_total"}, {"sum", "rate"}),
        ('histogram_quantile(0.95, sum without (instance) (increase(h_bucket{a="b(c)"}[1h] offset 5m)))',
         {"h_bucket"}, {"histogram_quantile", "sum", "increase"}),
        ("a_total - on(job) b_total > bool 0.5e3 and c", {"a_total", "b_total", "c"}, set()),
        ("60 * count_values by (job) (\"value\", up)", {"up"}, {"count_values"}),
    ],
)  # fmt: skip
def test_promql_tokenizer(expr: str, metrics: set[str], functions: set[str]) -> None:
    parsed = analyse(expr)
    assert (parsed.metrics, parsed.functions) == (metrics, functions)


# --- Against the running services ---------------------------------------------------------------


@pytest.fixture(scope="module")
def expositions(services: LocalCluster) -> dict[str, Exposition]:
    return {name: parse_exposition(scrape(services.metrics_url(name))) for name in SERVICES}


@pytest.mark.integration
def test_every_service_serves_its_own_metrics_on_its_own_port(
    services: LocalCluster, expositions: dict[str, Exposition]
) -> None:
    """Each page declares the gRPC metrics and its own service's, and none of another service's."""
    ports = {services.ports[name].metrics for name in SERVICES} | {
        services.ports[name].grpc for name in SERVICES
    }
    assert len(ports) == 2 * len(SERVICES)
    for name, exposed in expositions.items():
        # Families as the page's "# TYPE" lines declare them, with series or not.
        declared = {info.name for info in catalog() if info.name in exposed.types}
        # Expected from the names (not from the registries the services serve, which this checks).
        own = {info.name for info in catalog() if owner_by_name(info.name) in (name, EVERY_SERVICE)}
        assert declared == own, (
            f"{name}: missing {sorted(own - declared)}, exposes others' {sorted(declared - own)}"
        )
        assert {"grpc_server_handled_total", "grpc_server_handling_seconds"} <= declared
        assert "process_cpu_seconds_total" in exposed.samples, name


@pytest.mark.integration
def test_every_dashboard_metric_is_exposed_by_a_live_service(expositions: dict[str, Exposition]) -> None:
    missing = {}
    for expr in expressions(load()):
        for name in metric_names(expr):
            if not any(exposed.offers(name) for exposed in expositions.values()):
                missing[name] = expr
    assert not missing, f"the dashboard queries metrics no service exposes: {missing}"
