from __future__ import annotations

import re
from pathlib import Path

import pytest
from labelloop.core.config import Settings
from labelloop.core.errors import InvalidArgument
from labelloop.core.names import check_id, parse


def test_settings_round_trip_through_environment(tmp_path: Path) -> None:
    env = {
        "LABELLOOP_STORAGE_BACKEND": "s3",
        "LABELLOOP_S3_ENDPOINT": "minio:9000",
        "LABELLOOP_S3_BUCKET": "b",
        "LABELLOOP_TRAINER_ADDRESS": "trainer:50051",
        "LABELLOOP_CACHE_DIR": str(tmp_path),
    }
    settings = Settings.from_env(env)
    assert settings.storage.endpoint == "minio:9000" and settings.trainer_address == "trainer:50051"
    assert Settings.from_env(settings.to_env()) == settings


def test_unknown_backend_is_rejected() -> None:
    with pytest.raises(InvalidArgument, match="use 'local' or 's3'"):
        Settings.from_env({"LABELLOOP_STORAGE_BACKEND": "ftp"})


def test_resource_names() -> None:
    assert parse("datasets/d1/snapshots/r0", "datasets", "snapshots") == ["d1", "r0"]
    with pytest.raises(InvalidArgument, match=re.escape("datasets/{dataset}")):
        parse("dataset/d1", "datasets")
    assert check_id("digits-2", "dataset id") == "digits-2"
    with pytest.raises(InvalidArgument, match="lowercase"):
        check_id("Digits_2", "dataset id")
