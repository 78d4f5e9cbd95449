"""One object-store interface, two backends: a local folder (the embedded default) and S3 via `minio`.

Keys are "/"-separated paths inside the store. Every object can also be named by a URI
("file:///abs/path" or "s3://bucket/key"), which is what gRPC messages carry.
Arrays are stored as .npy so that rows can be read in chunks with ranged reads.
"""

from __future__ import annotations

import builtins
import io
import json
import os
import shutil
import tempfile
import urllib.parse
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from labelloop.core.config import StorageConfig
from labelloop.core.errors import InvalidArgument, NotFound, Unavailable


class ObjectStore(ABC):
    """Blob storage with the few operations LabelLoop needs."""

    @abstractmethod
    def uri(self, key: str) -> str: ...

    @abstractmethod
    def key_of(self, uri: str) -> str:
        """The key of a URI inside this store; InvalidArgument if it points elsewhere."""

    @abstractmethod
    def put_bytes(self, key: str, data: bytes) -> None: ...

    @abstractmethod
    def get_bytes(self, key: str) -> bytes: ...

    @abstractmethod
    def get_range(self, key: str, offset: int, length: int) -> bytes: ...

    @abstractmethod
    def put_file(self, key: str, path: Path) -> None: ...

    @abstractmethod
    def get_file(self, key: str, path: Path) -> None: ...

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def list(self, prefix: str) -> Iterator[str]:
        """Every key under prefix, recursively, in lexical order."""

    @abstractmethod
    def list_folders(self, prefix: str) -> builtins.list[str]:  # `list` is a method here
        """Names of the immediate sub-folders of prefix ("datasets/" -> ["digits", ...]), sorted,
        without walking their contents."""

    @abstractmethod
    def delete(self, key: str) -> None: ...

    @abstractmethod
    def presigned_url(self, key: str, expires_seconds: int) -> str:
        """A link a browser can open without credentials until expires_seconds from now.

        S3 gives a presigned GET URL naming StorageConfig.public_endpoint when set (the host browsers
        reach), else the internal endpoint; a local folder gives its file:// URL (it never expires, and
        only a browser on this machine can open it: serve the bytes instead where that matters).
        NotFound if the object does not exist, so callers never hand out a dead link.
        """

    def create_exclusive(self, key: str, data: bytes) -> bool:
        """Writes key only if it does not exist yet; returns whether it wrote.

        Not atomic across writers on S3: each log has one writer (the dataset store service),
        which serialises its own writes.
        """
        if self.exists(key):
            return False
        self.put_bytes(key, data)
        return True

    def delete_prefix(self, prefix: str) -> int:
        keys = list(self.list(prefix))
        for key in keys:
            self.delete(key)
        return len(keys)

    def ref_to_key(self, ref: str) -> str:
        """Accepts a key or a URI of this store."""
        return self.key_of(ref) if "://" in ref else ref.lstrip("/")

    # JSON and arrays -------------------------------------------------------------------------

    def put_json(self, key: str, value: Any) -> None:
        self.put_bytes(key, json.dumps(value, indent=1, sort_keys=True).encode())

    def get_json(self, key: str) -> Any:
        return json.loads(self.get_bytes(key))

    def put_array(self, key: str, array: np.ndarray) -> None:
        buffer = io.BytesIO()
        np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
        self.put_bytes(key, buffer.getvalue())

    def get_array(self, key: str) -> np.ndarray:
        return np.load(io.BytesIO(self.get_bytes(key)), allow_pickle=False)

    def array_header(self, key: str) -> tuple[tuple[int, ...], np.dtype, int]:
        """Shape, dtype and byte offset of the data of a stored .npy, read with one small request."""
        head = self.get_range(key, 0, 4096)
        buffer = io.BytesIO(head)
        try:
            npy = np.lib.format
            version = npy.read_magic(buffer)
            read_header = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
            shape, fortran, dtype = read_header(buffer)
        except ValueError as error:
            raise InvalidArgument(f"{self.uri(key)} is not a .npy array: {error}") from error
        if fortran:
            raise InvalidArgument(f"{self.uri(key)} is stored in Fortran order; save it C-contiguous")
        return tuple(shape), np.dtype(dtype), buffer.tell()

    def iter_array_rows(self, key: str, chunk_rows: int) -> Iterator[tuple[int, np.ndarray]]:
        """Yields (first_row, rows) chunks of a stored 1-D or 2-D array, never the whole array at once."""
        shape, dtype, offset = self.array_header(key)
        yield from _row_chunks(shape, dtype, chunk_rows, lambda at, n: self.get_range(key, offset + at, n))


