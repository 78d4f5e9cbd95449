"""The Jobs the Kubernetes executor builds (manifests.py, template.py), validated against the real
Kubernetes schemas (kubernetes-validate), and the recorded API objects the other tests replay.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from labelloop.core.config import Settings
from labelloop.core.errors import InvalidArgument
from labelloop.trainer import shards as sharding
from labelloop.trainer.contract import JobKind
from labelloop.trainer.executors.kubernetes.manifests import (
    EXPERIMENT_LABEL,
    build_job,
    build_sharded_prediction_job,
    job_name,
    label_value,
    shard_count,
)
from labelloop.trainer.executors.kubernetes.template import JobTemplate

from tests.trainer.kube.jobs import NAME, PREFIX, TEMPLATE, make_spec, template, to_manifest, validate
from tests.trainer.kube.kube_double import FIXTURES, fixture

LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def test_fixtures_are_real_api_objects() -> None:
    for path in sorted(FIXTURES.glob("job_*.json")):
        validate(fixture(path.name))
    for path in sorted(FIXTURES.glob("pods_*.json")):
        for pod in fixture(path.name)["items"]:
            validate({"apiVersion": "v1", "kind": "Pod", **pod})


# Building Jobs -------------------------------------------------------------------------------------


def test_built_job_validates_and_runs_the_job_module() -> None:
    job = to_manifest(build_job(make_spec(), PREFIX + "spec.json", template()))
    validate(job)
    assert job["metadata"]["name"] == NAME and job["metadata"]["namespace"] == "ml"
    spec = job["spec"]
    assert (spec["backoffLimit"], spec["activeDeadlineSeconds"], spec["ttlSecondsAfterFinished"]) == (
        1,
        21600,
        86400,
    )
    pod = spec["template"]["spec"]
    (c,) = pod["containers"]
    assert c["command"] == ["python", "-m", "labelloop.trainer.job", "--spec-json", PREFIX + "spec.json"]
    assert c["image"] == TEMPLATE["image"]
    assert c["resources"] == {
        "requests": {"cpu": "2", "memory": "8Gi"},
        "limits": {"memory": "16Gi", "nvidia.com/gpu": "1"},
    }
    assert c["env"] == TEMPLATE["env"]  # secrets stay secretKeyRefs
    assert pod["restartPolicy"] == "Never"
    assert pod["serviceAccountName"] == "labelloop-trainer-job"
    assert pod["automountServiceAccountToken"] is False
    assert pod["nodeSelector"] == TEMPLATE["nodeSelector"] and pod["tolerations"] == TEMPLATE["tolerations"]
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    mounts = {m["mountPath"] for m in c["volumeMounts"]}
    assert mounts == {"/tmp", "/var/cache/labelloop", "/dev/shm"}


def test_job_labels_name_the_experiment_and_round() -> None:
    job = to_manifest(build_job(make_spec(), "k", template()))
    for labels in (job["metadata"]["labels"], job["spec"]["template"]["metadata"]["labels"]):
        assert labels[EXPERIMENT_LABEL] == "e1"
        assert labels["labelloop.dev/round"] == "3"
        assert labels["labelloop.dev/kind"] == "train"
        assert labels["app.kubernetes.io/component"] == "trainer-job"  # what the NetworkPolicies admit
        assert labels["app.kubernetes.io/instance"] == "labelloop"
        assert labels["app.kubernetes.io/managed-by"] == "labelloop-trainer"
    assert job["metadata"]["annotations"]["labelloop.dev/output-prefix"] == PREFIX


@pytest.mark.parametrize(
    "value",
    [
        "e1",
        "Experiment With Spaces/and:colons",
        "a" * 200,
        "-leading-and-trailing-",
        "ünïcödé-experiment",
        "x" * 62 + "_",
        "",
    ],
)
def test_label_values_and_job_names_are_always_valid(value: str) -> None:
    label = label_value(value)
    assert LABEL_VALUE.match(label) and len(label) <= 63, label
    name = job_name(value or "x")
    assert DNS_LABEL.match(name) and len(name) <= 63, name
    job = to_manifest(
        build_job(make_spec(job_id=value or "x", labels={"experiment": value}), "k", template())
    )
    validate(job)


def test_sanitised_values_stay_distinct() -> None:
    assert label_value("exp/1") != label_value("exp:1")
    assert job_name("A" * 80 + "1") != job_name("A" * 80 + "2")
    assert job_name("e1-r3-train") == "labelloop-e1-r3-train"  # readable when nothing had to change


def test_gpu_request_follows_the_runs_num_gpus() -> None:
    def gpus(num_gpus: int, default: int) -> str | None:
        spec = make_spec(config={"num_gpus": num_gpus})
        job = to_manifest(build_job(spec, "k", template(gpus=default)))
        return job["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"].get("nvidia.com/gpu")

    assert gpus(-1, 1) == "1"  # "all visible": the cluster's per-run count
    assert gpus(2, 1) == "2"
    assert gpus(0, 1) is None  # a CPU run holds no GPU
    assert gpus(-1, 0) is None


def test_template_comes_from_env_with_single_field_overrides() -> None:
    settings = Settings()
    env = {
        "LABELLOOP_JOB_TEMPLATE": json.dumps(TEMPLATE),
        "LABELLOOP_JOB_IMAGE": "labelloop-trainer:dev",
        "LABELLOOP_JOB_GPUS": "2",
        "LABELLOOP_JOB_NAMESPACE": "jobs",
    }
    t = JobTemplate.from_env(env, settings)
    assert (t.image, t.gpus, t.namespace) == ("labelloop-trainer:dev", 2, "jobs")
    assert t.service_account_name == "labelloop-trainer-job"
    with pytest.raises(InvalidArgument, match="unknown keys \\['gpu'\\]"):
        JobTemplate.from_json(json.dumps({**TEMPLATE, "gpu": 1}))
    with pytest.raises(InvalidArgument, match="LABELLOOP_JOB_TEMPLATE"):
        JobTemplate.from_env({}, settings)
    bare = JobTemplate.from_env({"LABELLOOP_JOB_IMAGE": "labelloop-trainer:dev"}, settings)
    assert {e["name"] for e in bare.env} >= {"LABELLOOP_STORAGE_BACKEND", "LABELLOOP_S3_ENDPOINT"}
    assert "LABELLOOP_TRAINER_EXECUTOR" not in {e["name"] for e in bare.env}
    with pytest.raises(Exception, match="tolerations"):  # the client models reject malformed fragments
        build_job(make_spec(), "k", template(tolerations=[{"key": "x", "opperator": "Exists"}]))


def test_sharded_prediction_is_an_indexed_job() -> None:
    spec = make_spec(kind=JobKind.PREDICT, model_key="experiments/e1/rounds/3/model/", labels_key="")
    job = to_manifest(build_sharded_prediction_job(spec, "k", template(), shards=16, parallelism=4))
    validate(job)
    s = job["spec"]
    assert (s["completionMode"], s["completions"], s["parallelism"]) == ("Indexed", 16, 4)
    assert (s["backoffLimitPerIndex"], s["maxFailedIndexes"]) == (1, 0)
    assert "backoffLimit" not in s
    env = {e["name"]: e.get("value") for e in s["template"]["spec"]["containers"][0]["env"]}
    assert env["LABELLOOP_SHARD_COUNT"] == "16"
    assert env["LABELLOOP_SHARD_PREFIX"] == PREFIX + "shards/"
    # Where pod 7 writes: the shards folder the job runner reads from LABELLOOP_SHARD_PREFIX.
    shard = sharding.Shard.from_env({**env, "JOB_COMPLETION_INDEX": "7"}, PREFIX)
    assert shard is not None and shard.probabilities_key("pool") == PREFIX + "shards/7.npy"


@pytest.mark.parametrize(
    ("changes", "shards", "parallelism", "complaint"),
    [
        ({}, 4, None, "only PREDICT"),
        ({"kind": JobKind.PREDICT, "model_key": "m/"}, 0, None, "shards must be"),
        ({"kind": JobKind.PREDICT, "model_key": "m/"}, 100_001, None, "shards must be"),
        ({"kind": JobKind.PREDICT, "model_key": "m/"}, 4, 5, "parallelism must be"),
        ({"kind": JobKind.PREDICT, "model_key": "m/"}, 4, 0, "parallelism must be"),
        ({"kind": JobKind.PREDICT}, 4, None, "model_key"),
    ],
)
def test_sharded_prediction_validation(
    changes: dict[str, Any], shards: int, parallelism: int | None, complaint: str
) -> None:
    with pytest.raises(InvalidArgument, match=complaint):
        build_sharded_prediction_job(make_spec(**changes), "k", template(), shards, parallelism)


def test_shard_count_and_parallelism_cap() -> None:
    assert [shard_count(n, 40) for n in (0, 40, 41, 80, 81)] == [1, 1, 2, 2, 3]
    assert shard_count(10**9, 0) == 1 and shard_count(10**12, 1) == 100_000
