"""Prometheus metrics of the five services, and the server interceptor that records the gRPC ones.

Each service's /metrics page serves its own registry (`REGISTRIES[service]`): the process collectors, the
gRPC metrics every server records, and that service's domain metrics only, so a page never declares a
family its process does not record. The interceptor also maps domain errors (labelloop.core.errors) to
gRPC status codes, so servicers stay thin: they raise, the interceptor answers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc
from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
)

from labelloop.core.errors import LabelLoopError
from labelloop.core.faults import describe, is_transient

log = logging.getLogger(__name__)

# Names follow go-grpc-prometheus, which Grafana dashboards for gRPC commonly expect. Registered below in
# every service's registry, not in prometheus_client's process-wide default one.
GRPC_STARTED = Counter(
    "grpc_server_started_total",
    "RPCs started on the server.",
    ["grpc_service", "grpc_method", "grpc_type"],
    registry=None,
)
GRPC_HANDLED = Counter(
    "grpc_server_handled_total",
    "RPCs completed on the server, by status code.",
    ["grpc_service", "grpc_method", "grpc_type", "grpc_code"],
    registry=None,
)
GRPC_SECONDS = Histogram(
    "grpc_server_handling_seconds",
    "Time to handle an RPC, until the last response is sent.",
    ["grpc_service", "grpc_method", "grpc_type"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
    registry=None,
)


def _service_registry() -> CollectorRegistry:
    """A registry with what every service's page shows: process, platform, GC and gRPC metrics."""
    registry = CollectorRegistry(auto_describe=True)
    for collector in (
        PROCESS_COLLECTOR,
        PLATFORM_COLLECTOR,
        GC_COLLECTOR,
        GRPC_STARTED,
        GRPC_HANDLED,
        GRPC_SECONDS,
    ):
        registry.register(collector)
    return registry


STORE_REGISTRY = _service_registry()
TRAINER_REGISTRY = _service_registry()
SCORER_REGISTRY = _service_registry()
SELECTOR_REGISTRY = _service_registry()
CONTROLLER_REGISTRY = _service_registry()
# What each service's /metrics serves (labelloop.core.server.Server.start).
REGISTRIES: dict[str, CollectorRegistry] = {
    "store": STORE_REGISTRY,
    "trainer": TRAINER_REGISTRY,
    "scorer": SCORER_REGISTRY,
    "selector": SELECTOR_REGISTRY,
    "controller": CONTROLLER_REGISTRY,
}


def _split(full_method: str) -> tuple[str, str]:
    _, service, method = full_method.split("/", 2)
    return service, method


