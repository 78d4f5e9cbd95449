"""`labelloop predict` and `labelloop models pull`: a trained model on new data, here or on the trainer.

A model is named by a local folder, an object-store URI or key of one, or `experiments/E[/rounds/N]`
(the controller says which folder: round N's, or the latest round that has a model). Locally the
folder is downloaded and loaded with `labelloop.trainer.predictor.load_predictor`, which needs the
trainer extra (AutoGluon, torch) except for a linear probe on pixels or numbers; no service is needed
when the model is a local folder. With --on-trainer the trainer service predicts
(CreatePredictionRun with a manifest) and the CLI fetches its table.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pandas as pd

from labelloop.client import LabelLoopClient
from labelloop.core import layout
from labelloop.core.config import Settings
from labelloop.core.errors import InvalidArgument, LabelLoopError, NotFound
from labelloop.core.server import channel
from labelloop.core.storage import ObjectStore, download_prefix, open_store
from labelloop.v1 import common_pb2, trainer_pb2, trainer_pb2_grpc

EXPERIMENT_REF = re.compile(r"experiments/(?P<experiment>[^/]+)(?:/rounds/(?P<round>\d+))?/?")
MODEL_HELP = (
    "the model: a local model folder; an object-store URI or key of one "
    "(s3://bucket/experiments/e1/rounds/3/model/); or experiments/E[/rounds/N]: round N's model, or "
    "the latest round's (asked from the controller)"
)


def add_commands(commands: argparse._SubParsersAction) -> None:
    defaults = Settings.from_env()
    predict = commands.add_parser(
        "predict",
        help="predict new examples with a trained model (here, or on the trainer with --on-trainer)",
        description="Writes one row per input row: row, example_id (with --id-column), predicted_label, "
        "score (its probability) and prob_<class> for every class of the model's dataset.",
    )
    predict.add_argument("--model", required=True, help=MODEL_HELP)
    predict.add_argument(
        "--input",
        required=True,
        help="CSV or Parquet of the rows to predict, with the model's image and feature columns; image "
        "cells are file paths (relative to the input file) or object-store URIs; with --on-trainer a "
        "store URI, or a local file that is uploaded (its image cells must then be store keys or URIs)",
    )
    predict.add_argument(
        "--image-column", default="", help="the input's image column, when not named as the model's"
    )
    predict.add_argument(
        "--id-column", default="", help="an input column identifying each row, copied as example_id"
    )
    predict.add_argument("--output", required=True, help="predictions file to write: .csv or .parquet")
    predict.add_argument(
        "--on-trainer",
        action="store_true",
        help="predict on the trainer service (CreatePredictionRun) instead of in this process",
    )
    predict.add_argument(
        "--trainer", default=defaults.trainer_address, help="trainer address, for --on-trainer"
    )
    predict.add_argument(
        "--cache-dir",
        default=str(defaults.cache_dir),
        help="where images from the store are kept and built-in checkpoints built (LABELLOOP_CACHE_DIR)",
    )
    predict.add_argument(
        "--timeout", type=float, default=3600.0, help="seconds to wait for the trainer (--on-trainer)"
    )
    predict.set_defaults(func=cmd_predict)

    models = commands.add_parser("models", help="trained models").add_subparsers(required=True)
    pull = models.add_parser(
        "pull",
        help="download a model folder (self-contained: load it with labelloop.trainer.predictor)",
    )
    pull.add_argument("model", help=MODEL_HELP)
    pull.add_argument("--output", required=True, help="the folder to write; it must not exist yet")
    pull.set_defaults(func=cmd_models_pull)


# Where the model is ---------------------------------------------------------------------------------


def open_store_of(uri: str, settings: Settings) -> ObjectStore:
    """The configured object store (LABELLOOP_STORAGE_*), or its server's other bucket for that URI."""
    if uri.startswith("s3://") and settings.storage.backend == "s3":
        bucket = uri[len("s3://") :].split("/", 1)[0]
        return open_store(settings.with_storage(bucket=bucket).storage)
    return open_store(settings.storage)


def model_location(ref: str, args: argparse.Namespace) -> str:
    """A local folder's path or an object-store URI/key; experiments/E[/rounds/N] asks the controller."""
    if Path(ref).is_dir():
        return str(Path(ref).absolute())
    match = EXPERIMENT_REF.fullmatch(ref)
    if not match:
        return ref
    with LabelLoopClient(args.controller, args.store) as client:
        try:
            return client.model_uri(match["experiment"], int(match["round"] or 0))
        except LookupError as error:
            raise NotFound(str(error)) from None