def _row_chunks(
    shape: tuple[int, ...], dtype: np.dtype, chunk_rows: int, read: Callable[[int, int], bytes]
) -> Iterator[tuple[int, np.ndarray]]:
    """(first_row, rows) chunks of an array whose data bytes `read(byte_offset, size)` returns, in order."""
    row_bytes = (int(np.prod(shape[1:])) if len(shape) > 1 else 1) * dtype.itemsize
    for start in range(0, shape[0], chunk_rows):
        stop = min(shape[0], start + chunk_rows)
        data = read(start * row_bytes, (stop - start) * row_bytes)
        yield start, np.frombuffer(data, dtype=dtype).reshape((stop - start, *shape[1:]))


class ArrayWriter:
    """Writes a .npy chunk by chunk, then uploads it. A large array goes through a local memory-mapped
    file, so memory stays bounded by the chunks; one of at most IN_MEMORY_BYTES is assembled in memory
    (a temp folder, a memory map and a copy cost about 1 ms, four times the upload of a small array)."""

    IN_MEMORY_BYTES = 4 << 20

    def __init__(self, store: ObjectStore, key: str, shape: tuple[int, ...], dtype: npt.DTypeLike):
        self.store, self.key = store, key
        dtype = np.dtype(dtype)
        self._dir = ""
        if int(np.prod(shape)) * dtype.itemsize <= self.IN_MEMORY_BYTES:
            self._array = np.empty(shape, dtype=dtype)
            return
        self._dir = tempfile.mkdtemp(prefix="labelloop-array-")
        self._path = Path(self._dir) / "array.npy"
        self._array = np.lib.format.open_memmap(self._path, mode="w+", dtype=dtype, shape=shape)

    def write(self, start: int, rows: np.ndarray) -> None:
        self._array[start : start + len(rows)] = rows

    def close(self) -> None:
        if not self._dir:
            self.store.put_array(self.key, self._array)
            del self._array
            return
        assert isinstance(self._array, np.memmap)
        self._array.flush()
        del self._array
        try:
            self.store.put_file(self.key, self._path)
        finally:
            shutil.rmtree(self._dir, ignore_errors=True)

    def abort(self) -> None:
        """Discards the rows written so far: nothing is uploaded (for inputs found bad mid-way)."""
        vars(self).pop("_array", None)  # unmaps the file before its folder is removed
        if self._dir:
            shutil.rmtree(self._dir, ignore_errors=True)


