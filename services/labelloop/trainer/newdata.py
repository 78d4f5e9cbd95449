"""Prediction of new examples: a manifest (CSV or Parquet in the object store) and a stored model folder.

The manifest has the model's input columns (its card's image and feature columns; the image column
may have another name, given as image_column) and, optionally, a column identifying each row. Image
cells are keys or URIs of this object store, like a dataset's. The predictions go to
`{output}/predictions.{csv|parquet}` (the manifest's format): row, example_id (from id_column),
predicted_label, score, and prob_{class} for every class of the model's dataset.

`check_request` runs in the trainer service, so a bad request fails the RPC with INVALID_ARGUMENT;
`predict_manifest` runs in the job (JobKind.PREDICT_NEW).
"""

from __future__ import annotations

import io
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from labelloop.core import layout, tables
from labelloop.core.errors import FailedPrecondition, InvalidArgument, NotFound
from labelloop.core.storage import ObjectStore, download_prefix
from labelloop.trainer import data
from labelloop.trainer.contract import JobSpec
from labelloop.trainer.predictor import ModelCard, load_predictor, predictions_table, read_card

Report = Callable[[float, str], None]
FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
CSV_HEAD_BYTES = 1 << 16  # a request reads this much of a CSV manifest to check its header


def table_format(name: str) -> str:
    """ "csv" or "parquet" from a file name; InvalidArgument for anything else."""
    suffix = Path(name.split("?", 1)[0]).suffix.lower()
    if suffix not in FORMATS:
        raise InvalidArgument(f"{name!r} must be a .csv or .parquet file of the rows to predict")
    return FORMATS[suffix]


def read_table(content: bytes, name: str, header_only: bool = False) -> pd.DataFrame:
    """A CSV or Parquet table by its name's extension; ids and text stay strings in a CSV."""
    fmt = table_format(name)
    try:
        if fmt == "csv":
            return pd.read_csv(io.BytesIO(content), nrows=0 if header_only else None)
        if header_only:
            import pyarrow.parquet as pq

            return pd.DataFrame(columns=pq.read_schema(io.BytesIO(content)).names)
        return pd.read_parquet(io.BytesIO(content))
    except Exception as error:  # pandas and pyarrow raise many kinds for a malformed file
        raise InvalidArgument(f"{name!r} is not a readable {fmt.upper()} file: {error}") from None


def write_table(table: pd.DataFrame, fmt: str) -> bytes:
    if fmt == "csv":
        return table.to_csv(index=False).encode()
    return tables.frame_bytes(table)


def check_columns(card: ModelCard, columns: list[str], image_column: str, id_column: str, what: str) -> None:
    """InvalidArgument naming what the table lacks: the model's inputs and the id column."""
    if image_column and not card.image_column:
        raise InvalidArgument(
            f"image_column {image_column!r} is set, but the model reads no image (its inputs are "
            f"{card.input_columns}): leave image_column empty"
        )
    needed = [image_column or card.image_column] if card.image_column else []
    needed += card.feature_columns
    missing = [c for c in needed if c not in columns]
    if missing:
        hint = (
            f"; if the images are in another column, name it with image_column (the model's is "
            f"{card.image_column!r})"
            if card.image_column
            else ""
        )
        raise InvalidArgument(
            f"{what} lacks the column(s) {missing} the model reads (columns found: {columns[:20]}){hint}"
        )
    if id_column and id_column not in columns:
        raise InvalidArgument(
            f"id_column {id_column!r} is not a column of {what} (columns found: {columns[:20]})"
        )


def check_request(
    store: ObjectStore, model_key: str, manifest_key: str, image_column: str, id_column: str
) -> ModelCard:
    """The model's card, after checking that the manifest can be predicted by it."""
    card = read_card(store, model_key)
    if card is None:
        raise FailedPrecondition(
            f"{store.uri(model_key)} is a model folder saved before LabelLoop wrote model cards: predict it "
            "locally with `labelloop predict`, or train it again"
        )
    try:
        header = read_table(_head(store, manifest_key), manifest_key, header_only=True)
    except NotFound:
        raise NotFound(f"manifest_uri: {store.uri(manifest_key)} does not exist") from None
    check_columns(card, [str(c) for c in header.columns], image_column, id_column, "the manifest")
    return card


def _head(store: ObjectStore, key: str) -> bytes:
    """Enough of the manifest to read its columns: a CSV's first bytes, a Parquet file whole."""
    if table_format(key) == "csv":
        try:
            head = store.get_range(key, 0, CSV_HEAD_BYTES)
        except NotFound:
            raise
        except Exception:  # S3 refuses a range of an empty object: read it whole below
            head = b""
        if b"\n" in head:  # the whole header line is there
            return head
    return store.get_bytes(key)


def predict_manifest(spec: JobSpec, store: ObjectStore, report: Report, cache_dir: Path) -> dict[str, Any]:
    """PREDICT_NEW: the manifest's rows predicted by the model under spec.model_key; result.json content."""
    prefix = spec.output_prefix.rstrip("/") + "/"
    model_key = spec.model_key.rstrip("/") + "/"
    report(0.02, "reading the manifest")
    frame = read_table(store.get_bytes(spec.examples_key), spec.examples_key)
    workdir = Path(tempfile.mkdtemp(prefix=f"labelloop-{spec.job_id}-"))
    try:
        report(0.05, "loading the model")
        predictor = load_predictor(download_prefix(store, model_key, workdir / "model"), cache_dir)
        card = predictor.card
        check_columns(
            card, [str(c) for c in frame.columns], spec.image_column, spec.id_column, "the manifest"
        )
        inputs = frame.copy()
        if card.image_column:
            report(0.1, f"fetching {len(frame)} images")
            images = frame[spec.image_column or card.image_column]
            inputs[card.image_column] = data.local_image_paths(store, images, cache_dir)
        report(0.2, f"predicting {len(frame)} rows")
        start = time.perf_counter()
        proba = predictor.predict_proba(inputs)
        seconds = time.perf_counter() - start
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    ids = frame[spec.id_column].astype(str).tolist() if spec.id_column else None
    fmt = table_format(spec.examples_key)
    key = layout.predictions_key(prefix, fmt)
    store.put_bytes(key, write_table(predictions_table(proba, card.classes, ids), fmt))
    return {
        "classes": list(card.classes),
        "model_key": model_key,
        "mode": card.kind,
        "predictions_key": key,
        "n_predicted": len(frame),
        "predict_seconds": seconds,
    }
