"""Reads and validates an ingest manifest (CSV or Parquet) into the rows of examples.parquet.

Everything here only reads: the caller writes nothing until the whole manifest is valid.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

import pandas as pd
import pyarrow as pa

from labelloop.core.errors import InvalidArgument, NotFound
from labelloop.core.names import shown
from labelloop.store.models import POOL, RESERVED_COLUMNS, SPLITS, TEST
from labelloop.store.roots import Location, Sources

MAX_LISTED = 10  # how many offending rows an error message names
MAX_CLASSES = 1_000
MAX_CLASS_LENGTH = 128  # a class is a label every annotation repeats
MAX_DISPLAY_NAME_LENGTH = 256


@dataclass(frozen=True)
class IngestSpec:
    """The CreateDataset request, as the domain sees it."""

    dataset_id: str
    manifest_uri: str
    display_name: str = ""
    image_column: str = ""
    feature_columns: Sequence[str] = ()
    label_column: str = ""
    split_column: str = ""
    test_fraction: float = 0.0
    classes: Sequence[str] = ()
    id_column: str = ""
    seed: int = 0
    text_columns: Sequence[str] = ()  # feature columns kept as text even where values look like numbers


@dataclass
class Manifest:
    """A parsed manifest and the folder its relative image paths start from."""

    frame: pd.DataFrame
    location: Location
    classes: list[str] = field(default_factory=list)
    feature_columns: list[str] = field(default_factory=list)


def read_manifest(sources: Sources, spec: IngestSpec) -> Manifest:
    """The manifest's rows; read only from the object store or an import root (roots.py)."""
    if not spec.manifest_uri:
        raise InvalidArgument("manifest_uri is empty: give the path or URI of a .csv or .parquet manifest")
    store = sources.store
    location = sources.locate(spec.manifest_uri, f"manifest_uri {shown(spec.manifest_uri)}")
    name = location.path.name if location.path is not None else PurePosixPath(location.key).name
    suffix = name.lower().rsplit(".", 1)[-1] if "." in name else ""
    if suffix not in ("csv", "parquet", "pq"):
        raise InvalidArgument(f"manifest {spec.manifest_uri!r} must end in .csv or .parquet")
    try:
        data = location.path.read_bytes() if location.path is not None else store.get_bytes(location.key)
    except (FileNotFoundError, IsADirectoryError, NotFound):
        raise InvalidArgument(f"manifest {spec.manifest_uri!r} does not exist") from None
    except PermissionError:
        raise InvalidArgument(
            f"manifest {spec.manifest_uri!r} is not readable by the store's user: make it readable"
        ) from None
    named = (spec.id_column, spec.image_column, spec.label_column, spec.split_column, *spec.text_columns)
    text_columns: dict[Hashable, type[str]] = {c: str for c in named if c}
    try:
        if suffix == "csv":
            frame = pd.read_csv(io.BytesIO(data), dtype=text_columns)
        else:
            frame = pd.read_parquet(io.BytesIO(data))
            for column in spec.text_columns:  # "123" stays text, so the trainer embeds it as text
                if column in frame.columns:
                    frame[column] = frame[column].map(lambda v: v if pd.isna(v) else str(v)).astype(object)
    except (ValueError, UnicodeDecodeError, pa.ArrowException, pd.errors.ParserError) as error:
        # EmptyDataError is a ValueError too.
        raise InvalidArgument(f"cannot parse manifest {spec.manifest_uri!r}: {error}") from None
    if frame.empty:
        raise InvalidArgument(f"manifest {spec.manifest_uri!r} has no rows")
    return Manifest(frame=frame.reset_index(drop=True), location=location)


def check_columns(manifest: Manifest, spec: IngestSpec) -> None:
    """Every named column exists, none is used twice, and there is something to learn from."""
    frame = manifest.frame
    frame.columns = [str(c) for c in frame.columns]
    special = {
        "image_column": spec.image_column,
        "label_column": spec.label_column,
        "split_column": spec.split_column,
        "id_column": spec.id_column,
    }
    named = [c for c in special.values() if c] + list(spec.feature_columns) + list(spec.text_columns)
    missing = sorted({c for c in named if c not in frame.columns})
    if missing:
        raise InvalidArgument(
            f"manifest {spec.manifest_uri!r} lacks column(s) {missing}; it has {list(frame.columns)}"
        )
    used = [c for c in special.values() if c]
    if len(set(used)) != len(used):
        raise InvalidArgument(f"image, label, split and id columns must differ: got {special}")
    features = list(spec.feature_columns) or [c for c in frame.columns if c not in used]
    if len(set(features)) != len(features):
        raise InvalidArgument(f"feature_columns {features} name a column twice")
    if clash := sorted(set(features) & set(used)):
        raise InvalidArgument(f"feature_columns {clash} are also the image, label, split or id column")
    if reserved := sorted(set(RESERVED_COLUMNS) & {*features, spec.image_column, spec.label_column}):
        raise InvalidArgument(
            f"columns {reserved} are reserved by the store: name them as id_column or split_column, "
            "leave them out of feature_columns, or rename them in the manifest"
        )
    if not spec.image_column and not features:
        raise InvalidArgument("the dataset has no image column and no feature columns: name at least one")
    if stray := sorted(set(spec.text_columns) - set(features)):
        raise InvalidArgument(
            f"text_columns {stray} must also be feature columns: add them to feature_columns"
        )
    manifest.feature_columns = features


def _rows(mask: pd.Series) -> list[int]:
    """1-based manifest row numbers where mask is true, at most MAX_LISTED."""
    return [int(i) + 1 for i in mask[mask].index[:MAX_LISTED]]


