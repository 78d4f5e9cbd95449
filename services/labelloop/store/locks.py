"""Process-wide dataset locks, shared by every DatasetStore in the process, because the S3 backend has
no atomic create-if-absent and the store service is the only writer of its datasets.

A dataset's lock is shared: appends to its annotation log hold it shared (many at once), while
creating or deleting the dataset and freezing a snapshot hold it alone.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

_guard = threading.Lock()
_shared: dict[str, SharedLock] = {}


class SharedLock:
    """Many holders in shared mode, or one alone. A waiting exclusive holder goes first: new shared
    holders wait behind it, so a snapshot is not starved by a stream of appends. Not reentrant."""

    def __init__(self) -> None:
        self._condition = threading.Condition(threading.Lock())
        self._shared = 0
        self._exclusive = False
        self._waiting = 0  # exclusive holders waiting

    @contextmanager
    def shared(self) -> Iterator[None]:
        with self._condition:
            self._condition.wait_for(lambda: not self._exclusive and not self._waiting)
            self._shared += 1
        try:
            yield
        finally:
            with self._condition:
                self._shared -= 1
                if not self._shared:
                    self._condition.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._condition:
            self._waiting += 1
            try:
                self._condition.wait_for(lambda: not self._exclusive and not self._shared)
            finally:
                self._waiting -= 1
            self._exclusive = True
        try:
            yield
        finally:
            with self._condition:
                self._exclusive = False
                self._condition.notify_all()


def dataset_lock(dataset_id: str) -> SharedLock:
    with _guard:
        return _shared.setdefault(dataset_id, SharedLock())
