"""ExportLabels: an experiment's labeled data set as files in its folder of the object store.

Three tables, as Parquet (default) or CSV, under layout.export_prefix(e, "a{annotations}-r{round}"):
- labels: one row per labeled example: example_id, consensus_label, consensus_quality,
  consensus_method, annotation_count, then the example's features (the image column as a store URI;
  the dataset's ground-truth column is left out). The consensus is the latest labeling report's
  (CROWDLAB, or the snapshot's majority vote); examples labeled after that report's snapshot get the
  majority vote of their annotators' latest labels ("majority_vote", quality = annotator agreement).
- annotations: every annotation of the log: example_id, annotator, label, create_time.
- annotators: annotator, quality (the report's; NaN for annotators newer than it), label_count,
  agreement_with_consensus (against the exported consensus); worst first.
Label Studio's JSON instead writes tasks.json (a list of tasks: data = example_id, features and the
image URI; annotations with choices results, one per annotation, completed_by = the annotator's
number in annotators.json; meta = the consensus) and annotators.json; labels_uri and annotations_uri
both name tasks.json. The folder name only depends on the log's size and the report's round, so
exporting again without new labels rewrites the same files.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from labelloop.controller.clients import call
from labelloop.controller.consensus import MAJORITY_VOTE, latest_report
from labelloop.controller.experiments import Experiments
from labelloop.controller.labelset import LabelSet
from labelloop.core import layout, names, tables
from labelloop.core.api import defined_values
from labelloop.core.errors import FailedPrecondition, InvalidArgument
from labelloop.core.storage import ObjectStore
from labelloop.core.votes import latest_votes, majority
from labelloop.v1 import dataset_store_pb2, labeling_pb2

PARQUET = labeling_pb2.EXPORT_FORMAT_PARQUET
CSV = labeling_pb2.EXPORT_FORMAT_CSV
LABEL_STUDIO_JSON = labeling_pb2.EXPORT_FORMAT_LABEL_STUDIO_JSON
# The Label Studio control and object names of the tasks' results (<Choices name="label" toName=...>).
LS_FROM_NAME = "label"


def write_export(
    experiments: Experiments, request: labeling_pb2.ExportLabelsRequest
) -> labeling_pb2.ExportLabelsResponse:
    experiment = experiments.get(request.name)
    experiment_id = names.parse(request.name, "experiments")[0]
    fmt = request.format or PARQUET
    if fmt not in defined_values(labeling_pb2.ExportFormat):
        raise InvalidArgument(f"format {fmt} is not an ExportFormat: use PARQUET, CSV or LABEL_STUDIO_JSON")
    store = experiments.store
    dataset = call(
        experiments.stubs.store.GetDataset,
        dataset_store_pb2.GetDatasetRequest(name=experiment.config.dataset),
        what=f"reading {experiment.config.dataset}",
    ).dataset
    log = LabelSet(experiments.stubs.store, store, dataset.name, experiment_id, lambda: False).annotations()
    if not log:
        raise FailedPrecondition(f"{request.name} has no labels yet: nothing to export")
    found = latest_report(store, experiment_id, experiment.current_round)
    report = found[1] if found else None
    annotations = annotations_frame(log)
    labels = labels_frame(store, annotations, report)
    annotators = annotators_frame(annotations, labels, report)
    labels = labels.merge(features_frame(store, dataset), on="example_id", how="left")
    prefix = layout.export_prefix(experiment_id, f"a{len(log)}" + (f"-r{found[0]}" if found else ""))
    if fmt == LABEL_STUDIO_JSON:
        tasks_uri = store.uri(prefix + "tasks.json")
        image_column = dataset.image_column
        store.put_json(
            prefix + "tasks.json", label_studio_tasks(labels, annotations, annotators, image_column)
        )
        store.put_json(
            prefix + "annotators.json", _records(annotators.assign(id=range(1, len(annotators) + 1)))
        )
        uris = [tasks_uri, tasks_uri, store.uri(prefix + "annotators.json")]
    else:
        uris = [
            _write_table(store, prefix + name, frame, fmt)
            for name, frame in (("labels", labels), ("annotations", annotations), ("annotators", annotators))
        ]
    model_round, model_uri = latest_model(experiments, experiment_id, experiment.current_round)
    return labeling_pb2.ExportLabelsResponse(
        labels_uri=uris[0],
        annotations_uri=uris[1],
        annotators_uri=uris[2],
        model_uri=model_uri,
        round=model_round,
    )


def annotations_frame(log: list[dataset_store_pb2.Annotation]) -> pd.DataFrame:
    """The log in append order: example_id, annotator, label, create_time (UTC)."""
    return pd.DataFrame(
        {
            "example_id": pd.Series([a.example_id for a in log], dtype=object),
            "annotator": pd.Series([a.annotator for a in log], dtype=object),
            "label": pd.Series([a.label for a in log], dtype=object),
            "create_time": pd.to_datetime([a.create_time.ToNanoseconds() for a in log], unit="ns", utc=True),
        }
    )


def majority_votes(annotations: pd.DataFrame) -> pd.DataFrame:
    """Per example: the majority of its annotators' latest labels (core/votes.py, as the store's
    snapshots decide), annotator agreement, annotation count."""
    votes = latest_votes(annotations[["example_id", "annotator", "label"]].itertuples(index=False))
    rows = []
    for example_id in sorted(votes):
        winner, count = majority(votes[example_id])
        total = len(votes[example_id])
        rows.append((example_id, winner, count / total, total))
    return pd.DataFrame(
        rows, columns=["example_id", "consensus_label", "consensus_quality", "annotation_count"]
    )


def labels_frame(
    store: ObjectStore, annotations: pd.DataFrame, report: labeling_pb2.LabelingReport | None
) -> pd.DataFrame:
    """One row per labeled example: the report's consensus where it has one, else the majority vote."""
    votes = majority_votes(annotations).assign(consensus_method=MAJORITY_VOTE)
    if report is None or not report.consensus_uri:
        return votes
    consensus = tables.read_frame(store, store.ref_to_key(report.consensus_uri))
    consensus = consensus.assign(
        example_id=consensus["example_id"].astype(str), consensus_method=report.method
    )
    reported = consensus[["example_id", "consensus_label", "consensus_quality", "consensus_method"]]
    newer = votes[~votes["example_id"].isin(reported["example_id"])].drop(columns=["annotation_count"])
    merged = pd.concat([reported, newer], ignore_index=True)
    counts = votes[["example_id", "annotation_count"]]
    merged = merged.merge(counts, on="example_id", how="inner")  # every labeled example is in the log
    return merged.sort_values("example_id", kind="stable").reset_index(drop=True)


