"""ScorerService.AssessLabels over real gRPC: CROWDLAB's consensus and annotator quality equal cleanlab's
own get_label_quality_multiannotator on the same arrays, and bad requests are clear statuses."""

from __future__ import annotations

import io
from collections.abc import Iterator

import grpc
import numpy as np
import pandas as pd
import pytest
from cleanlab.multiannotator import get_label_quality_multiannotator
from labelloop.core.storage import LocalStore
from labelloop.v1 import common_pb2 as c
from labelloop.v1 import scorer_pb2 as pb
from labelloop.v1 import scorer_pb2_grpc as pb_grpc

from tests.scorer.data import probabilities, put_array
from tests.scorer.server import running_scorer

K = 4
CLASSES = ["ant", "bee", "cat", "dog"]
ANNOTATORS = ["alice", "bob", "carol", "mallory"]
ACCURACY = [0.9, 0.85, 0.9, 0.3]  # mallory is mostly wrong


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> LocalStore:
    return LocalStore(tmp_path_factory.mktemp("crowdlab-store"))


@pytest.fixture(scope="module")
def stub(store: LocalStore) -> Iterator[pb_grpc.ScorerServiceStub]:
    with running_scorer(store) as stub:
        yield stub


def noisy_labels(rng: np.random.Generator, truth: np.ndarray, accuracy: list[float]) -> np.ndarray:
    """Each annotator labels about 60% of the examples, right with its accuracy."""
    n = len(truth)
    labels = np.full((n, len(accuracy)), np.nan)
    for a, acc in enumerate(accuracy):
        wrong = (truth + rng.integers(1, K, n)) % K
        given = np.where(rng.random(n) < acc, truth, wrong).astype(np.float64)
        keep = rng.random(n) < 0.6
        labels[keep, a] = given[keep]
    empty = np.isnan(labels).all(axis=1)
    labels[empty, 0] = truth[empty]
    return labels


@pytest.fixture(scope="module")
def arrays(store: LocalStore) -> dict[str, object]:
    rng = np.random.default_rng(5)
    truth = rng.integers(0, K, 120)
    labels = noisy_labels(rng, truth, ACCURACY)
    probs = probabilities(rng, truth, K, skill=2.0)
    ids = [f"x{i:03d}" for i in range(len(truth))]
    return {
        "labels": labels,
        "probs": probs,
        "ids": ids,
        "labels_ref": put_array(store, "in/labels.npy", labels, ids),
        "probs_ref": put_array(store, "in/probs.npy", probs, ids),
    }


def request(store: LocalStore, arrays: dict[str, object], **changes: object) -> pb.AssessLabelsRequest:
    fields: dict[str, object] = {
        "labels_multiannotator": arrays["labels_ref"],
        "labeled_probabilities": arrays["probs_ref"],
        "annotators": ANNOTATORS,
        "classes": CLASSES,
        "output_uri": store.uri("out/ok"),
    }
    fields.update(changes)
    return pb.AssessLabelsRequest(**fields)


def parquet(store: LocalStore, uri: str) -> pd.DataFrame:
    return pd.read_parquet(io.BytesIO(store.get_bytes(store.ref_to_key(uri))))


