"""charts/labelloop rendered by the real Helm engine, linted, and validated against Kubernetes schemas.

Variants: the default values and every charts/labelloop/ci/*.yaml (GPU Jobs, external S3 with an
existing Secret, ServiceMonitor on, several replicas with PDBs and Jobs in another namespace,
training inside the trainer pod on a shared volume).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from kubernetes.client import ApiClient
from labelloop.core.config import DEFAULT_METRICS_PORTS, DEFAULT_PORTS, Settings
from labelloop.trainer.contract import JobKind, JobSpec
from labelloop.trainer.executors.kubernetes.manifests import build_job
from labelloop.trainer.executors.kubernetes.template import JobTemplate

from tests.deploy.chart import CHART, KUBE_VERSION, lint, lint_problems, render
from tests.deploy.conftest import VARIANTS, find, notes, one, rendered

SERVICES = ["store", "trainer", "scorer", "selector", "controller"]
CRDS = {("monitoring.coreos.com/v1", "ServiceMonitor")}


def pod_specs(manifests: list[Any]) -> list[tuple[str, dict[str, Any]]]:
    specs = []
    for m in manifests:
        if m.kind == "Deployment":
            specs.append((m.name, m.doc["spec"]["template"]["spec"]))
        elif m.kind == "Pod":
            specs.append((m.name, m.doc["spec"]))
    return specs


def container(manifests: list[Any], component: str) -> dict[str, Any]:
    deployment = one(manifests, "Deployment", f"labelloop-{component}")
    return deployment["spec"]["template"]["spec"]["containers"][0]


def env_of(c: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in c.get("env", [])}


def job_template(manifests: list[Any]) -> JobTemplate:
    env = env_of(container(manifests, "trainer"))
    return JobTemplate.from_json(env["LABELLOOP_JOB_TEMPLATE"]["value"])


def spec(num_gpus: int = -1) -> JobSpec:
    return JobSpec(
        job_id="e1-r3-train",
        kind=JobKind.TRAIN,
        examples_key="datasets/digits/examples.parquet",
        output_prefix="experiments/e1/rounds/3/",
        classes=["0", "1"],
        config={"num_gpus": num_gpus},
        labels={"experiment": "e1", "round": "3"},
    )


# Lint and schema validation ------------------------------------------------------------------------


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_helm_lint_strict_passes(variant: str) -> None:
    assert lint_problems(lint(VARIANTS[variant])) == []


def test_every_manifest_validates_against_the_kubernetes_schema(manifests: list[Any]) -> None:
    checked = set()
    for m in manifests:
        if (m.doc["apiVersion"], m.kind) in CRDS:
            continue  # no schema offline; test_service_monitor checks it structurally
        for version in (KUBE_VERSION, "1.37"):
            kubernetes_validate.validate(m.doc, version, strict=True)
        checked.add(m.kind)
    assert {"Deployment", "Service", "ServiceAccount", "Pod"} <= checked


def test_objects_are_namespaced_and_named_after_the_release(manifests: list[Any]) -> None:
    for m in manifests:
        assert m.name.startswith("labelloop"), m.name
        assert m.doc["metadata"]["namespace"] in ("ml", "labelloop-jobs"), m.name
        labels = m.doc["metadata"]["labels"]
        assert labels["app.kubernetes.io/instance"] == "labelloop"
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert labels["app.kubernetes.io/part-of"] == "labelloop"
    assert not find(manifests, "ClusterRole") and not find(manifests, "ClusterRoleBinding")


# Workloads ----------------------------------------------------------------------------------------


def test_each_service_is_a_deployment_with_a_service_on_its_ports(variant: str, manifests: list[Any]) -> None:
    webhook = VARIANTS[variant].get("controller", {}).get("webhookPort", 0)  # the controller's, when on
    for svc in SERVICES:
        deployment = one(manifests, "Deployment", f"labelloop-{svc}")
        pod = deployment["spec"]["template"]
        c = pod["spec"]["containers"][0]
        assert c["command"] == ["python", "-m", f"labelloop.{svc}"]
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        expected = {"grpc": DEFAULT_PORTS[svc], "metrics": DEFAULT_METRICS_PORTS[svc]}
        assert ports == expected | ({"webhook": webhook} if svc == "controller" and webhook else {})
        service = one(manifests, "Service", f"labelloop-{svc}")
        assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
        assert deployment["spec"]["selector"]["matchLabels"] == service["spec"]["selector"]
        assert {p["name"]: (p["port"], p["targetPort"]) for p in service["spec"]["ports"]} == {
            name: (port, name) for name, port in ports.items()
        }


def test_every_service_has_native_grpc_probes_on_its_grpc_port(manifests: list[Any]) -> None:
    for svc in SERVICES:
        c = container(manifests, svc)
        grpc_port = next(p["containerPort"] for p in c["ports"] if p["name"] == "grpc")
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            assert c[probe]["grpc"] == {"port": grpc_port}, (svc, probe)


def test_single_writer_services_never_run_twice(manifests: list[Any]) -> None:
    for svc in ("store", "trainer", "controller"):
        deployment = one(manifests, "Deployment", f"labelloop-{svc}")
        assert deployment["spec"]["replicas"] == 1
        assert deployment["spec"]["strategy"] == {"type": "Recreate"}


def test_every_container_is_hardened(manifests: list[Any]) -> None:
    specs = pod_specs(manifests)
    assert len(specs) >= 6  # five services and the helm test pod (and the object store)
    for name, pod in specs:
        pod_security = pod["securityContext"]
        assert pod_security["runAsNonRoot"] is True, name
        assert pod_security["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert pod["enableServiceLinks"] is False, name
        volumes = {v["name"]: v for v in pod["volumes"]}
        for c in pod["containers"]:
            sc = c["securityContext"]
            assert sc["runAsNonRoot"] is True, name
            assert sc["readOnlyRootFilesystem"] is True, name
            assert sc["allowPrivilegeEscalation"] is False, name
            assert sc["capabilities"] == {"drop": ["ALL"]}, name
            assert sc["seccompProfile"] == {"type": "RuntimeDefault"}, name
            assert "resources" in c and c["resources"]["limits"]["memory"], name
            mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
            assert "emptyDir" in volumes[mounts["/tmp"]], name  # writable scratch on a read-only root


def test_labelloop_pods_get_a_writable_cache_dir(manifests: list[Any]) -> None:
    for svc in SERVICES:
        deployment = one(manifests, "Deployment", f"labelloop-{svc}")
        pod = deployment["spec"]["template"]["spec"]
        c = pod["containers"][0]
        cache_dir = env_of(c)["LABELLOOP_CACHE_DIR"]["value"]
        mount = next(m for m in c["volumeMounts"] if m["mountPath"] == cache_dir)
        volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
        assert volume["emptyDir"]["sizeLimit"]


def test_only_the_trainer_gets_an_api_token(variant: str, manifests: list[Any]) -> None:
    kubernetes_executor = VARIANTS[variant].get("trainer", {}).get("executor", "kubernetes") == "kubernetes"
    for name, pod in pod_specs(manifests):
        expected = kubernetes_executor and name == "labelloop-trainer"
        assert pod["automountServiceAccountToken"] is expected, name
    for sa in find(manifests, "ServiceAccount"):
        assert sa["automountServiceAccountToken"] is False, sa["metadata"]["name"]


# Environment --------------------------------------------------------------------------------------


def test_env_makes_every_service_find_the_others(variant: str, manifests: list[Any]) -> None:
    """The plain env values, read by the real Settings.from_env, give the Services' DNS names."""
    services = {s["metadata"]["name"]: s for s in find(manifests, "Service")}
    for svc in SERVICES:
        env = env_of(container(manifests, svc))
        plain = {k: e["value"] for k, e in env.items() if "value" in e}
        settings = Settings.from_env(plain)
        for other in SERVICES:
            host, port = settings.address_of(other).split(":")
            grpc = next(p for p in services[host]["spec"]["ports"] if p["name"] == "grpc")
            assert grpc["port"] == int(port)
        assert settings.port_for(svc) == DEFAULT_PORTS[svc]
        assert settings.metrics_port_for(svc) == DEFAULT_METRICS_PORTS[svc]
        assert settings.bind_host == "0.0.0.0"  # reachable by probes and other pods, not loopback only
        backend = VARIANTS[variant].get("storage", {}).get("backend", "s3")
        assert settings.storage.backend == backend
        if backend == "s3":
            for key in ("LABELLOOP_S3_ACCESS_KEY", "LABELLOOP_S3_SECRET_KEY"):
                assert "value" not in env[key] and env[key]["valueFrom"]["secretKeyRef"], (svc, key)
        assert ("LABELLOOP_TRAINER_EXECUTOR" in env) == (svc == "trainer")


