"""Labels to fit on other than the snapshot's majority vote (CreateTrainingRunRequest.labels_uri),
e.g. CROWDLAB's consensus: checked against the snapshot, then read by the job in place of its labels."""

from __future__ import annotations

from labelloop.core import tables
from labelloop.core.errors import InvalidArgument, NotFound
from labelloop.core.storage import ObjectStore


def override_labels_key(store: ObjectStore, snapshot: str, snapshot_labels_key: str, labels_uri: str) -> str:
    """The key of labels_uri once it holds example_id and label for exactly the snapshot's labeled
    examples (the trainer fits the labeled set the snapshot froze, only the labels differ)."""
    try:
        key = store.ref_to_key(labels_uri)
    except InvalidArgument as error:
        raise InvalidArgument(f"labels_uri: {error}; name a Parquet file of this store") from None
    try:
        frame = tables.read_frame(store, key)
    except NotFound:
        raise NotFound(f"labels_uri {labels_uri} does not exist") from None
    except (OSError, ValueError) as error:
        raise InvalidArgument(f"labels_uri {labels_uri} is not a readable Parquet file: {error}") from None
    missing = [c for c in ("example_id", "label") if c not in frame.columns]
    if missing:
        raise InvalidArgument(
            f"labels_uri {labels_uri} lacks the columns {missing}: it needs example_id, label"
        )
    if frame["label"].isna().any():
        raise InvalidArgument(f"labels_uri {labels_uri} has rows without a label")
    ids = frame["example_id"].astype(str)
    if ids.duplicated().any():
        raise InvalidArgument(
            f"labels_uri {labels_uri} lists example {ids[ids.duplicated()].iloc[0]!r} twice"
        )
    frozen = set(
        tables.read_frame(store, snapshot_labels_key, columns=["example_id"])["example_id"].astype(str)
    )
    extra, absent = sorted(set(ids) - frozen), sorted(frozen - set(ids))
    if extra or absent:
        raise InvalidArgument(
            f"labels_uri {labels_uri} must label exactly the {len(frozen)} examples of snapshot {snapshot}: "
            f"{len(extra)} are not in it (e.g. {extra[:3]}), {len(absent)} of it are missing "
            f"(e.g. {absent[:3]})"
        )
    return key