def annotators_frame(
    annotations: pd.DataFrame, labels: pd.DataFrame, report: labeling_pb2.LabelingReport | None
) -> pd.DataFrame:
    latest = annotations.drop_duplicates(["example_id", "annotator"], keep="last")
    consensus = labels.set_index("example_id")["consensus_label"]
    agrees = latest["label"].to_numpy() == consensus.reindex(latest["example_id"]).to_numpy()
    stats = latest.assign(agrees=agrees).groupby("annotator", sort=True)["agrees"].agg(["size", "mean"])
    quality = {a.annotator: a.quality for a in report.annotators} if report is not None else {}
    frame = pd.DataFrame(
        {
            "annotator": pd.Series(stats.index.astype(str), dtype=object),
            "quality": np.array([quality.get(a, np.nan) for a in stats.index], dtype=np.float64),
            "label_count": stats["size"].to_numpy(dtype=np.int64),
            "agreement_with_consensus": stats["mean"].to_numpy(dtype=np.float64),
        }
    )
    order = np.lexsort((frame["agreement_with_consensus"], frame["quality"].fillna(np.inf)))
    return frame.iloc[order].reset_index(drop=True)


def features_frame(store: ObjectStore, dataset: dataset_store_pb2.Dataset) -> pd.DataFrame:
    """example_id, the image column (as store URIs) and the feature columns of the dataset."""
    columns = [c for c in (dataset.image_column, *dataset.feature_columns) if c]
    examples = tables.read_frame(store, store.ref_to_key(dataset.examples_uri), ["example_id", *columns])
    examples["example_id"] = examples["example_id"].astype(str)
    if dataset.image_column:
        examples[dataset.image_column] = [
            store.uri(store.ref_to_key(str(k))) for k in examples[dataset.image_column]
        ]
    return examples


def label_studio_tasks(
    labels: pd.DataFrame, annotations: pd.DataFrame, annotators: pd.DataFrame, image_column: str
) -> list[dict]:
    """Label Studio's JSON export: a task per labeled example, an annotation per label given."""
    number = {a: i + 1 for i, a in enumerate(annotators["annotator"])}
    to_name = "image" if image_column else "text"
    by_example = {key: group for key, group in annotations.groupby("example_id", sort=False)}
    tasks = []
    for task_id, row in enumerate(_records(labels), start=1):
        data = {k: v for k, v in row.items() if not k.startswith("consensus_") and k != "annotation_count"}
        if image_column:
            data["image"] = data.pop(image_column)
        given = by_example[row["example_id"]]
        tasks.append(
            {
                "id": task_id,
                "data": data,
                "annotations": [
                    {
                        "id": task_id * 1000 + k,
                        "completed_by": number[a["annotator"]],
                        "result": [
                            {
                                "from_name": LS_FROM_NAME,
                                "to_name": to_name,
                                "type": "choices",
                                "value": {"choices": [a["label"]]},
                            }
                        ],
                        "created_at": pd.Timestamp(a["create_time"]).isoformat(),
                        "was_cancelled": False,
                        "ground_truth": False,
                    }
                    for k, a in enumerate(given.to_dict("records"))
                ],
                "predictions": [],
                "meta": {k: row[k] for k in ("consensus_label", "consensus_quality", "consensus_method")},
            }
        )
    return tasks


def latest_model(experiments: Experiments, experiment_id: str, current_round: int) -> tuple[int, str]:
    """The newest round with a trained model and its predictor folder; (-1, "") before any."""
    for record in reversed(experiments.records.load_rounds(experiment_id, current_round)):
        if record.round.model_uri:
            return record.round.number, record.round.model_uri
    return -1, ""


def _records(frame: pd.DataFrame) -> list[dict]:
    """Rows as JSON-ready dicts (NaN becomes null, numpy scalars plain numbers)."""
    return json.loads(frame.to_json(orient="records", date_format="iso"))


def _write_table(store: ObjectStore, stem: str, frame: pd.DataFrame, fmt: int) -> str:
    if fmt == CSV:
        store.put_bytes(stem + ".csv", frame.to_csv(index=False).encode())
        return store.uri(stem + ".csv")
    tables.put_frame(store, stem + ".parquet", frame)
    return store.uri(stem + ".parquet")
