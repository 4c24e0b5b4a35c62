"""Object Lock on object versions: retention (GOVERNANCE / COMPLIANCE, until a date of unkai's
clock) and legal holds, set by PutObject's headers, the bucket's default retention, or
PutObjectRetention / PutObjectLegalHold, and enforced where AWS enforces them: deleting a locked
version (DeleteObject or DeleteObjects with a VersionId) is refused, GOVERNANCE only yielding to
``x-amz-bypass-governance-retention``, and a COMPLIANCE retention cannot be shortened or removed.
Deleting without a VersionId only adds a delete marker, which Object Lock allows."""

from __future__ import annotations

from typing import Any

from unkai.services import RequestContext
from unkai.services.s3.state import S3Error

DAY = 86400.0


def missing_lock_configuration() -> S3Error:
    return S3Error("InvalidRequest", "Bucket is missing Object Lock Configuration")


def no_lock_configuration() -> S3Error:
    return S3Error("NoSuchObjectLockConfiguration", "The specified object does not have a ObjectLock configuration",
                   status=404)


def locked() -> S3Error:
    return S3Error("AccessDenied", "Access Denied because object protected by object lock.", status=403)


def lock_enabled(bucket: Any) -> bool:
    return (bucket.config.get("ObjectLock") or {}).get("ObjectLockEnabled") == "Enabled"


class LockOps:
    """Mixed into the S3 service."""

    clock: Any

    def _bucket(self, name: str) -> Any: ...
    def _existing(self, bucket: Any, key: str, version_id: str | None, head: bool = False) -> Any: ...
    def _version(self, bucket: Any, key: str, version_id: str | None) -> Any: ...
    def _set_meta(self, obj: Any) -> None: ...

    def apply_lock_defaults(self, bucket: Any, meta: dict[str, Any]) -> None:
        """A new version's lock: the request's headers (refused on a bucket without Object Lock),
        else the bucket's default retention."""
        asked = any(meta.get(k) for k in ("ObjectLockMode", "ObjectLockRetainUntilDate", "ObjectLockLegalHoldStatus"))
        if not lock_enabled(bucket):
            if asked:
                raise missing_lock_configuration()
            return
        default = (((bucket.config.get("ObjectLock") or {}).get("Rule") or {}).get("DefaultRetention") or {})
        if not meta.get("ObjectLockMode") and default.get("Mode"):
            days = default.get("Days") or (default.get("Years") or 0) * 365
            meta["ObjectLockMode"] = default["Mode"]
            meta["ObjectLockRetainUntilDate"] = self.clock.now() + days * DAY

    def check_lock(self, bucket: Any, key: str, version_id: str | None, bypass: bool) -> None:
        """Raise AWS's AccessDenied when deleting this version would break its lock."""
        if version_id is None or not lock_enabled(bucket):
            return
        obj = self._version(bucket, key, version_id)
        if obj is None:
            return
        if obj.meta.get("ObjectLockLegalHoldStatus") == "ON":
            raise locked()
        until = obj.meta.get("ObjectLockRetainUntilDate")
        if until is not None and float(until) > self.clock.now():
            if obj.meta.get("ObjectLockMode") == "COMPLIANCE" or not bypass:
                raise locked()

    def put_object_retention(self, ctx: RequestContext, params: dict) -> dict:
        bucket = self._bucket(params["Bucket"])
        if not lock_enabled(bucket):
            raise missing_lock_configuration()
        obj = self._existing(bucket, params["Key"], params.get("VersionId"))
        retention = params.get("Retention") or {}
        mode, until = retention.get("Mode"), retention.get("RetainUntilDate")
        current_until = obj.meta.get("ObjectLockRetainUntilDate")
        active = current_until is not None and float(current_until) > self.clock.now()
        if active:
            weaker = until is None or float(until) < float(current_until) or mode != obj.meta.get("ObjectLockMode")
            if weaker and (obj.meta.get("ObjectLockMode") == "COMPLIANCE" or
                           not params.get("BypassGovernanceRetention")):
                raise S3Error("AccessDenied", "Access Denied", status=403)
        if mode and until is not None:
            obj.meta["ObjectLockMode"], obj.meta["ObjectLockRetainUntilDate"] = mode, float(until)
        else:
            obj.meta.pop("ObjectLockMode", None)
            obj.meta.pop("ObjectLockRetainUntilDate", None)
        self._set_meta(obj)
        return {}

    def get_object_retention(self, ctx: RequestContext, params: dict) -> dict:
        bucket = self._bucket(params["Bucket"])
        if not lock_enabled(bucket):
            raise missing_lock_configuration()
        obj = self._existing(bucket, params["Key"], params.get("VersionId"))
        if not obj.meta.get("ObjectLockMode"):
            raise no_lock_configuration()
        return {"Retention": {"Mode": obj.meta["ObjectLockMode"],
                              "RetainUntilDate": obj.meta["ObjectLockRetainUntilDate"]}}

    def put_object_legal_hold(self, ctx: RequestContext, params: dict) -> dict:
        bucket = self._bucket(params["Bucket"])
        if not lock_enabled(bucket):
            raise missing_lock_configuration()
        obj = self._existing(bucket, params["Key"], params.get("VersionId"))
        status = (params.get("LegalHold") or {}).get("Status")
        if status not in ("ON", "OFF"):
            raise S3Error("MalformedXML", "The XML you provided was not well-formed or did not validate against our "
                          "published schema")
        obj.meta["ObjectLockLegalHoldStatus"] = status
        self._set_meta(obj)
        return {}

    def get_object_legal_hold(self, ctx: RequestContext, params: dict) -> dict:
        bucket = self._bucket(params["Bucket"])
        if not lock_enabled(bucket):
            raise missing_lock_configuration()
        obj = self._existing(bucket, params["Key"], params.get("VersionId"))
        if not obj.meta.get("ObjectLockLegalHoldStatus"):
            raise no_lock_configuration()
        return {"LegalHold": {"Status": obj.meta["ObjectLockLegalHoldStatus"]}}
