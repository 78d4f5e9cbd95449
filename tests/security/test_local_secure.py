"""What `labelloop up --secure` makes, used for real: service processes on TLS with tokens that call
each other with the service token, and the CLI with --token and --ca-cert."""

from __future__ import annotations

import dataclasses
import stat
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from labelloop.cli.local import LocalCluster
from labelloop.cli.main import main
from labelloop.cli.secure import prepare
from labelloop.client import LabelLoopClient
from labelloop.core.channels import CallerCredentials
from labelloop.core.config import Settings, StorageConfig
from labelloop.sample_data import write_wine_tabular

from tests.support.cluster import cluster


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    workdir = tmp_path_factory.mktemp("secure-up")
    security = prepare(workdir / "state")
    settings = dataclasses.replace(Settings(log_format="json"), security=security)
    local = cluster(
        workdir,
        StorageConfig(backend="local", root=workdir / "data"),
        services=("store", "selector", "controller"),
        settings=settings,
    )
    write_wine_tabular(workdir / "wine")
    with local:
        yield local


def state(local: LocalCluster) -> Path:
    assert local.settings.security.tokens_file is not None
    return local.settings.security.tokens_file.parent


def test_secrets_are_private_files(secured: LocalCluster) -> None:
    for name in ("ca.key", "server.key", "admin.token", "service.token", "tokens.yaml"):
        mode = stat.S_IMODE((state(secured) / name).stat().st_mode)
        assert mode == 0o600, f"{name} has mode {oct(mode)}"
    assert (state(secured) / "admin.token").read_text() not in (state(secured) / "tokens.yaml").read_text()


def test_prepare_reuses_what_exists(secured: LocalCluster) -> None:
    before = {p.name: p.read_bytes() for p in state(secured).iterdir()}
    prepare(state(secured))
    assert {p.name: p.read_bytes() for p in state(secured).iterdir()} == before


def cli(local: LocalCluster, monkeypatch: pytest.MonkeyPatch, *args: str, token: str | None = None) -> int:
    # main() turns --token/--ca-cert into this process's environment; monkeypatch restores it after.
    monkeypatch.setenv("LABELLOOP_TOKEN", "")
    monkeypatch.setenv("LABELLOOP_TLS_CA", "")
    addresses = ["--controller", local.address("controller"), "--store", local.address("store")]
    credentials = ["--ca-cert", str(state(local) / "ca.crt")] + (["--token", token] if token else [])
    return main([*addresses, *credentials, *args])


def test_the_cli_with_the_admin_token(
    secured: LocalCluster, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    admin = (state(secured) / "admin.token").read_text()
    manifest = str(Path(secured.settings.import_roots[0]) / "wine" / "manifest.csv")
    assert cli(secured, monkeypatch, "datasets", "create", "wine", "--manifest", manifest,
               "--label-column", "label", token=admin) == 0  # fmt: skip
    assert cli(secured, monkeypatch, "datasets", "list", token=admin) == 0
    assert "wine" in capsys.readouterr().out
    assert cli(secured, monkeypatch, "datasets", "list") == 1
    assert "UNAUTHENTICATED" in capsys.readouterr().err


def test_services_reach_each_other_with_the_service_token(secured: LocalCluster) -> None:
    """Creating an experiment makes the controller read the dataset from the store over gRPC (TLS,
    its service token): refused, creation would fail."""
    admin = (state(secured) / "admin.token").read_text()
    credentials = CallerCredentials(token=admin, ca_cert=state(secured) / "ca.crt")
    manifest = str(Path(secured.settings.import_roots[0]) / "wine" / "manifest.csv")
    with LabelLoopClient(
        secured.address("controller"), secured.address("store"), credentials=credentials
    ) as client:
        client.create_dataset("wine-for-experiments", manifest, label_column="label")
        experiment = client.create_experiment(
            "secured", dataset="wine-for-experiments", preset="tabular", batch_size=5, max_rounds=1
        )
    assert experiment.name == "experiments/secured"


def test_the_cli_says_to_give_the_ca_when_tls_fails(
    secured: LocalCluster, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from labelloop.cli.secure import make_ca

    (tmp_path / "other-ca.crt").write_bytes(make_ca("not ours")[0])
    monkeypatch.setenv("LABELLOOP_TOKEN", "")
    monkeypatch.setenv("LABELLOOP_TLS_CA", "")  # main() sets it from --ca-cert; restored after
    addresses = ["--controller", secured.address("controller"), "--store", secured.address("store")]
    assert main([*addresses, "--ca-cert", str(tmp_path / "other-ca.crt"), "datasets", "list"]) == 1
    assert "--ca-cert" in capsys.readouterr().err


def test_the_cli_hints_at_tls_when_a_plaintext_call_is_dropped(
    secured: LocalCluster, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LABELLOOP_TOKEN", "")
    monkeypatch.setenv("LABELLOOP_TLS_CA", "")
    addresses = ["--controller", secured.address("controller"), "--store", secured.address("store")]
    assert main([*addresses, "datasets", "list"]) == 1
    assert "give their CA with --ca-cert" in capsys.readouterr().err


def test_services_call_each_other_under_mtls(tmp_path: Path) -> None:
    """`up --mtls`: each service presents its certificate to the others; callers without one are refused."""
    security = prepare(tmp_path / "state", client_auth=True)
    settings = dataclasses.replace(Settings(log_format="json"), security=security)
    storage = StorageConfig(backend="local", root=tmp_path / "data")
    local = cluster(tmp_path, storage, services=("store", "selector", "controller"), settings=settings)
    manifest = write_wine_tabular(tmp_path / "wine")
    admin = (tmp_path / "state" / "admin.token").read_text()
    with local:
        without_cert = CallerCredentials(token=admin, ca_cert=security.tls_ca)
        with LabelLoopClient(
            local.address("controller"), local.address("store"), credentials=without_cert
        ) as c:
            with pytest.raises(grpc.RpcError) as refused:
                c.list_datasets()
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        with_cert = dataclasses.replace(
            without_cert, client_cert=security.tls_cert, client_key=security.tls_key
        )
        with LabelLoopClient(local.address("controller"), local.address("store"), credentials=with_cert) as c:
            c.create_dataset("wine", str(manifest), label_column="label")
            experiment = c.create_experiment(
                "mutual", dataset="wine", preset="tabular", batch_size=5, max_rounds=1
            )
    assert experiment.name == "experiments/mutual"