def test_builtin_object_store_wiring() -> None:
    manifests = rendered("defaults")
    secret = one(manifests, "Secret", "labelloop-objectstore")
    import base64

    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert len(data["accessKey"]) >= 16 and len(data["secretKey"]) >= 32
    identity = json.loads(data["identities.json"])["identities"][0]
    assert identity["credentials"] == [{"accessKey": data["accessKey"], "secretKey": data["secretKey"]}]
    env = env_of(container(manifests, "store"))
    assert env["LABELLOOP_S3_ENDPOINT"]["value"] == "labelloop-objectstore.ml.svc:8333"
    assert env["LABELLOOP_S3_ACCESS_KEY"]["valueFrom"]["secretKeyRef"] == {
        "name": "labelloop-objectstore",
        "key": "accessKey",
    }
    weed = one(manifests, "Deployment", "labelloop-objectstore")["spec"]["template"]["spec"]
    args = weed["containers"][0]["args"]
    assert args[0] == "mini" and "-s3.config=/etc/seaweedfs/identities.json" in args
    assert "-master.telemetry=false" in args  # no phoning home from a user's cluster
    assert weed["containers"][0]["image"] == "chrislusf/seaweedfs:4.48"
    assert weed["containers"][0]["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "s3"}
    claim = weed["volumes"][0]["persistentVolumeClaim"]["claimName"]
    assert one(manifests, "PersistentVolumeClaim", claim)["spec"]["resources"]["requests"]["storage"]


def test_external_s3_uses_the_existing_secret_and_no_builtin_store() -> None:
    manifests = rendered("external-s3-values")
    assert not [
        m for m in manifests if m.doc["metadata"]["labels"]["app.kubernetes.io/component"] == "objectstore"
    ]
    for svc in SERVICES:
        env = env_of(container(manifests, svc))
        assert env["LABELLOOP_S3_ENDPOINT"]["value"] == "minio.storage.svc.cluster.local:9000"
        assert env["LABELLOOP_S3_BUCKET"]["value"] == "labelloop-prod"
        assert env["LABELLOOP_S3_SECURE"]["value"] == "true"
        assert env["LABELLOOP_S3_ACCESS_KEY"]["valueFrom"]["secretKeyRef"] == {
            "name": "labelloop-s3",
            "key": "access-key",
        }
        assert env["LABELLOOP_S3_SECRET_KEY"]["valueFrom"]["secretKeyRef"] == {
            "name": "labelloop-s3",
            "key": "secret-key",
        }
    secret_refs = {
        e["valueFrom"]["secretKeyRef"]["name"] for e in job_template(manifests).env if "valueFrom" in e
    }
    assert secret_refs == {"labelloop-s3"}  # the Jobs read the same Secret, never a copy of the keys


# GPU training -------------------------------------------------------------------------------------


def test_gpu_values_reach_the_training_jobs() -> None:
    """The chart's LABELLOOP_JOB_TEMPLATE, read by the real executor, builds a GPU Job."""
    template = job_template(rendered("gpu-values"))
    assert template.gpus == 1 and template.gpu_resource == "nvidia.com/gpu"
    job = ApiClient().sanitize_for_serialization(
        build_job(spec(num_gpus=-1), "experiments/e1/rounds/3/spec.json", template)
    )
    kubernetes_validate.validate(job, KUBE_VERSION, strict=True)
    pod = job["spec"]["template"]["spec"]
    assert pod["containers"][0]["resources"]["limits"] == {"memory": "32Gi", "nvidia.com/gpu": "1"}
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    term = pod["affinity"]["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]
    assert term["preference"]["matchExpressions"][0]["key"] == "nvidia.com/gpu.memory"
    shm = next(v for v in pod["volumes"] if v["name"] == "dshm")
    assert shm["emptyDir"] == {"medium": "Memory", "sizeLimit": "8Gi"}
    assert pod["serviceAccountName"] == "labelloop-trainer-job"
    # A run that asks for the CPU holds no GPU.
    cpu_job = ApiClient().sanitize_for_serialization(build_job(spec(num_gpus=0), "k", template))
    assert "nvidia.com/gpu" not in cpu_job["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]


def test_the_jobs_the_trainer_would_create_are_valid(variant: str, manifests: list[Any]) -> None:
    """For every variant: the chart's job template, through the real executor, gives a valid Job that
    carries the trainer's object-store settings and the hardening of the chart's own pods."""
    if "LABELLOOP_JOB_TEMPLATE" not in env_of(container(manifests, "trainer")):
        pytest.skip("executor local: no Jobs")
    template = job_template(manifests)
    job = ApiClient().sanitize_for_serialization(
        build_job(spec(), "experiments/e1/rounds/3/spec.json", template)
    )
    kubernetes_validate.validate(job, KUBE_VERSION, strict=True)
    pod = job["spec"]["template"]["spec"]
    job_env = env_of(pod["containers"][0])
    trainer_env = env_of(container(manifests, "trainer"))
    for name in (
        "LABELLOOP_S3_ENDPOINT",
        "LABELLOOP_S3_ACCESS_KEY",
        "LABELLOOP_S3_SECRET_KEY",
        "LABELLOOP_STORE_ADDRESS",
    ):
        assert job_env[name] == trainer_env[name], name
    assert "LABELLOOP_GRPC_PORT" not in job_env  # a Job serves nothing
    trainer_pod = one(manifests, "Deployment", "labelloop-trainer")["spec"]["template"]["spec"]
    assert pod["securityContext"] == trainer_pod["securityContext"]
    assert pod["containers"][0]["securityContext"] == trainer_pod["containers"][0]["securityContext"]
    assert pod["containers"][0]["image"] == trainer_pod["containers"][0]["image"]
    assert (
        job["metadata"]["namespace"] == one(manifests, "Role", "labelloop-trainer")["metadata"]["namespace"]
    )
    assert pod["serviceAccountName"] in {sa["metadata"]["name"] for sa in find(manifests, "ServiceAccount")}


def test_default_jobs_request_no_gpu_and_the_trainer_pod_none_either() -> None:
    manifests = rendered("defaults")
    assert job_template(manifests).gpus == 0
    trainer = container(manifests, "trainer")
    assert "nvidia.com/gpu" not in trainer["resources"]["limits"]


def test_local_executor_puts_the_gpu_on_the_trainer_pod() -> None:
    manifests = rendered("local-executor-values")
    pod = one(manifests, "Deployment", "labelloop-trainer")["spec"]["template"]["spec"]
    c = pod["containers"][0]
    assert c["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert pod["tolerations"][0]["key"] == "nvidia.com/gpu"
    env = env_of(c)
    assert env["LABELLOOP_TRAINER_EXECUTOR"]["value"] == "local"
    assert "LABELLOOP_JOB_TEMPLATE" not in env
    assert {m["mountPath"] for m in c["volumeMounts"]} >= {"/dev/shm", "/data"}
    assert not find(manifests, "Role") and not find(manifests, "RoleBinding")
    claims = {v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"] if "persistentVolumeClaim" in v}
    assert claims == {"labelloop-data"}


# RBAC and network ---------------------------------------------------------------------------------


_KUBE_API = Path(__file__).parents[2] / "services/labelloop/trainer/executors/kubernetes/api.py"
_API_VERBS = {"create": "create", "read": "get", "list": "list", "delete": "delete", "patch": "patch"}
_API_RESOURCES = {("batch", "job"): ("batch", "jobs"), ("core", "pod"): ("", "pods")}


def executor_api_permissions() -> dict[tuple[str, str], list[str]]:
    """The RBAC rules the Kubernetes executor's client calls need, read from its source: the Role must
    grant exactly these, no more (least privilege) and no less (a call would be forbidden)."""
    needed: dict[tuple[str, str], set[str]] = {}
    for api, verb, resource in re.findall(
        r"self\.(batch|core)\.(\w+?)_namespaced_(\w+)\(", _KUBE_API.read_text()
    ):
        needed.setdefault(_API_RESOURCES[(api, resource)], set()).add(_API_VERBS[verb])
    assert needed, f"no client calls found in {_KUBE_API}"
    return {rule: sorted(verbs) for rule, verbs in needed.items()}


def test_trainer_rbac_is_limited_to_jobs_and_pods(manifests: list[Any], variant: str) -> None:
    if VARIANTS[variant].get("trainer", {}).get("executor") == "local":
        pytest.skip("no Jobs, no RBAC")
    namespace = VARIANTS[variant].get("trainer", {}).get("job", {}).get("namespace", "ml")
    role = one(manifests, "Role", "labelloop-trainer")
    assert role["metadata"]["namespace"] == namespace
    rules = {(r["apiGroups"][0], r["resources"][0]): sorted(r["verbs"]) for r in role["rules"]}
    assert rules == executor_api_permissions()
    assert all(len(r["apiGroups"]) == len(r["resources"]) == 1 for r in role["rules"])
    binding = one(manifests, "RoleBinding", "labelloop-trainer")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "labelloop-trainer",
    }
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "labelloop-trainer", "namespace": "ml"}]
    trainer_pod = one(manifests, "Deployment", "labelloop-trainer")["spec"]["template"]["spec"]
    assert trainer_pod["serviceAccountName"] == "labelloop-trainer"
    assert len(find(manifests, "Role")) == 1 and len(find(manifests, "RoleBinding")) == 1
    job_sa = one(manifests, "ServiceAccount", "labelloop-trainer-job")
    assert job_sa["metadata"]["namespace"] == namespace


def _allowed_components(policy: dict[str, Any], port: str) -> set[str] | None:
    """Components whose pods may reach `port`; None when any peer may."""
    rule = next(r for r in policy["spec"]["ingress"] if r["ports"][0]["port"] == port)
    if not rule.get("from"):
        return None
    components: set[str] = set()
    for peer in rule["from"]:
        if component := peer.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/component"):
            components.add(component)
        for expr in peer.get("podSelector", {}).get("matchExpressions", []):
            if expr["key"] == "app.kubernetes.io/component":
                components |= set(expr["values"])
    return components


def test_network_policies_admit_only_callers() -> None:
    manifests = rendered("defaults")
    policies = {p["metadata"]["name"]: p for p in find(manifests, "NetworkPolicy")}
    assert set(policies) == {f"labelloop-{s}" for s in [*SERVICES, "objectstore"]}
    expected = {
        "store": {"controller", "trainer", "test"},  # the scorer and selector read the object store
        "trainer": {"controller", "test"},
        "scorer": {"controller", "test"},
        "selector": {"controller", "test"},
        "controller": {"test"},  # deny by default: networkPolicy.controllerFrom opens the public API
    }
    for svc, components in expected.items():
        policy = policies[f"labelloop-{svc}"]
        pod_labels = one(manifests, "Deployment", f"labelloop-{svc}")["spec"]["template"]["metadata"][
            "labels"
        ]
        assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
        assert _allowed_components(policy, "grpc") == components, svc
        assert _allowed_components(policy, "metrics") == set()  # namespaceSelector {} peers: scrapers
    store = policies["labelloop-objectstore"]
    assert "trainer-job" in _allowed_components(store, "s3")
    assert "trainer-job" not in _allowed_components(policies["labelloop-store"], "grpc")


def test_network_policies_follow_values() -> None:
    manifests = rendered("scaled-values")
    controller = one(manifests, "NetworkPolicy", "labelloop-controller")
    grpc_rule = controller["spec"]["ingress"][0]
    test_pods = {"app.kubernetes.io/name": "labelloop", "app.kubernetes.io/instance": "labelloop"}
    assert grpc_rule["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "annotation-tools"}}},
        {"podSelector": {"matchLabels": {**test_pods, "app.kubernetes.io/component": "test"}}},
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "debugging"}}},
    ]
    store = one(manifests, "NetworkPolicy", "labelloop-objectstore")
    job_peer = store["spec"]["ingress"][0]["from"][0]
    assert job_peer["namespaceSelector"]["matchExpressions"][0]["values"] == ["ml", "labelloop-jobs"]
    assert not rendered_with({"networkPolicy": {"enabled": False}}, "NetworkPolicy")


