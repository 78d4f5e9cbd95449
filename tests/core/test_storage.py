"""The object store interface behaves the same on a local folder and on a real S3 server."""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from labelloop.core.config import Settings
from labelloop.core.errors import InvalidArgument, NotFound
from labelloop.core.storage import (
    ArrayWriter,
    LocalStore,
    ObjectStore,
    S3Store,
    download_prefix,
    upload_folder,
)

from tests.conftest import s3_config
from tests.support.seaweedfs import S3Server


def test_bytes_json_and_listing(object_store: ObjectStore) -> None:
    object_store.put_bytes("a/one.txt", b"1")
    object_store.put_json("a/b/two.json", {"x": [1, 2]})
    assert object_store.get_bytes("a/one.txt") == b"1"
    assert object_store.get_json("a/b/two.json") == {"x": [1, 2]}
    assert list(object_store.list("a/")) == ["a/b/two.json", "a/one.txt"]
    assert object_store.exists("a/one.txt") and not object_store.exists("a/nope")
    assert object_store.delete_prefix("a/b/") == 1
    assert list(object_store.list("a/")) == ["a/one.txt"]


def test_list_folders_is_one_level(object_store: ObjectStore) -> None:
    object_store.put_bytes("datasets/b/dataset.json", b"{}")
    object_store.put_bytes("datasets/a/files/x/1.png", b"1")
    object_store.put_bytes("datasets/top.json", b"{}")
    assert object_store.list_folders("datasets/") == ["a", "b"]
    assert object_store.list_folders("datasets/a") == ["files"]
    assert object_store.list_folders("nothing/") == []


def test_missing_object_is_not_found(object_store: ObjectStore) -> None:
    with pytest.raises(NotFound, match="does not exist"):
        object_store.get_bytes("missing/key")


def test_create_exclusive_writes_once(object_store: ObjectStore) -> None:
    assert object_store.create_exclusive("log/req-1", b"first")
    assert not object_store.create_exclusive("log/req-1", b"second")
    assert object_store.get_bytes("log/req-1") == b"first"


def test_uri_round_trip_and_foreign_uri(object_store: ObjectStore) -> None:
    uri = object_store.uri("x/y.npy")
    assert object_store.key_of(uri) == "x/y.npy"
    assert object_store.ref_to_key(uri) == "x/y.npy"
    with pytest.raises(InvalidArgument, match="not inside this store"):
        object_store.key_of("s3://someone-elses-bucket/x/y.npy")


@pytest.mark.parametrize("chunk", [1, 7, 100, 1000])
def test_array_rows_in_chunks(object_store: ObjectStore, chunk: int) -> None:
    array = np.random.default_rng(0).random((101, 5)).astype(np.float32)
    object_store.put_array("arr.npy", array)
    shape, dtype, _ = object_store.array_header("arr.npy")
    assert shape == (101, 5) and dtype == np.float32
    chunks = list(object_store.iter_array_rows("arr.npy", chunk))
    assert all(len(rows) <= chunk for _, rows in chunks)
    assert np.array_equal(np.concatenate([rows for _, rows in chunks]), array)


@pytest.mark.parametrize("in_memory_bytes", [0, 1 << 20], ids=["memory-mapped", "in-memory"])
def test_array_writer_streams_chunks(
    object_store: ObjectStore, in_memory_bytes: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ArrayWriter, "IN_MEMORY_BYTES", in_memory_bytes)
    writer = ArrayWriter(object_store, "out/scores.npy", (10,), "float64")
    assert bool(writer._dir) == (in_memory_bytes == 0)
    writer.write(0, np.arange(6.0))
    writer.write(6, np.arange(6.0, 10.0))
    writer.close()
    assert np.array_equal(object_store.get_array("out/scores.npy"), np.arange(10.0))


def test_non_array_is_invalid(object_store: ObjectStore) -> None:
    object_store.put_bytes("bad.npy", b"not numpy at all")
    with pytest.raises(InvalidArgument, match=r"not a \.npy array"):
        object_store.array_header("bad.npy")


def test_folder_upload_and_download(object_store: ObjectStore, tmp_path: Path) -> None:
    source = tmp_path / "model"
    (source / "sub").mkdir(parents=True)
    (source / "config.json").write_text("{}")
    (source / "sub" / "weights.bin").write_bytes(b"\x00" * 1000)
    uri = upload_folder(object_store, source, "models/m1")
    target = download_prefix(object_store, object_store.key_of(uri), tmp_path / "copy")
    assert (target / "config.json").read_text() == "{}"
    assert (target / "sub" / "weights.bin").stat().st_size == 1000
    with pytest.raises(NotFound):
        download_prefix(object_store, "models/none", tmp_path / "none")


# Presigned links for browsers -------------------------------------------------------------------


