"""Who may call what: bearer tokens, roles, and the one server interceptor that checks them.

Tokens come from a YAML file (LABELLOOP_AUTH_TOKENS_FILE) that holds only their SHA-256 hashes:

    tokens:
      - {name: alice, role: admin, sha256: 5e88...}
      - {name: labeler-bob, role: annotator, annotator: bob, sha256: 9f86...}

(`printf %s "$TOKEN" | sha256sum` gives a hash.) A caller sends `authorization: Bearer <token>`.
Roles: admin may call everything; experimenter runs experiments and reads datasets; annotator labels,
and only as the annotator id its token names; service is what our services present to each other.
The file is read again when it changes, so tokens are added and revoked without a restart.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import yaml

from labelloop.core.api import service_name
from labelloop.core.errors import InvalidArgument
from labelloop.v1 import (
    dataset_store_pb2,
    experiments_pb2,
    labeling_pb2,
    scorer_pb2,
    selector_pb2,
    trainer_pb2,
)

log = logging.getLogger(__name__)

ADMIN, EXPERIMENTER, ANNOTATOR, SERVICE = "admin", "experimenter", "annotator", "service"
ROLES = (ADMIN, EXPERIMENTER, ANNOTATOR, SERVICE)
# Health checks answer everyone: kubelet probes and load balancers carry no token.
OPEN_PREFIXES = ("/grpc.health.v1.Health/",)
REFLECTION_PREFIX = "/grpc.reflection."


def _methods(pb2_module: Any, roles: Iterable[str], names: Iterable[str]) -> dict[str, frozenset[str]]:
    service = service_name(pb2_module)
    return {f"/{service}/{name}": frozenset({ADMIN, *roles}) for name in names}


_STORE_READS = (
    "GetDataset",
    "ListDatasets",
    "ListExamples",
    "ListAnnotations",
    "GetSnapshot",
    "ListSnapshots",
)
_OPERATION_READS = ("GetOperation", "ListOperations", "WatchOperation")
_EXPERIMENT_CALLS = (
    "CreateExperiment",
    "GetExperiment",
    "ListExperiments",
    "StartExperiment",
    "PauseExperiment",
    "ResumeExperiment",
    "CancelExperiment",
    "ListRounds",
    "WatchExperiment",
)
# Every RPC of labelloop.v1 and the roles besides admin that may call it; tests/security checks that
# no RPC is missing. An RPC not listed (a new one) answers admin only.
POLICY: dict[str, frozenset[str]] = {
    **_methods(dataset_store_pb2, (), ("CreateDataset", "DeleteDataset")),
    **_methods(dataset_store_pb2, (EXPERIMENTER, SERVICE), _STORE_READS),
    **_methods(dataset_store_pb2, (SERVICE, ANNOTATOR), ("AppendAnnotations",)),
    **_methods(dataset_store_pb2, (SERVICE,), ("CreateSnapshot",)),
    **_methods(trainer_pb2, (SERVICE,), ("CreateTrainingRun", "CreateEmbeddingRun", "CancelOperation")),
    **_methods(trainer_pb2, (SERVICE, EXPERIMENTER), ("CreatePredictionRun", *_OPERATION_READS)),
    **_methods(scorer_pb2, (SERVICE,), ("ScoreExamples", "AssessLabels")),
    **_methods(selector_pb2, (SERVICE,), ("SelectBatch",)),
    **_methods(experiments_pb2, (EXPERIMENTER,), _EXPERIMENT_CALLS),
    **_methods(experiments_pb2, (), ("DeleteExperiment",)),
    **_methods(labeling_pb2, (ANNOTATOR,), ("LeaseTasks", "SubmitLabel", "SkipTask")),
    **_methods(labeling_pb2, (ANNOTATOR, EXPERIMENTER), ("ListTasks",)),
    **_methods(labeling_pb2, (EXPERIMENTER,), ("GetLabelingReport", "ExportLabels")),
}

# The annotator ids a request acts as: an annotator token may only name its own.
_LABELING = service_name(labeling_pb2)
ACTS_AS: dict[str, Callable[[Any], list[str]]] = {
    f"/{_LABELING}/LeaseTasks": lambda request: [request.annotator],
    f"/{_LABELING}/SubmitLabel": lambda request: [request.annotator],
    f"/{_LABELING}/SkipTask": lambda request: [request.annotator],
    f"/{service_name(dataset_store_pb2)}/AppendAnnotations": lambda request: [
        a.annotator for a in request.annotations
    ],
}


def roles_for(method: str) -> frozenset[str]:
    return POLICY.get(method, frozenset({ADMIN}))


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


TOKEN_PREFIX = "llt_"


def new_token() -> str:
    """A random token behind a fixed prefix: a bare URL-safe token starts with "-" once in 64, and
    `--token -x...` then reads as a missing value; the prefix also lets secret scanners find leaks."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Identity:
    name: str
    role: str
    annotator: str = ""  # the one annotator id an annotator token acts as


def parse_tokens(data: Any, source: str) -> dict[str, Identity]:
    """Token hash -> Identity from the YAML's structure; InvalidArgument names the bad entry."""
    entries = data.get("tokens") if isinstance(data, Mapping) else None
    if not isinstance(entries, list):
        raise InvalidArgument(f"{source}: expected a mapping with a list 'tokens'")
    identities: dict[str, Identity] = {}
    for number, entry in enumerate(entries, 1):
        where = f"{source}: token {number}"
        if not isinstance(entry, Mapping):
            raise InvalidArgument(f"{where}: expected a mapping with name, role and sha256")
        digest, role = str(entry.get("sha256", "")).lower(), str(entry.get("role", ""))
        name, annotator = str(entry.get("name", f"token-{number}")), str(entry.get("annotator", "") or "")
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise InvalidArgument(
                f"{where} ({name}): sha256 must be 64 hex digits (printf %s TOKEN | sha256sum)"
            )
        if role not in ROLES:
            raise InvalidArgument(f"{where} ({name}): role {role!r} is not one of {', '.join(ROLES)}")
        if role == ANNOTATOR and not annotator:
            raise InvalidArgument(f"{where} ({name}): an annotator token needs the annotator id it acts as")
        identities[digest] = Identity(name, role, annotator)
    return identities


