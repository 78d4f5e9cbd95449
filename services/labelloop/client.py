"""LabelLoopClient: a small Python API over the controller and the dataset store.

    from labelloop.client import LabelLoopClient

    client = LabelLoopClient("127.0.0.1:50055", "127.0.0.1:50051")
    client.create_dataset("digits", "/data/digits/manifest.csv", image_column="image_path",
                          label_column="label", test_fraction=0.3)
    client.create_experiment("digits-budget", dataset="digits", preset="image", batch_size=20,
                             max_rounds=5, start=True)
    experiment = client.wait("digits-budget", timeout=900)
    for row in client.rounds_table("digits-budget"):
        print(row["round"], row["labeled"], row["test_accuracy"])

A preset ("image", "text", "tabular"; labelloop.presets) fills what is not given: the trainer
config, the strategy, the batch method and the label-free first set. Without one, the first set is
still chosen without labels (2 typical examples per class) unless per_class or initial_example_ids
say otherwise. Enum options take short names ("budget-aware", "linear_probe") or the API's names.
Names may be given as ids ("digits") or resource names ("datasets/digits"). Errors are
grpc.RpcError with the service's status code and a message that says what to fix; a bad option
value is a ValueError saying which values exist.
"""

from __future__ import annotations

import builtins
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, cast

import grpc
from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper

from labelloop import presets
from labelloop.core.api import TERMINAL_EXPERIMENT_STATES, defined_values, enum_name, enum_value
from labelloop.core.channels import CallerCredentials, channel
from labelloop.core.paging import all_pages
from labelloop.labeling_client import LabelingMethods
from labelloop.v1 import (
    common_pb2,
    dataset_store_pb2,
    dataset_store_pb2_grpc,
    experiments_pb2,
    experiments_pb2_grpc,
    labeling_pb2,
    labeling_pb2_grpc,
    trainer_pb2,
)

# Short names the CLI shows that differ from the API's value names.
ALIASES = {"lowest": "lowest_scores"}


def option_names(enum_type: EnumTypeWrapper) -> list[str]:
    """The short names of an enum's values as the CLI shows them: ["fine-tune", "linear-probe"]."""
    names = [enum_name(enum_type, v).replace("_", "-") for v in defined_values(enum_type)]
    aliases = {full.replace("_", "-"): short for short, full in ALIASES.items()}
    return [aliases.get(n, n) for n in names]


def option_value(enum_type: EnumTypeWrapper, value: str | int, what: str) -> int:
    """ "budget-aware" / "budget_aware" / "STRATEGY_BUDGET_AWARE" / 6 -> 6; "" and 0 -> 0 (unset).
    ValueError naming the choices for anything else."""
    if isinstance(value, int):
        return value
    if not value:
        return 0
    text = value.strip().replace("-", "_")
    try:
        return enum_value(enum_type, ALIASES.get(text.lower(), text))
    except ValueError:
        raise ValueError(f"{what} {value!r} is not one of {', '.join(option_names(enum_type))}") from None


def strategy_value(strategy: str | int) -> common_pb2.Strategy:
    """ "activelab" / "STRATEGY_ACTIVELAB" / "budget-aware" / 1 -> common_pb2.STRATEGY_ACTIVELAB."""
    value = option_value(common_pb2.Strategy, strategy, "strategy")
    return cast("common_pb2.Strategy", value)  # the stubs type enum values as their enum; they are ints


def parse_accuracies(text: str) -> list[float]:
    """ "0.6,0.7,0.9" -> [0.6, 0.7, 0.9]; ValueError unless each is a number in (0, 1]."""
    try:
        values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"annotator accuracies {text!r} are not comma-separated numbers") from None
    if not values or any(not 0 < v <= 1 for v in values):
        raise ValueError(f"annotator accuracies {text!r}: give one number in (0, 1] per annotator")
    return values


def state_name(state: int) -> str:
    """EXPERIMENT_STATE_RUNNING -> "RUNNING"."""
    return enum_name(experiments_pb2.ExperimentState, state).upper()


def stage_name(stage: int) -> str:
    """ROUND_STAGE_TRAIN -> "train"."""
    return enum_name(experiments_pb2.RoundStage, stage)


def _name(collection: str, value: str) -> str:
    return value if value.startswith(f"{collection}/") else f"{collection}/{value}"


def trainer_config(
    hyperparameters: Mapping[str, Any] | None = None,
    checkpoints: Mapping[str, str] | None = None,
    time_limit_seconds: float = 0.0,
    presets: str = "",
    num_gpus: int = -1,
    seed: int = 0,
    mode: str | int = "",
    fine_tune_from_labels: int = 0,
) -> trainer_pb2.TrainerConfig:
    """A TrainerConfig; hyperparameter values may be Python values (sent as YAML text). `mode`:
    "fine-tune" (the default) or "linear-probe"; `presets` are AutoGluon's (labelloop.presets are
    create_experiment's `preset`)."""
    return trainer_pb2.TrainerConfig(
        time_limit_seconds=time_limit_seconds,
        presets=presets,
        hyperparameters={k: _yaml_text(v) for k, v in (hyperparameters or {}).items()},
        checkpoints=[trainer_pb2.Checkpoint(key=k, source=s) for k, s in (checkpoints or {}).items()],
        num_gpus=num_gpus,
        seed=seed,
        mode=cast("trainer_pb2.TrainingMode", option_value(trainer_pb2.TrainingMode, mode, "training mode")),
        fine_tune_from_labels=fine_tune_from_labels,
    )


def _yaml_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    import yaml

    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


class LabelLoopClient(LabelingMethods):
    """Talks to the controller (experiments, the labeling queue) and the dataset store (datasets,
    annotations). The labeling queue's methods (lease_tasks, submit_label, skip_task, list_tasks,
    label_queue) are in labeling_client.py."""

    def __init__(
        self,
        controller_address: str = "127.0.0.1:50055",
        store_address: str = "127.0.0.1:50051",
        timeout: float = 60.0,
        credentials: CallerCredentials | None = None,
    ):
        """`credentials`: TLS CA, client certificate and token (default: from LABELLOOP_TLS_CA,
        LABELLOOP_TOKEN, ...; see labelloop.core.channels)."""
        self.timeout = timeout
        self._channels = [channel(controller_address, credentials), channel(store_address, credentials)]
        self.experiments = experiments_pb2_grpc.ExperimentServiceStub(self._channels[0])
        self.labeling = labeling_pb2_grpc.LabelingServiceStub(self._channels[0])
        self.store = dataset_store_pb2_grpc.DatasetStoreServiceStub(self._channels[1])

    def close(self) -> None:
        for ch in self._channels:
            ch.close()

    def __enter__(self) -> LabelLoopClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # Datasets ---------------------------------------------------------------------------------

    def create_dataset(
        self,
        dataset_id: str,
        manifest_uri: str,
        *,
        image_column: str = "",
        feature_columns: Sequence[str] = (),
        label_column: str = "",
        split_column: str = "",
        test_fraction: float = 0.0,
        classes: Sequence[str] = (),
        id_column: str = "",
        seed: int = 0,
        display_name: str = "",
        timeout: float = 600.0,
        text_columns: Sequence[str] = (),
    ) -> dataset_store_pb2.Dataset:
        """Ingests a CSV/Parquet manifest (a local path is sent as given: the store must see it)."""
        request = dataset_store_pb2.CreateDatasetRequest(
            dataset_id=dataset_id,
            display_name=display_name,
            manifest_uri=str(manifest_uri),
            image_column=image_column,
            feature_columns=list(feature_columns),
            label_column=label_column,
            split_column=split_column,
            test_fraction=test_fraction,
            classes=list(classes),
            id_column=id_column,
            seed=seed,
            text_columns=list(text_columns),
        )
        return self.store.CreateDataset(request, timeout=timeout).dataset

    def get_dataset(self, dataset: str) -> dataset_store_pb2.Dataset:
        request = dataset_store_pb2.GetDatasetRequest(name=_name("datasets", dataset))
        return self.store.GetDataset(request, timeout=self.timeout).dataset

    def list_datasets(self) -> builtins.list[dataset_store_pb2.Dataset]:
        return all_pages(
            lambda token: self.store.ListDatasets(
                dataset_store_pb2.ListDatasetsRequest(page_size=200, page_token=token), timeout=self.timeout
            ),
            "datasets",
        )

    def delete_dataset(self, dataset: str, force: bool = False) -> None:
        """Deletes the dataset with its files, annotations and snapshots. While experiments that have
        not ended use it the store refuses (FAILED_PRECONDITION) unless force is set."""
        request = dataset_store_pb2.DeleteDatasetRequest(name=_name("datasets", dataset), force=force)
        self.store.DeleteDataset(request, timeout=self.timeout)

    def list_annotations(self, dataset: str, annotation_set: str) -> list[dataset_store_pb2.Annotation]:
        parent = _name("datasets", dataset)
        return all_pages(
            lambda token: self.store.ListAnnotations(
                dataset_store_pb2.ListAnnotationsRequest(
                    parent=parent, annotation_set=annotation_set, page_size=1000, page_token=token
                ),
                timeout=self.timeout,
            ),
            "annotations",
        )

    # Experiments ------------------------------------------------------------------------------

    def create_experiment(
        self,
        experiment_id: str = "",
        *,
        dataset: str,
        batch_size: int,
        preset: str = "",
        strategy: str | int = "",
        batch_method: str | int = "",
        per_class: int = 0,
        initial_example_ids: Sequence[str] = (),
        initial_count: int = 0,
        initial_selection: str | int = "",
        max_rounds: int = 0,
        label_budget: int = 0,
        target_accuracy: float = 0.0,
        trainer: trainer_pb2.TrainerConfig | None = None,
        trainer_kwargs: Mapping[str, Any] | None = None,
        noise_rate: float = 0.0,
        annotator_count: int = 0,
        annotator_accuracies: Sequence[float] = (),
        oracle_label_column: str = "",
        external_labelers: bool = False,
        label_timeout_seconds: float = 0.0,
        labeling_rules: experiments_pb2.LabelingRules | None = None,
        label_studio: experiments_pb2.LabelStudioProject | None = None,
        allow_relabel: bool = False,
        max_per_class: int = 0,
        labeled_probabilities: str | int = "",
        seed: int = 0,
        display_name: str = "",
        start: bool = False,
    ) -> experiments_pb2.Experiment:
        """Creates (and with start=True starts) an experiment; see experiments.proto for every field.

        `preset` ("image", "text", "tabular") fills the strategy, batch method, first set and trainer
        that are not given (`trainer`, else `trainer_kwargs` as keyword arguments of trainer_config).
        Without a preset the strategy is ActiveLab and the batch the lowest scores. The first set is
        per_class, initial_example_ids, or else `initial_count` examples (default: 2 per class)
        chosen without labels by `initial_selection` ("typical", the default, or "random"). The
        labeler is a simulated oracle (annotator_accuracies: one simulated annotator per value)
        unless external_labelers is set, or labeling_rules (people label through the labeling
        queue, by these rules: annotators per example, lease, quorum, deadline), or label_studio (a
        Label Studio project; its rules are the project's `rules`)."""
        chosen = presets.preset_for(preset) if preset else None
        if trainer is None:
            kwargs = dict(trainer_kwargs if trainer_kwargs is not None else {})
            if chosen is not None and trainer_kwargs is None:
                kwargs = chosen.trainer_kwargs()
            trainer = trainer_config(**kwargs)
        label_free = not (per_class or initial_example_ids or initial_count)
        if label_free:
            initial_selection = initial_selection or (chosen.initial_selection if chosen else "typical")
        # Every option value is checked before the first call.
        selection = option_value(experiments_pb2.InitialSelection, initial_selection, "initial selection")
        # "" means "not given" (an int, even 0, is sent as it is).
        strategy_number = strategy_value(
            strategy if strategy != "" else (chosen.strategy if chosen else "activelab")
        )
        method = batch_method if batch_method != "" else (chosen.batch_method if chosen else "")
        method_number = option_value(common_pb2.BatchMethod, method, "batch method")
        held_out = option_value(
            experiments_pb2.LabeledProbabilities, labeled_probabilities, "labeled probabilities"
        )
        if label_free:
            initial_count = self._default_initial_count(dataset, chosen)
        config = experiments_pb2.ExperimentConfig(
            dataset=_name("datasets", dataset),
            initial_labels=experiments_pb2.InitialLabels(
                per_class=per_class,
                example_ids=list(initial_example_ids),
                count=initial_count,
                selection=cast("experiments_pb2.InitialSelection", selection),
            ),
            strategy=strategy_number,
            batch_method=cast("common_pb2.BatchMethod", method_number),
            labeled_probabilities=cast("experiments_pb2.LabeledProbabilities", held_out),
            batch_size=batch_size,
            stopping_rule=experiments_pb2.StoppingRule(
                max_rounds=max_rounds, label_budget=label_budget, target_accuracy=target_accuracy
            ),
            trainer=trainer,
            allow_relabel=allow_relabel,
            max_per_class=max_per_class,
            seed=seed,
        )
        if label_studio is not None:
            config.label_studio.CopyFrom(label_studio)
        elif labeling_rules is not None:
            config.labeling_queue.rules.CopyFrom(labeling_rules)
        elif external_labelers:
            config.external_labelers.timeout_seconds = label_timeout_seconds
        else:
            config.simulated_oracle.CopyFrom(
                experiments_pb2.SimulatedOracle(
                    label_column=oracle_label_column,
                    noise_rate=noise_rate,
                    annotator_count=annotator_count,
                    annotator_accuracies=list(annotator_accuracies),
                )
            )
        request = experiments_pb2.CreateExperimentRequest(
            experiment_id=experiment_id, display_name=display_name, config=config, start=start
        )
        return self.experiments.CreateExperiment(request, timeout=self.timeout).experiment

    def _default_initial_count(self, dataset: str, preset: presets.Preset | None) -> int:
        """The label-free first set's size: the preset's (2 examples per class)."""
        classes = len(self.get_dataset(dataset).classes)
        return (preset or presets.preset_for("tabular")).initial_count(classes)

    def get(self, experiment: str) -> experiments_pb2.Experiment:
        request = experiments_pb2.GetExperimentRequest(name=_name("experiments", experiment))
        return self.experiments.GetExperiment(request, timeout=self.timeout).experiment

    def list(self) -> list[experiments_pb2.Experiment]:
        return all_pages(
            lambda token: self.experiments.ListExperiments(
                experiments_pb2.ListExperimentsRequest(page_size=200, page_token=token), timeout=self.timeout
            ),
            "experiments",
        )

    def start(self, experiment: str) -> experiments_pb2.Experiment:
        request = experiments_pb2.StartExperimentRequest(name=_name("experiments", experiment))
        return self.experiments.StartExperiment(request, timeout=self.timeout).experiment

    def pause(self, experiment: str) -> experiments_pb2.Experiment:
        request = experiments_pb2.PauseExperimentRequest(name=_name("experiments", experiment))
        return self.experiments.PauseExperiment(request, timeout=self.timeout).experiment

    def resume(self, experiment: str) -> experiments_pb2.Experiment:
        request = experiments_pb2.ResumeExperimentRequest(name=_name("experiments", experiment))
        return self.experiments.ResumeExperiment(request, timeout=self.timeout).experiment

    def cancel(self, experiment: str) -> experiments_pb2.Experiment:
        request = experiments_pb2.CancelExperimentRequest(name=_name("experiments", experiment))
        return self.experiments.CancelExperiment(request, timeout=self.timeout).experiment

    def delete_experiment(self, experiment: str, force: bool = False) -> None:
        """Deletes the experiment and its stored records; a RUNNING or PAUSED one only with force
        (it is cancelled first). Its id stays taken."""
        request = experiments_pb2.DeleteExperimentRequest(name=_name("experiments", experiment), force=force)
        self.experiments.DeleteExperiment(request, timeout=max(self.timeout, 60.0))

    def list_rounds(self, experiment: str) -> builtins.list[experiments_pb2.Round]:
        parent = _name("experiments", experiment)
        return all_pages(
            lambda token: self.experiments.ListRounds(
                experiments_pb2.ListRoundsRequest(parent=parent, page_size=200, page_token=token),
                timeout=self.timeout,
            ),
            "rounds",
        )

    def watch(
        self, experiment: str, timeout: float | None = None
    ) -> Iterator[tuple[experiments_pb2.Experiment, experiments_pb2.Round]]:
        """(experiment, current round) on every change, until the experiment ends."""
        request = experiments_pb2.WatchExperimentRequest(name=_name("experiments", experiment))
        for response in self.experiments.WatchExperiment(request, timeout=timeout):
            yield response.experiment, response.round

    def wait(self, experiment: str, timeout: float = 3600.0) -> experiments_pb2.Experiment:
        """Blocks until the experiment ends; TimeoutError if it has not within `timeout` seconds.

        Survives a controller restart: the watch is opened again until the deadline."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(
                    f"{experiment} did not finish within {timeout:.0f}s: {self.get(experiment)}"
                )
            try:
                for current, _ in self.watch(experiment, timeout=left):
                    if current.state in TERMINAL_EXPERIMENT_STATES:
                        return current
            except grpc.RpcError as error:
                if error.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                    raise
                time.sleep(0.5)
            latest = self._get_quietly(experiment)
            if latest is not None and latest.state in TERMINAL_EXPERIMENT_STATES:
                return latest

    def _get_quietly(self, experiment: str) -> experiments_pb2.Experiment | None:
        try:
            return self.get(experiment)
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.UNAVAILABLE:
                return None
            raise

    def rounds_table(self, experiment: str) -> builtins.list[dict[str, Any]]:
        """One dict per round: round, labeled, test_accuracy, seconds, stage_seconds, selected, stage,
        model_uri (the round's model folder, "" before training; `labelloop predict` loads it)."""
        return [
            {
                "round": r.number,
                "labeled": r.labeled_count,
                "test_accuracy": r.test_accuracy,
                "seconds": round(r.seconds, 3),
                "stage_seconds": {k: round(v, 3) for k, v in sorted(r.stage_seconds.items())},
                "selected": len(r.selected_example_ids),
                "stage": stage_name(r.stage),
                "model_uri": r.model_uri,
            }
            for r in self.list_rounds(experiment)
        ]

    # What comes out of labeling -------------------------------------------------------------------

    def labeling_report(self, experiment: str, round_number: int = -1) -> labeling_pb2.LabelingReport:
        """A round's consensus and annotator quality (CROWDLAB); round_number -1 means the latest."""
        number = "-" if round_number < 0 else str(round_number)
        name = f"{_name('experiments', experiment)}/rounds/{number}/labelingReport"
        request = labeling_pb2.GetLabelingReportRequest(name=name)
        return self.labeling.GetLabelingReport(request, timeout=self.timeout).report

    def export_labels(
        self, experiment: str, export_format: str | int = "parquet", timeout: float = 600.0
    ) -> labeling_pb2.ExportLabelsResponse:
        """Writes the labeled data set into the experiment's folder of the object store and returns where
        (with the latest model's folder). export_format: "parquet", "csv" or "label-studio-json"."""
        value = option_value(labeling_pb2.ExportFormat, export_format, "export format")
        request = labeling_pb2.ExportLabelsRequest(
            name=_name("experiments", experiment), format=cast("labeling_pb2.ExportFormat", value)
        )
        return self.labeling.ExportLabels(request, timeout=timeout)

    # Models -----------------------------------------------------------------------------------------

    def model_uri(self, experiment: str, round_number: int = 0) -> str:
        """The object-store folder of round round_number's model (0: the latest round that has one);
        load it with labelloop.trainer.predictor.load_predictor or `labelloop predict`."""
        rounds = [r for r in self.list_rounds(experiment) if r.model_uri]
        if round_number:
            rounds = [r for r in rounds if r.number == round_number]
        if not rounds:
            which = f"round {round_number}" if round_number else "any round"
            raise LookupError(f"{_name('experiments', experiment)} has no trained model in {which} yet")
        return max(rounds, key=lambda r: r.number).model_uri
