"""A cache of finished runs (one JSON file each), so an interrupted benchmark resumes where it stopped.

A run's file records the configuration it ran with; a different configuration reruns it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any


def config_hash(config: Any) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


class RunCache:
    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    def path(self, name: str) -> Path:
        return self.folder / f"{name}.json"

    def get(self, name: str, config: Any) -> Any | None:
        path = self.path(name)
        if not path.exists():
            return None
        data = json.loads(path.read_text())
        return data["result"] if data.get("config_hash") == config_hash(config) else None

    def put(self, name: str, config: Any, result: Any) -> None:
        tmp = self.path(name).with_suffix(".tmp")
        tmp.write_text(json.dumps({"config_hash": config_hash(config), "result": result}, indent=1))
        tmp.replace(self.path(name))
