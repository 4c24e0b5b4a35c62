"""Multipart uploads: parts are stored as their own files; completing one joins
them (off the event loop) into the object's file and computes AWS's ``-N`` ETag
and the composite or full-object checksum."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import secrets
from typing import Any

from unkai.protocol import ServiceError
from unkai.services import RequestContext
from unkai.services.s3 import checksums
from unkai.services.s3.buckets import owner
from unkai.services.s3.objects import (GRANTS, check_key, copy_conditions, object_meta, parse_copy_source,
                                       parse_range, sse_fields)
from unkai.services.s3.sse import ENVELOPE, Reader, recrypt
from unkai.services.s3.state import Bucket, S3Error, invalid_argument, malformed_xml
from unkai.services.s3.storage import MAX_PUT, Received

MIN_PART = 5 * 1024 * 1024
MAX_PARTS = 10000


def no_such_upload(upload_id: str) -> ServiceError:
    return S3Error("NoSuchUpload", "The specified upload does not exist. The upload ID may be invalid, or the "
                        "upload may have been aborted or completed.", UploadId=upload_id)


class MultipartOps:
    """Mixed into the S3 service."""

    store: Any
    clock: Any
    blobs: Any

    def _upload(self, bucket: Bucket, key: str, upload_id: str) -> dict[str, Any]:
        row = self.store.one("SELECT meta FROM s3_uploads WHERE upload_id=? AND bucket_id=? AND key=?",
                             (upload_id, bucket.id, key))
        if row is None:
            raise no_such_upload(upload_id)
        return json.loads(row[0])

    def create_multipart_upload(self, ctx: RequestContext, params: dict) -> dict:
        bucket = self._bucket(params["Bucket"])
        key = params["Key"]
        check_key(key)
        self._acl_allowed(bucket, params.get("ACL"), any(params.get(g) for g in GRANTS))
        meta = object_meta(params)
        self.apply_lock_defaults(bucket, meta)  # type: ignore[attr-defined]
        self._encryption(ctx, bucket, params, meta)
        self._new_envelope(ctx, bucket.name, key, meta)  # the upload's data key, for its parts and object
        algorithm = params.get("ChecksumAlgorithm")
        if algorithm:
            if algorithm not in checksums.ALGORITHMS:
                raise checksums.invalid_algorithm(algorithm)
            kind = params.get("ChecksumType") or ("FULL_OBJECT" if algorithm == "CRC64NVME" else "COMPOSITE")
            if kind == "FULL_OBJECT" and algorithm in ("SHA1", "SHA256") or kind == "COMPOSITE" and \
                    algorithm == "CRC64NVME":
                raise S3Error("InvalidRequest", f"The {algorithm} checksum algorithm does not support the "
                                   f"{kind} checksum type.")
            meta["_algorithm"], meta["ChecksumType"] = algorithm, kind
        upload_id = secrets.token_urlsafe(48)
        self.store.execute("INSERT INTO s3_uploads(upload_id, bucket_id, key, initiated, meta) VALUES(?,?,?,?,?)",
                           (upload_id, bucket.id, key, self.clock.now(), json.dumps(meta)))
        result: dict[str, Any] = {"Bucket": bucket.name, "Key": key, "UploadId": upload_id, **sse_fields(meta)}
        if algorithm:
            result["ChecksumAlgorithm"], result["ChecksumType"] = algorithm, meta["ChecksumType"]
        return result

    def _check_part_number(self, number: int) -> None:
        if not 1 <= number <= MAX_PARTS:
            raise invalid_argument("Part number must be an integer between 1 and 10000, inclusive", "partNumber",
                                   str(number))

    async def upload_part(self, ctx: RequestContext, params: dict) -> dict:
        self._check_part_number(params["PartNumber"])
        with self.store.transaction():
            bucket = self._bucket(params["Bucket"])
            meta = self._upload(bucket, params["Key"], params["UploadId"])
        received = await self.blobs.receive(params["Body"], meta.get("_algorithm"),
                                            signer=ctx.request.state.get("chunk_signer"), inline=False,
                                            strict=self.config.verify_signatures)
        iv = await self._seal_part(ctx, meta, received)
        return dict(self._save_part(params, received, iv), **sse_fields(meta))

    async def _seal_part(self, ctx: RequestContext, meta: dict, received: Received) -> bytes | None:
        """Encrypt a part of an SSE-KMS upload with the upload's data key, from a counter of its own."""
        try:
            with self.store.transaction():
                opened = self._open_envelope(ctx, meta)
            if opened is None:
                return None
            iv = os.urandom(16)
            await self._seal((opened[0], iv), received)
        except BaseException:
            received.discard()
            raise
        return iv

    def _save_part(self, params: dict, received: Received, iv: bytes | None = None) -> dict:
        etag = f'"{received.md5}"'
        with self._adopted(received) as adopt:
            with self.store.transaction():
                bucket = self._bucket(params["Bucket"])
                self._upload(bucket, params["Key"], params["UploadId"])
                blob = adopt()
                old = self.store.one(
                    "INSERT INTO s3_parts(upload_id, part_number, size, etag, md5, modified, blob, checksum, iv) "
                    "VALUES(?,?,?,?,?,?,?,?,?) ON CONFLICT(upload_id, part_number) DO UPDATE SET "
                    "size=excluded.size, etag=excluded.etag, md5=excluded.md5, modified=excluded.modified, "
                    "blob=excluded.blob, checksum=excluded.checksum, iv=excluded.iv RETURNING (SELECT blob FROM "
                    "s3_parts WHERE upload_id=? AND part_number=?)",
                    (params["UploadId"], params["PartNumber"], received.size, etag, received.md5, self.clock.now(),
                     blob, json.dumps(received.checksum) if received.checksum else None, iv,
                     params["UploadId"], params["PartNumber"]))
                if old and old[0] and old[0] != blob:
                    stale = old[0]
                    self.store.after_commit(lambda: self.blobs.discard(stale))
        result: dict[str, Any] = {"ETag": etag}
        if received.checksum:
            result[f"Checksum{received.checksum[0]}"] = received.checksum[1]
        return result

    async def upload_part_copy(self, ctx: RequestContext, params: dict) -> dict:
        self._check_part_number(params["PartNumber"])
        src_bucket_name, src_key, src_version = parse_copy_source(params["CopySource"])
        with self.store.transaction():
            bucket = self._bucket(params["Bucket"])
            meta = self._upload(bucket, params["Key"], params["UploadId"])
            src = self._existing(self._bucket(src_bucket_name), src_key, src_version)
            copy_conditions(src, params)
            handle = self._reader(ctx, src)  # decrypted when the source is SSE-KMS
        start, end = 0, src.size - 1
        if params.get("CopySourceRange"):
            found = parse_range(params["CopySourceRange"], src.size)
            if found is None:
                handle.close()
                raise invalid_argument("The x-amz-copy-source-range value must be of the form bytes=first-last "
                                       "where first and last are the zero-based offsets of the first and last "
                                       "bytes to copy", "x-amz-copy-source-range", params["CopySourceRange"])
            start, end = found
        if end - start + 1 > MAX_PUT:
            handle.close()
            raise S3Error("InvalidRequest", "The specified copy source is larger than the maximum allowable "
                               "size for a copy source: 5368709120")
        received = await asyncio.to_thread(self._copy_range, handle, start, end - start + 1, meta.get("_algorithm"))
        iv = await self._seal_part(ctx, meta, received)
        result = self._save_part(params, received, iv)
        copy: dict[str, Any] = {"ETag": result.pop("ETag"), "LastModified": self.clock.now()}
        copy.update({k: v for k, v in result.items() if k.startswith("Checksum")})
        out: dict[str, Any] = {"CopyPartResult": copy, **sse_fields(meta)}
        if src_version:
            out["CopySourceVersionId"] = src.version_id
        return out

    def _copy_range(self, handle: Any, start: int, length: int, algorithm: str | None) -> Received:
        md5 = hashlib.md5()
        flexible = checksums.hasher(algorithm) if algorithm else None
        temp = self.blobs.temp_path()
        with handle, open(temp, "wb") as out:
            handle.seek(start)
            left = length
            while left > 0:
                chunk = handle.read(min(1024 * 1024, left))
                if not chunk:
                    break
                left -= len(chunk)
                out.write(chunk)
                md5.update(chunk)
                if flexible is not None:
                    flexible.update(chunk)
        checksum = (algorithm, checksums.b64(flexible.digest())) if flexible is not None else None
        return Received(temp, length - left, md5.hexdigest(), checksum)

    async def complete_multipart_upload(self, ctx: RequestContext, params: dict) -> dict:
        name, key, upload_id = params["Bucket"], params["Key"], params["UploadId"]
        wanted = (params.get("MultipartUpload") or {}).get("Parts") or []
        if not wanted:
            raise S3Error("MalformedXML", "The XML you provided was not well-formed or did not validate "
                               "against our published schema")
        with self.store.transaction():
            bucket = self._bucket(name)
            try:
                meta = self._upload(bucket, key, upload_id)
            except ServiceError:
                done = self._completed(bucket, key, upload_id)
                if done is not None:
                    return done
                raise
            stored = {n: (size, etag, md5, blob, checksum, iv) for n, size, etag, md5, blob, checksum, iv in
                      self.store.all("SELECT part_number, size, etag, md5, blob, checksum, iv FROM s3_parts "
                                     "WHERE upload_id=?", (upload_id,))}
            opened = self._open_envelope(ctx, meta)
        previous = 0
        chosen = []
        for part in wanted:
            number = part.get("PartNumber")
            if number is None:
                raise malformed_xml()
            if number <= previous:
                raise S3Error("InvalidPartOrder", "The list of parts was not in ascending order. Parts must "
                                   "be ordered by part number.", UploadId=upload_id)
            previous = number
            found = stored.get(number)
            if found is None or found[1].strip('"') != (part.get("ETag") or "").strip('"'):
                raise S3Error("InvalidPart", "One or more of the specified parts could not be found.  The "
                                   "part may not have been uploaded, or the specified entity tag may not have "
                                   "matched the part's entity tag.", UploadId=upload_id, PartNumber=str(number),
                                   ETag=part.get("ETag") or "")
            chosen.append(found)
        for i, found in enumerate(chosen[:-1]):
            if found[0] < MIN_PART:
                raise S3Error("EntityTooSmall", "Your proposed upload is smaller than the minimum allowed "
                              "size", ProposedSize=str(found[0]), MinSizeAllowed=str(MIN_PART),
                              PartNumber=str(wanted[i]["PartNumber"]), ETag=found[1])
        sealing = None
        if opened is None:
            temp = await self.blobs.concat([c[3] for c in chosen])
        else:  # each part decrypted from its own counter, the object encrypted from a new one
            sealing = (opened[0], os.urandom(16))
            meta[ENVELOPE] = dict(meta[ENVELOPE], iv=base64.b64encode(sealing[1]).decode())
            temp = self.blobs.temp_path()
            try:
                await asyncio.to_thread(recrypt, [(open(self.blobs.path(c[3]), "rb"), (opened[0], c[5]))
                                                  for c in chosen], temp, sealing)
            except BaseException:
                temp.unlink(missing_ok=True)
                raise
        size = sum(c[0] for c in chosen)
        received = Received(temp, size, "")
        algorithm = meta.pop("_algorithm", None)
        if algorithm:
            part_sums = [json.loads(c[4])[1] if c[4] else None for c in chosen]
            if meta.get("ChecksumType") == "FULL_OBJECT" or None in part_sums:
                value = await asyncio.to_thread(self._file_checksum, temp, algorithm, sealing)
                meta["ChecksumType"] = "FULL_OBJECT"
            else:
                value = checksums.composite(algorithm, part_sums)
            received.checksum = (algorithm, value)
            expected = params.get(f"Checksum{algorithm}")
            if expected and expected != value:
                temp.unlink(missing_ok=True)
                raise S3Error("BadDigest", f"The {algorithm} you specified did not match the calculated "
                                   "checksum.")
        etag = checksums.multipart_etag([c[2] for c in chosen])
        all_blobs = [b for (b,) in self.store.all("SELECT blob FROM s3_parts WHERE upload_id=?", (upload_id,))]

        def finish(bucket: Bucket) -> None:
            self._upload(bucket, key, upload_id)  # not aborted or completed meanwhile
            self.store.execute("DELETE FROM s3_uploads WHERE upload_id=?", (upload_id,))
            self.store.after_commit(lambda: [self.blobs.discard(b) for b in all_blobs])
        bucket, obj = self._store_received(ctx, name, key, received, meta, "ObjectCreated:CompleteMultipartUpload",
                                           params, parts=[c[0] for c in chosen], etag=etag, before_commit=finish,
                                           settled=True)
        result: dict[str, Any] = {"Location": f"{ctx.base_url}/{bucket.name}/{key}", "Bucket": bucket.name,
                                  "Key": key, "ETag": etag, **sse_fields(obj.meta)}
        if received.checksum:
            result[f"Checksum{received.checksum[0]}"] = received.checksum[1]
            result["ChecksumType"] = meta.get("ChecksumType")
        if bucket.versioned:
            result["VersionId"] = obj.version_id
        with self.store.transaction():
            self.store.execute("INSERT OR REPLACE INTO s3_completed_uploads(upload_id, bucket_id, key, result) "
                               "VALUES(?,?,?,?)", (upload_id, bucket.id, key, json.dumps(result)))
        return result

    def _completed(self, bucket: Bucket, key: str, upload_id: str) -> dict | None:
        """The answer of an upload already completed, while its object is still the current one
        (AWS answers a repeated CompleteMultipartUpload with the same result)."""
        row = self.store.one("SELECT result FROM s3_completed_uploads WHERE upload_id=? AND bucket_id=? AND key=?",
                             (upload_id, bucket.id, key))
        if row is None:
            return None
        result = json.loads(row[0])
        current = self.store.one("SELECT etag FROM s3_objects WHERE bucket_id=? AND key=? AND latest=1 AND "
                                 "delete_marker=0", (bucket.id, key))
        return result if current is not None and current[0] == result["ETag"] else None

    @staticmethod
    def _file_checksum(path: Any, algorithm: str, sealing: tuple[bytes, bytes] | None = None) -> str:
        h = checksums.hasher(algorithm)
        with (Reader(open(path, "rb"), *sealing) if sealing else open(path, "rb")) as f:
            while chunk := f.read(1024 * 1024):
                h.update(chunk)
        return checksums.b64(h.digest())

    def abort_multipart_upload(self, ctx: RequestContext, params: dict) -> dict:
        bucket = self._bucket(params["Bucket"])
        self._upload(bucket, params["Key"], params["UploadId"])
        blobs = [b for (b,) in self.store.all("SELECT blob FROM s3_parts WHERE upload_id=?", (params["UploadId"],))]
        self.store.execute("DELETE FROM s3_uploads WHERE upload_id=?", (params["UploadId"],))
        self.store.after_commit(lambda: [self.blobs.discard(b) for b in blobs])
        return {}

    def list_parts(self, ctx: RequestContext, params: dict) -> dict:
        bucket = self._bucket(params["Bucket"])
        meta = self._upload(bucket, params["Key"], params["UploadId"])
        marker = params.get("PartNumberMarker") or 0
        limit = min(params.get("MaxParts") or 1000, 1000)
        rows = self.store.all("SELECT part_number, size, etag, modified, checksum FROM s3_parts WHERE upload_id=? "
                              "AND part_number > ? ORDER BY part_number LIMIT ?",
                              (params["UploadId"], marker, limit + 1))
        parts = []
        for number, size, etag, modified, checksum in rows[:limit]:
            part: dict[str, Any] = {"PartNumber": number, "LastModified": modified, "ETag": etag, "Size": size}
            if checksum:
                algorithm, value = json.loads(checksum)
                part[f"Checksum{algorithm}"] = value
            parts.append(part)
        me = owner(bucket.account)
        result: dict[str, Any] = {
            "Bucket": bucket.name, "Key": params["Key"], "UploadId": params["UploadId"],
            "PartNumberMarker": marker, "MaxParts": limit, "IsTruncated": len(rows) > limit,
            "Parts": parts or None, "Initiator": me, "Owner": me,
            "StorageClass": meta.get("StorageClass") or "STANDARD",
        }
        if parts:
            result["NextPartNumberMarker"] = parts[-1]["PartNumber"]
        if meta.get("_algorithm"):
            result["ChecksumAlgorithm"], result["ChecksumType"] = meta["_algorithm"], meta.get("ChecksumType")
        return result

    def list_multipart_uploads(self, ctx: RequestContext, params: dict) -> dict:
        bucket = self._bucket(params["Bucket"])
        prefix = params.get("Prefix") or ""
        limit = min(params.get("MaxUploads") or 1000, 1000)
        key_marker, id_marker = params.get("KeyMarker") or "", params.get("UploadIdMarker") or ""
        rows = self.store.all(
            "SELECT upload_id, key, initiated, meta FROM s3_uploads WHERE bucket_id=? AND key >= ? "
            "AND (key > ? OR (key = ? AND upload_id > ?)) ORDER BY key, upload_id LIMIT ?",
            (bucket.id, prefix, key_marker, key_marker, id_marker if id_marker else "\uffff" if key_marker else "",
             limit + 1))
        rows = [r for r in rows if r[1].startswith(prefix)]
        me = owner(bucket.account)
        uploads = []
        for upload_id, key, initiated, meta_text in rows[:limit]:
            meta = json.loads(meta_text)
            item: dict[str, Any] = {"UploadId": upload_id, "Key": key, "Initiated": initiated, "Owner": me,
                                    "Initiator": me, "StorageClass": meta.get("StorageClass") or "STANDARD"}
            if meta.get("_algorithm"):
                item["ChecksumAlgorithm"] = meta["_algorithm"]
            uploads.append(item)
        result: dict[str, Any] = {"Bucket": bucket.name, "KeyMarker": key_marker, "UploadIdMarker": id_marker,
                                  "MaxUploads": limit, "IsTruncated": len(rows) > limit, "Uploads": uploads or None,
                                  "Prefix": prefix or None}
        if len(rows) > limit:
            result["NextKeyMarker"], result["NextUploadIdMarker"] = uploads[-1]["Key"], uploads[-1]["UploadId"]
        return result