def _open_without_credentials(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as reply:
        return reply.read()


def test_presigned_url_opens_without_credentials(s3_server: S3Server) -> None:
    store = S3Store(s3_config(s3_server))
    store.put_bytes("images/a.png", b"\x89PNG one")
    url = store.presigned_url("images/a.png", 600)
    assert urllib.parse.urlsplit(url).netloc == s3_server.endpoint and "X-Amz-Signature" in url
    assert _open_without_credentials(url) == b"\x89PNG one"
    with pytest.raises(NotFound, match="does not exist"):
        store.presigned_url("images/missing.png", 600)
    with pytest.raises(InvalidArgument, match="7 days"):
        store.presigned_url("images/a.png", 8 * 24 * 3600)


def test_presigned_url_names_the_public_endpoint_and_opens_there(s3_server: S3Server) -> None:
    """Signed for the name browsers use (`localhost:PORT`), not the one the services use
    (`127.0.0.1:PORT`): the signature covers the host, so the link opens only under the public name."""
    port = s3_server.endpoint.rsplit(":", 1)[1]
    public = f"localhost:{port}"
    store = S3Store(replace(s3_config(s3_server), public_endpoint=public))
    store.put_bytes("images/b.png", b"\x89PNG two")
    url = store.presigned_url("images/b.png", 600)
    parts = urllib.parse.urlsplit(url)
    assert (parts.scheme, parts.netloc) == ("http", public)
    assert _open_without_credentials(url) == b"\x89PNG two"
    # The same link under the internal name is refused: the public host really is what was signed.
    internal = urllib.parse.urlunsplit(parts._replace(netloc=s3_server.endpoint))
    with pytest.raises(urllib.error.HTTPError) as refused:
        _open_without_credentials(internal)
    assert refused.value.code == 403


def test_signing_for_the_public_endpoint_needs_no_request_to_it(s3_server: S3Server) -> None:
    """The public name may not resolve from inside the cluster: signing must not contact it."""
    store = S3Store(replace(s3_config(s3_server), public_endpoint="images.invalid:443", public_secure=True))
    store.put_bytes("images/c.png", b"\x89PNG three")
    url = store.presigned_url("images/c.png", 60)
    assert url.startswith("https://images.invalid/") and "X-Amz-Credential" in url


@pytest.mark.parametrize(
    ("value", "secure", "expected"),
    [
        ("", "true", ("", False)),
        ("https://images.example.com", "false", ("images.example.com", True)),
        ("http://localhost:8333/", "true", ("localhost:8333", False)),
        ("s3.example.com:9000", "true", ("s3.example.com:9000", True)),  # bare: like the internal one
        ("s3.example.com:9000", "false", ("s3.example.com:9000", False)),
    ],
)
def test_public_endpoint_setting(value: str, secure: str, expected: tuple[str, bool]) -> None:
    env = {"LABELLOOP_S3_PUBLIC_ENDPOINT": value, "LABELLOOP_S3_SECURE": secure}
    storage = Settings.from_env(env).storage
    assert (storage.public_endpoint, storage.public_secure) == expected
    # to_env reproduces it in another process (a trainer Job, a pod).
    assert Settings.from_env(Settings.from_env(env).to_env()).storage == storage


@pytest.mark.parametrize("value", ["ftp://images.example.com", "https://", "https://cdn.example.com/bucket"])
def test_bad_public_endpoint_says_what_to_use(value: str) -> None:
    with pytest.raises(InvalidArgument, match=r"LABELLOOP_S3_PUBLIC_ENDPOINT=.*use host\[:port\]"):
        Settings.from_env({"LABELLOOP_S3_PUBLIC_ENDPOINT": value})


@pytest.mark.parametrize("key", ["../outside.json", "a/../../outside.json", "/etc/passwd", "a/../.."])
def test_a_key_that_leaves_the_local_root_is_refused(tmp_path: Path, key: str) -> None:
    store = LocalStore(tmp_path / "store")
    with pytest.raises(InvalidArgument, match="escapes the store root"):
        store.put_bytes(key, b"{}")
    with pytest.raises(InvalidArgument, match="escapes the store root"):
        store.get_bytes(key)
    assert not (tmp_path / "outside.json").exists()


def test_keys_are_normalised_inside_the_local_root(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "." / "store")
    store.put_bytes("a/../b/c.json", b"{}")
    assert store.path("b//c.json") == tmp_path / "store" / "b" / "c.json"
    assert store.get_bytes("b/./c.json") == b"{}"
    assert store.key_of(store.uri("b/c.json")) == "b/c.json"


def test_listing_matches_key_prefixes_not_folders(object_store: ObjectStore) -> None:
    keys = ["a/b1/x.json", "a/b1/y/z.json", "a/b10.json", "a/c.json", "b/x.json"]
    for key in keys:
        object_store.put_json(key, {})
    assert list(object_store.list("a/b1")) == ["a/b1/x.json", "a/b1/y/z.json", "a/b10.json"]
    assert list(object_store.list("a/b1/")) == ["a/b1/x.json", "a/b1/y/z.json"]
    assert list(object_store.list("a/b1/y/z")) == ["a/b1/y/z.json"]
    assert list(object_store.list("a/")) == keys[:4]
    assert list(object_store.list("")) == keys
    assert list(object_store.list("a/missing/")) == []
    assert list(object_store.list("missing/a")) == []
