"""Property-based tests (hypothesis) of annotation appends: a request is stored exactly as sent iff it
keeps every rule, a refused one stores nothing, a retry stores nothing more, and a request id never
takes other content."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from labelloop.core.errors import AlreadyExists, InvalidArgument, LabelLoopError, NotFound
from labelloop.core.storage import LocalStore
from labelloop.store import DatasetStore
from labelloop.store.annotations import MAX_ANNOTATOR_LENGTH
from labelloop.store.models import Annotation

CLASSES = ["a", "b", "c"]
POOL = [f"p{i}" for i in range(6)]
TEST = [f"t{i}" for i in range(3)]
_sets = itertools.count()


@pytest.fixture(scope="module")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DatasetStore]:
    root = tmp_path_factory.mktemp("properties")
    manifest = root / "m.csv"
    rows = [f"{i},{n},{CLASSES[n % 3]},pool" for n, i in enumerate(POOL)]
    rows += [f"{i},{n},{CLASSES[n % 3]},test" for n, i in enumerate(TEST)]
    manifest.write_text("id,x,label,split\n" + "\n".join(rows) + "\n")
    store = DatasetStore(LocalStore(root / "store"), import_roots=[root])
    store.create_dataset("d", str(manifest), label_column="label", split_column="split", id_column="id")
    yield store


EXAMPLES = st.sampled_from([*POOL, *TEST, "unknown", "x" * 300])
ANNOTATORS = st.sampled_from(["alice", "bob", " carol ", "", "  ", "z" * (MAX_ANNOTATOR_LENGTH + 1)])
LABELS = st.sampled_from([*CLASSES, "zz", "A"])
ANNOTATIONS = st.lists(st.builds(Annotation, EXAMPLES, ANNOTATORS, LABELS), max_size=8)


def expected_error(request: list[Annotation]) -> type[LabelLoopError] | None:
    """The rules, stated independently of the store: which error (if any) the request deserves."""
    names = [a.annotator.strip() for a in request]
    pairs = Counter(zip([a.example_id for a in request], names, strict=True))
    if (
        not request
        or any(not n or len(n) > MAX_ANNOTATOR_LENGTH for n in names)
        or any(a.label not in CLASSES for a in request)
    ):
        return InvalidArgument
    if any(a.example_id not in POOL + TEST for a in request):
        return NotFound
    if any(a.example_id in TEST for a in request) or max(pairs.values()) > 1:
        return InvalidArgument
    return None


def stored(datasets: DatasetStore, annotation_set: str) -> list[tuple[str, str, str]]:
    return [
        (a.example_id, a.annotator, a.label) for a in datasets.list_annotations("d", annotation_set).items
    ]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=ANNOTATIONS, second=ANNOTATIONS)
def test_appends_store_exactly_what_the_rules_accept(
    datasets: DatasetStore, first: list[Annotation], second: list[Annotation]
) -> None:
    annotation_set = f"s{next(_sets)}"
    error = expected_error(first)
    if error is not None:
        with pytest.raises(error):
            datasets.append_annotations("d", annotation_set, first, "req")
        assert stored(datasets, annotation_set) == []
        return
    result = datasets.append_annotations("d", annotation_set, first, "req")
    as_sent = [(a.example_id, a.annotator.strip(), a.label) for a in first]
    assert (result.appended_count, result.duplicate) == (len(first), False)
    assert stored(datasets, annotation_set) == as_sent
    # The same request id: a retry of the same request stores nothing; other content is refused.
    assert datasets.append_annotations("d", annotation_set, first, "req").duplicate
    if expected_error(second) is None:
        again = [(a.example_id, a.annotator.strip(), a.label) for a in second]
        if again == as_sent:
            assert datasets.append_annotations("d", annotation_set, second, "req").duplicate
        else:
            with pytest.raises(AlreadyExists, match="was already used"):
                datasets.append_annotations("d", annotation_set, second, "req")
        assert stored(datasets, annotation_set) == as_sent


# Manifests ------------------------------------------------------------------------------------

CELLS = st.one_of(
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12),
    st.integers(-5, 5).map(str),
    st.sampled_from(["", "nan", "NA", "pool", "test", '"', ",", "a,b", "1.0"]),
)
_datasets = itertools.count()


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(st.tuples(CELLS, CELLS, CELLS), min_size=0, max_size=12),
    use_split=st.booleans(),
    test_fraction=st.sampled_from([0.0, 0.3, 0.99, 1.0, -0.1]),
)
def test_a_manifest_becomes_a_consistent_dataset_or_a_clear_refusal(
    datasets: DatasetStore, tmp_path_factory: pytest.TempPathFactory, rows: list[tuple[str, str, str]],
    use_split: bool, test_fraction: float,
) -> None:  # fmt: skip
    """Any CSV: either a dataset whose counts add up, or a LabelLoopError (never another error, which
    would reach the caller as INTERNAL) that stores nothing."""
    import csv

    folder = tmp_path_factory.mktemp("manifest")
    path = folder / "m.csv"
    with open(path, "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["x", "label", "part"])
        writer.writerows(rows)
    dataset_id = f"m{next(_datasets)}"
    options = {"split_column": "part"} if use_split else {"test_fraction": test_fraction}
    try:
        info = datasets.create_dataset(dataset_id, str(path), label_column="label", **options)  # type: ignore[arg-type]
    except LabelLoopError as error:
        event(f"refused: {type(error).__name__}")
        assert len(str(error)) < 2000
        assert not list(datasets.store.list(f"datasets/{dataset_id}/"))
        return
    event("created")
    assert info.example_count == len(rows) == info.pool_count + info.test_count
    examples = datasets.read_examples(dataset_id)
    assert len(set(examples["example_id"])) == len(rows)
    assert set(examples["split"]) <= {"pool", "test"}
