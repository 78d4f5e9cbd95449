"""`labelloop datasets create|list|get|delete`: datasets in the store."""

from __future__ import annotations

import argparse
from pathlib import Path

from labelloop.cli.output import as_data, columns, emit, fields
from labelloop.client import LabelLoopClient
from labelloop.v1 import dataset_store_pb2


def _client(args: argparse.Namespace) -> LabelLoopClient:
    return LabelLoopClient(args.controller, args.store)


def _row(dataset: dataset_store_pb2.Dataset) -> list[object]:
    kind = "images" if dataset.image_column else "table"
    return [dataset.name, kind, len(dataset.classes), dataset.pool_count, dataset.test_count]


def _table(datasets: list[dataset_store_pb2.Dataset]) -> str:
    return columns(["name", "data", "classes", "pool", "test"], [_row(d) for d in datasets])


def _details(dataset: dataset_store_pb2.Dataset) -> str:
    return fields(
        [
            ("name", dataset.name),
            ("classes", ", ".join(dataset.classes)),
            ("examples", f"{dataset.example_count} ({dataset.pool_count} pool, {dataset.test_count} test)"),
            ("image column", dataset.image_column),
            ("feature columns", ", ".join(dataset.feature_columns)),
            ("label column", dataset.label_column),
            ("created", dataset.create_time.ToJsonString() if dataset.HasField("create_time") else ""),
        ]
    )


def feature_columns_of(args: argparse.Namespace) -> list[str]:
    """--feature-columns a,b, --feature-column c and --text-column t, in that order, each once.

    The trainer embeds a feature column whose values are not numbers with the text model, and feeds
    numeric ones to the model as they are; the store keeps a --text-column as text even where its
    values look like numbers (ids, digit strings). It fails here when also named as a number column.
    """
    listed = [c.strip() for c in args.feature_columns.split(",") if c.strip()]
    numeric = listed + [c.strip() for c in args.feature_column if c.strip()]
    text = [c.strip() for c in args.text_column if c.strip()]
    if both := sorted(set(numeric) & set(text)):
        raise ValueError(f"--text-column {', '.join(both)} is also given as a feature column: name it once")
    if args.image_column and args.image_column in numeric + text:
        raise ValueError(
            f"--image-column {args.image_column} is also given as a feature or text column: name it once"
        )
    return list(dict.fromkeys(numeric + text))


def cmd_create(args: argparse.Namespace) -> int:
    features = feature_columns_of(args)
    manifest = args.manifest
    # The store reads the manifest: a file here is sent by its absolute path; any other path is sent as
    # given, for a store that runs elsewhere (a container, a pod), which says if it has no such file.
    if "://" not in manifest and Path(manifest).is_file():
        manifest = str(Path(manifest).absolute())
    with _client(args) as client:
        dataset = client.create_dataset(
            args.dataset_id,
            manifest,
            image_column=args.image_column,
            feature_columns=features,
            label_column=args.label_column,
            split_column=args.split_column,
            test_fraction=args.test_fraction,
            id_column=args.id_column,
            classes=[c.strip() for c in args.classes.split(",") if c.strip()],
            seed=args.seed,
            text_columns=[c.strip() for c in args.text_column if c.strip()],
        )
    emit(args, as_data(dataset), lambda: f"{dataset.name} created\n{_details(dataset)}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    with _client(args) as client:
        datasets = client.list_datasets()
    emit(args, [as_data(d) for d in datasets], lambda: _table(datasets))
    return 0


def cmd_get(args: argparse.Namespace) -> int:
    if not args.dataset:
        return cmd_list(args)
    with _client(args) as client:
        dataset = client.get_dataset(args.dataset)
    emit(args, as_data(dataset), lambda: _details(dataset))
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    deleted = []
    with _client(args) as client:
        for dataset in args.datasets:
            client.delete_dataset(dataset, force=args.force)
            deleted.append(dataset if dataset.startswith("datasets/") else f"datasets/{dataset}")
    emit(args, {"deleted": deleted}, lambda: "\n".join(f"{name} deleted" for name in deleted))
    return 0


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Adds `datasets` and its verbs to the `labelloop` parser."""
    datasets = commands.add_parser(
        "datasets", aliases=["dataset"], help="datasets in the store"
    ).add_subparsers(dest="verb", required=True, metavar="VERB")
    create = datasets.add_parser(
        "create",
        help="ingest a CSV/Parquet manifest as a new dataset",
        description="Ingest a manifest: one row per example. Images: --image-column. Text: "
        "--text-column. A table: --feature-columns (default: every column not named otherwise).",
    )
    create.add_argument("dataset_id", help="the new dataset's id (lower-case letters, digits, '-')")
    create.add_argument("--manifest", required=True, help="path or object-store URI of the manifest")
    create.add_argument(
        "--image-column",
        default="",
        help="images: the column of image paths (relative to the manifest) or URIs",
    )
    create.add_argument(
        "--text-column",
        action="append",
        default=[],
        metavar="COLUMN",
        help="text: a column of text the model reads, embedded with the text preset's sentence model "
        "(repeat for several)",
    )
    create.add_argument(
        "--feature-columns",
        default="",
        metavar="A,B,...",
        help="a table: the columns of numbers the model reads, comma-separated "
        "(default, when no feature or text column is named: every column no other flag names)",
    )
    create.add_argument(
        "--feature-column",
        action="append",
        default=[],
        metavar="COLUMN",
        help="one more feature column (repeat for several; same as listing it in --feature-columns)",
    )
    create.add_argument(
        "--label-column", default="", help="column of known labels (the simulated annotators' truth)"
    )
    create.add_argument(
        "--split-column",
        default="",
        help="column saying 'pool' or 'test' for each row (else --test-fraction)",
    )
    create.add_argument(
        "--test-fraction",
        type=float,
        default=0.0,
        help="share of labeled rows held out for the test accuracy, e.g. 0.3",
    )
    create.add_argument(
        "--id-column", default="", help="column of stable example ids (default: the row number)"
    )
    create.add_argument(
        "--classes", default="", help="the class set, comma-separated (a dataset without any labels needs it)"
    )
    create.add_argument("--seed", type=int, default=0, help="seed of the test split")
    create.set_defaults(func=cmd_create)

    listing = datasets.add_parser("list", aliases=["ls"], help="every dataset in the store")
    listing.set_defaults(func=cmd_list)

    get = datasets.add_parser("get", help="one dataset (or every one, without a name)")
    get.add_argument("dataset", nargs="?", default="", help="dataset id or datasets/{id}")
    get.set_defaults(func=cmd_get)

    delete = datasets.add_parser(
        "delete", aliases=["rm"], help="delete datasets with their files, annotations and snapshots"
    )
    delete.add_argument("datasets", nargs="+", metavar="dataset", help="dataset id or datasets/{id}")
    delete.add_argument(
        "--force",
        action="store_true",
        help="delete even while experiments that have not ended use it (they then fail)",
    )
    delete.set_defaults(func=cmd_delete)
