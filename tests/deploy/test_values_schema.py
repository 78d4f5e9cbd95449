"""values.schema.json, enforced by the real Helm engine: bad values fail before anything renders."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import helm_python
import pytest

from tests.deploy.chart import CHART, CI_VALUES, load_values, render


def validate(values: dict[str, Any]) -> None:
    with helm_python.Chart.load(CHART) as chart:
        chart.validate_schema(values)


@pytest.mark.parametrize("path", CI_VALUES, ids=lambda p: p.name)
def test_shipped_values_files_are_valid(path: Any) -> None:
    validate(load_values(path))


@pytest.mark.parametrize(
    "values",
    [
        {"controller": {"webhookPort": 9180}, "networkPolicy": {"webhookFrom": [{"podSelector": {}}]}},
        {"controller": {"labelStudio": {"apiKeySecret": {"name": "label-studio", "key": "token"}}}},
        {"s3": {"publicEndpoint": "https://images.example.com"}},
        {"s3": {"publicEndpoint": "s3.example.com:9000"}},
        {"s3": {"publicEndpoint": "http://localhost:8333"}},
    ],
)
def test_labeling_values_are_accepted(values: dict[str, Any]) -> None:
    validate(values)


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ({"trainer": {"executor": "slurm"}}, "/trainer/executor"),
        ({"storage": {"backend": "gcs"}}, "/storage/backend"),
        ({"store": {"replicaCount": 2}}, "/store/replicaCount"),
        ({"controller": {"replicaCount": 3}}, "/controller/replicaCount"),
        ({"scorer": {"replicaCount": 0}}, "/scorer/replicaCount"),
        ({"trainer": {"gpu": {"count": "1"}}}, "/trainer/gpu/count"),
        ({"trainer": {"gpu": {"count": -1}}}, "/trainer/gpu/count"),
        ({"trainer": {"job": {"backoffLimit": -1}}}, "/trainer/job/backoffLimit"),
        ({"trainer": {"job": {"namespace": "Not_A_Namespace"}}}, "/trainer/job/namespace"),
        ({"store": {"port": 70000}}, "/store/port"),
        ({"images": {"service": {"repository": ""}}}, "/images/service/repository"),
        ({"images": {"pullPolicy": "Sometimes"}}, "/images/pullPolicy"),
        ({"config": {"logLevel": "verbose"}}, "/config/logLevel"),
        ({"s3": {"bucket": "Upper_Case"}}, "/s3/bucket"),
        ({"s3": {"endpoint": "http://minio:9000"}}, "/s3/endpoint"),  # host:port, no scheme
        ({"trainer": {"nodeSelector": {"gpu": True}}}, "/trainer/nodeSelector/gpu"),
        ({"monitoring": {"serviceMonitor": {"enabled": "yes"}}}, "/monitoring/serviceMonitor/enabled"),
        ({"replicas": 3}, "additional properties 'replicas'"),  # a typo is an error, not a no-op
        ({"trainer": {"gpus": 1}}, "additional properties 'gpus'"),
        # People labeling: the webhook port, the Label Studio token's Secret, the public S3 endpoint.
        ({"controller": {"webhookPort": -1}}, "/controller/webhookPort"),
        ({"controller": {"webhookPort": 70000}}, "/controller/webhookPort"),
        ({"controller": {"webhookPort": "9180"}}, "/controller/webhookPort"),
        ({"controller": {"labelStudio": {"apiKey": "secret-token"}}}, "additional properties 'apiKey'"),
        ({"controller": {"labelStudio": {"apiKeyEnv": "1-TOKEN"}}}, "/controller/labelStudio/apiKeyEnv"),
        (
            {"controller": {"labelStudio": {"apiKeySecret": {"name": "Label_Studio"}}}},
            "/controller/labelStudio/apiKeySecret/name",
        ),
        (
            {"controller": {"labelStudio": {"apiKeySecret": {"value": "secret-token"}}}},
            "additional properties 'value'",  # a token never goes into values
        ),
        ({"networkPolicy": {"webhookFrom": [{}]}}, "/networkPolicy/webhookFrom/0"),
        ({"s3": {"publicEndpoint": "https://cdn.example.com/bucket"}}, "/s3/publicEndpoint"),
        ({"s3": {"publicEndpoint": "ftp://images.example.com"}}, "/s3/publicEndpoint"),
        # Contradictions:
        ({"s3": {"endpoint": "minio:9000", "existingSecret": "s3"}}, "/s3/endpoint"),  # and objectStore on
        ({"objectStore": {"enabled": False}}, "/s3/endpoint"),  # no object store at all
        (
            {"objectStore": {"enabled": False}, "s3": {"endpoint": "minio:9000"}},
            "/s3/existingSecret",
        ),
        ({"storage": {"backend": "local"}}, "/storage/local/existingClaim"),
    ],
)
def test_bad_values_are_rejected_with_the_key_named(values: dict[str, Any], complaint: str) -> None:
    with pytest.raises(helm_python.HelmValuesError) as error:
        validate(values)
    assert complaint in str(error.value)


def test_render_refuses_bad_values_too() -> None:
    with pytest.raises(helm_python.HelmError, match="/trainer/executor"):
        render({"trainer": {"executor": "slurm"}})


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"objectStore": {"enabled": False}}, "no object store: set s3.endpoint"),
        ({"s3": {"endpoint": "minio:9000"}}, "pick one (set objectStore.enabled=false"),
        ({"storage": {"backend": "local"}}, "storage.backend=local needs storage.local.existingClaim"),
        ({"trainer": {"replicaCount": 2}}, "trainer.replicaCount must be 1"),
        ({"controller": {"webhookPort": 9105}}, "controller.webhookPort=9105 is already the controller's"),
    ],
)
def test_templates_refuse_contradictions_even_without_the_schema(
    values: dict[str, Any], message: str, tmp_path: Path
) -> None:
    """Without the schema (`helm install --skip-schema-validation`) the render still fails, with the fix."""
    copy = tmp_path / "labelloop"
    shutil.copytree(CHART, copy)
    (copy / "values.schema.json").unlink()
    with helm_python.Chart.load(copy) as chart, pytest.raises(helm_python.HelmError) as error:
        chart.render(values, name="labelloop", namespace="ml")
    assert message in str(error.value)
