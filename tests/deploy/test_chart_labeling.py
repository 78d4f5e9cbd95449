"""The chart's settings for people labeling: the Label Studio API token from a Secret, the controller's
webhook port (container, Service, NetworkPolicy) and the S3 endpoint image links are signed for.

Rendered by the real Helm engine; ci/labeling-values.yaml is also one of the variants every test of
test_chart.py checks (lint, Kubernetes schemas, hardening)."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
from labelloop.core.config import Settings
from labelloop.core.hparams import offline_setting

from tests.deploy.chart import KUBE_VERSION, render
from tests.deploy.conftest import VARIANTS, find, notes, one, rendered
from tests.deploy.test_chart import SERVICES, container, env_of, job_template

TOKEN_SECRET = {"name": "label-studio-token", "key": "token"}  # ci/labeling-values.yaml
LABEL_STUDIO_PEER = VARIANTS["labeling-values"]["networkPolicy"]["webhookFrom"]


def settings_of(c: dict[str, Any]) -> Settings:
    """What the service reads from its environment (the plain values; Secrets are the kubelet's)."""
    return Settings.from_env({name: e["value"] for name, e in env_of(c).items() if "value" in e})


def ingress_rule(policy: dict[str, Any], port: str) -> dict[str, Any] | None:
    rules = [r for r in policy["spec"]["ingress"] if any(p["port"] == port for p in r["ports"])]
    assert len(rules) <= 1, rules
    return rules[0] if rules else None


# The Label Studio API token ------------------------------------------------------------------------


def test_the_controller_reads_the_label_studio_token_from_the_secret_only() -> None:
    manifests = rendered("labeling-values")
    token = env_of(container(manifests, "controller"))["LABEL_STUDIO_API_KEY"]
    assert token == {"name": "LABEL_STUDIO_API_KEY", "valueFrom": {"secretKeyRef": TOKEN_SECRET}}
    for svc in SERVICES:  # nobody else needs it, the training Jobs neither
        if svc != "controller":
            assert "LABEL_STUDIO_API_KEY" not in env_of(container(manifests, svc)), svc
    assert "LABEL_STUDIO_API_KEY" not in {e["name"] for e in job_template(manifests).env}
    # The chart references the user's Secret; it never creates one holding a token.
    assert TOKEN_SECRET["name"] not in {s["metadata"]["name"] for s in find(manifests, "Secret")}


def test_the_token_goes_into_the_variable_experiments_name() -> None:
    manifests, _ = render(
        {"controller": {"labelStudio": {"apiKeyEnv": "LS_TEAM_TOKEN", "apiKeySecret": {"name": "ls"}}}}
    )
    env = env_of(container(manifests, "controller"))
    assert env["LS_TEAM_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "ls", "key": "api-key"}
    assert "LABEL_STUDIO_API_KEY" not in env


def test_no_secret_named_no_token_variable() -> None:
    for svc in SERVICES:
        assert "LABEL_STUDIO_API_KEY" not in env_of(container(rendered("defaults"), svc)), svc


# The webhook port -----------------------------------------------------------------------------------


def test_the_webhook_port_reaches_the_controller_its_pod_and_service() -> None:
    manifests = rendered("labeling-values")
    c = container(manifests, "controller")
    assert settings_of(c).webhook_port == 9180  # what controller/__main__.py serves on
    assert {"name": "webhook", "containerPort": 9180, "protocol": "TCP"} in c["ports"]
    ports = {p["name"]: p for p in one(manifests, "Service", "labelloop-controller")["spec"]["ports"]}
    assert ports["webhook"]["port"] == 9180 and ports["webhook"]["targetPort"] == "webhook"
    assert ports["webhook"]["appProtocol"] == "http"
    for svc in SERVICES:  # the other services neither serve webhooks nor read the setting
        if svc != "controller":
            assert "LABELLOOP_WEBHOOK_PORT" not in env_of(container(manifests, svc)), svc
    text = notes("labeling-values")
    assert "label_studio.webhook_url: http://labelloop-controller.ml.svc:9180/" in text
    assert "webhookFrom is empty" not in text


def test_webhooks_are_off_by_default() -> None:
    manifests = rendered("defaults")
    c = container(manifests, "controller")
    assert settings_of(c).webhook_port == 0  # Settings: 0 serves no webhook endpoint
    assert "webhook" not in {p["name"] for p in c["ports"]}
    service = one(manifests, "Service", "labelloop-controller")
    assert "webhook" not in {p["name"] for p in service["spec"]["ports"]}
    assert ingress_rule(one(manifests, "NetworkPolicy", "labelloop-controller"), "webhook") is None
    assert "webhook" not in notes("defaults")


def test_only_the_named_peers_may_post_webhooks() -> None:
    manifests = rendered("labeling-values")
    policy = one(manifests, "NetworkPolicy", "labelloop-controller")
    assert policy["spec"]["policyTypes"] == ["Ingress"]  # egress stays open: Label Studio may be anywhere
    webhook = ingress_rule(policy, "webhook")
    assert webhook == {"ports": [{"port": "webhook", "protocol": "TCP"}], "from": LABEL_STUDIO_PEER}
    # The other rules are the chart's usual ones: the API closed but to `helm test` (no controllerFrom),
    # /metrics to scrapers.
    test_pod = {"app.kubernetes.io/name": "labelloop", "app.kubernetes.io/instance": "labelloop"}
    assert ingress_rule(policy, "grpc") == {
        "ports": [{"port": "grpc", "protocol": "TCP"}],
        "from": [{"podSelector": {"matchLabels": {**test_pod, "app.kubernetes.io/component": "test"}}}],
    }
    metrics = ingress_rule(policy, "metrics")
    assert metrics is not None and metrics["from"] == [{"namespaceSelector": {}}]
    kubernetes_validate.validate(policy, KUBE_VERSION, strict=True)


def test_without_webhook_peers_the_port_stays_closed() -> None:
    """No rule names the webhook port, so the policy (which selects the controller) denies it."""
    manifests, text = render({"controller": {"webhookPort": 9180}})
    policy = one(manifests, "NetworkPolicy", "labelloop-controller")
    assert ingress_rule(policy, "webhook") is None
    assert all(r["ports"][0]["port"] in ("grpc", "metrics") for r in policy["spec"]["ingress"])
    assert "WARNING: networkPolicy.webhookFrom is empty" in text
    # Without NetworkPolicies nothing warns: the port is as open as the cluster's network.
    _, text = render({"controller": {"webhookPort": 9180}, "networkPolicy": {"enabled": False}})
    assert "webhookFrom is empty" not in text


def test_extra_peers_do_not_open_the_webhook_port() -> None:
    debug_peer = [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "debugging"}}}]
    values = {"controller": {"webhookPort": 9180}, "networkPolicy": {"extraFrom": debug_peer}}
    policy = one(render(values)[0], "NetworkPolicy", "labelloop-controller")
    assert ingress_rule(policy, "webhook") is None


