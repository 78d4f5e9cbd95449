"""`labelloop tokens create|list|delete`: the tokens file edited for the services that read it.

The end-to-end test runs a real store on TLS with tokens (`up --secure`'s files) and checks that a
token the CLI creates works at once and a deleted one is refused, without a restart."""

from __future__ import annotations

import dataclasses
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from labelloop.cli.local import LocalCluster
from labelloop.cli.main import build_parser, main
from labelloop.cli.secure import prepare
from labelloop.core.auth import TOKEN_PREFIX, hash_token, new_token, parse_tokens
from labelloop.core.config import Settings, StorageConfig

from tests.support.cluster import cluster


def tokens(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["tokens", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_create_prints_only_the_token_and_stores_only_its_hash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "tokens.yaml"
    code, out, err = tokens(capsys, "create", "labeler-bob", "--role", "annotator", "--annotator", "bob",
                            "--file", str(path))  # fmt: skip
    assert code == 0, err
    token = out.removesuffix("\n")
    assert token and "\n" not in token and " " not in token  # `TOKEN=$(labelloop tokens create ...)`
    assert "shown only this once" in err
    text = path.read_text()
    assert token not in text
    identities = parse_tokens(yaml.safe_load(text), str(path))  # the services' own loader
    assert identities[hash_token(token)].name == "labeler-bob"
    assert identities[hash_token(token)].annotator == "bob"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_list_and_delete(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = str(tmp_path / "tokens.yaml")
    assert tokens(capsys, "create", "alice", "--role", "admin", "--file", path)[0] == 0
    assert tokens(capsys, "create", "carol", "--role", "experimenter", "--file", path)[0] == 0
    code, out, _ = tokens(capsys, "list", "-o", "json", "--file", path)
    assert code == 0
    listed = json.loads(out)
    assert [(t["name"], t["role"]) for t in listed] == [("alice", "admin"), ("carol", "experimenter")]
    assert all(len(t["sha256"]) == 64 for t in listed)
    code, out, _ = tokens(capsys, "list", "--file", path)
    assert out.splitlines()[0].split() == ["NAME", "ROLE", "ANNOTATOR", "SHA256"]
    assert main(["get", "token", "alice", "--file", path]) == 0  # kubectl-style verbs (cli/verbs.py)
    assert "role:      admin" in capsys.readouterr().out
    assert main(["delete", "tokens", "alice", "--file", path]) == 0
    assert capsys.readouterr().out == "token 'alice' deleted\n"
    assert main(["get", "datasets", "--file", path]) == 2  # --file is for tokens only
    assert "--file is for tokens only" in capsys.readouterr().err
    code, out, _ = tokens(capsys, "list", "-o", "json", "--file", path)
    assert [t["name"] for t in json.loads(out)] == ["carol"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["create", "carol", "--role", "admin"], "a token named 'carol' exists"),
        (["create", "dan", "--role", "annotator"], "--role annotator needs --annotator ID"),
        (["create", "dan", "--role", "admin", "--annotator", "dan"], "--annotator is for --role annotator"),
        (["create", "has space", "--role", "admin"], "token name 'has space'"),
        (["delete", "carol", "nobody"], "no token named 'nobody'"),
        (["list", "nobody"], "no token named 'nobody'"),
    ],
)
def test_refusals_are_one_line_and_change_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    path = tmp_path / "tokens.yaml"
    assert tokens(capsys, "create", "carol", "--role", "experimenter", "--file", str(path))[0] == 0
    before = path.read_bytes()
    code, out, err = tokens(capsys, *args, "--file", str(path))
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err
    assert path.read_bytes() == before


def test_a_broken_file_is_refused_not_overwritten(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "tokens.yaml"
    path.write_text(yaml.safe_dump({"tokens": [{"name": "x", "role": "superuser", "sha256": "0" * 64}]}))
    code, _, err = tokens(capsys, "create", "alice", "--role", "admin", "--file", str(path))
    assert code == 2 and "superuser" in err
    assert "alice" not in path.read_text()


def test_each_change_replaces_the_file_whole(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A new file renamed over the old (a new inode), so a service reloading it reads the old file or
    the new one, never half of one; its mode is kept and no temporary file is left."""
    path = tmp_path / "tokens.yaml"
    path.write_text(yaml.safe_dump({"tokens": []}))
    path.chmod(0o640)
    for name in ("a", "b", "c"):
        # A reader that opened the file before the change (a reloading service) still reads the whole
        # old file from its handle: the change is a new file renamed over the path, not a rewrite.
        with path.open() as reader:
            before = path.read_text()
            assert tokens(capsys, "create", name, "--role", "admin", "--file", str(path))[0] == 0
            assert os.fstat(reader.fileno()).st_ino != path.stat().st_ino
            assert reader.read() == before
        assert name in path.read_text()
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == ["tokens.yaml"]


def test_the_default_file_is_the_one_up_secure_makes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LABELLOOP_AUTH_TOKENS_FILE", raising=False)
    monkeypatch.setenv("LABELLOOP_STORAGE_ROOT", str(tmp_path / "data"))
    code, _, err = tokens(capsys, "list")
    assert code == 2 and "labelloop up --secure" in err
    prepare(tmp_path / "labelloop-secure")  # what `labelloop up --secure --data DATA` makes
    code, out, _ = tokens(capsys, "list")
    assert code == 0 and "local-admin" in out
    monkeypatch.setenv("LABELLOOP_AUTH_TOKENS_FILE", str(tmp_path / "elsewhere.yaml"))
    assert tokens(capsys, "create", "x", "--role", "admin")[0] == 0
    assert (tmp_path / "elsewhere.yaml").exists()


@pytest.fixture(scope="module")
def secured_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    workdir = tmp_path_factory.mktemp("tokens-e2e")
    settings = dataclasses.replace(Settings(log_format="json"), security=prepare(workdir / "state"))
    local = cluster(
        workdir, StorageConfig(backend="local", root=workdir / "data"), services=("store",), settings=settings
    )
    with local:
        yield local


def test_running_services_accept_a_created_token_and_refuse_a_deleted_one(
    secured_store: LocalCluster, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    security = secured_store.settings.security
    assert security.tokens_file is not None and security.tls_ca is not None
    file = ["--file", str(security.tokens_file)]
    # main() turns --token/--ca-cert into this process's environment; monkeypatch restores it after.
    monkeypatch.setenv("LABELLOOP_TOKEN", "")
    monkeypatch.setenv("LABELLOOP_TLS_CA", "")

    def list_datasets(token: str) -> tuple[int, str]:
        address = ["--store", secured_store.address("store"), "--ca-cert", str(security.tls_ca)]
        code = main([*address, "--token", token, "datasets", "list"])
        return code, capsys.readouterr().err

    code, carol, err = tokens(capsys, "create", "carol", "--role", "experimenter", *file)
    assert code == 0, err
    carol = carol.strip()
    assert list_datasets(carol) == (0, "")  # no restart: the store reloaded the file
    code, bob, err = tokens(capsys, "create", "bob", "--role", "annotator", "--annotator", "bob", *file)
    assert code == 0, err
    code, err = list_datasets(bob.strip())
    assert code == 1 and "PERMISSION_DENIED" in err and "'bob' has role annotator" in err
    assert tokens(capsys, "delete", "carol", *file)[0] == 0
    code, err = list_datasets(carol)
    assert code == 1 and "UNAUTHENTICATED" in err and "unknown or revoked token" in err
    admin = (security.tokens_file.parent / "admin.token").read_text()
    assert list_datasets(admin) == (0, "")  # the tokens `up --secure` made are kept


def test_new_tokens_pass_as_option_values() -> None:
    """A bare URL-safe token starts with "-" once in 64: argparse then took `--token -x...` for a
    missing value (a flaky end-to-end test found it)."""
    made = {new_token() for _ in range(500)}
    assert len(made) == 500 and all(t.startswith(TOKEN_PREFIX) for t in made)
    for token in made:
        assert build_parser().parse_args(["--token", token, "datasets", "list"]).token == token
