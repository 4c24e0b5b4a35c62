"""Object operations: put, get, head, copy, delete (one and many), tagging, ACLs
and attributes, with ranges, conditional requests and checksums as S3 answers them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, unquote

from unkai.http import Response
from unkai.protocol import ServiceError
from unkai.services import RequestContext
from unkai.services.s3.buckets import check_tags
from unkai.services.s3.state import Bucket, Obj, S3Error, invalid_argument, malformed_xml
from unkai.services.s3.sse import ENVELOPE, recrypt
from unkai.services.s3.storage import INLINE, Received

CONTENT_FIELDS = ("ContentType", "ContentEncoding", "ContentDisposition", "ContentLanguage", "CacheControl",
                  "Expires", "WebsiteRedirectLocation")
def sse_fields(meta: dict) -> dict[str, Any]:
    """How an object is encrypted, as every write and read answers it."""
    out: dict[str, Any] = {"ServerSideEncryption": meta.get("ServerSideEncryption") or "AES256"}
    if meta.get("SSEKMSKeyId"):
        out["SSEKMSKeyId"] = meta["SSEKMSKeyId"]
    if meta.get("BucketKeyEnabled"):
        out["BucketKeyEnabled"] = True
    return out


STORED_FIELDS = CONTENT_FIELDS + ("StorageClass", "ServerSideEncryption", "SSEKMSKeyId", "ObjectLockMode",
                                  "ObjectLockRetainUntilDate", "ObjectLockLegalHoldStatus")
OVERRIDES = {"ResponseContentType": "ContentType", "ResponseContentDisposition": "ContentDisposition",
             "ResponseContentEncoding": "ContentEncoding", "ResponseContentLanguage": "ContentLanguage",
             "ResponseCacheControl": "CacheControl", "ResponseExpires": "Expires"}
GRANTS = ("GrantFullControl", "GrantRead", "GrantReadACP", "GrantWrite", "GrantWriteACP")
STORAGE_CLASSES = ("STANDARD", "REDUCED_REDUNDANCY", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING",
                   "GLACIER", "DEEP_ARCHIVE", "OUTPOSTS", "GLACIER_IR", "SNOW", "EXPRESS_ONEZONE")
MAX_METADATA = 2048
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_HEADER_UNSAFE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]|[^\x00-\xff]")
_QUERY_NAMES = {"ResponseContentType": "response-content-type", "ResponseContentDisposition":
                "response-content-disposition", "ResponseContentEncoding": "response-content-encoding",
                "ResponseContentLanguage": "response-content-language", "ResponseCacheControl":
                "response-cache-control", "ResponseExpires": "response-expires"}


def precondition_failed(condition: str) -> ServiceError:
    return S3Error("PreconditionFailed", "At least one of the pre-conditions you specified did not hold",
                        status=412, Condition=condition)


def etag_matches(header: str, etag: str) -> bool:
    bare = etag.strip('"')
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/").strip('"') == bare:
            return True
    return False


def check_key(key: str) -> None:
    size = len(key.encode("utf-8", "surrogatepass"))
    if size > 1024:
        raise S3Error("KeyTooLongError", "Your key is too long", Size=str(size), MaxSizeAllowed="1024")


def parse_range(text: str, size: int) -> tuple[int, int] | None:
    """The inclusive byte range a Range header asks for; None means the whole object."""
    m = _RANGE.match(text.strip())
    if m is None or (not m[1] and not m[2]):
        return None
    if m[1]:
        start = int(m[1])
        end = int(m[2]) if m[2] else size - 1
        if m[2] and end < start:
            return None
        if start >= size:
            raise _unsatisfiable(text, size)
        return start, min(end, size - 1)
    suffix = int(m[2])
    if suffix == 0 or size == 0:
        raise _unsatisfiable(text, size)
    return max(0, size - suffix), size - 1


def _unsatisfiable(text: str, size: int) -> ServiceError:
    return S3Error("InvalidRange", "The requested range is not satisfiable", status=416,
                        RangeRequested=text, ActualObjectSize=str(size))


def parse_copy_source(source: str) -> tuple[str, str, str | None]:
    version = None
    if "?versionId=" in source:
        source, version = source.rsplit("?versionId=", 1)
    source = unquote(source).lstrip("/")
    bucket, _, key = source.partition("/")
    if not bucket or not key:
        raise invalid_argument("Invalid copy source object key", "x-amz-copy-source", source)
    return bucket, key, version


def object_meta(params: dict) -> dict[str, Any]:
    """What an object keeps from the request that wrote it."""
    meta = {k: params[k] for k in STORED_FIELDS if params.get(k) is not None}
    encoding = meta.get("ContentEncoding")
    if encoding is not None:  # the transfer encoding of a chunked upload is not the object's
        parts = [p.strip() for p in encoding.split(",") if p.strip() and p.strip() != "aws-chunked"]
        if parts:
            meta["ContentEncoding"] = ",".join(parts)
        else:
            del meta["ContentEncoding"]
    if meta.get("StorageClass") and meta["StorageClass"] not in STORAGE_CLASSES:
        raise S3Error("InvalidStorageClass", "The storage class you specified is not valid",
                           StorageClassRequested=meta["StorageClass"])
    if meta.get("StorageClass") == "STANDARD":
        del meta["StorageClass"]
    metadata = params.get("Metadata") or {}
    size = sum(len(k) + len(v) for k, v in metadata.items())
    if size > MAX_METADATA:
        raise S3Error("MetadataTooLarge", "Your metadata headers exceed the maximum allowed metadata size",
                           Size=str(size), MaxSizeAllowed=str(MAX_METADATA))
    if metadata:
        meta["Metadata"] = {k.lower(): v for k, v in metadata.items()}
    if params.get("Tagging"):
        tags = parse_qsl(params["Tagging"], keep_blank_values=True)
        meta["Tags"] = check_tags([{"Key": k, "Value": v} for k, v in tags], 10)
    if params.get("ACL"):
        meta["ACL"] = params["ACL"]
    return meta


class ObjectOps:
    """Mixed into the S3 service."""

    store: Any
    clock: Any
    blobs: Any

    # -- writing ----------------------------------------------------------------------

    async def put_object(self, ctx: RequestContext, params: dict) -> dict:
        name, key = params["Bucket"], params["Key"]
        check_key(key)
        meta = object_meta(params)
        with self.store.transaction():
            bucket = self._bucket(name)
            self._acl_allowed(bucket, params.get("ACL"), any(params.get(g) for g in GRANTS))
            self._encryption(ctx, bucket, params, meta)  # settled before the body is read, as S3 does
            sealing = self._new_envelope(ctx, name, key, meta)
        # AWS computes a CRC64NVME for every new object whose upload names no checksum
        received = await self.blobs.receive(params["Body"], params.get("ChecksumAlgorithm") or "CRC64NVME",
                                            signer=ctx.request.state.get("chunk_signer"),
                                            strict=self.config.verify_signatures)
        try:
            await self._seal(sealing, received)
        except BaseException:
            received.discard()
            raise
        bucket, obj = self._store_received(ctx, name, key, received, meta, "ObjectCreated:Put", params,
                                           settled=True)
        return self._write_result(bucket, obj)

    def _store_received(self, ctx: RequestContext, name: str, key: str, received: Received, meta: dict,
                        event: str, conditions: dict, parts: list[int] | None = None,
                        etag: str | None = None, before_commit: Any = None,
                        settled: bool = False) -> tuple[Bucket, Obj]:
        """Commit a received body as the key's new version: the file moves into place and the
        metadata and its event notifications commit together, before the client hears back.
        ``settled``: the caller already decided (and applied) the object's encryption."""
        if received.checksum:
            algorithm, value = received.checksum
            meta["Checksum"] = {algorithm: value}
            meta.setdefault("ChecksumType", "FULL_OBJECT")
        if parts:
            meta["Parts"] = parts
        with self._adopted(received) as adopt:
            with self.store.transaction():
                bucket = self._bucket(name)
                self._check_write_conditions(bucket, key, conditions)
                if not event.endswith("CompleteMultipartUpload"):
                    self.apply_lock_defaults(bucket, meta)  # type: ignore[attr-defined]
                if not settled:
                    self._encryption(ctx, bucket, conditions, meta)
                    self._seal_now(self._new_envelope(ctx, name, key, meta), received)
                if before_commit is not None:
                    before_commit(bucket)
                obj = self._write_version(bucket, key, adopt(), received.size, etag or f'"{received.md5}"', meta,
                                          data=received.data)
                self.emit(ctx, bucket, event, obj)
        return bucket, obj

    @contextlib.contextmanager
    def _adopted(self, received: Received) -> Iterator[Any]:
        adopted: list[str] = []

        def adopt() -> str | None:
            if received.temp is None:  # kept in the row
                return None
            adopted.append(self.blobs.adopt(received.temp))
            return adopted[-1]
        try:
            yield adopt
        except BaseException:
            received.discard()
            for blob in adopted:
                self.blobs.discard(blob)
            raise

    def _check_write_conditions(self, bucket: Bucket, key: str, params: dict) -> None:
        if_none, if_match = params.get("IfNoneMatch"), params.get("IfMatch")
        if if_none is None and if_match is None:
            return
        current = self._version(bucket, key, None)
        if current is not None and current.delete_marker:
            current = None
        if if_none is not None:
            if if_none.strip() != "*":
                raise S3Error("NotImplemented", "A header you provided implies functionality that is not "
                                   "implemented", status=501, Header="If-None-Match")
            if current is not None:
                raise precondition_failed("If-None-Match")
        if if_match is not None:
            if current is None:
                raise S3Error("NoSuchKey", "The specified key does not exist.", Key=key)
            if not etag_matches(if_match, current.etag):
                raise precondition_failed("If-Match")

    def _encryption(self, ctx: RequestContext, bucket: Bucket, params: dict, meta: dict) -> None:
        """The object's server-side encryption, from the request or the bucket's default
        (SSE-S3 unless told otherwise), with an SSE-KMS key resolved to its ARN through KMS
        (``alias/aws/s3`` when none is named), as S3 records and reports it."""
        from unkai.services.s3.buckets import DEFAULT_ENCRYPTION

        algorithm, key_ref = params.get("ServerSideEncryption"), params.get("SSEKMSKeyId")
        bucket_key = params.get("BucketKeyEnabled")
        if algorithm is None:
            if key_ref:
                raise invalid_argument("Server Side Encryption with AWS KMS managed key requires HTTP header "
                                       "x-amz-server-side-encryption : aws:kms", "x-amz-server-side-encryption",
                                       "null")
            rule = ((bucket.config.get("Encryption") or DEFAULT_ENCRYPTION).get("Rules") or [{}])[0]
            default = rule.get("ApplyServerSideEncryptionByDefault") or {}
            algorithm, key_ref = default.get("SSEAlgorithm") or "AES256", default.get("KMSMasterKeyID")
            bucket_key = rule.get("BucketKeyEnabled") if bucket_key is None else bucket_key
        meta["ServerSideEncryption"] = algorithm
        meta.pop("SSEKMSKeyId", None)
        meta.pop("BucketKeyEnabled", None)
        if not str(algorithm).startswith("aws:kms"):
            return
        kms = self.cloud.services.get("kms")
        key = kms.find_key(ctx.account, bucket.region, key_ref or "alias/aws/s3") if kms is not None else None
        if key is None:
            raise S3Error("KMS.NotFoundException", f"Invalid keyId {key_ref}")
        meta["SSEKMSKeyId"] = key.arn
        if bucket_key:
            meta["BucketKeyEnabled"] = True

    def _write_result(self, bucket: Bucket, obj: Obj) -> dict:
        result: dict[str, Any] = {"ETag": obj.etag, **sse_fields(obj.meta)}
        result.update(_checksum_fields(obj))
        if bucket.versioned:
            result["VersionId"] = obj.version_id
        return result

    async def copy_object(self, ctx: RequestContext, params: dict) -> dict:
        with self.store.transaction():
            bucket, src, meta, src_handle, sealing = self._copy_plan(ctx, params)
            src_versioned = self._bucket(parse_copy_source(params["CopySource"])[0]).versioned
            if src_handle is None:  # the same bytes: a hard link to the source's file
                received = Received(None if src.data is not None else self.blobs.link_copy(src.blob), src.size,
                                    src.etag.strip('"'), data=src.data)
        if src_handle is not None:  # the bytes change: decrypted from the source, encrypted for the copy
            temp = self.blobs.temp_path()
            try:
                await asyncio.to_thread(recrypt, [(src_handle, None)], temp, sealing)
            except BaseException:
                temp.unlink(missing_ok=True)
                raise
            received = Received(temp, src.size, src.etag.strip('"'))
            if src.size <= INLINE:
                received = Received(None, src.size, src.etag.strip('"'), data=temp.read_bytes())
                temp.unlink(missing_ok=True)
        with self._adopted(received) as adopt:
            with self.store.transaction():
                bucket = self._bucket(params["Bucket"])
                obj = self._write_version(bucket, params["Key"], adopt(), src.size, src.etag, meta,
                                          data=received.data)
                self.emit(ctx, bucket, "ObjectCreated:Copy", obj)
        copy_result: dict[str, Any] = {"ETag": obj.etag, "LastModified": obj.modified}
        copy_result.update(_checksum_fields(obj))
        copy_result.pop("ChecksumType", None)
        result: dict[str, Any] = {"CopyObjectResult": copy_result, **sse_fields(obj.meta)}
        if src_versioned:
            result["CopySourceVersionId"] = src.version_id
        if bucket.versioned:
            result["VersionId"] = obj.version_id
        return result

    def _copy_plan(self, ctx: RequestContext, params: dict) -> tuple[Bucket, Obj, dict, Any, Any]:
        """What a copy writes: the target bucket, the source version, the copy's metadata and,
        when either side is SSE-KMS, an open decrypting reader of the source and the copy's
        ``(data_key, iv)``."""
        src_bucket_name, src_key, src_version = parse_copy_source(params["CopySource"])
        bucket = self._bucket(params["Bucket"])
        key = params["Key"]
        check_key(key)
        src_bucket = self._bucket(src_bucket_name)
        src = self._existing(src_bucket, src_key, src_version)
        copy_conditions(src, params)
        if src.size > 5 * 1024 ** 3:
            raise S3Error("InvalidRequest", "The specified copy source is larger than the maximum allowable "
                               "size for a copy source: 5368709120")
        directive = params.get("MetadataDirective") or "COPY"
        if directive not in ("COPY", "REPLACE"):
            raise invalid_argument("Unknown metadata directive.", "x-amz-metadata-directive", directive)
        if directive == "REPLACE":
            meta = object_meta(params)
        else:
            meta = {k: v for k, v in src.meta.items() if k in CONTENT_FIELDS or k in ("Metadata", "Checksum",
                                                                                     "ChecksumType")}
            extra = object_meta({k: params[k] for k in STORED_FIELDS if k in params and k not in CONTENT_FIELDS})
            meta.update(extra)
        if (params.get("TaggingDirective") or "COPY") == "COPY":
            meta.pop("Tags", None)
            if src.tags:
                meta["Tags"] = dict(src.tags)
        elif params.get("Tagging"):
            meta["Tags"] = object_meta({"Tagging": params["Tagging"]})["Tags"]
        if (src_bucket.id == bucket.id and src_key == key and directive == "COPY" and src_version is None
                and not any(params.get(k) for k in ("StorageClass", "WebsiteRedirectLocation",
                                                     "ServerSideEncryption", "SSEKMSKeyId"))):
            raise S3Error("InvalidRequest", "This copy request is illegal because it is trying to copy an "
                               "object to itself without changing the object's metadata, storage class, website "
                               "redirect location or encryption attributes.")
        meta.pop("ServerSideEncryption", None)
        self._encryption(ctx, bucket, params, meta)  # a copy is encrypted as its request or bucket says
        sealing = self._new_envelope(ctx, bucket.name, key, meta)
        if sealing is None and ENVELOPE not in src.meta:
            return bucket, src, meta, None, None
        return bucket, src, meta, self._reader(ctx, src), sealing

    def delete_object(self, ctx: RequestContext, params: dict) -> dict:
        bucket = self._bucket(params["Bucket"])
        self.check_lock(bucket, params["Key"], params.get("VersionId"),  # type: ignore[attr-defined]
                        bool(params.get("BypassGovernanceRetention")))
        if params.get("IfMatch") is not None:  # a conditional delete: 404 when absent, 412 when changed
            current = self._existing(bucket, params["Key"], params.get("VersionId"))
            if not etag_matches(params["IfMatch"], current.etag):
                raise precondition_failed("If-Match")
        result = self._delete(bucket, params["Key"], params.get("VersionId"))
        self._emit_delete(ctx, bucket, result)
        return {k: v for k, v in result.items() if not k.startswith("_")}

    def _emit_delete(self, ctx: RequestContext, bucket: Bucket, result: dict) -> None:
        if result.get("_marker") is not None:
            self.emit(ctx, bucket, "ObjectRemoved:DeleteMarkerCreated", result["_marker"])
        elif result.get("_removed") is not None:
            self.emit(ctx, bucket, "ObjectRemoved:Delete", result["_removed"])

    def delete_objects(self, ctx: RequestContext, params: dict) -> dict:
        bucket = self._bucket(params["Bucket"])
        request = params["Delete"]
        entries = request.get("Objects") or []
        if not entries or len(entries) > 1000:
            raise malformed_xml()
        deleted, errors = [], []
        for entry in entries:
            key, version = entry["Key"], entry.get("VersionId")
            try:
                with self.store.transaction():
                    self.check_lock(bucket, key, version,  # type: ignore[attr-defined]
                                    bool(params.get("BypassGovernanceRetention")))
                    result = self._delete(bucket, key, version)
                    self._emit_delete(ctx, bucket, result)
            except ServiceError as exc:
                errors.append({"Key": key, "VersionId": version, "Code": exc.code, "Message": exc.message})
                continue
            if request.get("Quiet"):
                continue
            item: dict[str, Any] = {"Key": key}
            if version is not None:
                item["VersionId"] = version
            if result.get("DeleteMarker"):
                item["DeleteMarker"] = True
                item["DeleteMarkerVersionId"] = result["VersionId"]
            deleted.append(item)
        return {"Deleted": deleted or None, "Errors": errors or None}

    # -- reading ----------------------------------------------------------------------

    def get_object(self, ctx: RequestContext, params: dict) -> Response:
        return self._read(ctx, params, head=False)

    def object_bytes(self, bucket: str, key: str, version_id: str | None = None) -> bytes:
        """An object's content, in-process (Lambda reads deployment packages with it);
        raises the ServiceError S3 would answer (NoSuchBucket, NoSuchKey...)."""
        obj = self._existing(self._bucket(bucket), key, version_id)
        if ENVELOPE in obj.meta and obj.size:  # sealed at rest: decrypted with its data key
            with self._reader(None, obj) as reader:
                return reader.read()
        if obj.data is not None:
            return bytes(obj.data)
        return self.blobs.read_all(obj.blob, 0, obj.size) if obj.size else b""

    def object_files(self, bucket: str, prefix: str = "") -> list[tuple[str, Any]]:
        """The current objects under ``prefix``, in key order, each as ``(key, source)``:
        the ``Path`` of its file or, for a small object kept in its row, its ``bytes``.
        In-process readers that scan many objects (Athena) read the files in place."""
        from unkai.services.s3.state import OBJ_COLUMNS, obj_from_row

        b = self._bucket(bucket)
        rows = self.store.all(f"SELECT {OBJ_COLUMNS} FROM s3_objects WHERE bucket_id=? AND latest=1 AND "
                              "delete_marker=0 AND key>=? ORDER BY key", (b.id, prefix))
        out: list[tuple[str, Any]] = []
        for row in rows:
            obj = obj_from_row(row)
            if not obj.key.startswith(prefix):
                break
            if ENVELOPE in obj.meta:  # sealed at rest: its plaintext, from KMS's data key
                out.append((obj.key, self.object_bytes(bucket, obj.key, obj.version_id)))
            elif obj.data is not None or not obj.size:
                out.append((obj.key, bytes(obj.data or b"")))
            else:
                out.append((obj.key, self.blobs.path(obj.blob)))
        return out

    def put_object_bytes(self, bucket: str, key: str, data: bytes, content_type: str = "binary/octet-stream",
                         region: str | None = None, principal: str = "") -> dict:
        """Write an object in-process, exactly as a PutObject would (a new version, its
        ``ObjectCreated:Put`` notifications committed with it): Firehose delivers with it.
        ``principal`` is the notification's caller (e.g. ``firehose.amazonaws.com``).
        Raises the ServiceError S3 would answer (NoSuchBucket...)."""
        import hashlib

        from unkai.http import Headers, Request
        from unkai.ids import uuid4
        from unkai.services.s3.storage import INLINE

        check_key(key)
        md5 = hashlib.md5(data).hexdigest()
        if len(data) <= INLINE:
            received = Received(None, len(data), md5, data=bytes(data))
        else:
            temp = self.blobs.temp_path()
            temp.write_bytes(data)
            received = Received(temp, len(data), md5)
        ctx = RequestContext(service="s3", operation="PutObject", region=region or self.config.region,
                             account=self.config.account_id, request_id=uuid4(),
                             request=Request("PUT", f"/{bucket}/{key}", headers=Headers.from_dict({})),
                             protocol="internal", access_key=principal)
        bucket_row, obj = self._store_received(ctx, bucket, key, received, {"ContentType": content_type},
                                               "ObjectCreated:Put", {})
        return self._write_result(bucket_row, obj)

    def head_object(self, ctx: RequestContext, params: dict) -> Response:
        return self._read(ctx, params, head=True)

    def _read(self, ctx: RequestContext, params: dict, head: bool) -> Response:
        bucket = self._bucket(params["Bucket"])
        obj = self._existing(bucket, params["Key"], params.get("VersionId"), head)
        headers = self._object_headers(bucket, obj, params.get("ChecksumMode") == "ENABLED")
        if _not_modified(obj, params):
            keep = {k: headers[k] for k in ("ETag", "LastModified", "VersionId") if k in headers}
            return self._serialize(ctx, keep, status=304)
        start, end, status = 0, obj.size - 1, 200
        part = params.get("PartNumber")
        if part is not None:
            sizes = obj.meta.get("Parts") or [obj.size]
            if not 1 <= part <= len(sizes):
                raise S3Error("InvalidPartNumber", "The requested partnumber is not satisfiable", status=416,
                                   PartNumberRequested=str(part), ActualPartCount=str(len(sizes)))
            start = sum(sizes[: part - 1])
            end = start + sizes[part - 1] - 1
            headers["PartsCount"] = len(sizes)
            if len(sizes) > 1:
                status = 206
                headers["ContentRange"] = f"bytes {start}-{end}/{obj.size}"
        elif params.get("Range"):
            found = parse_range(params["Range"], obj.size)
            if found is not None:
                start, end = found
                status = 206
                headers["ContentRange"] = f"bytes {start}-{end}/{obj.size}"
        length = max(0, end - start + 1)
        headers["ContentLength"] = length
        if status == 206:  # a whole-object checksum says nothing about a range
            for name in [k for k in headers if k.startswith("Checksum")]:
                del headers[name]
        for param, field in OVERRIDES.items():
            if params.get(param) is not None:
                value = str(params[param])
                if _HEADER_UNSAFE.search(value):  # a CR/LF would split the response; say so instead
                    raise invalid_argument(f"Header value contains invalid characters: {value!r}",
                                           _QUERY_NAMES.get(param, param), value)
                headers[field] = value
        if not head and length:
            headers["Body"] = self._plain_body(ctx, obj, start, length)
        return self._serialize(ctx, headers, status=status)

    def _object_headers(self, bucket: Bucket, obj: Obj, with_checksum: bool) -> dict[str, Any]:
        meta = obj.meta
        out: dict[str, Any] = {"ETag": obj.etag, "LastModified": int(obj.modified), "ContentLength": obj.size,
                               "ContentType": meta.get("ContentType") or "binary/octet-stream",
                               "AcceptRanges": "bytes", **sse_fields(meta)}
        for name in CONTENT_FIELDS[1:] + ("StorageClass", "Restore", "ObjectLockMode", "ObjectLockRetainUntilDate",
                                          "ObjectLockLegalHoldStatus"):
            if meta.get(name) is not None:
                out[name] = meta[name]
        if meta.get("Metadata"):
            out["Metadata"] = meta["Metadata"]
        if bucket.versioned:
            out["VersionId"] = obj.version_id
        if obj.tags:
            out["TagCount"] = len(obj.tags)
        if with_checksum:
            out.update(_checksum_fields(obj))
        return out

    def get_object_attributes(self, ctx: RequestContext, params: dict) -> dict:
        bucket = self._bucket(params["Bucket"])
        obj = self._existing(bucket, params["Key"], params.get("VersionId"))
        wanted = set(params.get("ObjectAttributes") or [])
        result: dict[str, Any] = {"LastModified": int(obj.modified)}
        if bucket.versioned:
            result["VersionId"] = obj.version_id
        if "ETag" in wanted:
            result["ETag"] = obj.etag.strip('"')
        if "ObjectSize" in wanted:
            result["ObjectSize"] = obj.size
        if "StorageClass" in wanted:
            result["StorageClass"] = obj.meta.get("StorageClass") or "STANDARD"
        if "Checksum" in wanted and obj.meta.get("Checksum"):
            fields = _checksum_fields(obj)
            result["Checksum"] = fields
        if "ObjectParts" in wanted and obj.meta.get("Parts"):
            result["ObjectParts"] = {"TotalPartsCount": len(obj.meta["Parts"])}
        return result

    # -- tagging and ACLs ---------------------------------------------------------------

    def _tagged_version(self, params: dict) -> tuple[Bucket, Obj]:
        bucket = self._bucket(params["Bucket"])
        return bucket, self._existing(bucket, params["Key"], params.get("VersionId"))

    def _set_meta(self, obj: Obj) -> None:
        self.store.execute("UPDATE s3_objects SET meta=? WHERE id=?", (json.dumps(obj.meta), obj.id))

    def put_object_tagging(self, ctx: RequestContext, params: dict) -> dict:
        bucket, obj = self._tagged_version(params)
        obj.meta["Tags"] = check_tags(params["Tagging"].get("TagSet") or [], 10)
        self._set_meta(obj)
        self.emit(ctx, bucket, "ObjectTagging:Put", obj)
        return {"VersionId": obj.version_id} if bucket.versioned else {}

    def get_object_tagging(self, ctx: RequestContext, params: dict) -> dict:
        bucket, obj = self._tagged_version(params)
        result: dict[str, Any] = {"TagSet": [{"Key": k, "Value": v} for k, v in obj.tags.items()]}
        if bucket.versioned:
            result["VersionId"] = obj.version_id
        return result

    def delete_object_tagging(self, ctx: RequestContext, params: dict) -> dict:
        bucket, obj = self._tagged_version(params)
        obj.meta.pop("Tags", None)
        self._set_meta(obj)
        self.emit(ctx, bucket, "ObjectTagging:Delete", obj)
        return {"VersionId": obj.version_id} if bucket.versioned else {}

    def get_object_acl(self, ctx: RequestContext, params: dict) -> dict:
        bucket, obj = self._tagged_version(params)
        return self._acl(bucket.account, obj.meta.get("ACL"))

    def put_object_acl(self, ctx: RequestContext, params: dict) -> dict:
        bucket, obj = self._tagged_version(params)
        self._acl_allowed(bucket, params.get("ACL"), "AccessControlPolicy" in params
                          or any(params.get(g) for g in GRANTS))
        obj.meta["ACL"] = params.get("ACL") or "private"
        self._set_meta(obj)
        return {}


