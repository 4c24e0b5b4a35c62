"""Offset pagination for list operations whose AWS tokens are opaque: the token is the
next offset, so a service can page any list it has built without keeping state."""

from __future__ import annotations

from typing import Any


def paged(key: str, items: list, token: str | None, limit: int | None, default: int = 100) -> dict[str, Any]:
    """One page of ``items`` under ``key``, with ``NextToken`` when more remain."""
    size = int(limit or default)
    start = int(token) if str(token or "").isdigit() else 0
    out: dict[str, Any] = {key: items[start:start + size]}
    if start + size < len(items):
        out["NextToken"] = str(start + size)
    return out