class TokenFile:
    """The tokens of a YAML file, read again when the file changes (a bad edit keeps the old ones)."""

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        self._stamp = self._stat()
        self._identities = self._read()

    def _stat(self) -> tuple[int, int, int]:
        stat = os.stat(self.path)  # follows the ..data symlink a Kubernetes Secret volume swaps
        return stat.st_ino, stat.st_mtime_ns, stat.st_size

    def _read(self) -> dict[str, Identity]:
        return parse_tokens(yaml.safe_load(self.path.read_text()), str(self.path))

    def identity(self, token: str) -> Identity | None:
        self._reload_if_changed()
        return self._identities.get(hash_token(token))

    def _reload_if_changed(self) -> None:
        try:
            stamp = self._stat()
            if stamp == self._stamp:
                return
            with self._lock:
                if stamp != self._stamp:
                    self._identities, self._stamp = self._read(), stamp
                    log.info("tokens reloaded from %s: %d tokens", self.path, len(self._identities))
        except (OSError, yaml.YAMLError, InvalidArgument) as error:
            log.error("tokens file %s unreadable, keeping the previous tokens: %s", self.path, error)


def bearer_token(metadata: Iterable[tuple[str, Any]] | None) -> str:
    for key, value in metadata or ():
        if key == "authorization" and isinstance(value, str) and value.startswith("Bearer "):
            return value.removeprefix("Bearer ").strip()
    return ""


class AuthInterceptor(grpc.ServerInterceptor):
    """Refuses calls without a valid token (UNAUTHENTICATED), calls outside the token's role
    (PERMISSION_DENIED, naming the role needed) and annotator tokens acting as someone else."""

    def __init__(self, tokens: TokenFile):
        self.tokens = tokens

    def intercept_service(self, continuation: Callable, handler_call_details: Any) -> Any:
        method: str = handler_call_details.method
        handler = continuation(handler_call_details)
        if handler is None or method.startswith(OPEN_PREFIXES):
            return handler
        token = bearer_token(handler_call_details.invocation_metadata)
        caller = self.tokens.identity(token) if token else None
        if caller is None:
            what = "an unknown or revoked token" if token else "no token"
            return _refusal(
                handler,
                grpc.StatusCode.UNAUTHENTICATED,
                f"{method} needs a token (metadata 'authorization: Bearer TOKEN'; labelloop --token or "
                f"LABELLOOP_TOKEN); this call has {what}",
            )
        if method.startswith(REFLECTION_PREFIX):
            return handler
        needed = roles_for(method)
        if caller.role not in needed:
            log.warning("%s refused to %s (role %s)", method, caller.name, caller.role)
            return _refusal(
                handler,
                grpc.StatusCode.PERMISSION_DENIED,
                f"{method} needs role {' or '.join(sorted(needed))}; "
                f"token {caller.name!r} has role {caller.role}",
            )
        acts_as = ACTS_AS.get(method)
        if caller.role == ANNOTATOR and acts_as is not None and handler.unary_unary:
            return _bound_to_annotator(handler, caller, method, acts_as)
        return handler


def _refusal(handler: grpc.RpcMethodHandler, code: grpc.StatusCode, message: str) -> grpc.RpcMethodHandler:
    """A handler of the same kind as `handler` that answers `code` without running it."""

    def refuse(_request: Any, context: grpc.ServicerContext) -> Any:
        context.abort(code, message)

    def refuse_stream(_request: Any, context: grpc.ServicerContext) -> Any:
        context.abort(code, message)
        yield  # a generator: stream handlers must return an iterator

    kinds = {
        "unary_unary": (grpc.unary_unary_rpc_method_handler, refuse),
        "unary_stream": (grpc.unary_stream_rpc_method_handler, refuse_stream),
        "stream_unary": (grpc.stream_unary_rpc_method_handler, refuse),
        "stream_stream": (grpc.stream_stream_rpc_method_handler, refuse_stream),
    }
    for kind, (make, behavior) in kinds.items():
        if getattr(handler, kind):
            return make(
                behavior,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
    raise ValueError(f"a method handler of no known kind: {handler!r}")


def _bound_to_annotator(
    handler: grpc.RpcMethodHandler, caller: Identity, method: str, acts_as: Callable[[Any], list[str]]
) -> grpc.RpcMethodHandler:
    behavior = handler.unary_unary
    assert behavior is not None  # the caller checked the kind

    def checked(request: Any, context: grpc.ServicerContext) -> Any:
        others = sorted({name for name in acts_as(request) if name != caller.annotator})
        if others:
            log.warning("%s refused to %s: acts as another annotator", method, caller.name)
            shown = ", ".join(repr(name[:64]) for name in others[:3])
            context.abort(
                grpc.StatusCode.PERMISSION_DENIED,
                f"token {caller.name!r} labels only as annotator {caller.annotator!r}; "
                f"this request names {shown}: set annotator to {caller.annotator!r}",
            )
        return behavior(request, context)

    return grpc.unary_unary_rpc_method_handler(
        checked,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )
