"""`labelloop experiments create`: every ExperimentConfig option as a flag; a preset fills the rest."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from labelloop import presets
from labelloop.cli.output import as_data, emit
from labelloop.client import LabelLoopClient, option_names, parse_accuracies, trainer_config
from labelloop.v1 import common_pb2, experiments_pb2, trainer_pb2


def pairs(values: Sequence[str], flag: str) -> dict[str, str]:
    """["a.b=1", "c=x"] -> {"a.b": "1", "c": "x"}; ValueError naming the flag for anything else."""
    found = {}
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{flag} {value!r} is not KEY=VALUE (e.g. {flag} optim.max_epochs=5)")
        found[key.strip()] = rest
    return found


def cmd_create(args: argparse.Namespace) -> int:
    preset = presets.preset_for(args.preset) if args.preset else None
    base: dict = preset.trainer_kwargs() if preset else {}
    trainer = trainer_config(
        {**base.get("hyperparameters", {}), **pairs(args.hp, "--hp")},
        {**base.get("checkpoints", {}), **pairs(args.checkpoint, "--checkpoint")},
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
    rules = experiments_pb2.LabelingRules(
        annotators_per_example=args.annotators_per_example,
        lease_seconds=args.lease_seconds,
        quorum=args.quorum,
        deadline_seconds=args.deadline,
    )
    label_studio = None
    if args.label_studio_url:
        label_studio = experiments_pb2.LabelStudioProject(
            url=args.label_studio_url,
            api_token_env=args.label_studio_token_env,
            project_id=args.label_studio_project,
            rules=rules,
            webhook_url=args.label_studio_webhook_url,
        )
    with LabelLoopClient(args.controller, args.store) as client:
        experiment = client.create_experiment(
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
            labeling_rules=rules if args.queue else None,
            label_studio=label_studio,
            allow_relabel=args.allow_relabel,
            max_per_class=args.max_per_class,
            labeled_probabilities=args.labeled_probabilities,
            seed=args.seed,
            start=args.start,
        )
    state = experiments_pb2.ExperimentState.Name(experiment.state).removeprefix("EXPERIMENT_STATE_")
    short = experiment.name.removeprefix("experiments/")
    emit(
        args,
        as_data(experiment),
        lambda: f"{experiment.name} created ({state}); follow it with: labelloop experiments watch {short}",
    )
    return 0


def add_create(experiments: argparse._SubParsersAction) -> None:
    create = experiments.add_parser(
        "create",
        help="create (and with --start run) an experiment",
        description="Creates an experiment. --preset fills what is not given; without per-class or "
        "initial ids the first set is chosen without labels (default: 2 typical examples per class).",
    )
    create.add_argument(
        "experiment_id", nargs="?", default="", help="the new experiment's id (default: a generated one)"
    )
    create.add_argument("--dataset", required=True, help="dataset id or datasets/{id} to label")
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
    create.add_argument("--batch-size", type=int, required=True, help="examples sent for labeling per round")
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
    create.add_argument(
        "--max-rounds", type=int, default=0, help="stop after this many selection rounds (0: no limit)"
    )
    create.add_argument(
        "--label-budget", type=int, default=0, help="stop once this many labels are used (0: no limit)"
    )
    create.add_argument(
        "--target-accuracy", type=float, default=0.0, help="stop at this test accuracy, e.g. 0.9 (0: none)"
    )
    create.add_argument(
        "--hp",
        action="append",
        default=[],
        help="AutoGluon hyperparameter KEY=VALUE, dotted as AutoGluon names it (optim.max_epochs=5; repeat)",
    )
    create.add_argument(
        "--checkpoint",
        action="append",
        default=[],
        help="checkpoint KEY=SOURCE, e.g. model.timm_image.checkpoint_name=labelloop:imagenet/mobilenetv2_100"
        " (repeat)",
    )
    create.add_argument(
        "--time-limit", type=float, default=0.0, help="seconds per training run (0: AutoGluon's default)"
    )
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
    create.add_argument(
        "--noise-rate",
        type=float,
        default=0.0,
        help="probability that a simulated annotator gives a random wrong class",
    )
    create.add_argument(
        "--annotators", type=int, default=0, help="number of simulated annotators, used in turn (0: one)"
    )
    create.add_argument(
        "--annotator-accuracies",
        default="",
        help="simulated annotators' accuracies, e.g. 0.6,0.7,0.8,0.9 (one annotator each, own confusions)",
    )
    create.add_argument("--external", action="store_true", help="people label through the store")
    people = create.add_argument_group("people labeling (--queue or --label-studio-url)")
    people.add_argument(
        "--queue", action="store_true", help="people lease tasks and submit labels (`labelloop tasks`)"
    )
    people.add_argument("--label-studio-url", default="", help="label in this Label Studio (its base URL)")
    people.add_argument(
        "--label-studio-project", type=int, default=0, help="an existing Label Studio project (0: create one)"
    )
    people.add_argument(
        "--label-studio-token-env",
        default="",
        help="the controller's environment variable with Label Studio's API token (LABEL_STUDIO_API_KEY)",
    )
    people.add_argument(
        "--label-studio-webhook-url",
        default="",
        help="where Label Studio sends webhooks: the controller's webhook endpoint as Label Studio sees it",
    )
    people.add_argument(
        "--annotators-per-example", type=int, default=0, help="labels per example from distinct people (0: 1)"
    )
    people.add_argument(
        "--quorum", type=float, default=0.0, help="go on once this fraction of the batch is labeled (0: all)"
    )
    people.add_argument(
        "--deadline",
        type=float,
        default=0.0,
        help="seconds: then go on with what is labeled, or pause when nothing is (0: wait forever)",
    )
    people.add_argument(
        "--lease-seconds", type=float, default=0.0, help="how long a person holds a leased task (0: 600)"
    )
    create.add_argument(
        "--label-timeout",
        type=float,
        default=0.0,
        help="with --external: seconds to wait for a batch's labels (0: forever)",
    )
    create.add_argument(
        "--allow-relabel", action="store_true", help="labeled examples may be selected for another label"
    )
    create.add_argument(
        "--max-per-class",
        type=int,
        default=0,
        help="at most this many selected examples per predicted class in a batch (0: no cap)",
    )
    create.add_argument(
        "--labeled-probabilities",
        default="",
        help=f"{', '.join(option_names(experiments_pb2.LabeledProbabilities))}: which predictions of labeled "
        "examples the scorer gets (default out-of-sample: from the last model not trained on them)",
    )
    create.add_argument("--seed", type=int, default=0, help="seed of selection, training and annotators")
    create.add_argument("--start", action="store_true", help="start the experiment right away")
    create.set_defaults(func=cmd_create)
