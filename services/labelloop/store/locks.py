"""Process-wide named locks: one writer per dataset, annotation log or snapshot at a time.

Shared by every DatasetStore in the process, because the S3 backend has no atomic
create-if-absent and the store service is the only writer of its datasets.
"""

from __future__ import annotations

import threading

_guard = threading.Lock()
_locks: dict[str, threading.RLock] = {}


def named_lock(name: str) -> threading.RLock:
    with _guard:
        return _locks.setdefault(name, threading.RLock())
