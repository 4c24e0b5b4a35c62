"""S3's tables and the rows it reads back: buckets and object versions.

Buckets are global by name, as on AWS. Every object write is a new row (a
version); ``latest`` marks the current one per key, so the same table serves
unversioned, versioned and suspended buckets and listing reads one index.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from unkai.protocol import ServiceError

MIGRATIONS = [
    """
    CREATE TABLE s3_buckets (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        account TEXT NOT NULL,
        region TEXT NOT NULL,
        created REAL NOT NULL,
        versioning TEXT,
        config TEXT NOT NULL DEFAULT '{}'
    );
    CREATE TABLE s3_objects (
        id INTEGER PRIMARY KEY,
        bucket_id INTEGER NOT NULL REFERENCES s3_buckets(id) ON DELETE CASCADE,
        key TEXT NOT NULL,
        version_id TEXT NOT NULL,
        latest INTEGER NOT NULL,
        delete_marker INTEGER NOT NULL DEFAULT 0,
        size INTEGER NOT NULL DEFAULT 0,
        etag TEXT NOT NULL DEFAULT '',
        modified REAL NOT NULL,
        blob TEXT,
        meta TEXT NOT NULL DEFAULT '{}'
    );
    CREATE UNIQUE INDEX s3_objects_version ON s3_objects(bucket_id, key, version_id);
    CREATE INDEX s3_objects_history ON s3_objects(bucket_id, key, id);
    CREATE INDEX s3_objects_current ON s3_objects(bucket_id, key) WHERE latest=1 AND delete_marker=0;
    CREATE TABLE s3_uploads (
        upload_id TEXT PRIMARY KEY,
        bucket_id INTEGER NOT NULL REFERENCES s3_buckets(id) ON DELETE CASCADE,
        key TEXT NOT NULL,
        initiated REAL NOT NULL,
        meta TEXT NOT NULL
    );
    CREATE INDEX s3_uploads_key ON s3_uploads(bucket_id, key, initiated);
    CREATE TABLE s3_parts (
        upload_id TEXT NOT NULL REFERENCES s3_uploads(upload_id) ON DELETE CASCADE,
        part_number INTEGER NOT NULL,
        size INTEGER NOT NULL,
        etag TEXT NOT NULL,
        md5 TEXT NOT NULL,
        modified REAL NOT NULL,
        blob TEXT NOT NULL,
        checksum TEXT,
        PRIMARY KEY (upload_id, part_number)
    );
    """,
    "ALTER TABLE s3_objects ADD COLUMN data BLOB",  # small objects' bytes, kept in the row
    # completed multipart uploads' answers: AWS answers a repeated CompleteMultipartUpload with the same result
    "CREATE TABLE s3_completed_uploads (upload_id TEXT PRIMARY KEY, bucket_id INTEGER NOT NULL, key TEXT NOT NULL, "
    "result TEXT NOT NULL)",
    "ALTER TABLE s3_parts ADD COLUMN iv BLOB",  # where an SSE-KMS upload's part starts its counter (sse.py)
]

BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
IP_LIKE = re.compile(r"^\d+\.\d+\.\d+\.\d+$")


def valid_bucket_name(name: str) -> bool:
    return bool(BUCKET_NAME.match(name)) and ".." not in name and not IP_LIKE.match(name) \
        and ".-" not in name and "-." not in name and not name.startswith(("xn--", "sthree-", "amzn-s3-demo-")) \
        and not name.endswith(("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"))


def new_version_id() -> str:
    return secrets.token_urlsafe(24).replace("-", ".")


@dataclass
class Bucket:
    id: int
    name: str
    account: str
    region: str
    created: float
    versioning: str | None
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def arn(self) -> str:
        return f"arn:aws:s3:::{self.name}"

    @property
    def versioned(self) -> bool:
        """Whether objects get version ids (versioning has ever been turned on)."""
        return self.versioning is not None


@dataclass
class Obj:
    id: int
    bucket_id: int
    key: str
    version_id: str
    latest: bool
    delete_marker: bool
    size: int
    etag: str
    modified: float
    blob: str | None
    meta: dict[str, Any]
    data: bytes | None = None

    @property
    def tags(self) -> dict[str, str]:
        return self.meta.get("Tags") or {}


OBJ_COLUMNS = "id, bucket_id, key, version_id, latest, delete_marker, size, etag, modified, blob, meta, data"


def obj_from_row(row: tuple) -> Obj:
    return Obj(row[0], row[1], row[2], row[3], bool(row[4]), bool(row[5]), row[6], row[7], row[8], row[9],
               json.loads(row[10]), row[11])


_STATUS = {
    403: ("AccessDenied", "AccessForbidden", "AllAccessDisabled"),
    404: ("NoSuchBucket", "NoSuchKey", "NoSuchUpload", "NoSuchVersion", "NoSuchTagSet", "NoSuchBucketPolicy",
          "NoSuchCORSConfiguration", "NoSuchLifecycleConfiguration", "NoSuchWebsiteConfiguration",
          "OwnershipControlsNotFoundError", "NoSuchPublicAccessBlockConfiguration",
          "ServerSideEncryptionConfigurationNotFoundError"),
    405: ("MethodNotAllowed",),
    409: ("BucketAlreadyExists", "BucketAlreadyOwnedByYou", "BucketNotEmpty", "OperationAborted",
          "InvalidBucketState"),
    411: ("MissingContentLength",),
    412: ("PreconditionFailed",),
    416: ("InvalidRange", "InvalidPartNumber"),
    501: ("NotImplemented",),
}
STATUS = {code: status for status, codes in _STATUS.items() for code in codes}


class S3Error(ServiceError):
    """An S3 error with the HTTP status S3 answers it with (the model does not say)."""

    def __init__(self, code: str, message: str = "", *, status: int | None = None, **fields: Any) -> None:
        super().__init__(code, message, status=status or STATUS.get(code, 400), **fields)


def no_such_bucket(name: str) -> ServiceError:
    return S3Error("NoSuchBucket", "The specified bucket does not exist", BucketName=name)


def no_such_key(key: str) -> ServiceError:
    return S3Error("NoSuchKey", "The specified key does not exist.", Key=key)


def invalid_argument(message: str, name: str | None = None, value: str | None = None) -> ServiceError:
    fields = {}
    if name is not None:
        fields = {"ArgumentName": name, "ArgumentValue": value if value is not None else ""}
    return S3Error("InvalidArgument", message, **fields)


def malformed_xml() -> ServiceError:
    return S3Error("MalformedXML", "The XML you provided was not well-formed or did not validate against our "
                        "published schema")