class ServerInterceptor(grpc.ServerInterceptor):
    """Counts and times every RPC and turns LabelLoopError into the matching gRPC status."""

    def intercept_service(self, continuation: Callable, handler_call_details: Any) -> Any:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        service, method = _split(handler_call_details.method)
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                self._unary(handler.unary_unary, service, method),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                self._stream(handler.unary_stream, service, method),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler  # client and bidi streaming are not used by LabelLoop

    def _unary(self, behavior: Callable, service: str, method: str) -> Callable:
        def wrapped(request: Any, context: grpc.ServicerContext) -> Any:
            GRPC_STARTED.labels(service, method, "unary").inc()
            start = time.perf_counter()
            code = grpc.StatusCode.OK
            try:
                return behavior(request, context)
            except BaseException as error:
                code = _abort(error, context, method)
            finally:
                GRPC_HANDLED.labels(service, method, "unary", _code_of(context, code)).inc()
                GRPC_SECONDS.labels(service, method, "unary").observe(time.perf_counter() - start)

        return wrapped

    def _stream(self, behavior: Callable, service: str, method: str) -> Callable:
        def wrapped(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            GRPC_STARTED.labels(service, method, "server_stream").inc()
            start = time.perf_counter()
            code = grpc.StatusCode.OK
            try:
                yield from behavior(request, context)
            except BaseException as error:
                code = _abort(error, context, method)
            finally:
                GRPC_HANDLED.labels(service, method, "server_stream", _code_of(context, code)).inc()
                GRPC_SECONDS.labels(service, method, "server_stream").observe(time.perf_counter() - start)

        return wrapped


def _code_set(context: grpc.ServicerContext) -> grpc.StatusCode | None:
    """The status the servicer set, if any (ServicerContext.code(): grpcio >= 1.38; the stubs lack it)."""
    return context.code() if hasattr(context, "code") else None


def _code_of(context: grpc.ServicerContext, code: grpc.StatusCode) -> str:
    return (_code_set(context) or code).name


def _abort(error: BaseException, context: grpc.ServicerContext, method: str) -> grpc.StatusCode:
    """Answers the RPC with the status that fits the error; never returns normally."""
    if isinstance(error, LabelLoopError):
        # The caller's mistake or a passing condition, not ours: one line, no traceback.
        log.warning("%s answered %s: %s", method, error.code.name, error)
        context.abort(error.code, str(error))
    if isinstance(error, GeneratorExit):
        raise error  # the client went away from a stream
    if _code_set(context) not in (None, grpc.StatusCode.OK):
        raise error  # the servicer already aborted with its own status
    if is_transient(error):  # e.g. the object store unreachable: the caller may retry, nothing is wrong
        log.warning("%s answered UNAVAILABLE: %s", method, describe(error))
        context.abort(grpc.StatusCode.UNAVAILABLE, f"{method} cannot complete now, retry: {describe(error)}")
    log.exception("unexpected error in %s", method)
    context.abort(grpc.StatusCode.INTERNAL, f"internal error in {method}: {type(error).__name__}: {error}")
    raise AssertionError("unreachable")


# Domain metrics, each in the registry of the one service that records it. Label cardinality stays
# bounded: experiment ids and round numbers, never example ids.
_STAGE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)

# Controller.
EXPERIMENT_TEST_ACCURACY = Gauge(
    "labelloop_experiment_test_accuracy",
    "Test accuracy of the latest evaluated round.",
    ["experiment"],
    registry=CONTROLLER_REGISTRY,
)
EXPERIMENT_LABELED = Gauge(
    "labelloop_experiment_labeled_examples",
    "Examples with at least one label.",
    ["experiment"],
    registry=CONTROLLER_REGISTRY,
)
EXPERIMENT_BUDGET_LEFT = Gauge(
    "labelloop_experiment_label_budget_remaining",
    "Labels still in the experiment's budget.",
    ["experiment"],
    registry=CONTROLLER_REGISTRY,
)
EXPERIMENT_ROUNDS = Gauge(
    "labelloop_experiment_rounds_completed",
    "Rounds completed (trained, evaluated, labeled).",
    ["experiment"],
    registry=CONTROLLER_REGISTRY,
)
EXPERIMENT_AWAITING = Gauge(
    "labelloop_experiment_examples_awaiting_label",
    "Selected examples still waiting for a label.",
    ["experiment"],
    registry=CONTROLLER_REGISTRY,
)
EXPERIMENT_STATE = Gauge(
    "labelloop_experiment_running",
    "1 while the experiment is running, else 0.",
    ["experiment"],
    registry=CONTROLLER_REGISTRY,
)
LABELS_RECEIVED = Counter(
    "labelloop_labels_received_total",
    "Labels received from labelers.",
    ["experiment"],
    registry=CONTROLLER_REGISTRY,
)
STAGE_SECONDS = Histogram(
    "labelloop_round_stage_duration_seconds",
    "Duration of one round stage (snapshot, train = fit + predict, evaluate, score, select, label).",
    ["experiment", "stage"],
    buckets=_STAGE_BUCKETS,
    registry=CONTROLLER_REGISTRY,
)
ROUND_TEST_ACCURACY = Gauge(
    "labelloop_round_test_accuracy",
    "Test accuracy of each round's model.",
    ["experiment", "round"],
    registry=CONTROLLER_REGISTRY,
)
ROUND_LABELED = Gauge(
    "labelloop_round_labeled_examples",
    "Labeled examples each round's model was trained on.",
    ["experiment", "round"],
    registry=CONTROLLER_REGISTRY,
)

