"""Finds, verifies and copies the images a manifest points at."""

from __future__ import annotations

import hashlib
import io
import logging
import posixpath
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import pandas as pd
from PIL import Image

from labelloop.core.errors import InvalidArgument, NotFound
from labelloop.core.names import shown
from labelloop.core.storage import ObjectStore
from labelloop.store.manifest import Manifest
from labelloop.store.roots import Location, Sources

log = logging.getLogger(__name__)

LOG_EVERY = 500  # progress line every this many images on large ingests


@dataclass
class ImagePlan:
    """Per manifest row, the store key of its image; and the local files still to copy there."""

    keys: list[str] = field(default_factory=list)
    copies: dict[str, Path] = field(default_factory=dict)  # destination key -> local source


def _resolve(sources: Sources, manifest: Manifest, value: str, row: int) -> Location:
    """An image reference (relative to the manifest's folder, absolute, or a URI) as a Location:
    a file inside an import root (to copy), or an object the dataset may reference."""
    what = f"manifest row {row}: image {shown(value)}"
    if "://" in value or value.startswith("/"):
        source = sources.locate(value, what)
    elif manifest.location.path is not None:
        source = sources.confine(manifest.location.path.parent / value, what)
    else:
        key = posixpath.normpath(str(PurePosixPath(manifest.location.key).parent / value))
        if key == ".." or key.startswith("../"):
            raise InvalidArgument(f"{what} points outside the store")
        source = Location(key=key)
    if source.path is None:
        sources.check_referenced(source.key, what)
    return source


def _verify(store: ObjectStore, source: Location, value: str, row: int) -> None:
    where = f"manifest row {row}: image {value!r} ({source})"
    try:
        data = io.BytesIO(store.get_bytes(source.key)) if source.path is None else source.path
        with Image.open(data) as image:
            image.verify()
    except (FileNotFoundError, IsADirectoryError, NotFound):
        raise InvalidArgument(f"{where} does not exist") from None
    except Exception as error:  # Pillow raises many types for corrupt files
        raise InvalidArgument(f"{where} is not a readable image: {type(error).__name__}: {error}") from None


def _destination(files_prefix: str, manifest: Manifest, path: Path) -> str:
    """Keeps paths under the manifest's folder as they are; others go under external/{hash}/."""
    folder = manifest.location.path.parent.resolve() if manifest.location.path is not None else None
    if folder is not None and folder in path.parents:
        return files_prefix + path.relative_to(folder).as_posix()
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:12]
    return f"{files_prefix}external/{digest}/{path.name}"


def plan_images(sources: Sources, manifest: Manifest, column: str, files_prefix: str) -> ImagePlan:
    """Resolves and opens every image (each distinct file once); raises on the first bad one."""
    store = sources.store
    plan = ImagePlan()
    checked: dict[Location, str] = {}
    values = manifest.frame[column]
    for index, raw in enumerate(values):
        row = index + 1
        value = "" if pd.isna(raw) else str(raw).strip()
        if not value:
            raise InvalidArgument(f"manifest row {row}: image column {column!r} is empty")
        source = _resolve(sources, manifest, value, row)
        if source not in checked:
            _verify(store, source, value, row)
            if source.path is None:
                checked[source] = source.key
            else:
                checked[source] = _destination(files_prefix, manifest, source.path)
                plan.copies[checked[source]] = source.path
            if len(checked) % LOG_EVERY == 0:
                log.info("verified %d images (manifest row %d of %d)", len(checked), row, len(values))
        plan.keys.append(checked[source])
    return plan


def copy_images(store: ObjectStore, plan: ImagePlan) -> None:
    for done, (key, path) in enumerate(plan.copies.items(), start=1):
        store.put_file(key, path)
        if done % LOG_EVERY == 0 or done == len(plan.copies):
            log.info("copied %d of %d images into the store", done, len(plan.copies))
