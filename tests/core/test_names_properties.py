"""Property-based tests (hypothesis) of resource names: any text is either a valid id or refused with
INVALID_ARGUMENT and a bounded message, and valid names round-trip through parse."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from labelloop.core.errors import InvalidArgument
from labelloop.core.names import MAX_NAME_LENGTH, check_id, parse, shown

VALID_ID = st.from_regex(re.compile(r"[a-z][a-z0-9-]{0,62}", re.ASCII), fullmatch=True)
ANY_TEXT = st.text(max_size=2000) | st.text(alphabet="ab/-sd", max_size=80)


@given(ANY_TEXT)
def test_an_id_is_valid_or_refused_with_a_bounded_message(value: str) -> None:
    try:
        assert check_id(value, "dataset_id") == value
    except InvalidArgument as error:
        assert len(str(error)) < 300
        assert "dataset_id" in str(error) and "is not a valid id" in str(error)
    else:
        assert 1 <= len(value) <= 63 and value[0].isalpha() and value.isascii()
        assert "/" not in value and value == value.lower()


@given(VALID_ID, VALID_ID)
def test_valid_names_round_trip(dataset: str, snapshot: str) -> None:
    assert parse(f"datasets/{dataset}/snapshots/{snapshot}", "datasets", "snapshots") == [dataset, snapshot]
    assert parse(f"datasets/{dataset}", "datasets") == [dataset]


@given(ANY_TEXT)
def test_parse_returns_the_ids_it_was_given_or_refuses_briefly(name: str) -> None:
    try:
        (dataset,) = parse(name, "datasets")
    except InvalidArgument as error:
        assert len(str(error)) < 300
    else:
        assert name == f"datasets/{dataset}" and "/" not in dataset and len(name) <= MAX_NAME_LENGTH


@given(st.text(max_size=5000), st.integers(min_value=8, max_value=200))
def test_shown_is_bounded_and_says_how_long_the_value_was(value: str, limit: int) -> None:
    text = shown(value, limit)
    assert len(text) <= 4 * limit + 40  # repr escapes at most 4 characters per character
    if len(value) > limit:
        assert text.endswith(f"({len(value)} characters)")
    else:
        assert text == repr(value)


@pytest.mark.parametrize("name", ["datasets/" + "a" * 100_000, "x" * 100_000])
def test_long_names_are_refused_without_echoing_them(name: str) -> None:
    with pytest.raises(InvalidArgument, match="longer than 512 characters") as info:
        parse(name, "datasets")
    assert len(str(info.value)) < 300