# Image links for browsers -----------------------------------------------------------------------------


def test_every_pod_signs_image_links_for_the_public_endpoint() -> None:
    manifests = rendered("labeling-values")
    for svc in SERVICES:
        storage = settings_of(container(manifests, svc)).storage
        assert (storage.public_endpoint, storage.public_secure) == ("images.example.com", True), svc
        assert storage.endpoint == "labelloop-objectstore.ml.svc:8333"  # everything else stays in-cluster
    job_env = {e["name"]: e.get("value") for e in job_template(manifests).env}
    assert job_env["LABELLOOP_S3_PUBLIC_ENDPOINT"] == "https://images.example.com"
    assert "s3.publicEndpoint" not in notes("labeling-values")


def test_without_a_public_endpoint_the_notes_say_links_stay_in_the_cluster() -> None:
    c = container(rendered("defaults"), "controller")
    assert settings_of(c).storage.public_endpoint == ""
    assert "browsers outside the cluster cannot open" in notes("defaults")
    assert "s3.publicEndpoint" in notes("defaults")


def test_the_ingress_in_front_of_the_builtin_store_may_reach_its_s3_port_only() -> None:
    manifests = rendered("labeling-values")
    ingress_peer = VARIANTS["labeling-values"]["networkPolicy"]["objectStoreFrom"]
    store = one(manifests, "NetworkPolicy", "labelloop-objectstore")
    (rule,) = store["spec"]["ingress"]
    assert rule["ports"] == [{"port": "s3", "protocol": "TCP"}]
    assert rule["from"][-len(ingress_peer) :] == ingress_peer
    for svc in SERVICES:  # the ingress controller gets no gRPC port
        policy = one(manifests, "NetworkPolicy", f"labelloop-{svc}")
        assert all(ingress_peer[0] not in r.get("from", []) for r in policy["spec"]["ingress"]), svc
    default_store = one(rendered("defaults"), "NetworkPolicy", "labelloop-objectstore")
    assert ingress_peer[0] not in default_store["spec"]["ingress"][0]["from"]


def test_notes_warn_when_the_public_endpoint_cannot_reach_the_builtin_store() -> None:
    _, text = render({"s3": {"publicEndpoint": "https://images.example.com"}})
    assert "networkPolicy.objectStoreFrom is empty" in " ".join(text.split())  # across line breaks
    assert "objectStoreFrom" not in notes("labeling-values")


# Offline model hub -----------------------------------------------------------------------------------


def test_every_pod_and_job_is_offline_by_default_and_the_controller_checks_it() -> None:
    """HF_HUB_OFFLINE reaches every service and the training Jobs, so the controller's creation-time
    refusal of hub checkpoints (core/hparams.offline_setting) and the trainer's behaviour agree."""
    manifests = rendered("defaults")
    for svc in SERVICES:
        assert env_of(container(manifests, svc))["HF_HUB_OFFLINE"]["value"] == "1", svc
    assert {"name": "HF_HUB_OFFLINE", "value": "1"} in job_template(manifests).env
    controller_env = {
        n: e["value"] for n, e in env_of(container(manifests, "controller")).items() if "value" in e
    }
    assert offline_setting(controller_env) == "HF_HUB_OFFLINE=1"
    online, _ = render({"config": {"offline": False}})
    assert env_of(container(online, "controller"))["HF_HUB_OFFLINE"]["value"] == "0"
