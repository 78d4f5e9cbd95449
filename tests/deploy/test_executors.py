"""The trainer executors as the chart knows them: the same names as the trainer's registry in
values.schema.json and in the chart's traits table (templates/_helpers.tpl, "labelloop.executors"),
and templates that follow the traits rather than spelling out executor names.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import helm_python
import pytest
from labelloop.trainer.executors.registry import EXECUTORS

from tests.deploy.chart import CHART, render
from tests.deploy.conftest import find, one

TEMPLATES = CHART / "templates"


def schema_executors() -> list[str]:
    schema = json.loads((CHART / "values.schema.json").read_text())
    return sorted(schema["properties"]["trainer"]["properties"]["executor"]["enum"])


def test_the_values_schema_offers_exactly_the_registered_executors() -> None:
    assert schema_executors() == sorted(EXECUTORS)


def test_the_chart_knows_the_traits_of_exactly_the_registered_executors(tmp_path: Path) -> None:
    """Without the schema (`--skip-schema-validation`), an unknown executor fails the render with the
    chart's own list of executors: the registry's names."""
    copy = tmp_path / "labelloop"
    shutil.copytree(CHART, copy)
    (copy / "values.schema.json").unlink()
    with helm_python.Chart.load(copy) as chart, pytest.raises(helm_python.HelmError) as error:
        chart.render({"trainer": {"executor": "slurm"}}, name="labelloop", namespace="ml")
    found = re.search(r"trainer.executor=slurm is not an executor: use one of ([a-z, ]+)", str(error.value))
    assert found, str(error.value)
    assert found.group(1).split(", ") == sorted(EXECUTORS)


def test_only_the_helpers_read_the_executor_name() -> None:
    """Templates ask the traits (labelloop.trainer.runsJobs, labelloop.trainer.trainsInPod), so adding
    an executor never means editing them."""
    readers = {
        path.relative_to(TEMPLATES).as_posix()
        for path in TEMPLATES.rglob("*")
        if path.is_file() and "trainer.executor" in path.read_text()
    }
    assert readers == {"_helpers.tpl"}


def trainer_env(manifests: list[Any]) -> dict[str, Any]:
    pod = one(manifests, "Deployment", "labelloop-trainer")["spec"]["template"]["spec"]
    return {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}


@pytest.mark.parametrize("executor", sorted(EXECUTORS))
def test_each_executor_gets_what_its_traits_say(executor: str) -> None:
    manifests, notes = render({"trainer": {"executor": executor, "gpu": {"count": 1}}})
    env = trainer_env(manifests)
    assert env["LABELLOOP_TRAINER_EXECUTOR"] == executor
    pod = one(manifests, "Deployment", "labelloop-trainer")["spec"]["template"]["spec"]
    runs_jobs = "LABELLOOP_JOB_TEMPLATE" in env
    # An executor that starts Jobs gets the API token and its Role, and the notes tell how to see them.
    assert pod["automountServiceAccountToken"] is runs_jobs
    assert bool(find(manifests, "Role")) is runs_jobs and ("get jobs" in notes) is runs_jobs
    # One that trains in the trainer pod gets the pod's GPU and /dev/shm; then no Jobs run.
    trains_in_pod = "nvidia.com/gpu" in pod["containers"][0].get("resources", {}).get("limits", {})
    assert ("dshm" in {v["name"] for v in pod["volumes"]}) is trains_in_pod
