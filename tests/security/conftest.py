"""Certificates and tokens for the security tests, made with the same code as `labelloop up --secure`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from labelloop.cli.secure import make_ca, make_leaf
from labelloop.core.auth import ADMIN, ANNOTATOR, EXPERIMENTER, SERVICE, hash_token

# One token per role; the annotator token acts as "ann-1".
TOKENS = {
    ADMIN: "admin-secret-token",
    EXPERIMENTER: "experimenter-secret-token",
    ANNOTATOR: "annotator-secret-token",
    SERVICE: "service-secret-token",
}
ANNOTATOR_ID = "ann-1"
HOSTS = ["localhost", "127.0.0.1"]


@dataclass(frozen=True)
class Pki:
    """A CA, a server/client certificate it signed, and an unrelated CA with its own certificate."""

    folder: Path

    def path(self, name: str) -> Path:
        return self.folder / name


def write_leaf(folder: Path, ca: tuple[bytes, bytes], prefix: str) -> None:
    cert, key = make_leaf(ca[0], ca[1], prefix, HOSTS)
    (folder / f"{prefix}.crt").write_bytes(cert)
    (folder / f"{prefix}.key").write_bytes(key)


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    for ca_name, leaf in (("ca", "server"), ("other-ca", "other")):
        ca = make_ca(ca_name)
        (folder / f"{ca_name}.crt").write_bytes(ca[0])
        (folder / f"{ca_name}.key").write_bytes(ca[1])
        write_leaf(folder, ca, leaf)
    write_leaf(folder, ((folder / "ca.crt").read_bytes(), (folder / "ca.key").read_bytes()), "client")
    return Pki(folder)


@pytest.fixture(scope="session")
def tokens_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    entries = [
        {"name": f"test-{role}", "role": role, "sha256": hash_token(token)}
        | ({"annotator": ANNOTATOR_ID} if role == ANNOTATOR else {})
        for role, token in TOKENS.items()
    ]
    path = tmp_path_factory.mktemp("tokens") / "tokens.yaml"
    path.write_text(yaml.safe_dump({"tokens": entries}))
    return path
