"""What `labelloop up --secure` needs, made once into a state folder and reused after.

    ca.crt, ca.key          a local certificate authority (ca.key never leaves this folder)
    server.crt, server.key  every service's certificate, for localhost, 127.0.0.1, ::1 and this host;
                            it is also their client certificate when --mtls asks for client certs
    tokens.yaml             the hashes of the tokens below (LABELLOOP_AUTH_TOKENS_FILE)
    admin.token             the admin token the CLI presents (LABELLOOP_TOKEN)
    service.token           the token the services present to each other

Files holding secrets are written with mode 0600. Uses the `cryptography` package.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import socket
from dataclasses import dataclass
from pathlib import Path

import yaml

from labelloop.core.auth import ADMIN, SERVICE, hash_token, new_token
from labelloop.core.config import SecurityConfig

CERT_DAYS = 365
STATE_DIR_NAME = "labelloop-secure"


def default_state_dir(storage_root: Path) -> Path:
    """Where `up --secure` keeps its state without --state-dir (and `labelloop tokens` looks): beside
    the data folder."""
    return (Path(storage_root).parent / STATE_DIR_NAME).absolute()


@dataclass(frozen=True)
class StateFiles:
    folder: Path

    @property
    def ca_cert(self) -> Path:
        return self.folder / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.folder / "ca.key"

    @property
    def server_cert(self) -> Path:
        return self.folder / "server.crt"

    @property
    def server_key(self) -> Path:
        return self.folder / "server.key"

    @property
    def tokens(self) -> Path:
        return self.folder / "tokens.yaml"

    @property
    def admin_token(self) -> Path:
        return self.folder / "admin.token"

    @property
    def service_token(self) -> Path:
        return self.folder / "service.token"


def _write_secret(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def make_ca(name: str = "LabelLoop local CA") -> tuple[bytes, bytes]:
    """(certificate PEM, private key PEM) of a new self-signed CA."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CERT_DAYS * 5))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        )
        .sign(key, hashes.SHA256())
    )
    return _pem(cert), _key_pem(key)


def make_leaf(ca_cert: bytes, ca_key: bytes, name: str, hosts: list[str]) -> tuple[bytes, bytes]:
    """(certificate PEM, key PEM) signed by the CA, valid for `hosts` (names or IPs) as a server and
    as a client (mTLS)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    issuer = x509.load_pem_x509_certificate(ca_cert)
    signer = serialization.load_pem_private_key(ca_key, password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(issuer.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CERT_DAYS))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .sign(signer, hashes.SHA256())  # type: ignore[arg-type]  # an EC key, as made by make_ca
    )
    return _pem(cert), _key_pem(key)


def _pem(cert: object) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return cert.public_bytes(serialization.Encoding.PEM)  # type: ignore[attr-defined]


def _key_pem(key: object) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def local_hosts() -> list[str]:
    return sorted({"localhost", "127.0.0.1", "::1", socket.gethostname()})


def prepare(folder: Path, client_auth: bool = False) -> SecurityConfig:
    """Makes what is missing in `folder` and returns the services' security settings (TLS, tokens,
    the service token; mTLS when `client_auth`)."""
    try:
        import cryptography  # noqa: F401
    except ImportError:
        raise ValueError("--secure needs the `cryptography` package: pip install cryptography") from None
    files = StateFiles(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if not files.ca_cert.exists() or not files.ca_key.exists():
        cert, key = make_ca()
        _write_secret(files.ca_key, key)
        files.ca_cert.write_bytes(cert)
    if not files.server_cert.exists() or not files.server_key.exists():
        cert, key = make_leaf(
            files.ca_cert.read_bytes(), files.ca_key.read_bytes(), "labelloop", local_hosts()
        )
        _write_secret(files.server_key, key)
        files.server_cert.write_bytes(cert)
    for token_file in (files.admin_token, files.service_token):
        if not token_file.exists():
            _write_secret(token_file, new_token().encode())
    tokens = [
        {"name": "local-admin", "role": ADMIN, "sha256": hash_token(files.admin_token.read_text().strip())},
        {
            "name": "local-services",
            "role": SERVICE,
            "sha256": hash_token(files.service_token.read_text().strip()),
        },
    ]
    if not files.tokens.exists():
        _write_secret(files.tokens, yaml.safe_dump({"tokens": tokens}, sort_keys=False).encode())
    return SecurityConfig(
        tls_cert=files.server_cert,
        tls_key=files.server_key,
        tls_ca=files.ca_cert,
        client_auth=client_auth,
        tokens_file=files.tokens,
        token=files.service_token.read_text().strip(),
    )
