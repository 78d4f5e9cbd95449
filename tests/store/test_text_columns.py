"""A text column whose values all look like numbers ("123", ids, codes) stays text when it is named as
a text column, so the trainer embeds it with the text model instead of feeding it as a number."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from labelloop.core.errors import InvalidArgument
from labelloop.store import DatasetStore
from labelloop.trainer.contract import JobKind, JobSpec
from labelloop.trainer.embeddings import backbone_of

DIGITS = ["123", "0042", "7", "980", "5", "61"] * 2  # "0042" keeps its zeros only as text


def manifest(folder: Path, suffix: str) -> Path:
    frame = pd.DataFrame(
        {
            "code": [int(v) for v in DIGITS] if suffix == "parquet" else DIGITS,
            "weight": [float(i) for i in range(12)],
            "label": ["a", "b", "c"] * 4,
        }
    )
    path = folder / f"manifest.{suffix}"
    if suffix == "csv":
        path.write_text(frame.to_csv(index=False))
    else:
        frame.to_parquet(path)
    return path


def trainer_sees(datasets: DatasetStore, dataset: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(numeric columns, text columns) as the trainer's backbone splits them."""
    info = datasets.get_dataset(dataset)
    spec = JobSpec(
        job_id="j", kind=JobKind.EMBED, examples_key="", output_prefix="", classes=info.classes,
        feature_columns=info.feature_columns,
    )  # fmt: skip
    backbone = backbone_of(spec, datasets.read_examples(dataset))
    return backbone.numeric_columns, backbone.text_columns


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_a_digit_text_column_stays_text(datasets: DatasetStore, tmp_path: Path, suffix: str) -> None:
    path = manifest(tmp_path, suffix)
    options = {"label_column": "label", "feature_columns": ["code", "weight"], "test_fraction": 0.25}
    datasets.create_dataset("texts", str(path), text_columns=["code"], **options)  # type: ignore[arg-type]
    examples = datasets.read_examples("texts")
    expected = DIGITS if suffix == "csv" else [str(int(v)) for v in DIGITS]  # a Parquet int has no zeros
    assert sorted(examples["code"]) == sorted(expected)
    assert trainer_sees(datasets, "texts") == (("weight",), ("code",))
    # Without text_columns the same column is read as numbers (what the flag is for).
    datasets.create_dataset("numbers", str(path), **options)  # type: ignore[arg-type]
    assert trainer_sees(datasets, "numbers") == (("code", "weight"), ())


def test_a_text_column_must_be_a_feature_column(datasets: DatasetStore, tmp_path: Path) -> None:
    path = manifest(tmp_path, "csv")
    with pytest.raises(InvalidArgument, match=r"text_columns \['code'\] must also be feature columns"):
        datasets.create_dataset(
            "texts", str(path), label_column="label", feature_columns=["weight"], text_columns=["code"]
        )
    with pytest.raises(InvalidArgument, match=r"lacks column\(s\) \['nope'\]"):
        datasets.create_dataset("texts", str(path), label_column="label", text_columns=["nope"])
    # With feature_columns empty every other column is a feature, the text column among them.
    datasets.create_dataset("texts", str(path), label_column="label", text_columns=["code"])
    assert trainer_sees(datasets, "texts") == (("weight",), ("code",))
