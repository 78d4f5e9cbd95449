"""`labelloop`: run the services locally, manage datasets and experiments, run the demo."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

import grpc
from google.protobuf import json_format
from google.protobuf.message import Message

from labelloop import presets
from labelloop.cli.local import LocalCluster, default_ports, free_ports
from labelloop.cli.progress import format_table, watch_with_bars
from labelloop.client import LabelLoopClient, option_names, parse_accuracies, trainer_config
from labelloop.core.config import Settings
from labelloop.v1 import common_pb2, experiments_pb2, trainer_pb2


def _pairs(values: Sequence[str], what: str) -> dict[str, str]:
    pairs = {}
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key:
            raise SystemExit(f"{what} {value!r} is not KEY=VALUE")
        pairs[key] = rest
    return pairs


def _show(message: Message) -> None:
    print(json.dumps(json_format.MessageToDict(message, preserving_proto_field_name=True), indent=1))


def _client(args: argparse.Namespace) -> LabelLoopClient:
    return LabelLoopClient(args.controller, args.store)


# up -------------------------------------------------------------------------------------------


def cmd_up(args: argparse.Namespace) -> int:
    """Starts the five services with the default ports and keeps them running until Ctrl-C."""
    settings = Settings.from_env()
    storage = settings.storage
    if args.data:
        storage = settings.with_storage(root=Path(args.data).absolute()).storage
    log_dir = Path(args.log_dir or (Path(storage.root) / "logs" if storage.backend == "local" else "logs"))
    ports = free_ports() if args.free_ports else default_ports()
    cluster = LocalCluster(storage=storage, log_dir=log_dir, ports=ports, settings=settings)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    cluster.start()
    try:
        for service in cluster.services:
            print(f"{service:>10}  {cluster.address(service)}  metrics {cluster.metrics_url(service)}")
        where = storage.root if storage.backend == "local" else f"s3://{storage.bucket} at {storage.endpoint}"
        print(f"storage: {where}; logs: {log_dir}. Ctrl-C stops everything.", flush=True)
        while not stop.wait(1.0):
            if failed := cluster.failed():
                print(f"{', '.join(failed)} exited; see {log_dir}. Stopping.", file=sys.stderr)
                return 1
        return 0
    finally:
        cluster.stop()


# datasets -------------------------------------------------------------------------------------


def cmd_datasets_create(args: argparse.Namespace) -> int:
    manifest = args.manifest if "://" in args.manifest else str(Path(args.manifest).absolute())
    with _client(args) as client:
        _show(
            client.create_dataset(
                args.dataset_id,
                manifest,
                image_column=args.image_column,
                feature_columns=args.feature_column,
                label_column=args.label_column,
                split_column=args.split_column,
                test_fraction=args.test_fraction,
                id_column=args.id_column,
                seed=args.seed,
            )
        )
    return 0


def cmd_datasets_get(args: argparse.Namespace) -> int:
    with _client(args) as client:
        _show(client.get_dataset(args.dataset))
    return 0


# experiments ----------------------------------------------------------------------------------


def cmd_experiments_create(args: argparse.Namespace) -> int:
    preset = presets.preset_for(args.preset) if args.preset else None
    base: dict = preset.trainer_kwargs() if preset else {}
    trainer = trainer_config(
        {**base.get("hyperparameters", {}), **_pairs(args.hp, "--hp")},
        {**base.get("checkpoints", {}), **_pairs(args.checkpoint, "--checkpoint")},
        time_limit_seconds=args.time_limit,
        num_gpus=args.num_gpus,
        mode=args.training_mode or base.get("mode", ""),
        fine_tune_from_labels=(
            args.fine_tune_from_labels
            if args.fine_tune_from_labels is not None
            else base.get("fine_tune_from_labels", 0)
        ),
    )
    accuracies = parse_accuracies(args.annotator_accuracies) if args.annotator_accuracies else []
    with _client(args) as client:
        _show(
            client.create_experiment(
                args.experiment_id,
                dataset=args.dataset,
                preset=args.preset,
                strategy=args.strategy,
                batch_method=args.batch_method,
                batch_size=args.batch_size,
                per_class=args.per_class,
                initial_example_ids=args.initial_id,
                initial_count=args.initial_count,
                initial_selection=args.initial_selection,
                max_rounds=args.max_rounds,
                label_budget=args.label_budget,
                target_accuracy=args.target_accuracy,
                trainer=trainer,
                noise_rate=args.noise_rate,
                annotator_count=args.annotators,
                annotator_accuracies=accuracies,
                external_labelers=args.external,
                label_timeout_seconds=args.label_timeout,
                allow_relabel=args.allow_relabel,
                max_per_class=args.max_per_class,
                labeled_probabilities=args.labeled_probabilities,
                seed=args.seed,
                start=args.start,
            )
        )
    return 0


def cmd_experiments_action(args: argparse.Namespace) -> int:
    with _client(args) as client:
        _show(getattr(client, args.action)(args.experiment))
    return 0


def cmd_experiments_list(args: argparse.Namespace) -> int:
    with _client(args) as client:
        for experiment in client.list():
            print(
                f"{experiment.name}  {json_format.MessageToDict(experiment).get('state', '')}  "
                f"round {experiment.current_round}  labeled {experiment.labeled_count}  "
                f"accuracy {experiment.latest_test_accuracy:.4f}"
            )
    return 0


def cmd_experiments_rounds(args: argparse.Namespace) -> int:
    with _client(args) as client:
        table = client.rounds_table(args.experiment)
    print(json.dumps(table, indent=1) if args.json else format_table(table))
    return 0


def cmd_experiments_watch(args: argparse.Namespace) -> int:
    with _client(args) as client:
        final = watch_with_bars(client, args.experiment)
        print(format_table(client.rounds_table(args.experiment)))
    print(f"{final.name}: {json_format.MessageToDict(final).get('state')} {final.status_message}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from labelloop.cli.demo import run_demo

    return run_demo(args)


# parser ---------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    defaults = Settings.from_env()
    parser = argparse.ArgumentParser(prog="labelloop", description=__doc__)
    parser.add_argument("--controller", default=defaults.controller_address, help="controller address")
    parser.add_argument("--store", default=defaults.store_address, help="dataset store address")
    commands = parser.add_subparsers(dest="command", required=True)

    up = commands.add_parser("up", help="run the five services locally until Ctrl-C")
    up.add_argument("--data", help="local store folder (default: LABELLOOP_STORAGE_ROOT)")
    up.add_argument("--log-dir", help="service logs (default: DATA/logs)")
    up.add_argument("--free-ports", action="store_true", help="pick free ports instead of 50051-50055")
    up.set_defaults(func=cmd_up)

    datasets = commands.add_parser("datasets", help="datasets in the store").add_subparsers(required=True)
    create = datasets.add_parser("create", help="ingest a CSV/Parquet manifest")
    create.add_argument("dataset_id")
    create.add_argument("--manifest", required=True, help="path or URI of the manifest")
    create.add_argument("--image-column", default="")
    create.add_argument("--feature-column", action="append", default=[])
    create.add_argument("--label-column", default="")
    create.add_argument("--split-column", default="")
    create.add_argument("--test-fraction", type=float, default=0.0)
    create.add_argument("--id-column", default="")
    create.add_argument("--seed", type=int, default=0)
    create.set_defaults(func=cmd_datasets_create)
    get = datasets.add_parser("get")
    get.add_argument("dataset")
    get.set_defaults(func=cmd_datasets_get)

    experiments = commands.add_parser("experiments", help="active-learning experiments").add_subparsers(
        required=True
    )
    _add_create_experiment(experiments)
    for action in ("start", "pause", "resume", "cancel", "get"):
        sub = experiments.add_parser(action)
        sub.add_argument("experiment")
        sub.set_defaults(func=cmd_experiments_action, action=action)
    experiments.add_parser("list").set_defaults(func=cmd_experiments_list)
    rounds = experiments.add_parser("rounds", help="one line per round")
    rounds.add_argument("experiment")
    rounds.add_argument("--json", action="store_true")
    rounds.set_defaults(func=cmd_experiments_rounds)
    watch = experiments.add_parser("watch", help="progress bars until the experiment ends")
    watch.add_argument("experiment")
    watch.set_defaults(func=cmd_experiments_watch)

    from labelloop.cli.demo import add_arguments as add_demo_arguments

    demo = commands.add_parser(
        "demo", help="the default preset vs random selection on scikit-learn digits, all services local"
    )
    add_demo_arguments(demo)
    demo.set_defaults(func=cmd_demo)
    return parser


def _add_create_experiment(experiments: argparse._SubParsersAction) -> None:
    create = experiments.add_parser(
        "create",
        help="create (and with --start run) an experiment",
        description="Creates an experiment. --preset fills what is not given; without per-class or "
        "initial ids the first set is chosen without labels (default: 2 typical examples per class).",
    )
    create.add_argument("experiment_id", nargs="?", default="")
    create.add_argument("--dataset", required=True)
    create.add_argument(
        "--preset",
        default="",
        help=f"per-modality defaults ({', '.join(presets.MODALITIES)}): trainer, strategy, batch method, "
        "first set (labelloop/presets.py)",
    )
    create.add_argument(
        "--strategy",
        default="",
        help=f"{', '.join(option_names(common_pb2.Strategy))} (default: the preset's, else activelab)",
    )
    create.add_argument(
        "--batch-method",
        default="",
        help=f"{', '.join(option_names(common_pb2.BatchMethod))}: how a batch is formed from the scores "
        "(diverse spreads it over embedding clusters; default: the preset's, else lowest)",
    )
    create.add_argument("--batch-size", type=int, required=True)
    create.add_argument(
        "--initial-count", type=int, default=0, help="first set: this many examples, chosen without labels"
    )
    create.add_argument(
        "--initial-selection",
        default="",
        help=f"{', '.join(option_names(experiments_pb2.InitialSelection))}: how --initial-count examples "
        "are chosen (typical: TypiClust on the pretrained embeddings; default typical)",
    )
    create.add_argument(
        "--per-class",
        type=int,
        default=0,
        help="first set: random examples per true class (cleanlab's reference)",
    )
    create.add_argument("--initial-id", action="append", default=[], help="first set: an example id (repeat)")
    create.add_argument("--max-rounds", type=int, default=0)
    create.add_argument("--label-budget", type=int, default=0)
    create.add_argument("--target-accuracy", type=float, default=0.0)
    create.add_argument("--hp", action="append", default=[], help="AutoGluon hyperparameter KEY=VALUE")
    create.add_argument("--checkpoint", action="append", default=[], help="checkpoint KEY=SOURCE")
    create.add_argument("--time-limit", type=float, default=0.0)
    create.add_argument(
        "--num-gpus",
        type=int,
        default=-1,
        help="GPUs per training run: -1 all visible (CPU when none), 0 CPU only",
    )
    create.add_argument(
        "--training-mode",
        default="",
        help=f"{', '.join(option_names(trainer_pb2.TrainingMode))}: linear-probe fits a logistic regression "
        "on frozen pretrained embeddings (default: the preset's, else fine-tune)",
    )
    create.add_argument(
        "--fine-tune-from-labels",
        type=int,
        default=None,
        help="with linear-probe: fine-tune once this many examples are labeled (0: never)",
    )
    create.add_argument("--noise-rate", type=float, default=0.0)
    create.add_argument("--annotators", type=int, default=0)
    create.add_argument(
        "--annotator-accuracies",
        default="",
        help="simulated annotators' accuracies, e.g. 0.6,0.7,0.8,0.9 (one annotator each, own confusions)",
    )
    create.add_argument("--external", action="store_true", help="people label through the store")
    create.add_argument("--label-timeout", type=float, default=0.0)
    create.add_argument("--allow-relabel", action="store_true")
    create.add_argument("--max-per-class", type=int, default=0)
    create.add_argument(
        "--labeled-probabilities",
        default="",
        help=f"{', '.join(option_names(experiments_pb2.LabeledProbabilities))}: which predictions of labeled "
        "examples the scorer gets (default out-of-sample: from the last model not trained on them)",
    )
    create.add_argument("--seed", type=int, default=0)
    create.add_argument("--start", action="store_true")
    create.set_defaults(func=cmd_experiments_create)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except grpc.RpcError as error:
        print(f"error: {error.code().name}: {error.details()}", file=sys.stderr)
        return 1
    except ValueError as error:  # a bad option value: the message names the valid ones
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
