"""Checks that a service's log output is JSON lines only."""

from __future__ import annotations

import json
from typing import Any

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def assert_json_lines(text: str, service: str) -> list[dict[str, Any]]:
    """Every line is a JSON object with time, level, service and message; returns them."""
    entries, bad = [], []
    for number, line in enumerate(text.splitlines(), 1):
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            bad.append(f"{number}: {line[:160]!r}")
            continue
        assert isinstance(entry, dict), line
        assert {"time", "level", "service", "message"} <= entry.keys(), line
        # The trainer's worker process (AutoGluon) writes to the trainer's stderr as "trainer-worker".
        assert entry["service"] in (service, f"{service}-worker"), line
        assert entry["level"] in LEVELS, line
        entries.append(entry)
    assert not bad, f"{len(bad)} of {len(text.splitlines())} {service} log lines are not JSON:\n" + "\n".join(
        bad[:15]
    )
    return entries
