"""Settings shared by every service, read from LABELLOOP_* environment variables.

The same variables configure a local run, the Helm chart and the trainer's Kubernetes Jobs,
so one service finds the others and the object store the same way everywhere.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from labelloop.core.errors import InvalidArgument

# Default gRPC ports when all services run on one machine.
DEFAULT_PORTS = {"store": 50051, "trainer": 50052, "scorer": 50053, "selector": 50054, "controller": 50055}
DEFAULT_METRICS_PORTS = {"store": 9101, "trainer": 9102, "scorer": 9103, "selector": 9104, "controller": 9105}


@dataclass(frozen=True)
class StorageConfig:
    """Where datasets, snapshots, models and arrays live."""

    backend: str = "local"  # "local" (a folder) or "s3" (MinIO, SeaweedFS, Ceph, AWS)
    root: Path = Path("labelloop-data")  # local backend only
    endpoint: str = ""  # s3: "host:port"
    bucket: str = "labelloop"
    access_key: str = ""
    secret_key: str = ""
    secure: bool = False  # s3: use HTTPS
    region: str = ""
    # s3: "host:port" that browsers reach the same server at (an Ingress, a published port), for the
    # presigned image links handed to people; empty: links name `endpoint`. Used for signing only.
    public_endpoint: str = ""
    public_secure: bool = False  # s3: the public endpoint is HTTPS


@dataclass(frozen=True)
class SecurityConfig:
    """Transport security and caller identity (docs/security.md). Nothing set: plaintext, no tokens."""

    # PEM files; tls_cert and tls_key set: every gRPC port speaks TLS only. They are read again on each
    # new connection when changed (cert-manager renewals need no restart). Under mTLS they are also
    # the certificate this process presents when it calls another service.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    # The CA that signed our services' certificates: callers verify servers with it, and under mTLS
    # servers verify callers with it.
    tls_ca: Path | None = None
    client_auth: bool = False  # mTLS: servers refuse callers without a certificate signed by tls_ca
    # YAML of token hashes and roles (core/auth.py); set: every RPC but health checks needs a token.
    tokens_file: Path | None = None
    # The bearer token this process presents when it calls a service (a service token, or the CLI's).
    token: str = field(default="", repr=False)
    reflection: bool = True  # gRPC reflection; under tokens it answers authenticated callers only
    # /metrics: "open" (plain HTTP), "tls" (HTTPS with tls_cert; client certificates under mTLS), "off".
    metrics: str = "open"
    # A plaintext port serving only grpc.health.v1, for probes that cannot speak TLS (kubelet's); 0: none.
    health_port: int = 0

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None and self.tls_key is not None

    @classmethod
    def from_env(cls, get: Callable[..., str]) -> SecurityConfig:
        def path(name: str) -> Path | None:
            text = get(name)
            return Path(text).absolute() if text else None

        config = cls(
            tls_cert=path("TLS_CERT"),
            tls_key=path("TLS_KEY"),
            tls_ca=path("TLS_CA"),
            client_auth=_truthy(get("TLS_CLIENT_AUTH", "false")),
            tokens_file=path("AUTH_TOKENS_FILE"),
            token=get("TOKEN"),
            reflection=_truthy(get("REFLECTION", "true")),
            metrics=get("METRICS_ACCESS", "open"),
            health_port=int(get("HEALTH_PORT", "0")),
        )
        if (config.tls_cert is None) != (config.tls_key is None):
            raise InvalidArgument("set both LABELLOOP_TLS_CERT and LABELLOOP_TLS_KEY, or neither")
        if config.client_auth and (not config.tls or config.tls_ca is None):
            raise InvalidArgument(
                "LABELLOOP_TLS_CLIENT_AUTH=true needs LABELLOOP_TLS_CERT, LABELLOOP_TLS_KEY "
                "and LABELLOOP_TLS_CA"
            )
        if config.metrics not in ("open", "tls", "off"):
            raise InvalidArgument(f"LABELLOOP_METRICS_ACCESS={config.metrics!r}: use 'open', 'tls' or 'off'")
        if config.metrics == "tls" and not config.tls:
            raise InvalidArgument(
                "LABELLOOP_METRICS_ACCESS=tls needs LABELLOOP_TLS_CERT and LABELLOOP_TLS_KEY"
            )
        return config

    def to_env(self) -> dict[str, str]:
        def text(path: Path | None) -> str:
            return "" if path is None else str(path)

        return {
            "LABELLOOP_TLS_CERT": text(self.tls_cert),
            "LABELLOOP_TLS_KEY": text(self.tls_key),
            "LABELLOOP_TLS_CA": text(self.tls_ca),
            "LABELLOOP_TLS_CLIENT_AUTH": str(self.client_auth).lower(),
            "LABELLOOP_AUTH_TOKENS_FILE": text(self.tokens_file),
            "LABELLOOP_TOKEN": self.token,
            "LABELLOOP_REFLECTION": str(self.reflection).lower(),
            "LABELLOOP_METRICS_ACCESS": self.metrics,
            "LABELLOOP_HEALTH_PORT": str(self.health_port),
        }


def _truthy(text: str) -> bool:
    return text.lower() in ("1", "true", "yes")


def public_endpoint(text: str, secure: str) -> dict[str, Any]:
    """StorageConfig's public_endpoint and public_secure from LABELLOOP_S3_PUBLIC_ENDPOINT.

    A URL names the scheme browsers use ("https://images.example.com"); a bare "host:port" is reached
    like the internal endpoint (LABELLOOP_S3_SECURE)."""
    text = text.strip()
    if not text:
        return {"public_endpoint": "", "public_secure": False}
    scheme, _, rest = text.rpartition("://")
    host = rest.rstrip("/")
    if scheme not in ("", "http", "https") or not host or "/" in host:
        raise InvalidArgument(
            f"LABELLOOP_S3_PUBLIC_ENDPOINT={text!r}: use host[:port] or http(s)://host[:port], without a path"
        )
    return {"public_endpoint": host, "public_secure": scheme == "https" if scheme else _truthy(secure)}


def import_roots(text: str) -> tuple[Path, ...]:
    """LABELLOOP_IMPORT_ROOTS: folders separated by os.pathsep (":"), relative ones made absolute."""
    return tuple(Path(part).absolute() for part in text.split(os.pathsep) if part.strip())


@dataclass(frozen=True)
class Settings:
    storage: StorageConfig = field(default_factory=StorageConfig)
    store_address: str = f"127.0.0.1:{DEFAULT_PORTS['store']}"
    trainer_address: str = f"127.0.0.1:{DEFAULT_PORTS['trainer']}"
    scorer_address: str = f"127.0.0.1:{DEFAULT_PORTS['scorer']}"
    selector_address: str = f"127.0.0.1:{DEFAULT_PORTS['selector']}"
    controller_address: str = f"127.0.0.1:{DEFAULT_PORTS['controller']}"
    # Where this process listens; 0 lets a service fall back to its default port.
    grpc_port: int = 0
    metrics_port: int = 0
    bind_host: str = "127.0.0.1"
    log_level: str = "INFO"
    log_format: str = "json"  # "json" lines, or "text" for people
    # Local scratch space: downloaded images, models, checkpoints.
    cache_dir: Path = Path(os.path.expanduser("~/.cache/labelloop"))
    # How the trainer runs jobs: "local" (a worker process) or "kubernetes" (batch/v1 Jobs).
    trainer_executor: str = "local"
    # The controller's HTTP endpoint for Label Studio's webhooks (they only wake its reconciliation
    # early); 0 starts none: Label Studio experiments then rely on periodic reconciliation alone.
    webhook_port: int = 0
    # The store's import roots: the only folders of its machine it reads manifests and images from
    # (symlinks and ".." resolved first); empty: it reads only from the object store.
    import_roots: tuple[Path, ...] = ()
    security: SecurityConfig = field(default_factory=SecurityConfig)

    def address_of(self, service: str) -> str:
        return getattr(self, f"{service}_address")

    def port_for(self, service: str) -> int:
        return self.grpc_port or DEFAULT_PORTS[service]

    def metrics_port_for(self, service: str) -> int:
        return self.metrics_port or DEFAULT_METRICS_PORTS[service]

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)

        def get(name: str, default: str = "") -> str:
            return env.get(f"LABELLOOP_{name}", default)

        backend = get("STORAGE_BACKEND", "local")
        if backend not in ("local", "s3"):
            raise InvalidArgument(f"LABELLOOP_STORAGE_BACKEND={backend!r}: use 'local' or 's3'")
        storage = StorageConfig(
            backend=backend,
            root=Path(get("STORAGE_ROOT", "labelloop-data")).absolute(),
            endpoint=get("S3_ENDPOINT"),
            bucket=get("S3_BUCKET", "labelloop"),
            access_key=get("S3_ACCESS_KEY"),
            secret_key=get("S3_SECRET_KEY"),
            secure=_truthy(get("S3_SECURE", "false")),
            region=get("S3_REGION"),
            **public_endpoint(get("S3_PUBLIC_ENDPOINT"), get("S3_SECURE", "false")),
        )
        defaults = cls()
        return cls(
            storage=storage,
            store_address=get("STORE_ADDRESS", defaults.store_address),
            trainer_address=get("TRAINER_ADDRESS", defaults.trainer_address),
            scorer_address=get("SCORER_ADDRESS", defaults.scorer_address),
            selector_address=get("SELECTOR_ADDRESS", defaults.selector_address),
            controller_address=get("CONTROLLER_ADDRESS", defaults.controller_address),
            grpc_port=int(get("GRPC_PORT", "0")),
            metrics_port=int(get("METRICS_PORT", "0")),
            bind_host=get("BIND_HOST", defaults.bind_host),
            log_level=get("LOG_LEVEL", "INFO").upper(),
            log_format=get("LOG_FORMAT", "json"),
            cache_dir=Path(get("CACHE_DIR", str(defaults.cache_dir))).absolute(),
            trainer_executor=get("TRAINER_EXECUTOR", "local"),
            webhook_port=int(get("WEBHOOK_PORT", "0")),
            import_roots=import_roots(get("IMPORT_ROOTS")),
            security=SecurityConfig.from_env(get),
        )

    def to_env(self) -> dict[str, str]:
        """The environment that reproduces these settings in another process (or a pod)."""
        s = self.storage
        return {
            "LABELLOOP_STORAGE_BACKEND": s.backend,
            "LABELLOOP_STORAGE_ROOT": str(s.root),
            "LABELLOOP_S3_ENDPOINT": s.endpoint,
            "LABELLOOP_S3_BUCKET": s.bucket,
            "LABELLOOP_S3_ACCESS_KEY": s.access_key,
            "LABELLOOP_S3_SECRET_KEY": s.secret_key,
            "LABELLOOP_S3_SECURE": str(s.secure).lower(),
            "LABELLOOP_S3_REGION": s.region,
            "LABELLOOP_S3_PUBLIC_ENDPOINT": (
                f"{'https' if s.public_secure else 'http'}://{s.public_endpoint}" if s.public_endpoint else ""
            ),
            "LABELLOOP_STORE_ADDRESS": self.store_address,
            "LABELLOOP_TRAINER_ADDRESS": self.trainer_address,
            "LABELLOOP_SCORER_ADDRESS": self.scorer_address,
            "LABELLOOP_SELECTOR_ADDRESS": self.selector_address,
            "LABELLOOP_CONTROLLER_ADDRESS": self.controller_address,
            "LABELLOOP_BIND_HOST": self.bind_host,
            "LABELLOOP_LOG_LEVEL": self.log_level,
            "LABELLOOP_LOG_FORMAT": self.log_format,
            "LABELLOOP_CACHE_DIR": str(self.cache_dir),
            "LABELLOOP_TRAINER_EXECUTOR": self.trainer_executor,
            "LABELLOOP_WEBHOOK_PORT": str(self.webhook_port),
            "LABELLOOP_IMPORT_ROOTS": os.pathsep.join(str(p) for p in self.import_roots),
            **self.security.to_env(),
        }

    def with_storage(self, **changes: Any) -> Settings:
        """These settings with some StorageConfig fields replaced (dataclasses.replace checks names)."""
        return replace(self, storage=replace(self.storage, **changes))
