"""The chart with TLS (a cert-manager style Secret), mTLS and tokens: rendered by the real Helm engine,
linted, validated, and its settings read by the services' own configuration code."""

from __future__ import annotations

from functools import cache
from typing import Any

import kubernetes_validate
from labelloop.core.config import Settings

from tests.deploy.chart import KUBE_VERSION, Manifest, lint, lint_problems, render
from tests.deploy.conftest import find, one, rendered

SERVICES = ["store", "trainer", "scorer", "selector", "controller"]
ADMINS = [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "data-admins"}}}]
SECURE = {
    "tls": {"secretName": "labelloop-tls", "clientAuth": True, "healthPort": 50100},
    "auth": {"secretName": "labelloop-auth", "reflection": False, "metricsAccess": "tls"},
    "networkPolicy": {"storeFrom": ADMINS},
}


@cache
def secure() -> list[Manifest]:
    return render(SECURE)[0]


def container(component: str) -> dict[str, Any]:
    return one(secure(), "Deployment", f"labelloop-{component}")["spec"]["template"]["spec"]["containers"][0]


def test_secure_values_lint_and_validate() -> None:
    assert lint_problems(lint(SECURE)) == []
    for m in secure():
        if m.kind != "ServiceMonitor":
            kubernetes_validate.validate(m.doc, KUBE_VERSION, strict=True)


def test_services_read_tls_and_tokens_from_the_mounted_secrets() -> None:
    for svc in SERVICES:
        pod = one(secure(), "Deployment", f"labelloop-{svc}")["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes["tls"]["secret"]["secretName"] == "labelloop-tls"
        assert volumes["auth"]["secret"]["secretName"] == "labelloop-auth"
        c = pod["containers"][0]
        mounts = {m["name"]: m for m in c["volumeMounts"]}
        assert "subPath" not in mounts["tls"]  # a subPath mount never sees a renewed Secret
        env = {e["name"]: e for e in c["env"]}
        plain = {name: e["value"] for name, e in env.items() if "value" in e}
        security = Settings.from_env(plain).security  # the chart's values pass the services' checks
        assert security.tls and security.client_auth and security.health_port == 50100
        assert str(security.tls_cert).startswith(mounts["tls"]["mountPath"])
        assert str(security.tokens_file).startswith(mounts["auth"]["mountPath"])
        assert security.reflection is False and security.metrics == "tls"
        assert env["LABELLOOP_TOKEN"]["valueFrom"]["secretKeyRef"] == {
            "name": "labelloop-auth",
            "key": "service-token",
        }


def test_probes_use_the_plaintext_health_port_under_tls() -> None:
    for svc in SERVICES:
        c = container(svc)
        assert {"name": "health", "containerPort": 50100, "protocol": "TCP"} in c["ports"]
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            assert c[probe]["grpc"] == {"port": 50100}, (svc, probe)
    (pod,) = find(secure(), "Pod")
    assert pod["spec"]["containers"][0]["args"] == [f"labelloop-{svc}:50100" for svc in SERVICES]


def test_network_policies_open_the_store_to_admins_and_health_to_helm_test() -> None:
    store = one(secure(), "NetworkPolicy", "labelloop-store")
    grpc_rule = next(r for r in store["spec"]["ingress"] if r["ports"][0]["port"] == "grpc")
    assert all(peer in grpc_rule["from"] for peer in ADMINS)
    health = next(r for r in store["spec"]["ingress"] if r["ports"][0]["port"] == "health")
    assert [p["podSelector"]["matchLabels"]["app.kubernetes.io/component"] for p in health["from"]] == [
        "test"
    ]
    # Other services' APIs stay closed to the admins' peers.
    scorer = one(secure(), "NetworkPolicy", "labelloop-scorer")
    assert not any(peer in rule.get("from", []) for rule in scorer["spec"]["ingress"] for peer in ADMINS)


def test_defaults_add_no_security_settings() -> None:
    """Off by default (compose's settings): no Secret volumes, no security env, probes on gRPC."""
    manifests = rendered("defaults")
    for svc in SERVICES:
        c = one(manifests, "Deployment", f"labelloop-{svc}")["spec"]["template"]["spec"]["containers"][0]
        names = {e["name"] for e in c["env"]}
        assert not {n for n in names if n.startswith(("LABELLOOP_TLS", "LABELLOOP_AUTH", "LABELLOOP_TOKEN"))}
        grpc_port = next(p["containerPort"] for p in c["ports"] if p["name"] == "grpc")
        assert c["readinessProbe"]["grpc"] == {"port": grpc_port}
