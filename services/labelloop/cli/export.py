"""`labelloop export` (the labeled data set and the latest model, downloaded into a folder) and
`labelloop report` (a round's consensus and annotator quality)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from google.protobuf import json_format

from labelloop.client import LabelLoopClient, option_names
from labelloop.core.config import Settings
from labelloop.core.storage import ObjectStore, open_store
from labelloop.v1 import labeling_pb2


def _client(args: argparse.Namespace) -> LabelLoopClient:
    return LabelLoopClient(args.controller, args.store)


def _store(args: argparse.Namespace) -> ObjectStore:
    """The object store the services use (LABELLOOP_STORAGE_*), or a local folder given by --data."""
    settings = Settings.from_env()
    if args.data:
        settings = settings.with_storage(root=Path(args.data).absolute())
    return open_store(settings.storage)


def download(store: ObjectStore, response: labeling_pb2.ExportLabelsResponse, output: Path) -> list[Path]:
    """The export's files and the model folder (as output/model/...) copied into `output`."""
    output.mkdir(parents=True, exist_ok=True)
    written = []
    for uri in dict.fromkeys((response.labels_uri, response.annotations_uri, response.annotators_uri)):
        key = store.ref_to_key(uri)
        path = output / key.rsplit("/", 1)[-1]
        store.get_file(key, path)
        written.append(path)
    if response.model_uri:
        prefix = store.ref_to_key(response.model_uri).rstrip("/") + "/"
        for key in store.list(prefix):
            path = output / "model" / key.removeprefix(prefix)
            path.parent.mkdir(parents=True, exist_ok=True)
            store.get_file(key, path)
            written.append(path)
    return written


def cmd_export(args: argparse.Namespace) -> int:
    with _client(args) as client:
        response = client.export_labels(args.experiment, args.format)
    summary = json_format.MessageToDict(response, preserving_proto_field_name=True)
    if args.output:
        files = download(_store(args), response, Path(args.output))
        summary["downloaded"] = len(files)
        summary["output"] = str(Path(args.output).absolute())
    print(json.dumps(summary, indent=1))
    return 0


def format_report(report: labeling_pb2.LabelingReport) -> str:
    lines = [
        f"{report.name}: {report.method}, {report.labeled_count} labeled examples, "
        f"{report.annotation_count} labels from {report.annotator_count} annotators, "
        f"mean consensus quality {report.mean_consensus_quality:.3f}",
        f"{'annotator':<24} {'quality':>8} {'labels':>7} {'agreement':>10}",
    ]
    for a in report.annotators:  # worst first
        lines.append(
            f"{a.annotator:<24} {a.quality:>8.3f} {a.label_count:>7} {a.agreement_with_consensus:>10.3f}"
        )
    return "\n".join(lines)


def cmd_report(args: argparse.Namespace) -> int:
    with _client(args) as client:
        report = client.labeling_report(args.experiment, args.round)
    if args.json:
        print(json.dumps(json_format.MessageToDict(report, preserving_proto_field_name=True), indent=1))
    else:
        print(format_report(report))
    return 0


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Adds `export` and `report` to the `labelloop` parser."""
    export = commands.add_parser(
        "export", help="the labeled data set (consensus, every label, annotator quality) and the latest model"
    )
    export.add_argument("experiment", help="experiment id or experiments/{id}")
    export.add_argument(
        "--format",
        default="parquet",
        help=f"{', '.join(option_names(labeling_pb2.ExportFormat))} (default parquet)",
    )
    export.add_argument(
        "--output", default="", help="download the files and the model folder into this folder"
    )
    export.add_argument(
        "--data", default="", help="local store folder (default: LABELLOOP_STORAGE_* settings)"
    )
    export.set_defaults(func=cmd_export)

    report = commands.add_parser("report", help="consensus and annotator quality (CROWDLAB) of a round")
    report.add_argument("experiment", help="experiment id or experiments/{id}")
    report.add_argument("--round", type=int, default=-1, help="round number (default: the latest report)")
    report.add_argument("--json", action="store_true", help="print the report as JSON")
    report.set_defaults(func=cmd_report)