class LocalStore(ObjectStore):
    """A folder on the local filesystem. Writes are atomic (temp file + rename)."""

    def __init__(self, root: Path):
        self.root = Path(os.path.normpath(Path(root).absolute()))
        self.root.mkdir(parents=True, exist_ok=True)
        self._root_text = str(self.root).rstrip(os.sep) + os.sep

    def path(self, key: str) -> Path:
        # A lexical check: after normpath no ".." is left to climb out. The store writes no symlinks, so
        # resolving each key (an lstat per path component, 75 us a call, many calls a round) buys nothing.
        text = os.path.normpath(os.path.join(self.root, key))
        if text != str(self.root) and not text.startswith(self._root_text):
            raise InvalidArgument(f"key {key!r} escapes the store root")
        return Path(text)

    def uri(self, key: str) -> str:
        return self.path(key).as_uri()

    def key_of(self, uri: str) -> str:
        parsed = urllib.parse.urlparse(uri)
        path = Path(urllib.parse.unquote(parsed.path)) if parsed.scheme == "file" else None
        if path is None or (path != self.root and self.root not in path.parents):
            raise InvalidArgument(f"{uri!r} is not inside this store ({self.root.as_uri()})")
        return path.relative_to(self.root).as_posix()

    def _write_atomic(self, key: str, write: Any) -> None:
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as out:
                write(out)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def put_bytes(self, key: str, data: bytes) -> None:
        self._write_atomic(key, lambda out: out.write(data))

    def put_file(self, key: str, path: Path) -> None:
        def copy(out: Any) -> None:
            with open(path, "rb") as src:
                shutil.copyfileobj(src, out, 1 << 20)

        self._write_atomic(key, copy)

    def _open(self, key: str) -> io.BufferedReader:
        try:
            return open(self.path(key), "rb")
        except (FileNotFoundError, IsADirectoryError) as error:
            raise NotFound(f"object {self.uri(key)} does not exist") from error

    def get_bytes(self, key: str) -> bytes:
        with self._open(key) as f:
            return f.read()

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        with self._open(key) as f:
            f.seek(offset)
            return f.read(length)

    def iter_array_rows(self, key: str, chunk_rows: int) -> Iterator[tuple[int, np.ndarray]]:
        """As ObjectStore's, through one open file read in order: no path check and open per chunk
        (about a quarter of the read time of a 1M-row pool in 100 chunks)."""
        shape, dtype, offset = self.array_header(key)
        with self._open(key) as f:
            f.seek(offset)  # chunks are read in order: each read continues where the last ended
            yield from _row_chunks(shape, dtype, chunk_rows, lambda _at, size: f.read(size))

    def get_file(self, key: str, path: Path) -> None:
        with self._open(key) as src:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            with open(path, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def create_exclusive(self, key: str, data: bytes) -> bool:
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        try:
            os.link(tmp, target)  # fails if target exists: atomic create-if-absent
            return True
        except FileExistsError:
            return False
        finally:
            os.unlink(tmp)

    def list(self, prefix: str) -> Iterator[str]:
        # Only the entries of the prefix's folder whose names start with its last part are walked: a
        # missing "snapshots/r9/" must not walk every other snapshot (once a round, that grew with the
        # rounds). Keys are cut from the paths as text: pathlib costs 10 us a key.
        folder, _, stem = prefix.rpartition("/")
        base = self.path(folder) if folder else self.root
        if not base.is_dir():
            return
        cut = len(str(self.root)) + 1
        keys: list[str] = []
        with os.scandir(base) as entries:
            for entry in entries:
                if not entry.name.startswith(stem):
                    continue
                if entry.is_dir(follow_symlinks=False):
                    for dirpath, _, files in os.walk(entry.path):
                        kept = (name for name in files if not name.startswith(".tmp-"))
                        keys.extend(f"{dirpath[cut:]}/{name}" for name in kept)
                elif not entry.name.startswith(".tmp-"):
                    keys.append(entry.path[cut:])
        yield from sorted(keys)

    def list_folders(self, prefix: str) -> builtins.list[str]:  # `list` is a method here
        folder = self.path(prefix.rstrip("/")) if prefix.strip("/") else self.root
        return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def presigned_url(self, key: str, expires_seconds: int) -> str:
        if not self.exists(key):
            raise NotFound(f"object {self.uri(key)} does not exist")
        return self.uri(key)


# The region S3 servers without one (MinIO, SeaweedFS, Ceph) answer and sign with.
DEFAULT_S3_REGION = "us-east-1"


class S3Store(ObjectStore):
    """Any S3 server (MinIO, SeaweedFS, Ceph, AWS) through the `minio` client."""

    def __init__(self, config: StorageConfig):
        from minio import Minio
        from minio.error import S3Error

        if not config.endpoint:
            raise InvalidArgument("LABELLOOP_S3_ENDPOINT is empty: set it to host:port of the S3 server")
        self.bucket = config.bucket
        self.client = Minio(
            config.endpoint,
            access_key=config.access_key or None,
            secret_key=config.secret_key or None,
            secure=config.secure,
            region=config.region or None,
        )
        self.signer = self.client
        if config.public_endpoint:
            # Links for browsers name the public host: the signature covers the Host header. The region is
            # given so that signing never asks the (possibly unreachable from here) public host for it.
            self.signer = Minio(
                config.public_endpoint,
                access_key=config.access_key or None,
                secret_key=config.secret_key or None,
                secure=config.public_secure,
                region=config.region or DEFAULT_S3_REGION,
            )
        try:
            if not self.client.bucket_exists(self.bucket):
                self.client.make_bucket(self.bucket)
        except S3Error as error:
            # Services starting together race to create the bucket: the loser's error is success.
            if error.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise Unavailable(
                    f"cannot use S3 bucket {self.bucket!r} at {config.endpoint}: {error.code} {error.message}"
                ) from error
        except Exception as error:
            raise Unavailable(
                f"cannot reach S3 bucket {self.bucket!r} at {config.endpoint}: {error}"
            ) from error

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def key_of(self, uri: str) -> str:
        parsed = urllib.parse.urlparse(uri)
        if parsed.scheme != "s3" or parsed.netloc != self.bucket:
            raise InvalidArgument(f"{uri!r} is not inside this store (s3://{self.bucket}/)")
        return parsed.path.lstrip("/")

    def _missing(self, error: Exception) -> bool:
        return getattr(error, "code", "") in ("NoSuchKey", "NoSuchObject", "NotFound", "ResourceNotFound")

    def put_bytes(self, key: str, data: bytes) -> None:
        self.client.put_object(self.bucket, key, io.BytesIO(data), len(data))

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        return self._read(key, offset=offset, length=length)

    def get_bytes(self, key: str) -> bytes:
        return self._read(key)

    def _read(self, key: str, offset: int = 0, length: int = 0) -> bytes:
        """The object's bytes from offset; length 0 reads to the end (minio's convention)."""
        from minio.error import S3Error

        try:
            response = self.client.get_object(self.bucket, key, offset=offset, length=length)
        except S3Error as error:
            if self._missing(error):
                raise NotFound(f"object {self.uri(key)} does not exist") from error
            raise
        try:
            return response.read()
        finally:
            response.close()
            response.release_conn()

    def put_file(self, key: str, path: Path) -> None:
        self.client.fput_object(self.bucket, key, str(path))

    def get_file(self, key: str, path: Path) -> None:
        from minio.error import S3Error

        try:
            self.client.fget_object(self.bucket, key, str(path))
        except S3Error as error:
            if self._missing(error):
                raise NotFound(f"object {self.uri(key)} does not exist") from error
            raise

    def exists(self, key: str) -> bool:
        from minio.error import S3Error

        try:
            self.client.stat_object(self.bucket, key)
            return True
        except S3Error as error:
            if self._missing(error):
                return False
            raise

    def list(self, prefix: str) -> Iterator[str]:
        keys = [o.object_name for o in self.client.list_objects(self.bucket, prefix=prefix, recursive=True)]
        yield from sorted(k for k in keys if k and not k.endswith("/"))

    def list_folders(self, prefix: str) -> builtins.list[str]:  # `list` is a method here
        prefix = prefix.rstrip("/") + "/" if prefix.strip("/") else ""
        entries = self.client.list_objects(self.bucket, prefix=prefix, recursive=False)
        return sorted(e.object_name[len(prefix) :].rstrip("/") for e in entries if e.is_dir)

    def delete(self, key: str) -> None:
        self.client.remove_object(self.bucket, key)

    def presigned_url(self, key: str, expires_seconds: int) -> str:
        import datetime

        if not 1 <= expires_seconds <= 7 * 24 * 3600:  # S3's limit for presigned URLs
            raise InvalidArgument(f"expires_seconds must be 1 to 604800 (7 days), got {expires_seconds}")
        if not self.exists(key):
            raise NotFound(f"object {self.uri(key)} does not exist")
        return str(
            self.signer.presigned_get_object(
                self.bucket, key, expires=datetime.timedelta(seconds=expires_seconds)
            )
        )


def open_store(config: StorageConfig) -> ObjectStore:
    if config.backend == "s3":
        return S3Store(config)
    return LocalStore(config.root)


def download_prefix(store: ObjectStore, prefix: str, target: Path) -> Path:
    """Copies every object under prefix into target (used for models and checkpoints)."""
    prefix = prefix.rstrip("/") + "/"
    found = False
    for key in store.list(prefix):
        found = True
        dest = target / key[len(prefix) :]
        if not dest.exists():
            store.get_file(key, dest)
    if not found:
        raise NotFound(f"no objects under {store.uri(prefix)}")
    return target


def upload_folder(store: ObjectStore, folder: Path, prefix: str) -> str:
    """Copies a local folder into the store; returns the URI of the prefix."""
    prefix = prefix.rstrip("/") + "/"
    for path in sorted(Path(folder).rglob("*")):
        if path.is_file():
            store.put_file(prefix + path.relative_to(folder).as_posix(), path)
    return store.uri(prefix)