def test_equals_cleanlab(store: LocalStore, stub: pb_grpc.ScorerServiceStub, arrays: dict) -> None:
    reply = stub.AssessLabels(request(store, arrays), timeout=60)
    expected = get_label_quality_multiannotator(
        arrays["labels"],
        arrays["probs"],
        consensus_method="best_quality",
        calibrate_probs=True,
        verbose=False,
    )
    quality, stats = expected["label_quality"], expected["annotator_stats"]

    consensus = parquet(store, reply.consensus_uri)
    assert list(consensus["example_id"]) == arrays["ids"]
    assert list(consensus["consensus_label"]) == [CLASSES[i] for i in quality["consensus_label"]]
    np.testing.assert_array_equal(consensus["consensus_quality"], quality["consensus_quality_score"])
    np.testing.assert_array_equal(consensus["annotator_agreement"], quality["annotator_agreement"])
    np.testing.assert_array_equal(consensus["annotation_count"], quality["num_annotations"])
    assert reply.mean_consensus_quality == pytest.approx(quality["consensus_quality_score"].mean(), rel=1e-12)

    # Annotators worst first, in cleanlab's order, with its numbers.
    assert [a.annotator for a in reply.annotators] == [ANNOTATORS[i] for i in stats.index]
    np.testing.assert_array_equal([a.quality for a in reply.annotators], stats["annotator_quality"])
    np.testing.assert_array_equal(
        [a.agreement_with_consensus for a in reply.annotators], stats["agreement_with_consensus"]
    )
    assert [a.label_count for a in reply.annotators] == list(stats["num_examples_labeled"])
    assert reply.annotators[0].annotator == "mallory" and reply.annotators[0].quality < 0.5
    assert min(a.quality for a in reply.annotators[1:]) > reply.annotators[0].quality + 0.2

    # The file the trainer reads, and the annotators' file.
    labels = parquet(store, reply.labels_uri)
    assert list(labels.columns) == ["example_id", "label"]
    assert list(labels["label"]) == list(consensus["consensus_label"])
    people = parquet(store, reply.annotators_uri)
    assert list(people["annotator"]) == [a.annotator for a in reply.annotators]
    assert reply.method == "crowdlab" and reply.labeled_count == 120
    assert reply.annotation_count == int((~np.isnan(arrays["labels"])).sum())


def test_annotator_without_labels_is_left_out(
    store: LocalStore, stub: pb_grpc.ScorerServiceStub, arrays: dict
) -> None:
    """A snapshot column with no label in these rows: cleanlab rejects it, so it is dropped by name."""
    gap = np.full(len(arrays["ids"]), np.nan)
    labels = np.column_stack([arrays["labels"][:, :2], gap, arrays["labels"][:, 2:]])
    ref = put_array(store, "in/gap.npy", labels, arrays["ids"])
    names = ["alice", "bob", "nobody", "carol", "mallory"]
    reply = stub.AssessLabels(
        request(store, arrays, labels_multiannotator=ref, annotators=names, output_uri=store.uri("out/gap")),
        timeout=60,
    )
    assert sorted(a.annotator for a in reply.annotators) == ["alice", "bob", "carol", "mallory"]
    assert reply.annotators[0].annotator == "mallory"


def _code(stub: pb_grpc.ScorerServiceStub, req: pb.AssessLabelsRequest) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as info:
        stub.AssessLabels(req, timeout=30)
    return info.value.code(), info.value.details() or ""


def test_bad_requests(store: LocalStore, stub: pb_grpc.ScorerServiceStub, arrays: dict) -> None:
    single = np.full((len(arrays["ids"]), 2), np.nan)
    single[:60, 0] = 1
    single[60:, 1] = 2
    one_each = put_array(store, "in/single.npy", single, arrays["ids"])
    no_ids = c.ArrayRef(uri=arrays["labels_ref"].uri)
    cases = [
        ({"output_uri": ""}, "output_uri is empty"),
        ({"classes": CLASSES[:3]}, "classes lists 3 names"),
        ({"annotators": ANNOTATORS[:3]}, "annotators lists 3 ids"),
        ({"annotators": ["a", "a", "b", "c"]}, "3 distinct"),
        ({"labels_multiannotator": no_ids}, "example_ids_uri is empty"),
        ({"labels_multiannotator": one_each, "annotators": ["a", "b"]}, "one example with 2 labels"),
    ]
    for changes, message in cases:
        code, details = _code(stub, request(store, arrays, **{"output_uri": store.uri("out/bad"), **changes}))
        assert code == grpc.StatusCode.INVALID_ARGUMENT, (changes, details)
        assert message in details, details
    assert not list(store.list("out/bad/"))
