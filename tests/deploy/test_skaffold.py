"""skaffold.yaml: valid against skaffold's own schema (v4beta13, vendored), with its profile applied too,
and consistent with the Dockerfiles and the chart's values."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.deploy.chart import CHART, render

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = Path(__file__).parent / "schemas" / "skaffold-v4beta13.json"


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "skaffold.yaml").read_text())


def apply_patches(config: dict[str, Any], patches: list[dict[str, Any]]) -> dict[str, Any]:
    """RFC 6902 add/replace on object paths, the subset skaffold profiles here use."""
    result = copy.deepcopy(config)
    for patch in patches:
        *parents, last = patch["path"].strip("/").split("/")
        target: Any = result
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        if patch["op"] == "replace":
            assert last in target, f"replace of a missing path {patch['path']}"
        else:
            assert patch["op"] == "add", patch
        target[last] = patch["value"]
    return result


def errors(config: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft7Validator(json.loads(SCHEMA.read_text()))
    return [f"{list(e.path)}: {e.message[:200]}" for e in validator.iter_errors(config)]


def test_valid_against_the_skaffold_schema(config: dict[str, Any]) -> None:
    assert config["apiVersion"] == "skaffold/v4beta13"
    assert errors(config) == []
    broken = copy.deepcopy(config)
    broken["deploy"]["helm"]["releases"][0]["chartPth"] = "typo"
    assert errors(broken)  # the schema is strict enough to catch a typo


def test_cpu_profile_builds_the_cpu_trainer_and_requests_no_gpu(config: dict[str, Any]) -> None:
    (profile,) = [p for p in config["profiles"] if p["name"] == "cpu"]
    cpu = apply_patches(config, profile["patches"])
    assert errors(cpu) == []
    trainer = next(a for a in cpu["build"]["artifacts"] if a["image"] == "labelloop-trainer")
    assert trainer["docker"]["buildArgs"]["TORCH_FLAVOR"] == "cpu"
    release = cpu["deploy"]["helm"]["releases"][0]
    assert release["valuesFiles"] == [] and release["setValues"]["trainer.gpu.count"] == 0
    default = config["deploy"]["helm"]["releases"][0]
    assert default["valuesFiles"] == ["charts/labelloop/ci/gpu-values.yaml"]


def test_artifacts_are_the_two_dockerfiles(config: dict[str, Any]) -> None:
    dockerfiles = {a["image"]: a["docker"]["dockerfile"] for a in config["build"]["artifacts"]}
    assert dockerfiles == {
        "labelloop": "docker/service.Dockerfile",
        "labelloop-trainer": "docker/trainer.Dockerfile",
    }
    for path in dockerfiles.values():
        assert (ROOT / path).exists()
    flavors = re.findall(
        r'"\$\{TORCH_FLAVOR\}" (?:=|!=) (\w+)', (ROOT / "docker/trainer.Dockerfile").read_text()
    )
    assert {"cpu", "cuda"} <= set(flavors)


def test_image_values_reach_every_pod_and_the_jobs(config: dict[str, Any]) -> None:
    """Render the chart with what skaffold would set (its templates expanded) and find the built images."""
    release = config["deploy"]["helm"]["releases"][0]
    assert (ROOT / release["chartPath"]).resolve() == CHART
    artifacts = {re.sub(r"[-/.:]", "_", a["image"]): a["image"] for a in config["build"]["artifacts"]}
    built = {
        key: (f"localhost:5000/{image}", "abc123", "sha256:" + "0" * 64) for key, image in artifacts.items()
    }

    def expand(template: str) -> str:
        def one(match: re.Match[str]) -> str:
            field, key = match[1], match[2]
            repo, tag, digest = built[key]
            return {"REPO": repo, "TAG": tag, "DIGEST": digest}[field]

        return re.sub(r"\{\{\.IMAGE_(REPO|TAG|DIGEST)_(\w+?)\}\}", one, template)

    values: dict[str, Any] = {}
    for dotted, template in {**release["setValueTemplates"], **release["setValues"]}.items():
        node = values
        *parents, last = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = expand(template) if isinstance(template, str) else template
    for path in release["valuesFiles"]:
        values = {**yaml.safe_load((ROOT / path).read_text()), **values}
    manifests, _ = render(values, name=release["name"], namespace=release["namespace"])
    images = set()
    for m in manifests:
        if m.kind == "Deployment":
            images |= {c["image"] for c in m.doc["spec"]["template"]["spec"]["containers"]}
            for c in m.doc["spec"]["template"]["spec"]["containers"]:
                for env in c.get("env", []):
                    if env["name"] == "LABELLOOP_JOB_TEMPLATE":
                        images.add(json.loads(env["value"])["image"])
    digest = "sha256:" + "0" * 64
    assert images == {
        f"localhost:5000/labelloop:abc123@{digest}",
        f"localhost:5000/labelloop-trainer:abc123@{digest}",
        "chrislusf/seaweedfs:4.48",
    }


def test_port_forward_targets_the_controller_service(config: dict[str, Any]) -> None:
    release = config["deploy"]["helm"]["releases"][0]
    (forward,) = config["portForward"]
    manifests, _ = render({}, name=release["name"], namespace=release["namespace"])
    services = {m.name: m.doc for m in manifests if m.kind == "Service"}
    controller = services[forward["resourceName"]]
    assert controller["metadata"]["labels"]["app.kubernetes.io/component"] == "controller"
    assert forward["namespace"] == release["namespace"]
    assert forward["port"] in {p["port"] for p in controller["spec"]["ports"] if p["name"] == "grpc"}
