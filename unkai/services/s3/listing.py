"""Listing: ListObjects (v1 and v2) and ListObjectVersions over one ordered index,
with prefixes, delimiters (common prefixes are skipped over in one index seek, not
scanned), pagination and ``encoding-type=url``."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from unkai.services import RequestContext
from unkai.services.s3.buckets import owner
from unkai.services.s3.state import invalid_argument

BATCH = 1000
Entry = tuple[str, Any]  # ("key", row) or ("prefix", common prefix)


def successor(prefix: str) -> str:
    """The smallest string greater than every string that starts with ``prefix``."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def _encoder(params: dict) -> Any:
    encoding = params.get("EncodingType")
    if encoding is None:
        return lambda s: s
    if encoding != "url":
        raise invalid_argument("Invalid Encoding Method specified in Request", "encoding-type", encoding)
    return lambda s: quote(s, safe="/") if s is not None else None


def _max_keys(params: dict, name: str = "MaxKeys") -> int:
    value = params.get(name)
    if value is None:
        return 1000
    if value < 0:
        raise invalid_argument("Provided max-keys not an integer or within integer range", "max-keys", str(value))
    return min(value, 1000)


class ListingOps:
    """Mixed into the S3 service."""

    store: Any

    def _entries(self, fetch: Any, key_at: int, prefix: str, delimiter: str | None, after: str,
                 start: tuple) -> Iterator[Entry]:
        """Rows in key order from ``fetch(low, position)`` (one index seek per batch), with keys
        under a delimiter folded into their common prefix and skipped over in one seek."""
        low, position = prefix, start
        while True:
            rows = fetch(low, position)
            jumped = False
            for row in rows:
                key = row[key_at]
                if not key.startswith(prefix):
                    return
                if delimiter:
                    i = key.find(delimiter, len(prefix))
                    if i >= 0:
                        common = key[: i + len(delimiter)]
                        if not (after and common <= after):
                            yield "prefix", common
                        low, position, jumped = successor(common), None, True
                        break
                yield "key", row
                position = row
            if not jumped and len(rows) < BATCH:
                return

    def _walk(self, bucket_id: int, prefix: str, delimiter: str | None, after: str) -> Iterator[Entry]:
        """Current keys and common prefixes in order, strictly after ``after``."""
        def fetch(low: str, position: tuple | None) -> list[tuple]:
            return self.store.all(
                "SELECT key, size, etag, modified, meta FROM s3_objects WHERE bucket_id=? AND latest=1 "
                f"AND delete_marker=0 AND key >= ? AND key > ? ORDER BY key LIMIT {BATCH}",
                (bucket_id, low, position[0] if position else ""))
        return self._entries(fetch, 0, prefix, delimiter, after, (after,))

    def _page(self, walk: Iterator[Entry], limit: int) -> tuple[list[Entry], bool]:
        entries: list[Entry] = []
        for entry in walk:
            if len(entries) >= limit:
                return entries, True
            entries.append(entry)
        return entries, False

    def _contents(self, entries: list[Entry], enc: Any, account: str, fetch_owner: bool) -> dict[str, Any]:
        contents, prefixes = [], []
        for kind, value in entries:
            if kind == "prefix":
                prefixes.append({"Prefix": enc(value)})
                continue
            key, size, etag, modified, meta = value
            item: dict[str, Any] = {"Key": enc(key), "LastModified": modified, "ETag": etag, "Size": size,
                                    "StorageClass": _storage_class(meta)}
            algorithm = _checksum_algorithm(meta)
            if algorithm:
                item["ChecksumAlgorithm"] = [algorithm]
                item["ChecksumType"] = "COMPOSITE" if '"ChecksumType": "COMPOSITE"' in meta else "FULL_OBJECT"
            if fetch_owner:
                item["Owner"] = owner(account)
            contents.append(item)
        return {"Contents": contents or None, "CommonPrefixes": prefixes or None}

    def list_objects_v2(self, ctx: RequestContext, params: dict) -> dict:
        bucket = self._bucket(params["Bucket"])  # type: ignore[attr-defined]
        enc = _encoder(params)
        prefix, delimiter = params.get("Prefix") or "", params.get("Delimiter") or None
        limit = _max_keys(params)
        after = params.get("StartAfter") or ""
        token = params.get("ContinuationToken")
        if token is not None:
            try:
                after = base64.urlsafe_b64decode(token.encode()).decode()
            except ValueError:
                raise invalid_argument("The continuation token provided is incorrect", "continuation-token",
                                       token) from None
        entries, truncated = self._page(self._walk(bucket.id, prefix, delimiter, after), limit)
        result: dict[str, Any] = {"Name": bucket.name, "Prefix": enc(prefix), "MaxKeys": limit,
                                  "KeyCount": len(entries), "IsTruncated": truncated,
                                  "EncodingType": params.get("EncodingType")}
        result.update(self._contents(entries, enc, bucket.account, bool(params.get("FetchOwner"))))
        if delimiter:
            result["Delimiter"] = enc(delimiter)
        if token is not None:
            result["ContinuationToken"] = token
        if params.get("StartAfter"):
            result["StartAfter"] = enc(params["StartAfter"])
        if truncated:
            last = entries[-1]
            last_key = last[1] if last[0] == "prefix" else last[1][0]
            result["NextContinuationToken"] = base64.urlsafe_b64encode(last_key.encode()).decode()
        return result

    def list_objects(self, ctx: RequestContext, params: dict) -> dict:
        bucket = self._bucket(params["Bucket"])  # type: ignore[attr-defined]
        enc = _encoder(params)
        prefix, delimiter = params.get("Prefix") or "", params.get("Delimiter") or None
        limit = _max_keys(params)
        marker = params.get("Marker") or ""
        entries, truncated = self._page(self._walk(bucket.id, prefix, delimiter, marker), limit)
        result: dict[str, Any] = {"Name": bucket.name, "Prefix": enc(prefix), "Marker": enc(marker),
                                  "MaxKeys": limit, "IsTruncated": truncated,
                                  "EncodingType": params.get("EncodingType")}
        result.update(self._contents(entries, enc, bucket.account, True))
        if delimiter:
            result["Delimiter"] = enc(delimiter)
            if truncated:
                last = entries[-1]
                result["NextMarker"] = enc(last[1] if last[0] == "prefix" else last[1][0])
        return result

    def _walk_versions(self, bucket_id: int, prefix: str, delimiter: str | None, key_marker: str,
                       after_id: int | None) -> Iterator[Entry]:
        """Every version and delete marker: keys in order, newest version first."""
        def fetch(low: str, position: tuple | None) -> list[tuple]:
            key, row_id = (position[1], position[0]) if position else ("", -1)
            return self.store.all(
                "SELECT id, key, version_id, latest, delete_marker, size, etag, modified, meta FROM s3_objects "
                "WHERE bucket_id=? AND key >= ? AND (key > ? OR (key = ? AND id < ?)) "
                f"ORDER BY key, id DESC LIMIT {BATCH}", (bucket_id, low, key, key, row_id))
        start = (after_id if after_id is not None else -1, key_marker)
        return self._entries(fetch, 1, prefix, delimiter, key_marker, start)

    def list_object_versions(self, ctx: RequestContext, params: dict) -> dict:
        bucket = self._bucket(params["Bucket"])  # type: ignore[attr-defined]
        enc = _encoder(params)
        prefix, delimiter = params.get("Prefix") or "", params.get("Delimiter") or None
        limit = _max_keys(params)
        key_marker = params.get("KeyMarker") or ""
        version_marker = params.get("VersionIdMarker")
        after_id = None
        if version_marker:
            if not key_marker:
                raise invalid_argument("A version-id marker cannot be specified without a key marker.",
                                       "version-id-marker", version_marker)
            row = self.store.one("SELECT id FROM s3_objects WHERE bucket_id=? AND key=? AND version_id=?",
                                 (bucket.id, key_marker, version_marker))
            if row is None:
                raise invalid_argument("Invalid version id specified", "version-id-marker", version_marker)
            after_id = row[0]
        walk = self._walk_versions(bucket.id, prefix, delimiter, key_marker, after_id)
        entries, truncated = self._page(walk, limit)
        versions, markers, prefixes = [], [], []
        me = owner(bucket.account)
        for kind, value in entries:
            if kind == "prefix":
                prefixes.append({"Prefix": enc(value)})
                continue
            _, key, version_id, latest, delete_marker, size, etag, modified, meta = value
            item: dict[str, Any] = {"Key": enc(key), "VersionId": version_id, "IsLatest": bool(latest),
                                    "LastModified": modified, "Owner": me}
            if delete_marker:
                markers.append(item)
            else:
                item.update({"ETag": etag, "Size": size, "StorageClass": _storage_class(meta)})
                versions.append(item)
        result: dict[str, Any] = {"Name": bucket.name, "Prefix": enc(prefix), "KeyMarker": enc(key_marker),
                                  "VersionIdMarker": version_marker or "", "MaxKeys": limit,
                                  "IsTruncated": truncated, "Versions": versions or None,
                                  "DeleteMarkers": markers or None, "CommonPrefixes": prefixes or None,
                                  "EncodingType": params.get("EncodingType")}
        if delimiter:
            result["Delimiter"] = enc(delimiter)
        if truncated:
            kind, value = entries[-1]
            if kind == "prefix":
                result["NextKeyMarker"] = enc(value)
            else:
                result["NextKeyMarker"] = enc(value[1])
                result["NextVersionIdMarker"] = value[2]
        return result


def _storage_class(meta: str) -> str:
    if '"StorageClass"' not in meta:
        return "STANDARD"
    return json.loads(meta).get("StorageClass") or "STANDARD"


def _checksum_algorithm(meta: str) -> str | None:
    if '"Checksum"' not in meta:
        return None
    checksum = json.loads(meta).get("Checksum") or {}
    return next(iter(checksum), None)