def _checksum_fields(obj: Obj) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for algorithm, value in (obj.meta.get("Checksum") or {}).items():
        out[f"Checksum{algorithm}"] = value
    if out:
        out["ChecksumType"] = obj.meta.get("ChecksumType") or "FULL_OBJECT"
    return out


def _not_modified(obj: Obj, params: dict) -> bool:
    """Evaluate the conditional headers: raise 412, or say whether to answer 304."""
    modified = int(obj.modified)
    if params.get("IfMatch") is not None:
        if not etag_matches(params["IfMatch"], obj.etag):
            raise precondition_failed("If-Match")
    elif params.get("IfUnmodifiedSince") is not None and modified > params["IfUnmodifiedSince"]:
        raise precondition_failed("If-Unmodified-Since")
    if params.get("IfNoneMatch") is not None:
        return etag_matches(params["IfNoneMatch"], obj.etag)
    return params.get("IfModifiedSince") is not None and modified <= params["IfModifiedSince"]


def copy_conditions(src: Obj, params: dict) -> None:
    modified = int(src.modified)
    if params.get("CopySourceIfMatch") is not None:
        if not etag_matches(params["CopySourceIfMatch"], src.etag):
            raise precondition_failed("x-amz-copy-source-If-Match")
    elif params.get("CopySourceIfUnmodifiedSince") is not None and modified > params["CopySourceIfUnmodifiedSince"]:
        raise precondition_failed("x-amz-copy-source-If-Unmodified-Since")
    if params.get("CopySourceIfNoneMatch") is not None:
        if etag_matches(params["CopySourceIfNoneMatch"], src.etag):
            raise precondition_failed("x-amz-copy-source-If-None-Match")
    elif params.get("CopySourceIfModifiedSince") is not None and modified <= params["CopySourceIfModifiedSince"]:
        raise precondition_failed("x-amz-copy-source-If-Modified-Since")

