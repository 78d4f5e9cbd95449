"""ScorerService over real gRPC: a good request, and bad inputs mapped to status codes with nothing stored."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
from labelloop.core.metrics import SCORER_REGISTRY as REGISTRY
from labelloop.core.storage import LocalStore
from labelloop.v1 import common_pb2 as c
from labelloop.v1 import scorer_pb2 as pb
from labelloop.v1 import scorer_pb2_grpc as pb_grpc

from tests.scorer.data import annotator_labels, probabilities, put_array
from tests.scorer.server import running_scorer

K = 4


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> LocalStore:
    return LocalStore(tmp_path_factory.mktemp("scorer-store"))


@pytest.fixture(scope="module")
def stub(store: LocalStore) -> Iterator[pb_grpc.ScorerServiceStub]:
    with running_scorer(store) as stub:
        yield stub


@pytest.fixture(scope="module")
def good(store: LocalStore) -> dict[str, c.ArrayRef]:
    """Valid inputs: 30 unlabeled rows, 12 labeled rows with two annotators."""
    rng = np.random.default_rng(1)
    truth = rng.integers(0, K, 12)
    return {
        "unlabeled": put_array(
            store, "good/u.npy", probabilities(rng, rng.integers(0, K, 30), K), [f"u{i}" for i in range(30)]
        ),
        "labeled": put_array(store, "good/l.npy", probabilities(rng, truth, K), [f"l{i}" for i in range(12)]),
        "labels": put_array(store, "good/labels.npy", annotator_labels(rng, truth, K, 2, multi=True)),
    }


def request(good: dict[str, c.ArrayRef], **changes: object) -> pb.ScoreExamplesRequest:
    fields: dict[str, object] = {
        "strategy": c.STRATEGY_ACTIVELAB,
        "unlabeled_probabilities": [good["unlabeled"]],
        "labeled_probabilities": [good["labeled"]],
        "labels_multiannotator": good["labels"],
        "chunk_size": 8,
    }
    fields.update(changes)
    return pb.ScoreExamplesRequest(**fields)


def test_scores_and_counts(
    store: LocalStore, stub: pb_grpc.ScorerServiceStub, good: dict[str, c.ArrayRef]
) -> None:
    before = (
        REGISTRY.get_sample_value("labelloop_scorer_examples_scored_total", {"strategy": "activelab"}) or 0
    )
    reply = stub.ScoreExamples(request(good, output_uri=store.uri("runs/ok")), timeout=30)
    assert reply.scored_count == 42
    assert reply.unlabeled_scores.uri == store.uri("runs/ok/unlabeled_scores.npy")
    assert reply.unlabeled_scores.example_ids_uri == good["unlabeled"].example_ids_uri
    assert reply.labeled_scores.example_ids_uri == good["labeled"].example_ids_uri
    scores = store.get_array("runs/ok/unlabeled_scores.npy")
    assert scores.shape == (30,) and ((scores > 0) & (scores < 1)).all()
    after = REGISTRY.get_sample_value("labelloop_scorer_examples_scored_total", {"strategy": "activelab"})
    assert after == before + 42

    reply = stub.ScoreExamples(
        request(good, output_uri=store.uri("runs/unl"), labeled_probabilities=[], labels_multiannotator=None),
        timeout=30,
    )
    assert not reply.HasField("labeled_scores") and reply.scored_count == 30


def _bad_array(store: LocalStore, name: str, array: np.ndarray, ids: int | None = None) -> c.ArrayRef:
    return put_array(store, f"bad/{name}.npy", array, None if ids is None else [str(i) for i in range(ids)])


def _probs(rows: int = 30, classes: int = K) -> np.ndarray:
    rng = np.random.default_rng(rows * classes)
    return probabilities(rng, rng.integers(0, classes, rows), classes)


def _with(row: int, col: int, value: float) -> np.ndarray:
    probs = _probs()
    probs[row, col] = value
    return probs


Case = Callable[[LocalStore, dict[str, c.ArrayRef]], dict[str, object]]
INVALID, NOT_FOUND = grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND
CASES: dict[str, tuple[grpc.StatusCode, str, Case]] = {
    "nan": (
        INVALID,
        "NaN",
        lambda s, g: {"unlabeled_probabilities": [_bad_array(s, "nan", _with(25, 1, np.nan))]},
    ),
    "inf": (
        INVALID,
        "infinite",
        lambda s, g: {"unlabeled_probabilities": [_bad_array(s, "inf", _with(3, 0, np.inf))]},
    ),
    "negative": (
        INVALID,
        "negative",
        lambda s, g: {"unlabeled_probabilities": [_bad_array(s, "neg", _with(29, 0, -0.1))]},
    ),
    "not_normalised": (
        INVALID,
        "sums to",
        lambda s, g: {"unlabeled_probabilities": [_bad_array(s, "sum", _probs() * 1.5)]},
    ),
    "one_d": (
        INVALID,
        "2-D",
        lambda s, g: {"unlabeled_probabilities": [_bad_array(s, "1d", _probs()[:, 0])]},
    ),
    "class_count": (
        INVALID,
        "classes",
        lambda s, g: {"unlabeled_probabilities": [_bad_array(s, "k3", _probs(30, 3))]},
    ),
    "models_disagree": (
        INVALID,
        "same examples",
        lambda s, g: {
            "unlabeled_probabilities": [g["unlabeled"], _bad_array(s, "rows", _probs(29))],
            "labeled_probabilities": [g["labeled"], g["labeled"]],
        },
    ),
    "labels_rows": (
        INVALID,
        "labels_multiannotator has 11 rows",
        lambda s, g: {"labels_multiannotator": _bad_array(s, "labels11", np.zeros((11, 2)))},
    ),
    "label_range": (
        INVALID,
        "must be in",
        lambda s, g: {"labels_multiannotator": _bad_array(s, "labels_k", np.full((12, 2), float(K)))},
    ),
    "ids_count": (
        INVALID,
        "example ids",
        lambda s, g: {"unlabeled_probabilities": [_bad_array(s, "ids", _probs(), ids=29)]},
    ),
    "unspecified": (
        INVALID,
        "choose one of STRATEGY_ACTIVELAB",
        lambda s, g: {"strategy": c.STRATEGY_UNSPECIFIED},
    ),
    "unknown_strategy": (INVALID, "strategy 99 is not", lambda s, g: {"strategy": 99}),
    "no_unlabeled": (
        INVALID,
        "unlabeled_probabilities is empty",
        lambda s, g: {"unlabeled_probabilities": []},
    ),
    "negative_chunk": (INVALID, "chunk_size", lambda s, g: {"chunk_size": -1}),
    "labels_without_labeled": (
        INVALID,
        "without labeled_probabilities",
        lambda s, g: {"labeled_probabilities": []},
    ),
    "labeled_without_labels": (
        INVALID,
        "needs labels_multiannotator",
        lambda s, g: {"labels_multiannotator": None},
    ),
    "outside_store": (
        INVALID,
        "not inside this store",
        lambda s, g: {"unlabeled_probabilities": [c.ArrayRef(uri="file:///etc/passwd")]},
    ),
    "missing_object": (
        NOT_FOUND,
        "does not exist",
        lambda s, g: {"unlabeled_probabilities": [c.ArrayRef(uri=s.uri("nowhere.npy"))]},
    ),
    "missing_labels": (
        NOT_FOUND,
        "does not exist",
        lambda s, g: {"labels_multiannotator": c.ArrayRef(uri=s.uri("nolabels.npy"))},
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_inputs_map_to_status_and_store_nothing(
    store: LocalStore, stub: pb_grpc.ScorerServiceStub, good: dict[str, c.ArrayRef], case: str
) -> None:
    code, message, build = CASES[case]
    output = f"runs/bad-{case}"
    with pytest.raises(grpc.RpcError) as info:
        stub.ScoreExamples(request(good, output_uri=store.uri(output), **build(store, good)), timeout=30)
    assert info.value.code() == code, info.value.details()
    assert message in info.value.details()
    assert list(store.list(output)) == []
    assert not Path(store.root, output).exists()


@pytest.mark.parametrize(
    ("output", "code", "message"),
    [
        ("datasets/d/", grpc.StatusCode.INVALID_ARGUMENT, "is under datasets/"),
        ("experiments/e1/tasks/", grpc.StatusCode.INVALID_ARGUMENT, "only in a round's folder"),
        ("runs/../datasets/d/", grpc.StatusCode.INVALID_ARGUMENT, "'..'"),
    ],
)
def test_scores_go_only_where_the_caller_may_write(
    store: LocalStore, stub: pb_grpc.ScorerServiceStub, good: dict[str, c.ArrayRef], output: str,
    code: grpc.StatusCode, message: str,
) -> None:  # fmt: skip
    with pytest.raises(grpc.RpcError) as info:
        stub.ScoreExamples(request(good, output_uri=output), timeout=30)  # a key of the store
    assert info.value.code() == code and message in info.value.details()
    assert not any(k.startswith(("datasets/", "experiments/")) for k in store.list(""))
