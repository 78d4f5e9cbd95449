"""What a labeler sees in Label Studio: the labeling config made from the dataset's classes, and each
task's data (the example, shown as it is best shown, and LabelLoop's prediction as a header).

Images go as links a browser can open: a presigned URL on S3 (valid for a week, S3's longest), the
bytes themselves as a data: URI on a local-folder store (whose file:// links a browser refuses).
A single text column is shown as text; numeric or several columns as a table.
"""

from __future__ import annotations

import base64
import io
import mimetypes
from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import quoteattr

import pyarrow as pa
import pyarrow.parquet as pq

from labelloop.controller.labeling.tasks import ExamplePrediction
from labelloop.core.storage import ObjectStore
from labelloop.v1 import dataset_store_pb2

# The control tag's name: annotations are read back from the result with this from_name.
CHOICES_NAME = "label"
HEADER_FIELD = "labelloop_prediction"
IMAGE, TEXT, TABLE = "image", "text", "features"
IMAGE_LINK_SECONDS = 7 * 24 * 3600


@dataclass(frozen=True)
class Layout:
    """How a dataset's examples are shown: one Label Studio object tag and the task field it reads."""

    kind: str  # IMAGE, TEXT or TABLE (also the tag's name and the task data's field)
    image_column: str
    feature_columns: tuple[str, ...]


def layout_of(dataset: dataset_store_pb2.Dataset, schema: pa.Schema) -> Layout:
    features = tuple(c for c in dataset.feature_columns if c in schema.names)
    if dataset.image_column:
        return Layout(IMAGE, dataset.image_column, features)
    if len(features) == 1 and _is_text(schema.field(features[0]).type):
        return Layout(TEXT, "", features)
    return Layout(TABLE, "", features)


def labeling_config(classes: Sequence[str], layout: Layout) -> str:
    """A single-choice classification over the classes, the model's prediction shown above."""
    tags = {
        IMAGE: f'<Image name="{IMAGE}" value="${IMAGE}" maxWidth="480px"/>',
        TEXT: f'<Text name="{TEXT}" value="${TEXT}"/>',
        TABLE: f'<Table name="{TABLE}" value="${TABLE}"/>',
    }
    choices = "\n    ".join(f"<Choice value={quoteattr(c)}/>" for c in classes)
    return (
        "<View>\n"
        f'  <Header value="${HEADER_FIELD}" size="5"/>\n'
        f"  {tags[layout.kind]}\n"
        f'  <Choices name="{CHOICES_NAME}" toName="{layout.kind}" choice="single-radio" '
        'showInline="true" required="true">\n'
        f"    {choices}\n"
        "  </Choices>\n"
        "</View>\n"
    )


def header_text(prediction: ExamplePrediction | None, round_number: int) -> str:
    if prediction is None:
        if round_number == 0:
            return "LabelLoop: the first labeled set (no model yet)"
        return f"LabelLoop round {round_number}: no prediction for this example"
    score = "" if prediction.score is None else f", selection score {prediction.score:.3f}"
    return (
        f"LabelLoop model of round {round_number} predicts {prediction.label} "
        f"({prediction.confidence:.0%}){score}"
    )


def read_examples(
    store: ObjectStore, dataset: dataset_store_pb2.Dataset, example_ids: Sequence[str]
) -> tuple[Layout, dict[str, dict[str, object]]]:
    """The layout and, per example id, the columns it shows (image key, or feature values)."""
    data = io.BytesIO(store.get_bytes(store.ref_to_key(dataset.examples_uri)))
    schema = pq.read_schema(data)
    layout = layout_of(dataset, schema)
    columns = [c for c in (layout.image_column, *layout.feature_columns) if c]
    data.seek(0)
    table = pq.read_table(data, columns=["example_id", *columns])
    wanted = set(example_ids)
    rows = {}
    for row in table.to_pylist():
        example_id = str(row.pop("example_id"))
        if example_id in wanted:
            rows[example_id] = row
    return layout, rows


def shown_value(store: ObjectStore, layout: Layout, row: dict[str, object]) -> object:
    """The task data's value of the layout's field for one example."""
    if layout.kind == IMAGE:
        return image_link(store, str(row[layout.image_column]))
    if layout.kind == TEXT:
        return str(row[layout.feature_columns[0]])
    return {c: _cell(row.get(c)) for c in layout.feature_columns}


def image_link(store: ObjectStore, key: str) -> str:
    link = store.presigned_url(key, IMAGE_LINK_SECONDS)
    if not link.startswith("file:"):
        return link
    mime = mimetypes.guess_type(key)[0] or "application/octet-stream"
    return f"data:{mime};base64,{base64.b64encode(store.get_bytes(key)).decode()}"


def _cell(value: object) -> object:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return "" if value is None else value


def _is_text(kind: pa.DataType) -> bool:
    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind))