# Trainer.
TRAINER_FIT_SECONDS = Histogram(
    "labelloop_trainer_fit_seconds",
    "Time to fit one model.",
    buckets=_STAGE_BUCKETS,
    registry=TRAINER_REGISTRY,
)
TRAINER_PREDICT_SECONDS = Histogram(
    "labelloop_trainer_predict_seconds",
    "Time to predict the pool and test split.",
    buckets=_STAGE_BUCKETS,
    registry=TRAINER_REGISTRY,
)
TRAINER_RUNS = Counter(
    "labelloop_trainer_runs_total",
    "Trainer runs finished, by final state.",
    ["state"],
    registry=TRAINER_REGISTRY,
)
TRAINER_ACTIVE = Gauge(
    "labelloop_trainer_active_runs", "Trainer runs pending or running.", registry=TRAINER_REGISTRY
)

# Scorer.
SCORER_EXAMPLES = Counter(
    "labelloop_scorer_examples_scored_total", "Examples scored.", ["strategy"], registry=SCORER_REGISTRY
)
SCORER_SECONDS = Histogram(
    "labelloop_scorer_duration_seconds",
    "Time to score one request.",
    ["strategy"],
    buckets=_STAGE_BUCKETS,
    registry=SCORER_REGISTRY,
)

# Selector.
SELECTOR_SELECTED = Counter(
    "labelloop_selector_selected_examples_total",
    "Examples selected for labeling.",
    registry=SELECTOR_REGISTRY,
)

# Dataset store.
STORE_ANNOTATIONS = Counter(
    "labelloop_store_annotations_appended_total", "Annotations appended to logs.", registry=STORE_REGISTRY
)
STORE_EXAMPLES_INGESTED = Counter(
    "labelloop_store_examples_ingested_total",
    "Examples ingested into datasets.",
    registry=STORE_REGISTRY,
)
SCORER_ASSESS_SECONDS = Histogram(
    "labelloop_scorer_label_assessment_duration_seconds",
    "Time to assess one labeled set with CROWDLAB (AssessLabels).",
    buckets=_STAGE_BUCKETS,
    registry=SCORER_REGISTRY,
)

# Controller: labeling reports (CROWDLAB). Per experiment only: annotators are summarised, never a label.
_QUALITY_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)
TIME_TO_NEXT_BATCH = Histogram(
    "labelloop_time_to_next_batch_seconds",
    "From a batch's last label to the next batch (snapshot, train, evaluate, score, select): "
    "the time labelers wait between batches.",
    ["experiment"],
    buckets=_STAGE_BUCKETS,
    registry=CONTROLLER_REGISTRY,
)
LABELING_ANNOTATORS = Gauge(
    "labelloop_labeling_annotators",
    "Annotators with labels in the latest labeling report.",
    ["experiment"],
    registry=CONTROLLER_REGISTRY,
)
LABELING_MEAN_CONSENSUS_QUALITY = Gauge(
    "labelloop_labeling_mean_consensus_quality",
    "Mean consensus quality of the labeled examples in the latest labeling report.",
    ["experiment"],
    registry=CONTROLLER_REGISTRY,
)
LABELING_MIN_ANNOTATOR_QUALITY = Gauge(
    "labelloop_labeling_min_annotator_quality",
    "Quality of the least reliable annotator in the latest labeling report.",
    ["experiment"],
    registry=CONTROLLER_REGISTRY,
)
LABELING_ANNOTATOR_QUALITY = Histogram(
    "labelloop_labeling_annotator_quality",
    "Annotator quality, one observation per annotator and labeling report.",
    ["experiment"],
    buckets=_QUALITY_BUCKETS,
    registry=CONTROLLER_REGISTRY,
)
