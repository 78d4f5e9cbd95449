"""The object-store layout: every key the services write, in one place (docs/architecture.md,
"Object-store layout").

Keys are relative to the store's root and use "/" whatever the backend. A folder ("prefix") always
ends with "/". The services share this module instead of each other's: the trainer reads what the
dataset store wrote, the controller hands the trainer a round's folder.
"""

from __future__ import annotations

DATASETS_PREFIX = "datasets/"
OPERATIONS_PREFIX = "operations/"
EXPERIMENTS_PREFIX = "experiments/"
RUNS_PREFIX = "runs/"  # trainer runs started without an output folder: runs/{operation}/
UPLOADS_PREFIX = "uploads/"  # files clients upload for a service to read


# Datasets (written by the dataset store) -------------------------------------------------------


def dataset_prefix(dataset: str) -> str:
    return f"{DATASETS_PREFIX}{dataset}/"


def dataset_key(dataset: str) -> str:
    """Dataset metadata: classes, columns, counts."""
    return f"{dataset_prefix(dataset)}dataset.json"


def examples_key(dataset: str) -> str:
    """One row per example: example_id, split, image key, features, ground truth."""
    return f"{dataset_prefix(dataset)}examples.parquet"


def files_prefix(dataset: str) -> str:
    """Images copied from the manifest."""
    return f"{dataset_prefix(dataset)}files/"


def annotations_prefix(dataset: str, annotation_set: str) -> str:
    """The annotation log of one set: one JSON file per append request."""
    return f"{dataset_prefix(dataset)}annotations/{annotation_set}/"


def snapshots_prefix(dataset: str) -> str:
    return f"{dataset_prefix(dataset)}snapshots/"


def snapshot_prefix(dataset: str, snapshot: str) -> str:
    """An immutable labeled set."""
    return f"{snapshots_prefix(dataset)}{snapshot}/"


def snapshot_key(dataset: str, snapshot: str) -> str:
    return f"{snapshot_prefix(dataset, snapshot)}snapshot.json"


def snapshot_labels_key(dataset: str, snapshot: str) -> str:
    """One row per labeled example: its consensus label and annotation count."""
    return f"{snapshot_prefix(dataset, snapshot)}labels.parquet"


def snapshot_multiannotator_key(dataset: str, snapshot: str) -> str:
    """[labeled examples, annotators] class indices, NaN where an annotator gave no label."""
    return f"{snapshot_prefix(dataset, snapshot)}labels_multiannotator.npy"


def snapshot_annotators_key(dataset: str, snapshot: str) -> str:
    """The annotators in the column order of labels_multiannotator.npy."""
    return f"{snapshot_prefix(dataset, snapshot)}annotators.json"


def embeddings_cache_prefix(dataset: str, backbone: str) -> str:
    """The trainer's cache of a frozen backbone's embeddings of every example of the dataset, one folder
    per backbone configuration (a digest): embeddings.npy, example_ids.json, backbone.json (last)."""
    return f"{dataset_prefix(dataset)}embeddings/{backbone}/"


# Trainer operations ------------------------------------------------------------------------------


def operation_key(operation_id: str) -> str:
    return f"{OPERATIONS_PREFIX}{operation_id}.json"


# Experiments (written by the controller) ---------------------------------------------------------


def experiment_prefix(experiment_id: str) -> str:
    return f"{EXPERIMENTS_PREFIX}{experiment_id}/"


def experiment_key(experiment_id: str) -> str:
    """The experiment's record, rewritten after every step."""
    return f"{experiment_prefix(experiment_id)}experiment.json"


def deleted_experiment_key(experiment_id: str) -> str:
    """What is left of a deleted experiment: its id stays taken, since trainer runs, snapshots and
    annotation requests in the dataset carry it and a new experiment would find them."""
    return f"{experiment_prefix(experiment_id)}deleted.json"


def round_key(experiment_id: str, number: int) -> str:
    """A round's record, rewritten after every step of the round."""
    return f"{experiment_prefix(experiment_id)}rounds/{number}.json"


def round_prefix(experiment_id: str, number: int) -> str:
    """Folder of a round's artifacts: the trainer's output (model, probabilities) and the scores."""
    return f"{experiment_prefix(experiment_id)}rounds/{number}/"


def labeling_tasks_prefix(experiment_id: str) -> str:
    """The labeling queue's task boards of an experiment, one JSON per round (controller/labeling)."""
    return f"{experiment_prefix(experiment_id)}tasks/"


def labeling_tasks_key(experiment_id: str, number: int, batch: str) -> str:
    """One batch's tasks (batch "selected", or "initial" for round 0's first labeled set): the
    examples to label, their predictions, and every lease given out."""
    return f"{labeling_tasks_prefix(experiment_id)}round-{number:06d}-{batch}.json"


# A training run's output folder (a round's folder when the controller starts the run) ---------------


def model_prefix(output_prefix: str) -> str:
    """The saved predictor."""
    return f"{output_prefix}model/"


def probabilities_key(output_prefix: str, split: str) -> str:
    """[rows, classes] probabilities of a split ("pool", "test"; the controller adds "unlabeled",
    "labeled"), in the dataset's class order."""
    return f"{output_prefix}{split}_probabilities.npy"


def example_ids_key(output_prefix: str, split: str) -> str:
    """The example ids of the rows of probabilities_key(output_prefix, split), as a JSON list."""
    return f"{output_prefix}{split}_example_ids.json"


def embeddings_key(output_prefix: str, split: str) -> str:
    """[rows, dims] float32 embeddings of a split's examples ("pool"), rows as in example_ids_key."""
    return f"{output_prefix}{split}_embeddings.npy"


def predictions_key(output_prefix: str, extension: str) -> str:
    """A prediction run's table of new examples' predicted labels and probabilities ("parquet", "csv")."""
    return f"{output_prefix}predictions.{extension}"


def upload_key(upload_id: str, filename: str) -> str:
    """A file a client uploads for a service to read, e.g. `labelloop predict --on-trainer`'s input."""
    return f"{UPLOADS_PREFIX}{upload_id}/{filename}"


def scores_prefix(round_folder: str) -> str:
    """Where the scorer writes a round's unlabeled_scores.npy and labeled_scores.npy."""
    return f"{round_folder}scores/"


# Labeling reports and exports (written by the controller, CROWDLAB outputs by the scorer) ----------


def labeling_prefix(experiment_id: str, number: int) -> str:
    """A round's labeling report: consensus of the labels the round's model trains on (report.json,
    consensus.parquet, annotators.parquet; labels.parquet when CROWDLAB's consensus is trained on)."""
    return f"{round_prefix(experiment_id, number)}labeling/"


def labeling_report_key(experiment_id: str, number: int) -> str:
    """The round's LabelingReport as JSON (proto field names)."""
    return f"{labeling_prefix(experiment_id, number)}report.json"


def export_prefix(experiment_id: str, export_id: str) -> str:
    """One export of an experiment's labeled data set (labels, annotations, annotators)."""
    return f"{experiment_prefix(experiment_id)}exports/{export_id}/"
