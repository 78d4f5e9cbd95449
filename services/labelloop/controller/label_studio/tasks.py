"""A round's batch as Label Studio tasks: each carries the example, the experiment and round it
belongs to, and the round model's prediction (model version, confidence as the prediction's score,
top class as a pre-filled choice) so that Label Studio can order and pre-fill the tasks.

On the Community Edition a task cannot be handed out again once it has its annotations, so
re-labeling an example in a later round is a second task for the same example (one per round).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from labelloop.controller.label_studio.content import (
    CHOICES_NAME,
    HEADER_FIELD,
    Layout,
    header_text,
    shown_value,
)
from labelloop.controller.label_studio.project import (
    BATCH_FIELD,
    EXAMPLE_FIELD,
    EXPERIMENT_FIELD,
    ROUND_FIELD,
)
from labelloop.controller.labeling.tasks import ExamplePrediction
from labelloop.core.storage import ObjectStore

# Task data fields with LabelLoop's numbers: columns of Label Studio's Data Manager, sortable.
SCORE_FIELD, CONFIDENCE_FIELD, PREDICTED_FIELD = (
    "labelloop_score",
    "labelloop_confidence",
    "labelloop_predicted",
)


def model_version(experiment: str, round_number: int) -> str:
    """Short: Label Studio shows it on a narrow tab beside the prediction's score."""
    return f"{experiment}-r{round_number}"


def round_tasks(
    store: ObjectStore,
    experiment: str,
    round_number: int,
    batch: str,
    layout: Layout,
    rows: Mapping[str, dict[str, object]],
    example_ids: Sequence[str],
    predictions: Mapping[str, ExamplePrediction],
) -> list[dict[str, Any]]:
    tasks = []
    for example_id in example_ids:
        prediction = predictions.get(example_id)
        data: dict[str, Any] = {
            layout.kind: shown_value(store, layout, rows[example_id]),
            HEADER_FIELD: header_text(prediction, round_number),
            EXAMPLE_FIELD: example_id,
            EXPERIMENT_FIELD: experiment,
            ROUND_FIELD: round_number,
            BATCH_FIELD: batch,
        }
        task: dict[str, Any] = {"data": data}
        if prediction is not None:
            data[PREDICTED_FIELD] = prediction.label
            data[CONFIDENCE_FIELD] = round(prediction.confidence, 4)
            if prediction.score is not None:
                data[SCORE_FIELD] = round(prediction.score, 6)
            task["predictions"] = [
                {
                    "model_version": model_version(experiment, round_number),
                    "score": prediction.confidence,
                    "result": [
                        {
                            "from_name": CHOICES_NAME,
                            "to_name": layout.kind,
                            "type": "choices",
                            "value": {"choices": [prediction.label]},
                        }
                    ],
                }
            ]
        tasks.append(task)
    return tasks
