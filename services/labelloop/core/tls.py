"""Server-side TLS whose certificate files are read again when they change.

gRPC asks the fetcher before each new connection's handshake; it rereads the PEM files (a few KB)
and hands gRPC a new configuration only when their bytes differ. cert-manager renewals and rotated
Kubernetes Secrets thus take effect on the next connection, without a restart; open connections
keep the certificate they were made with.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import cast

import grpc

from labelloop.core.config import SecurityConfig

log = logging.getLogger(__name__)


class ReloadingCertificates:
    def __init__(self, security: SecurityConfig):
        if security.tls_cert is None or security.tls_key is None:
            raise ValueError("TLS needs LABELLOOP_TLS_CERT and LABELLOOP_TLS_KEY")
        self.cert_path, self.key_path, self.ca_path = security.tls_cert, security.tls_key, security.tls_ca
        self.client_auth = security.client_auth
        self._lock = threading.Lock()
        self._files = self._read()

    def _read(self) -> tuple[bytes, bytes, bytes | None]:
        ca = self.ca_path.read_bytes() if self.ca_path is not None else None
        return self.key_path.read_bytes(), self.cert_path.read_bytes(), ca

    def _configuration(self) -> grpc.ServerCertificateConfiguration:
        key, cert, ca = self._files
        return grpc.ssl_server_certificate_configuration([(key, cert)], root_certificates=ca)

    def fetch(self) -> grpc.ServerCertificateConfiguration | None:
        """The new configuration when the files changed, else None (gRPC keeps the current one)."""
        try:
            files = self._read()
        except OSError as error:  # mid-rotation: the next handshake tries again
            log.warning("TLS files unreadable, keeping the current certificate: %s", error)
            return None
        with self._lock:
            if files == self._files:
                return None
            self._files = files
        log.info("TLS certificate reloaded from %s", self.cert_path)
        return self._configuration()

    def credentials(self) -> grpc.ServerCredentials:
        # gRPC keeps the current configuration when the fetcher returns None; its stubs omit that.
        fetcher = cast(Callable[[], grpc.ServerCertificateConfiguration], self.fetch)
        return grpc.dynamic_ssl_server_credentials(
            self._configuration(), fetcher, require_client_authentication=self.client_auth
        )
