"""GetLabelingReport and ExportLabels: what comes out of labeling.

A round's report (consensus labels and annotator quality of the labels the round trains on) is made
in its SNAPSHOT step (controller/consensus.py) and kept as report.json in the round's labeling folder;
this module only finds and returns it. Exports are built in export.py.
"""

from __future__ import annotations

from labelloop.controller.consensus import latest_report, report_from_json
from labelloop.controller.experiments import Experiments
from labelloop.controller.labeling.export import write_export
from labelloop.core import layout, names
from labelloop.core.errors import InvalidArgument, NotFound
from labelloop.v1 import labeling_pb2

REPORT = "labelingReport"
LATEST = "-"


def labeling_report(
    experiments: Experiments, request: labeling_pb2.GetLabelingReportRequest
) -> labeling_pb2.GetLabelingReportResponse:
    experiment_name, number = _parse_report_name(request.name)
    experiment = experiments.get(experiment_name)  # NotFound for an unknown experiment
    experiment_id = experiment_name.removeprefix("experiments/")
    if number is None:
        found = latest_report(experiments.store, experiment_id, experiment.current_round)
        if found is None:
            raise NotFound(
                f"{experiment_name} has no labeling report yet: the first one is made when round 0's "
                "labels are frozen (its snapshot step)"
            )
        return labeling_pb2.GetLabelingReportResponse(report=found[1])
    key = layout.labeling_report_key(experiment_id, number)
    if number > experiment.current_round or not experiments.store.exists(key):
        raise NotFound(
            f"{request.name} does not exist: {experiment_name} is at round {experiment.current_round}, and a "
            "round's report is made in its snapshot step; use round '-' for the latest"
        )
    report = report_from_json(experiments.store.get_json(key))
    return labeling_pb2.GetLabelingReportResponse(report=report)


def export_labels(
    experiments: Experiments, request: labeling_pb2.ExportLabelsRequest
) -> labeling_pb2.ExportLabelsResponse:
    return write_export(experiments, request)


def _parse_report_name(name: str) -> tuple[str, int | None]:
    """ "experiments/e/rounds/3/labelingReport" -> ("experiments/e", 3); round "-" -> None (latest)."""
    pattern = f"experiments/{{experiment}}/rounds/{{round}}/{REPORT}"
    parent, _, last = name.rpartition("/")
    if last != REPORT:
        raise InvalidArgument(f"resource name {names.shown(name)} does not match {pattern!r}")
    experiment_id, round_text = names.parse(parent, "experiments", "rounds")
    if round_text == LATEST:
        return f"experiments/{experiment_id}", None
    if not round_text.isdigit():
        raise InvalidArgument(
            f"round {names.shown(round_text)} in {names.shown(name)} is not a round number: use 0, 1, ... "
            f"or '{LATEST}' for the latest"
        )
    return f"experiments/{experiment_id}", int(round_text)
