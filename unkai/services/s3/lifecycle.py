"""Lifecycle expiration on unkai's clock: the Enabled rules' ``Expiration`` (``Days`` or ``Date``,
and ``ExpiredObjectDeleteMarker``), ``NoncurrentVersionExpiration`` and
``AbortIncompleteMultipartUpload`` actually remove what is due.

As AWS does (docs.aws.amazon.com/AmazonS3/latest/userguide/lifecycle-expire-general-considerations.html),
an object's expiration time is its creation plus ``Days``, rounded up to the next midnight UTC, and
S3 acts once a day: a timer fires at each midnight UTC of unkai's clock (``unkai.advance`` moves
it), sweeps every bucket with rules, and arms the next one. A current version expires as a
DeleteObject does (a delete marker in a versioned bucket), with the ``LifecycleExpiration:*``
event notifications AWS sends."""

from __future__ import annotations

import logging
import math
from typing import Any

from unkai.services import RequestContext

log = logging.getLogger(__name__)

DAY = 86400.0


def due(created: float, days: int) -> float:
    """When an object created at ``created`` expires after ``days``: the next midnight UTC after."""
    return math.ceil((created + days * DAY) / DAY) * DAY


def _matches(rule: dict, key: str, tags: dict[str, str], size: int) -> bool:
    flt = rule.get("Filter")
    if flt is None:  # the older, filter-less form
        return key.startswith(rule.get("Prefix") or "")
    conditions = flt.get("And") or flt
    if not key.startswith(conditions.get("Prefix") or ""):
        return False
    wanted = list(conditions.get("Tags") or []) + ([flt["Tag"]] if flt.get("Tag") else [])
    if any(tags.get(t["Key"]) != t["Value"] for t in wanted):
        return False
    if conditions.get("ObjectSizeGreaterThan") is not None and size <= conditions["ObjectSizeGreaterThan"]:
        return False
    if conditions.get("ObjectSizeLessThan") is not None and size >= conditions["ObjectSizeLessThan"]:
        return False
    return True


class LifecycleOps:
    """Mixed into the S3 service."""

    cloud: Any
    store: Any
    clock: Any
    config: Any

    def start_lifecycle(self) -> None:
        self._lifecycle_timer = None
        self._arm_lifecycle()

    def _arm_lifecycle(self) -> None:
        now = self.clock.now()
        self._lifecycle_timer = self.clock.call_at(math.floor(now / DAY) * DAY + DAY, self._lifecycle_fire)

    def _lifecycle_fire(self) -> None:
        try:
            self.expire_due()
        except Exception:  # a sweep must never stop the daily timer
            log.exception("s3 lifecycle sweep failed")
        self._arm_lifecycle()

    def expire_due(self) -> int:
        """One lifecycle pass over every bucket with Enabled rules; how many versions it removed."""
        now = self.clock.now()
        removed = 0
        for (name,) in self.store.all("SELECT name FROM s3_buckets ORDER BY name"):
            bucket = self.bucket_named(name)  # type: ignore[attr-defined]
            rules = [r for r in (bucket.config.get("Lifecycle") or []) if r.get("Status") == "Enabled"] \
                if bucket else []
            if not rules:
                continue
            with self.store.transaction():
                removed += self._expire_bucket(bucket, rules, now)
        return removed

    def _expire_bucket(self, bucket: Any, rules: list[dict], now: float) -> int:
        from unkai.services.s3.state import OBJ_COLUMNS, obj_from_row

        ctx = self._lifecycle_context(bucket)
        removed = 0
        rows = self.store.all(f"SELECT {OBJ_COLUMNS} FROM s3_objects WHERE bucket_id=? ORDER BY key, id",
                              (bucket.id,))
        objects = [obj_from_row(row) for row in rows]
        for obj in objects:
            for rule in rules:
                if not _matches(rule, obj.key, obj.meta.get("Tags") or {}, obj.size):
                    continue
                expiration = rule.get("Expiration") or {}
                if obj.latest and not obj.delete_marker:
                    when = None
                    if expiration.get("Days") is not None:
                        when = due(obj.modified, int(expiration["Days"]))
                    elif expiration.get("Date") is not None:
                        when = float(expiration["Date"])
                    if when is not None and when <= now:
                        result = self._delete(bucket, obj.key, None)  # type: ignore[attr-defined]
                        event = "LifecycleExpiration:DeleteMarkerCreated" if result.get("_marker") is not None \
                            else "LifecycleExpiration:Delete"
                        self.emit(ctx, bucket, event, result.get("_marker") or obj)  # type: ignore[attr-defined]
                        removed += 1
                        break
                elif obj.latest and obj.delete_marker and expiration.get("ExpiredObjectDeleteMarker"):
                    if not any(o.key == obj.key and not o.delete_marker for o in objects if o.id != obj.id):
                        self._remove_version(obj)  # type: ignore[attr-defined]
                        removed += 1
                        break
                elif not obj.latest:
                    days = (rule.get("NoncurrentVersionExpiration") or {}).get("NoncurrentDays")
                    newer = [o.modified for o in objects if o.key == obj.key and o.id > obj.id]
                    if days is not None and newer and due(min(newer), int(days)) <= now:
                        self._remove_version(obj)  # type: ignore[attr-defined]
                        if not obj.delete_marker:
                            self.emit(ctx, bucket, "LifecycleExpiration:Delete", obj)  # type: ignore[attr-defined]
                        removed += 1
                        break
        for rule in rules:
            abort = (rule.get("AbortIncompleteMultipartUpload") or {}).get("DaysAfterInitiation")
            if abort is None:
                continue
            prefix = ((rule.get("Filter") or {}).get("Prefix") or rule.get("Prefix") or "")
            for upload_id, key, initiated in self.store.all(
                    "SELECT upload_id, key, initiated FROM s3_uploads WHERE bucket_id=?", (bucket.id,)):
                if key.startswith(prefix) and due(initiated, int(abort)) <= now:
                    blobs = [b for (b,) in self.store.all("SELECT blob FROM s3_parts WHERE upload_id=?",
                                                          (upload_id,))]
                    self.store.execute("DELETE FROM s3_uploads WHERE upload_id=?", (upload_id,))
                    self.store.after_commit(lambda bs=blobs: [self.blobs.discard(b) for b in bs])  # type: ignore
                    removed += 1
        return removed

    def _lifecycle_context(self, bucket: Any) -> RequestContext:
        from unkai.http import Headers, Request

        request = Request("DELETE", "/", headers=Headers.from_dict({"host": "s3.amazonaws.com"}))
        return RequestContext(service="s3", operation="LifecycleExpiration", region=bucket.region,
                              account=bucket.account, request_id="", request=request, protocol="internal")
