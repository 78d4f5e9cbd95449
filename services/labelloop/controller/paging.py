"""Opaque offset page tokens (AIP-158) for ListExperiments and ListRounds."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import TypeVar

from labelloop.core.errors import InvalidArgument

T = TypeVar("T")
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


def _encode(scope: str, offset: int) -> str:
    return base64.urlsafe_b64encode(f"{scope}|{offset}".encode()).decode().rstrip("=")


def _decode(scope: str, token: str) -> int:
    if not token:
        return 0
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        token_scope, offset = text.rsplit("|", 1)
        if token_scope == scope and int(offset) >= 0:
            return int(offset)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise InvalidArgument(
        f"page_token {token!r} does not belong to this listing: pass the previous response's "
        "next_page_token, or an empty token for the first page"
    )


def paginate(scope: str, items: Sequence[T], page_size: int, page_token: str) -> tuple[list[T], str]:
    """One page and the token of the next one ("" on the last page)."""
    if page_size < 0:
        raise InvalidArgument(f"page_size {page_size} is negative: use 0 for the default")
    start = _decode(scope, page_token)
    stop = start + min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    return list(items[start:stop]), _encode(scope, stop) if stop < len(items) else ""
