"""Where the store may read a manifest or an image from: its import roots, and the object store.

A file of the store's machine is read only when it lies inside one of the configured import roots
(LABELLOOP_IMPORT_ROOTS) after symlinks and ".." are resolved; the check comes before any other
access, so a refusal reads the same whether the file exists or not. Images in the object store are
referenced, not copied, so they must not lie under a folder another resource owns (another dataset's
files, an experiment's or a trainer run's outputs): those go away when their owner is deleted.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from labelloop.core.errors import InvalidArgument
from labelloop.core.layout import DATASETS_PREFIX, EXPERIMENTS_PREFIX, OPERATIONS_PREFIX, RUNS_PREFIX
from labelloop.core.storage import ObjectStore

IMPORT_ROOTS_SETTING = "LABELLOOP_IMPORT_ROOTS"
# Folders of the object store whose objects belong to a resource that can be deleted.
OWNED_PREFIXES = (DATASETS_PREFIX, EXPERIMENTS_PREFIX, OPERATIONS_PREFIX, RUNS_PREFIX)


@dataclass(frozen=True)
class Location:
    """A file on this machine, or a key of the object store: where a manifest or an image is."""

    path: Path | None = None
    key: str = ""

    def __str__(self) -> str:
        return str(self.path) if self.path is not None else self.key


class Sources:
    """The object store plus the folders of this machine the store may import files from."""

    def __init__(self, store: ObjectStore, import_roots: Sequence[Path] = ()):
        self.store = store
        self.roots = tuple(Path(root).resolve() for root in import_roots)

    def locate(self, ref: str, what: str) -> Location:
        """A local path, "file://" URI or URI of this store as a Location; `what` names it in errors."""
        if ref.startswith("file://"):
            return self.confine(Path(urllib.parse.unquote(urllib.parse.urlparse(ref).path)), what)
        if "://" in ref:
            try:
                return Location(key=self.store.key_of(ref))
            except InvalidArgument as error:
                raise InvalidArgument(
                    f"{what}: {error}; copy it into the store or one of its import roots"
                ) from None
        return self.confine(Path(ref).absolute(), what)

    def confine(self, path: Path, what: str) -> Location:
        """The file as a key when it is inside the (local) object store, else its resolved path when
        it is inside an import root; InvalidArgument otherwise, without touching the file."""
        try:
            resolved = path.resolve()  # follows symlinks and "..": where the bytes really are
        except (OSError, RuntimeError):  # a symlink loop: outside whatever it is
            raise InvalidArgument(self._outside(what)) from None
        try:  # a local object store's own file is an object, under the object rules
            return Location(key=self.store.key_of(resolved.as_uri()))
        except InvalidArgument:
            pass
        if not any(resolved == root or root in resolved.parents for root in self.roots):
            raise InvalidArgument(self._outside(what))
        return Location(path=resolved)

    def _outside(self, what: str) -> str:
        if not self.roots:
            return (
                f"{what} is a file of the store's machine, and this store imports files from no folder: "
                f"set {IMPORT_ROOTS_SETTING} on the store to the folders it may read (separated by "
                f"':'), or put the file into the object store ({self.store.uri('uploads/')})"
            )
        roots = ", ".join(str(root) for root in self.roots)
        return (
            f"{what} is not inside the store's import roots ({roots}): put the file in one of them "
            f"({IMPORT_ROOTS_SETTING}) or into the object store"
        )

    def check_referenced(self, key: str, what: str) -> None:
        """An object a dataset will reference (not copy) must not belong to another resource."""
        if owned := next((p for p in OWNED_PREFIXES if key.startswith(p)), None):
            raise InvalidArgument(
                f"{what} is under {owned}, whose objects belong to another dataset, experiment or run "
                f"and go away with it: copy it to a folder of its own, e.g. {self.store.uri('uploads/')}"
            )
