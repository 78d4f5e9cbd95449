"""compose.yaml and the Helm chart describe the same system: ports, UID and security settings,
environment, probes, images and the object store agree. The chart is rendered with its defaults,
`trainer.executor: local` (compose trains inside the trainer container instead of Kubernetes Jobs) and
the controller's webhook port on (on one machine Label Studio reaches it on loopback): the intended
differences. No Docker needed: tests/containers runs the compose file for real."""

from __future__ import annotations

import re
from functools import cache
from typing import Any

import pytest
import yaml

from tests.deploy.chart import CHART, ROOT, Manifest, render

SERVICES = ("store", "trainer", "scorer", "selector", "controller")
WEBHOOK_PORT = 9180  # compose's controller serves Label Studio's webhooks here
# ${NAME:-default} in compose.yaml, read with its default as docker-compose does without the variable.
_VARIABLE = re.compile(r"\$\{[A-Za-z0-9_]+:-([^}]*)\}")


@cache
def compose() -> dict[str, Any]:
    text = _VARIABLE.sub(lambda m: m.group(1), (ROOT / "compose.yaml").read_text())
    return yaml.safe_load(text)  # anchors and `<<` merge keys resolved


@cache
def chart() -> tuple[dict[str, Any], list[Manifest]]:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    return values, render({"trainer": {"executor": "local"}, "controller": {"webhookPort": WEBHOOK_PORT}})[0]


def service(name: str) -> dict[str, Any]:
    return compose()["services"][name]


def deployment(component: str) -> dict[str, Any]:
    manifests = chart()[1]
    found = [m.doc for m in manifests if m.kind == "Deployment" and m.name == f"labelloop-{component}"]
    assert len(found) == 1
    return found[0]["spec"]["template"]["spec"]


