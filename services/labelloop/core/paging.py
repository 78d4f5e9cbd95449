"""Opaque, offset-based page tokens (AIP-158), shared by every List RPC, and the client-side loop
that reads every page.

A token names the listing it belongs to, so a token from one listing (or a hand-made one)
is rejected instead of silently paging through something else.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from labelloop.core.errors import InvalidArgument

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000


def encode(scope: str, offset: int) -> str:
    return base64.urlsafe_b64encode(f"{scope}|{offset}".encode()).decode().rstrip("=")


def decode(scope: str, token: str) -> int:
    """The offset a token points at; 0 for an empty token."""
    if not token:
        return 0
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        token_scope, offset_text = text.rsplit("|", 1)
        offset = int(offset_text)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        offset, token_scope = -1, ""
    if token_scope != scope or offset < 0:
        raise InvalidArgument(
            f"page_token {token!r} was not returned by this listing: pass next_page_token of the "
            "previous response with the same filters, or an empty token for the first page"
        )
    return offset


def page_size(size: int) -> int:
    if size < 0:
        raise InvalidArgument(f"page_size {size} is negative: use 0 for the default ({DEFAULT_PAGE_SIZE})")
    return min(size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def paginate(scope: str, items: Sequence[T], size: int, token: str) -> tuple[list[T], str]:
    """One page of items and the next page's token, empty on the last page.

    scope names the listing (e.g. "experiments" or "datasets/d/annotations/default"), so a token
    is only accepted by the listing that issued it.
    """
    start = decode(scope, token)
    stop = start + page_size(size)
    return list(items[start:stop]), encode(scope, stop) if stop < len(items) else ""


def all_pages(fetch: Callable[[str], Any], field: str) -> list[Any]:
    """Client side: every item of a paged List call. fetch(page_token) returns one page; `field` names
    its items."""
    found: list[Any] = []
    token = ""
    while True:
        page = fetch(token)
        found.extend(getattr(page, field))
        token = page.next_page_token
        if not token:
            return found
