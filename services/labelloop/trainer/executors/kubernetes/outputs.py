"""The files a job leaves under its output prefix, as the executor reads them from the object store.

spec.json is written by the executor at submit (the pod's only input besides the store);
status.json and result.json by the job (job.py), result.json last.
"""

from __future__ import annotations

import logging
from typing import Any

from labelloop.core.errors import NotFound
from labelloop.core.storage import ObjectStore

log = logging.getLogger(__name__)

SPEC_FILE = "spec.json"
STATUS_FILE = "status.json"
RESULT_FILE = "result.json"


def read_json(store: ObjectStore, key: str) -> dict[str, Any] | None:
    """A JSON object from the store; None when it is absent or not (yet) a whole JSON object."""
    try:
        value = store.get_json(key)
    except NotFound:
        return None
    except ValueError as error:  # a half-written file on a store without atomic puts
        log.warning("cannot read %s: %s", key, error)
        return None
    return value if isinstance(value, dict) else None
