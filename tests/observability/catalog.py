"""The metrics of labelloop.core.metrics, as data: for the naming tests and for docs/observability.md.

`python -m tests.observability.catalog` prints the Markdown table that docs/observability.md holds
between its `metrics-table` markers; a test keeps the two equal.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from labelloop.core import metrics as core_metrics
from prometheus_client.metrics import MetricWrapperBase

TABLE_START = "<!-- metrics-table:start (generated: python -m tests.observability.catalog) -->"
TABLE_END = "<!-- metrics-table:end -->"
# Every label a LabelLoop metric may carry, with why its values stay few.
BOUNDED_LABELS = {
    "experiment": "experiments are created by people, a handful at a time",
    "round": "rounds per experiment are bounded by the stopping rule (tens)",
    "stage": "the six round stages plus snapshot",
    "state": "operation states (succeeded, failed, cancelled)",
    "strategy": "the scoring strategies of the Strategy enum",
    "grpc_service": "the services LabelLoop serves",
    "grpc_method": "the methods of those services",
    "grpc_type": "unary or server_stream",
    "grpc_code": "the gRPC status codes",
}


EVERY_SERVICE = "every service (interceptor)"
# The naming convention: a metric's prefix says which service records it (the controller's carry none).
OWNER_BY_PREFIX = [
    ("grpc_server_", EVERY_SERVICE),
    ("labelloop_trainer_", "trainer"),
    ("labelloop_scorer_", "scorer"),
    ("labelloop_selector_", "selector"),
    ("labelloop_store_", "store"),
    ("labelloop_", "controller"),
]


def owner_by_name(name: str) -> str:
    """Who should record a metric, by its name alone (independent of where the code registers it)."""
    return next(owner for prefix, owner in OWNER_BY_PREFIX if name.startswith(prefix))


@dataclass(frozen=True)
class MetricInfo:
    name: str  # the name queries use: counters with _total, histograms without _bucket
    kind: str  # counter, gauge, histogram
    labels: tuple[str, ...]
    help: str
    metric: MetricWrapperBase

    @property
    def service(self) -> str:
        """Who records it: the service whose registry (whose /metrics page) holds it."""
        owners = [
            service
            for service, registry in core_metrics.REGISTRIES.items()
            if self.metric._name in {family.name for family in registry.collect()}
        ]
        if len(owners) == len(core_metrics.REGISTRIES):
            return EVERY_SERVICE
        assert len(owners) == 1, f"{self.name} is registered by {owners}: one service records it"
        return owners[0]


def core_metric_objects() -> list[MetricWrapperBase]:
    """Every metric defined in labelloop.core.metrics, in definition order."""
    return [value for value in vars(core_metrics).values() if isinstance(value, MetricWrapperBase)]


def catalog() -> list[MetricInfo]:
    infos = []
    for metric in core_metric_objects():
        kind = metric._type
        name = metric._name + ("_total" if kind == "counter" else "")
        infos.append(MetricInfo(name, kind, tuple(metric._labelnames), metric._documentation, metric))
    return infos


def markdown_table() -> str:
    lines = [
        TABLE_START,
        "| Metric | Type | Labels | Recorded by | Meaning |",
        "|---|---|---|---|---|",
    ]
    for info in catalog():
        labels = ", ".join(f"`{label}`" for label in info.labels) or "—"
        lines.append(f"| `{info.name}` | {info.kind} | {labels} | {info.service} | {info.help} |")
    lines.append(TABLE_END)
    return "\n".join(lines) + "\n"


@dataclass
class Exposition:
    """The names a /metrics page offers: declared families (even without samples) and sample names."""

    types: dict[str, str]  # "# TYPE name type" lines
    samples: set[str]

    @property
    def histograms(self) -> set[str]:
        return {name for name, kind in self.types.items() if kind in ("histogram", "summary")}

    def offers(self, name: str) -> bool:
        """Whether a query may name `name` and find this target's series (once there are any)."""
        if name in self.types or name in self.samples:
            return True
        for family in self.histograms:
            if name in (f"{family}_bucket", f"{family}_sum", f"{family}_count"):
                return True
        return False


_TYPE_LINE = re.compile(r"^# TYPE (\S+) (\S+)$")
_SAMPLE_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]")


def parse_exposition(text: str) -> Exposition:
    types: dict[str, str] = {}
    samples: set[str] = set()
    for line in text.splitlines():
        if match := _TYPE_LINE.match(line):
            types[match.group(1)] = match.group(2)
        elif match := _SAMPLE_LINE.match(line):
            samples.add(match.group(1))
    return Exposition(types, samples)


if __name__ == "__main__":
    print(markdown_table(), end="")