def label_strings(column: pd.Series) -> pd.Series:
    """Ground truth as strings ("3", not "3.0"); missing labels stay missing."""

    def text(value: Any) -> str | None:
        if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
            return None
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        return str(value).strip() or None

    return column.map(text).astype(object)


def _check_class_set(classes: list[str]) -> None:
    """Bounded: every model outputs a probability per class, and every annotation repeats one."""
    if len(classes) > MAX_CLASSES:
        raise InvalidArgument(
            f"{len(classes)} classes: at most {MAX_CLASSES} (a model outputs one column each)"
        )
    if long := [c for c in classes if len(c) > MAX_CLASS_LENGTH]:
        raise InvalidArgument(
            f"{len(long)} class name(s) are longer than {MAX_CLASS_LENGTH} characters, "
            f"e.g. {shown(long[0])}: use shorter class names"
        )


def _listed(values: Sequence[object]) -> str:
    """At most MAX_LISTED values, each cut short."""
    more = f" and {len(values) - MAX_LISTED} more" if len(values) > MAX_LISTED else ""
    return f"[{', '.join(shown(v) for v in values[:MAX_LISTED])}]{more}"


def check_labels(manifest: Manifest, spec: IngestSpec) -> pd.Series | None:
    """The label column as strings, checked against the class set, which it fills in if not given."""
    classes = [str(c) for c in spec.classes]
    _check_class_set(classes)
    if any(not c.strip() for c in classes) or len(set(classes)) != len(classes):
        raise InvalidArgument(f"classes {_listed(classes)} must be distinct, non-empty strings")
    labels = label_strings(manifest.frame[spec.label_column]) if spec.label_column else None
    if labels is not None and classes:
        unknown = labels.notna() & ~labels.isin(classes)
        if unknown.any():
            found = sorted(set(labels[unknown]))
            raise InvalidArgument(
                f"label column {spec.label_column!r} has labels {_listed(found)} outside classes "
                f"{_listed(classes)} (manifest rows {_rows(unknown)}): fix the labels or add them to classes"
            )
    if not classes and labels is not None:
        classes = sorted(set(labels.dropna()))
    if not classes:
        raise InvalidArgument("no class set: give classes, or a label_column with at least one label")
    _check_class_set(classes)
    manifest.classes = classes
    return labels


def example_ids(manifest: Manifest, spec: IngestSpec) -> list[str]:
    """Stable ids: the id column, else a hash of the row content (duplicates get -2, -3, ...)."""
    frame = manifest.frame
    if spec.id_column:
        given = frame[spec.id_column].map(lambda v: "" if pd.isna(v) else str(v).strip())
        empty = given == ""
        if empty.any():
            raise InvalidArgument(f"id column {spec.id_column!r} is empty on manifest rows {_rows(empty)}")
        duplicated = given.duplicated(keep=False)
        if duplicated.any():
            values = sorted(set(given[duplicated]))[:MAX_LISTED]
            raise InvalidArgument(f"id column {spec.id_column!r} repeats ids {values}: ids must be unique")
        return [str(v) for v in given]
    # The split and label are left out: re-splitting or correcting ground truth keeps the ids.
    content = [c for c in (spec.image_column, *manifest.feature_columns) if c]
    ids: list[str] = []
    seen: dict[str, int] = {}
    for row in frame[content].itertuples(index=False, name=None):
        text = json.dumps([None if pd.isna(v) else str(v) for v in row])
        base = "ex-" + hashlib.sha256(text.encode()).hexdigest()[:16]
        seen[base] = seen.get(base, 0) + 1
        ids.append(base if seen[base] == 1 else f"{base}-{seen[base]}")
    return ids


def splits(manifest: Manifest, spec: IngestSpec, ids: list[str], labels: pd.Series | None) -> list[str]:
    """The split column, else a seeded test_fraction split, stratified by label when possible."""
    if spec.split_column:
        values = manifest.frame[spec.split_column].map(lambda v: "" if pd.isna(v) else str(v).strip().lower())
        bad = ~values.isin(SPLITS)
        if bad.any():
            raise InvalidArgument(
                f"split column {spec.split_column!r} must hold 'pool' or 'test'; "
                f"manifest rows {_rows(bad)} hold {sorted(set(values[bad]))[:MAX_LISTED]}"
            )
        return list(values)
    fraction = spec.test_fraction
    if not 0.0 <= fraction < 1.0:
        raise InvalidArgument(f"test_fraction {fraction} must be in [0, 1)")
    if fraction == 0.0:
        return [POOL] * len(ids)
    if len(ids) < 2:
        raise InvalidArgument("a test split needs at least 2 examples: set test_fraction to 0")
    if math.ceil(fraction * len(ids)) >= len(ids):  # scikit-learn rounds the test size up
        raise InvalidArgument(
            f"test_fraction {fraction} of {len(ids)} examples leaves no pool example to label: "
            "lower test_fraction"
        )
    from sklearn.model_selection import train_test_split

    # Split by sorted id, so the split depends on the ids and the seed, not the row order.
    order = sorted(range(len(ids)), key=ids.__getitem__)
    strata = [labels.iloc[i] or "" for i in order] if labels is not None else None
    state = spec.seed % 2**32
    try:
        _, test = train_test_split(order, test_size=fraction, random_state=state, stratify=strata)
    except ValueError:  # a class too small to stratify: plain random split
        _, test = train_test_split(order, test_size=fraction, random_state=state)
    result = [POOL] * len(ids)
    for i in test:
        result[i] = TEST
    return result