def chart_env(component: str) -> dict[str, Any]:
    container = deployment(component)["containers"][0]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def _port(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


def published(name: str) -> dict[int, str]:
    """Container port -> the host address compose publishes it on ("127.0.0.1:8333:8333")."""
    found = {}
    for mapping in service(name).get("ports", []):
        host, host_port, container_port = mapping.rsplit(":", 2)
        found[int(container_port)] = f"{host}:{host_port}"
    return found


def test_every_chart_component_is_a_compose_service() -> None:
    assert set(compose()["services"]) == {*SERVICES, "objectstore", "prometheus"}


@pytest.mark.parametrize("name", [*SERVICES, "objectstore", "prometheus"])
def test_uid_and_security_settings_match_the_chart(name: str) -> None:
    values = chart()[0]
    pod, container = values["podSecurityContext"], values["securityContext"]
    spec = service(name)
    assert spec["user"] == f"{pod['runAsUser']}:{pod['runAsGroup']}"
    assert spec["read_only"] is container["readOnlyRootFilesystem"] is True
    assert spec["cap_drop"] == container["capabilities"]["drop"]
    assert ("no-new-privileges:true" in spec["security_opt"]) is not container["allowPrivilegeEscalation"]
    # The chart's emptyDir on /tmp: a tmpfs the service user owns (a plain tmpfs is root's).
    uid = f"uid={pod['runAsUser']},gid={pod['runAsGroup']}"
    assert f"/tmp:{uid}" in spec.get("tmpfs", []) or name == "prometheus"


@pytest.mark.parametrize("name", SERVICES)
def test_commands_ports_and_environment_match_the_chart(name: str) -> None:
    values = chart()[0]
    spec, container = service(name), deployment(name)["containers"][0]
    assert spec["command"] == container["command"]
    env, expected = {k: str(v) for k, v in spec["environment"].items()}, chart_env(name)
    assert list(env) == list(expected), "the same variables, in the chart's order"
    for key, value in expected.items():
        if key.endswith("_ADDRESS"):  # compose names services `store`, the chart `labelloop-store`
            component = key.removeprefix("LABELLOOP_").removesuffix("_ADDRESS").lower()
            assert env[key] == f"{component}:{values[component]['port']}" and _port(value) == _port(env[key])
        elif key == "LABELLOOP_S3_ENDPOINT":
            assert env[key] == f"objectstore:{values['objectStore']['port']}" == f"objectstore:{_port(value)}"
        elif key == "LABELLOOP_S3_PUBLIC_ENDPOINT":  # the chart has no public name by default; compose
            # signs image links for the object store's port published on this machine
            assert value == values["s3"]["publicEndpoint"] == ""
            assert env[key] == "http://" + published("objectstore")[values["objectStore"]["port"]]
        elif key == "LABELLOOP_IMPORT_ROOTS":  # compose mounts an input folder; the chart imports from
            # the object store only unless store.importRoots names folders of a volume of your own
            assert value == ":".join(values["store"]["importRoots"]) == ""
            assert env[key] == "/input" and any(v.split(":")[1] == "/input" for v in spec["volumes"])
        elif isinstance(value, dict):  # S3 credentials: a Secret in the chart, variables in compose
            assert env[key]
        else:
            assert env[key] == value, key
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    webhook = {"webhook": WEBHOOK_PORT} if name == "controller" else {}
    assert ports == {"grpc": values[name]["port"], "metrics": values[name]["metricsPort"], **webhook}
    # Each mount of the chart is one in compose too: tmpfs, the trainer's cache volume, its /dev/shm.
    mounts = {m.split(":")[0] for m in spec.get("tmpfs", [])}
    mounts |= {v.split(":")[1] for v in spec.get("volumes", [])}
    if "shm_size" in spec:  # Docker's "2gb" is 2 GiB, the chart's trainer.shmSize 2Gi
        assert spec["shm_size"] == values[name]["shmSize"].replace("Gi", "gb")
        mounts.add("/dev/shm")
    assert {m["mountPath"] for m in container["volumeMounts"]} <= mounts


@pytest.mark.parametrize("name", SERVICES)
def test_health_checks_follow_the_chart_probes(name: str) -> None:
    values = chart()[0]
    check, probe = service(name)["healthcheck"], deployment(name)["containers"][0]
    assert probe["readinessProbe"]["grpc"] == {"port": values[name]["port"]}
    # The same gRPC health check, on the port the service listens on.
    assert check["test"][:3] == ["CMD", "python", "-c"]
    assert 'os.environ["LABELLOOP_GRPC_PORT"]' in check["test"][3] and "SERVING" in check["test"][3]
    readiness, startup = values["probes"]["readiness"], values["probes"]["startup"]
    assert check["interval"] == f"{readiness['periodSeconds']}s"
    assert check["timeout"] == f"{readiness['timeoutSeconds']}s"
    assert check["retries"] == readiness["failureThreshold"]
    assert check["start_period"] == f"{startup['periodSeconds'] * startup['failureThreshold']}s"


def test_images_are_the_charts() -> None:
    values = chart()[0]
    app_version = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
    for name in SERVICES:
        image = values["images"]["trainer" if name == "trainer" else "service"]["repository"]
        assert service(name)["image"] == f"{image}:{app_version}"


def test_object_store_and_prometheus_match_the_chart() -> None:
    values = chart()[0]
    store = service("objectstore")
    args = deployment("objectstore")["containers"][0]["args"]
    assert f"-s3.port={values['objectStore']['port']}" in args and f"-bucket={values['s3']['bucket']}" in args
    assert store["command"] == [
        f"-s3.port={values['objectStore']['port']}",
        f"-bucket={values['s3']['bucket']}",
    ]
    assert f"http://127.0.0.1:{values['objectStore']['port']}/healthz" in store["healthcheck"]["test"][-1]
    assert values["objectStore"]["image"]["tag"] in store["image"]  # the same SeaweedFS release
    # Prometheus scrapes each service's metrics port under its compose name.
    config = yaml.safe_load((ROOT / "docker" / "compose" / "prometheus.yml").read_text())
    targets = {
        tuple(group["targets"]): group["labels"]["service"]
        for job in config["scrape_configs"]
        for group in job["static_configs"]
    }
    assert targets == {(f"{name}:{values[name]['metricsPort']}",): name for name in SERVICES}


def test_controller_publishes_its_api_and_webhooks_on_loopback_only() -> None:
    values = chart()[0]
    assert published("controller") == {
        values["controller"]["port"]: "127.0.0.1:50055",
        WEBHOOK_PORT: f"127.0.0.1:{WEBHOOK_PORT}",
    }
    assert service("controller")["environment"]["LABELLOOP_WEBHOOK_PORT"] == str(WEBHOOK_PORT)


def test_the_label_studio_token_line_names_the_charts_variable() -> None:
    """compose.yaml carries the token's line commented out (no token, no Label Studio experiments);
    uncommented, it sets the variable the chart fills from its Secret, and nothing else changes."""
    values = chart()[0]
    variable = values["controller"]["labelStudio"]["apiKeyEnv"]
    text = (ROOT / "compose.yaml").read_text()
    commented = re.findall(rf"^(\s*)# ({variable}: .*)$", text, flags=re.MULTILINE)
    assert len(commented) == 1, f"one commented {variable} line in compose.yaml"
    indent, line = commented[0]
    uncommented = _VARIABLE.sub(lambda m: m.group(1), text.replace(f"{indent}# {line}", f"{indent}{line}"))
    environment = yaml.safe_load(uncommented)["services"]["controller"]["environment"]
    assert set(environment) - set(service("controller")["environment"]) == {variable}
    assert variable not in service("controller")["environment"]
