"""Versioning: how a write or delete changes a key's versions in unversioned,
versioned and suspended buckets, delete markers, and the versioning configuration."""

from __future__ import annotations

import json
from typing import Any

from unkai.services import RequestContext
from unkai.services.s3.state import OBJ_COLUMNS, Bucket, Obj, S3Error, malformed_xml, new_version_id, obj_from_row


class VersionOps:
    """Mixed into the S3 service."""

    store: Any
    clock: Any
    blobs: Any

    def put_bucket_versioning(self, ctx: RequestContext, params: dict) -> dict:
        bucket = self._bucket(params["Bucket"])  # type: ignore[attr-defined]
        status = (params.get("VersioningConfiguration") or {}).get("Status")
        if status not in ("Enabled", "Suspended"):
            raise malformed_xml()
        if status == "Suspended" and bucket.versioning is None:
            return {}  # suspending never-enabled versioning leaves the bucket unversioned
        self.store.execute("UPDATE s3_buckets SET versioning=? WHERE id=?", (status, bucket.id))
        return {}

    def get_bucket_versioning(self, ctx: RequestContext, params: dict) -> dict:
        bucket = self._bucket(params["Bucket"])  # type: ignore[attr-defined]
        return {"Status": bucket.versioning} if bucket.versioning else {}

    # -- reading versions ---------------------------------------------------------------

    def _version(self, bucket: Bucket, key: str, version_id: str | None) -> Obj | None:
        """The current version of a key (delete marker included), or a given version."""
        if version_id is None:
            row = self.store.one(f"SELECT {OBJ_COLUMNS} FROM s3_objects WHERE bucket_id=? AND key=? AND latest=1",
                                 (bucket.id, key))
        else:
            row = self.store.one(f"SELECT {OBJ_COLUMNS} FROM s3_objects WHERE bucket_id=? AND key=? "
                                 "AND version_id=?", (bucket.id, key, version_id))
        return obj_from_row(row) if row else None

    def _existing(self, bucket: Bucket, key: str, version_id: str | None, head: bool = False) -> Obj:
        """A readable object version, or the error S3 answers instead."""
        if version_id is not None and version_id != "null" and len(version_id) < 8:
            raise S3Error("InvalidArgument", "Invalid version id specified", ArgumentName="versionId",
                               ArgumentValue=version_id)
        obj = self._version(bucket, key, version_id)
        if obj is None:
            if version_id is not None:
                raise S3Error("NoSuchVersion", "The specified version does not exist.", Key=key,
                                   VersionId=version_id, status=404)
            raise S3Error("NoSuchKey", "The specified key does not exist.", Key=key)
        if obj.delete_marker:
            headers = {"x-amz-delete-marker": "true", "x-amz-version-id": obj.version_id}
            if version_id is not None:
                headers["Allow"] = "DELETE"  # AWS names the one method a delete marker's version takes
                raise S3Error("MethodNotAllowed", "The specified method is not allowed against this resource.",
                                   status=405, headers=headers, Method="GET" if not head else "HEAD",
                                   ResourceType="DeleteMarker")
            raise S3Error("NoSuchKey", "The specified key does not exist.", headers=headers, Key=key)
        return obj

    # -- writing versions ---------------------------------------------------------------

    def _write_version(self, bucket: Bucket, key: str, blob: str | None, size: int, etag: str,
                       meta: dict[str, Any], delete_marker: bool = False, data: bytes | None = None) -> Obj:
        """Make a new current version of ``key`` (inside the caller's transaction)."""
        now = self.clock.now()
        version_id = new_version_id() if bucket.versioning == "Enabled" else "null"
        self.store.execute("UPDATE s3_objects SET latest=0 WHERE bucket_id=? AND key=? AND latest=1",
                           (bucket.id, key))
        if version_id == "null":
            old = self.store.one("DELETE FROM s3_objects WHERE bucket_id=? AND key=? AND version_id='null' "
                                 "RETURNING blob", (bucket.id, key))
            if old and old[0]:
                stale = old[0]
                self.store.after_commit(lambda: self.blobs.discard(stale))
        cur = self.store.execute(
            "INSERT INTO s3_objects(bucket_id, key, version_id, latest, delete_marker, size, etag, modified, blob, "
            "meta, data) VALUES(?,?,?,1,?,?,?,?,?,?,?)",
            (bucket.id, key, version_id, int(delete_marker), size, etag, now, blob, json.dumps(meta), data))
        return Obj(cur.lastrowid, bucket.id, key, version_id, True, delete_marker, size, etag, now, blob, meta, data)

    def _delete(self, bucket: Bucket, key: str, version_id: str | None) -> dict[str, Any]:
        """DeleteObject's effect and answer (inside the caller's transaction)."""
        if version_id is not None:
            obj = self._version(bucket, key, version_id)
            if obj is None:
                if version_id != "null" and len(version_id) < 8:
                    raise S3Error("InvalidArgument", "Invalid version id specified", ArgumentName="versionId",
                                       ArgumentValue=version_id)
                return {"VersionId": version_id}
            self._remove_version(obj)
            result: dict[str, Any] = {"VersionId": version_id, "_removed": obj}
            if obj.delete_marker:
                result["DeleteMarker"] = True
            return result
        if not bucket.versioned:
            obj = self._version(bucket, key, None)
            if obj is not None:
                self._remove_version(obj)
            return {"_removed": obj} if obj else {}
        marker = self._write_version(bucket, key, None, 0, "", {}, delete_marker=True)
        return {"DeleteMarker": True, "VersionId": marker.version_id, "_marker": marker}

    def _remove_version(self, obj: Obj) -> None:
        self.store.execute("DELETE FROM s3_objects WHERE id=?", (obj.id,))
        if obj.latest:
            self.store.execute(
                "UPDATE s3_objects SET latest=1 WHERE id=(SELECT id FROM s3_objects WHERE bucket_id=? AND key=? "
                "ORDER BY id DESC LIMIT 1)", (obj.bucket_id, obj.key))
        if obj.blob:
            blob = obj.blob
            self.store.after_commit(lambda: self.blobs.discard(blob))