def rendered_with(values: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return find(render(values)[0], kind)


def test_jobs_in_another_namespace_get_the_builtin_credentials_there() -> None:
    manifests = rendered("scaled-values")
    secrets = {s["metadata"]["namespace"]: s for s in find(manifests, "Secret", "labelloop-objectstore")}
    assert set(secrets) == {"ml", "labelloop-jobs"}
    assert secrets["ml"]["data"]["accessKey"] == secrets["labelloop-jobs"]["data"]["accessKey"]
    assert job_template(manifests).namespace == "labelloop-jobs"


def test_pod_disruption_budgets_only_for_scaled_stateless_services() -> None:
    assert not find(rendered("defaults"), "PodDisruptionBudget")
    manifests = rendered("scaled-values")
    pdbs = {p["metadata"]["name"]: p for p in find(manifests, "PodDisruptionBudget")}
    assert set(pdbs) == {"labelloop-scorer", "labelloop-selector"}
    assert pdbs["labelloop-scorer"]["spec"]["maxUnavailable"] == 1
    assert pdbs["labelloop-selector"]["spec"]["maxUnavailable"] == "50%"
    for name, pdb in pdbs.items():
        pod_labels = one(manifests, "Deployment", name)["spec"]["template"]["metadata"]["labels"]
        assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()


# Images -------------------------------------------------------------------------------------------


def all_images(manifests: list[Any]) -> set[str]:
    images = {c["image"] for _, pod in pod_specs(manifests) for c in pod["containers"]}
    trainer = [m for m in manifests if m.kind == "Deployment" and m.name == "labelloop-trainer"]
    env = env_of(trainer[0].doc["spec"]["template"]["spec"]["containers"][0])
    if "LABELLOOP_JOB_TEMPLATE" in env:
        images.add(json.loads(env["LABELLOOP_JOB_TEMPLATE"]["value"])["image"])
    return images


def test_every_image_comes_from_values() -> None:
    digest = "sha256:" + "a" * 64
    manifests, _ = render(
        {
            "images": {
                "service": {"repository": "registry.example.com/ll/labelloop", "tag": "1.2.3"},
                "trainer": {"repository": "registry.example.com/ll/trainer", "tag": f"1.2.3@{digest}"},
                "pullSecrets": ["regcred"],
            },
            "objectStore": {"image": {"repository": "mirror.example.com/seaweedfs", "tag": "4.48"}},
            "trainer": {"job": {"image": {"tag": "1.2.3-cuda"}}},
        }
    )
    assert all_images(manifests) == {
        "registry.example.com/ll/labelloop:1.2.3",
        f"registry.example.com/ll/trainer:1.2.3@{digest}",
        "mirror.example.com/seaweedfs:4.48",
        "registry.example.com/ll/trainer:1.2.3-cuda",  # the Jobs' image, falling back field by field
    }
    assert container(manifests, "trainer")["image"] == f"registry.example.com/ll/trainer:1.2.3@{digest}"
    for svc in ("store", "scorer", "selector", "controller"):
        assert container(manifests, svc)["image"] == "registry.example.com/ll/labelloop:1.2.3"
    for name, pod in pod_specs(manifests):
        assert pod["imagePullSecrets"] == [{"name": "regcred"}], name


def test_image_tags_default_to_the_app_version() -> None:
    import tomllib

    import yaml

    app_version = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
    project = tomllib.loads((CHART.parents[1] / "pyproject.toml").read_text())["project"]
    assert app_version == project["version"]  # `make images` tags the images with it
    assert all_images(rendered("defaults")) == {
        f"ghcr.io/labelloop/labelloop:{app_version}",
        f"ghcr.io/labelloop/labelloop-trainer:{app_version}",
        "chrislusf/seaweedfs:4.48",
    }


def test_skaffold_style_tag_without_digest_still_renders_a_valid_reference() -> None:
    # skaffold's "{{.IMAGE_TAG_x}}@{{.IMAGE_DIGEST_x}}" leaves a trailing "@" for unpushed local builds.
    manifests, _ = render({"images": {"service": {"repository": "labelloop", "tag": "abc123@"}}})
    assert container(manifests, "store")["image"] == "labelloop:abc123"


# Monitoring, dashboard, helm test, NOTES ------------------------------------------------------------


def test_service_monitor_scrapes_every_metrics_port() -> None:
    manifests = rendered("monitoring-values")
    (monitor,) = find(manifests, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    spec = monitor["spec"]
    assert spec["namespaceSelector"] == {"matchNames": ["ml"]}
    assert spec["endpoints"] == [
        {"port": "metrics", "path": "/metrics", "interval": "15s", "scrapeTimeout": "10s"}
    ]
    components = set(spec["selector"]["matchExpressions"][0]["values"])
    assert components == set(SERVICES)
    for svc in SERVICES:
        service = one(manifests, "Service", f"labelloop-{svc}")
        labels = service["metadata"]["labels"]
        assert spec["selector"]["matchLabels"].items() <= labels.items()
        assert labels["app.kubernetes.io/component"] in components
        assert "metrics" in {p["name"] for p in service["spec"]["ports"]}
    assert not find(rendered("defaults"), "ServiceMonitor")  # the CRD may be absent: opt in


def test_grafana_dashboard_config_map() -> None:
    (config_map,) = find(rendered("monitoring-values"), "ConfigMap")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config_map["metadata"]["annotations"] == {"grafana_folder": "LabelLoop"}
    dashboard = json.loads(config_map["data"]["labelloop.json"])
    assert dashboard == json.loads((CHART / "dashboards" / "labelloop.json").read_text())
    assert dashboard["uid"] == "labelloop" and dashboard["title"] == "LabelLoop"


def test_helm_test_hook_checks_every_service() -> None:
    (pod,) = find(rendered("defaults"), "Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    c = pod["spec"]["containers"][0]
    assert c["args"] == [f"labelloop-{svc}:{DEFAULT_PORTS[svc]}" for svc in SERVICES]
    assert c["command"][:2] == ["python", "-c"]
    compile(c["command"][2], "helm-test", "exec")  # the inline script is valid Python
    assert pod["metadata"]["labels"]["app.kubernetes.io/component"] == "test"
    assert (
        env_of(c)["LABELLOOP_S3_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "labelloop-objectstore"
    )


def test_notes_tell_how_to_reach_the_controller() -> None:
    text = notes("gpu-values")
    assert "kubectl -n ml port-forward service/labelloop-controller 50055:50055" in text
    assert "labelloop --controller 127.0.0.1:50055 experiments list" in text
    assert "helm test labelloop -n ml" in text
    assert "1 x nvidia.com/gpu" in text
