"""The ids and seeds a round derives from its experiment and number. They are what makes a replayed
step identical to the first try: the store, the trainer and the scorer recognise the same ids."""

from __future__ import annotations

import hashlib

# Resource ids (snapshots) are at most 63 characters (core/names.py).
MAX_ID_LENGTH = 63


def snapshot_id(experiment_id: str, number: int) -> str:
    """The round's snapshot id, "{experiment}-r{n}": snapshots belong to the dataset, which several
    experiments may share."""
    suffix = f"-r{number}"
    if len(experiment_id) + len(suffix) <= MAX_ID_LENGTH:
        return experiment_id + suffix
    digest = hashlib.sha1(experiment_id.encode()).hexdigest()[:8]
    return f"{experiment_id[: MAX_ID_LENGTH - len(suffix) - 9]}-{digest}{suffix}"


def initial_labels_request_id(experiment_id: str) -> str:
    return f"{experiment_id}-initial"


def label_request_id(experiment_id: str, number: int) -> str:
    """The AppendAnnotations request id of round n's labels: the store keeps a retried one once."""
    return f"{experiment_id}-r{number}-label"


def derived_seed(seed: int, *parts: int) -> int:
    """A seed per round and purpose, stable across restarts."""
    text = ":".join(str(p) for p in (seed, *parts))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big") >> 1
