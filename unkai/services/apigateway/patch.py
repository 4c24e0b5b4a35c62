"""API Gateway's ``patchOperations`` (Update* calls): JSON-Patch-like ops on paths such
as ``/description``, ``/variables/env`` or ``/*/*/throttling/rateLimit``."""

from __future__ import annotations

from typing import Any

from unkai.protocol import ServiceError

# Stage method settings: the last path parts name one flat MethodSetting member.
_SETTINGS = {
    "metrics/enabled": "metricsEnabled", "logging/loglevel": "loggingLevel",
    "logging/dataTrace": "dataTraceEnabled", "throttling/burstLimit": "throttlingBurstLimit",
    "throttling/rateLimit": "throttlingRateLimit", "caching/enabled": "cachingEnabled",
    "caching/ttlInSeconds": "cacheTtlInSeconds", "caching/dataEncrypted": "cacheDataEncrypted",
    "caching/requireAuthorizationForCacheControl": "requireAuthorizationForCacheControl",
    "caching/unauthorizedCacheControlHeaderStrategy": "unauthorizedCacheControlHeaderStrategy",
}


def _unescape(part: str) -> str:
    return part.replace("~1", "/").replace("~0", "~")


def _coerce(old: Any, value: Any) -> Any:
    """Patch values arrive as strings; keep the member's type."""
    if isinstance(value, str):
        if isinstance(old, bool) or value in ("true", "false") and old is None:
            return value.lower() == "true"
        if isinstance(old, int) and value.lstrip("-").isdigit():
            return int(value)
        if isinstance(old, float):
            try:
                return float(value)
            except ValueError:
                pass
    return value


def apply(doc: dict[str, Any], operations: list[dict[str, Any]], lists: tuple[str, ...] = ()) -> dict[str, Any]:
    """Apply patch operations to ``doc`` in place. ``lists`` names members that are
    string lists (binaryMediaTypes, apiStages): add/remove append or drop values."""
    for op in operations or []:
        kind = op.get("op", "replace")
        path = op.get("path", "")
        value = op.get("value")
        parts = [_unescape(p) for p in path.strip("/").split("/")] if path.strip("/") else []
        if not parts:
            raise ServiceError("BadRequestException", f"Invalid patch path '{path}'")
        if len(parts) >= 4 and "/".join(parts[-2:]) in _SETTINGS:
            member = _SETTINGS["/".join(parts[-2:])]
            where = "/".join(parts[:-2]).lstrip("/")
            settings = doc.setdefault("methodSettings", {})
            entry = settings.setdefault(where, {})
            if kind == "remove":
                entry.pop(member, None)
                if not entry:
                    settings.pop(where, None)
            else:
                entry[member] = _coerce(_sample(member), value)
            continue
        head = parts[0]
        if head in lists:
            values = doc.setdefault(head, [])
            item = "/".join(parts[1:]) or value
            if kind == "add" and item not in values:
                values.append(item)
            elif kind == "remove" and item in values:
                values.remove(item)
            elif kind == "replace" and len(parts) > 1:
                values[:] = [value if v == item else v for v in values]
            continue
        target = doc
        for part in parts[:-1]:
            nxt = target.get(part)
            if not isinstance(nxt, dict):
                nxt = target[part] = {}
            target = nxt
        last = parts[-1]
        if kind == "remove":
            target.pop(last, None)
        elif kind in ("add", "replace"):
            target[last] = _coerce(target.get(last), value)
        elif kind == "copy":
            src = [_unescape(p) for p in op.get("from", "").strip("/").split("/")]
            source: Any = doc
            for part in src:
                source = source.get(part) if isinstance(source, dict) else None
            target[last] = source
        else:
            raise ServiceError("BadRequestException", f"Invalid patch operation specified. Must be one of: "
                               f"[add, remove, move, test, replace, copy]")
    return doc


def _sample(member: str) -> Any:
    if member in ("throttlingBurstLimit", "cacheTtlInSeconds"):
        return 0
    if member == "throttlingRateLimit":
        return 0.0
    if member in ("loggingLevel", "unauthorizedCacheControlHeaderStrategy"):
        return ""
    return False