def local_model(location: str, settings: Settings, target: Path) -> Path:
    """The model folder on this machine: location itself, or a download into target."""
    if location.startswith("file://"):
        location = location[len("file://") :]
    if Path(location).is_dir():
        return Path(location)
    store = open_store_of(location, settings)
    return download_prefix(store, store.ref_to_key(location).rstrip("/") + "/", target)


# Commands ---------------------------------------------------------------------------------------------


def cmd_models_pull(args: argparse.Namespace) -> int:
    target = Path(args.output)
    if target.exists():
        print(f"error: {target} exists; give a new folder", file=sys.stderr)
        return 2
    try:
        location = model_location(args.model, args)
        source = local_model(location, Settings.from_env(), target)
        if source != target:
            shutil.copytree(source, target)
    except LabelLoopError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{location} -> {target}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from labelloop.trainer import newdata

    try:
        output_format = newdata.table_format(args.output)
        location = model_location(args.model, args)
        table = _on_trainer(args, location) if args.on_trainer else _here(args, location)
    except LabelLoopError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_bytes(newdata.write_table(table, output_format))
    counts = table["predicted_label"].value_counts().to_dict() if len(table) else {}
    print(f"{len(table)} rows predicted by {location} -> {args.output}; predicted labels: {counts}")
    return 0


def _read_input(path: str) -> pd.DataFrame:
    from labelloop.trainer import newdata

    if not Path(path).is_file():
        raise InvalidArgument(f"--input {path}: no such file")
    return newdata.read_table(Path(path).read_bytes(), path)


def _here(args: argparse.Namespace, location: str) -> pd.DataFrame:
    from labelloop.trainer import data, newdata
    from labelloop.trainer.predictor import load_predictor

    settings = Settings.from_env()
    cache_dir = Path(args.cache_dir)
    frame = _read_input(args.input)
    with tempfile.TemporaryDirectory(prefix="labelloop-model-") as tmp:
        predictor = load_predictor(local_model(location, settings, Path(tmp) / "model"), cache_dir)
        card = predictor.card
        newdata.check_columns(
            card, [str(c) for c in frame.columns], args.image_column, args.id_column, f"--input {args.input}"
        )
        inputs = frame.copy()
        if card.image_column:
            cells = frame[args.image_column or card.image_column].astype(str)
            in_store = cells.str.contains("://", regex=False)
            base = Path(args.input).absolute().parent
            paths = [str(base / c) for c in cells]  # absolute cells stay as they are
            if in_store.any():
                store = open_store_of(cells[in_store].iloc[0], settings)
                fetched = iter(data.local_image_paths(store, cells[in_store], cache_dir))
                paths = [next(fetched) if s else p for p, s in zip(paths, in_store, strict=True)]
            inputs[card.image_column] = paths
        ids = frame[args.id_column].astype(str).tolist() if args.id_column else None
        return predictor.predict(inputs, ids)


def _on_trainer(args: argparse.Namespace, location: str) -> pd.DataFrame:
    from labelloop.trainer import newdata

    if Path(location).is_dir():
        raise InvalidArgument(
            f"--on-trainer: {location} is a local folder; the trainer reads models from the object store"
        )
    settings = Settings.from_env()
    store = open_store_of(location, settings)
    manifest = args.input
    if "://" not in manifest:  # a local file: upload it where the trainer can read it
        _read_input(manifest)  # fails here for a missing or unreadable file
        key = layout.upload_key(uuid.uuid4().hex[:12], Path(manifest).name)
        store.put_file(key, Path(manifest))
        manifest = store.uri(key)
    stub = trainer_pb2_grpc.TrainerServiceStub(channel(args.trainer))
    request = trainer_pb2.CreatePredictionRunRequest(
        request_id=f"cli-{uuid.uuid4().hex}",
        manifest_uri=manifest,
        model_uri=location,
        image_column=args.image_column,
        id_column=args.id_column,
    )
    operation = stub.CreatePredictionRun(request, timeout=60).operation
    deadline = time.monotonic() + args.timeout
    for update in stub.WatchOperation(
        trainer_pb2.WatchOperationRequest(name=operation.name), timeout=args.timeout
    ):
        operation = update.operation
        if operation.state not in (common_pb2.OPERATION_STATE_PENDING, common_pb2.OPERATION_STATE_RUNNING):
            break
        if time.monotonic() > deadline:
            break
    if operation.state != common_pb2.OPERATION_STATE_SUCCEEDED:
        raise LabelLoopError(
            f"{operation.name} ended {common_pb2.OperationState.Name(operation.state)}: "
            f"{operation.error.message}"
        )
    uri = operation.result.predictions_uri
    return newdata.read_table(store.get_bytes(store.ref_to_key(uri)), uri)
