"""Exports to S3 and imports from S3 (ExportTableToPointInTime, DescribeExport, ListExports,
ImportTable, DescribeImport, ListImports).

Both are asynchronous on AWS, and here: the call records the job's row and a durable job
(``dynamodb.export`` / ``dynamodb.import``) in one transaction, answers ``IN_PROGRESS``, and
the job does the work after the commit, writing its objects (through S3's in-process
``put_object_bytes``, so they are ordinary objects with their notifications) and its final
row in one transaction: a crash before it commits leaves the job to run again.

An export reads the table as it was at ExportTime from point-in-time recovery's log (the
same undo a restore uses, ``backups.items_at``), which is why AWS's rule that recovery must
be on is also unkai's; an incremental export reads the same log between its two times. The
objects are laid out as AWS lays them out::

    <prefix>/AWSDynamoDB/<export id>/_started
    <prefix>/AWSDynamoDB/<export id>/manifest-summary.json (+ .checksum, the md5 in hex)
    <prefix>/AWSDynamoDB/<export id>/manifest-files.json  (+ .checksum): one JSON line a data file
    <prefix>/AWSDynamoDB/<export id>/data/<26 random chars>.json.gz: one ``{"Item": ...}`` a line

An import creates its table in the call (ResourceInUseException when it exists), then reads
every object under the source prefix (DYNAMODB_JSON lines, ION or CSV; GZIP, ZSTD or none).
ION is read and written by ``ion.py``.
A line that is not a valid item is counted in ErrorCount and written, as AWS writes it, to
the log group ``/aws-dynamodb/imports``."""

from __future__ import annotations

import base64
import csv
import gzip
import hashlib
import io
import json
import logging
import re
import secrets
import time
import uuid
from typing import Any

from unkai.paging import paged
from unkai.protocol import ServiceError
from unkai.services import RequestContext
from unkai.services.dynamodb import attributes
from unkai.services.dynamodb.backups import items_at
from unkai.services.dynamodb.errors import (export_not_found, import_not_found, invalid_export_time,
                                            table_not_found, validation)
from unkai.services.dynamodb.tables import Table

log = logging.getLogger(__name__)

MIGRATIONS = [
    """
    CREATE TABLE dynamodb_exports (
        arn TEXT PRIMARY KEY,
        account TEXT NOT NULL,
        region TEXT NOT NULL,
        table_arn TEXT NOT NULL,
        client_token TEXT,
        created REAL NOT NULL,
        description TEXT NOT NULL
    );
    CREATE TABLE dynamodb_imports (
        arn TEXT PRIMARY KEY,
        account TEXT NOT NULL,
        region TEXT NOT NULL,
        table_arn TEXT NOT NULL,
        client_token TEXT,
        created REAL NOT NULL,
        description TEXT NOT NULL
    );
    """,
]

IMPORT_LOG_GROUP = "/aws-dynamodb/imports"
_BASE32 = "abcdefghijklmnopqrstuvwxyz234567"
# AWS: an incremental export covers at least 15 minutes and at most 24 hours
_MIN_WINDOW, _MAX_WINDOW = 15 * 60, 24 * 3600
_IDEMPOTENT_FOR = 8 * 3600  # AWS: a ClientToken is remembered for 8 hours
_IMPORT_ARN = re.compile(r"^arn:aws[\w-]*:dynamodb:[\w-]+:\d{12}:table/[\w.-]{3,255}/import/[\w-]+$")
_S3_BUCKET = re.compile(r"^[a-z0-9A-Z]+[\.\-\w]*[a-z0-9A-Z]+$")  # botocore's S3Bucket pattern


class ItemsRefused(Exception):
    """An import read lines that are no valid items: it ends FAILED (ItemValidationError)."""


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts * 1000) % 1000:03d}Z"


def _job_id(now: float) -> str:
    """AWS's export and import ids: creation milliseconds (14 digits), a dash, 8 hex."""
    return f"{int(now * 1000):014d}-{secrets.token_hex(4)}"


def _data_name() -> str:
    return "".join(secrets.choice(_BASE32) for _ in range(26))


class ExportOperations:
    """Mixed into the DynamoDB service."""

    store: Any
    clock: Any
    items: Any
    cloud: Any

    def table(self, ctx: RequestContext, name: str) -> Table: ...
    def find_table(self, account: str, region: str, name: str) -> Table | None: ...
    def create_table(self, ctx: RequestContext, params: dict) -> dict: ...
    def prepare_put(self, table: Table, raw: dict) -> tuple[dict, bytes, bytes]: ...

    # -- exports -------------------------------------------------------------------------

    def export_table_to_point_in_time(self, ctx: RequestContext, params: dict) -> dict:
        arn = params["TableArn"]
        bucket = params["S3Bucket"]
        if not _S3_BUCKET.match(bucket) or len(bucket) > 255:
            raise validation(f"1 validation error detected: Value '{bucket}' at 's3Bucket' failed to satisfy "
                             "constraint: Member must satisfy regular expression pattern: "
                             "^[a-z0-9A-Z]+[\\.\\-\\w]*[a-z0-9A-Z]+$")
        prefix = f"arn:aws:dynamodb:{ctx.region}:{ctx.account}:table/"
        if not arn.startswith("arn:aws:dynamodb:") or ":table/" not in arn:
            raise validation(f"Invalid TableArn: Invalid ResourceArn provided as input {arn}")
        name = arn[len(prefix):] if arn.startswith(prefix) else ""
        table = self.find_table(ctx.account, ctx.region, name) if name and "/" not in name else None
        if table is None:
            raise table_not_found(arn)
        export_format = params.get("ExportFormat") or "DYNAMODB_JSON"
        if export_format not in ("DYNAMODB_JSON", "ION"):
            raise validation(f"1 validation error detected: Value '{export_format}' at 'exportFormat' failed to "
                             "satisfy constraint: Member must satisfy enum value set: [ION, DYNAMODB_JSON]")
        kind = params.get("ExportType") or "FULL_EXPORT"
        if kind not in ("FULL_EXPORT", "INCREMENTAL_EXPORT"):
            raise validation(f"1 validation error detected: Value '{kind}' at 'exportType' failed to satisfy "
                             "constraint: Member must satisfy enum value set: [FULL_EXPORT, INCREMENTAL_EXPORT]")
        if kind == "INCREMENTAL_EXPORT" and export_format == "ION":
            raise validation("unkai writes incremental exports in DYNAMODB_JSON only (ION is served for full "
                             "exports)")
        token = params.get("ClientToken")
        now = self.clock.now()
        if token:
            row = self.store.one("SELECT description, created FROM dynamodb_exports WHERE account=? AND region=? "
                                 "AND client_token=? ORDER BY created DESC LIMIT 1", (ctx.account, ctx.region, token))
            if row is not None and now - row[1] < _IDEMPOTENT_FOR:
                earlier = json.loads(row[0])
                if (earlier["TableArn"], earlier["S3Bucket"], earlier.get("S3Prefix"), earlier.get("ExportType", "FULL_EXPORT")) != (
                        table.arn, params["S3Bucket"], params.get("S3Prefix"), kind):
                    raise ServiceError("ExportConflictException", "There was a conflict when writing to the specified "
                                       "S3 bucket: an export with this ClientToken exists with other parameters")
                return {"ExportDescription": earlier}
        pitr = table.definition.get("PITR") or {}
        if not pitr.get("Enabled"):
            raise ServiceError("PointInTimeRecoveryUnavailableException",
                               f"Point in time recovery is not enabled for table '{table.name}'")
        earliest = max(pitr["Since"], now - pitr["Days"] * 86400)
        description: dict[str, Any] = {}
        if kind == "INCREMENTAL_EXPORT":
            spec = params.get("IncrementalExportSpecification") or {}
            if params.get("ExportTime") is not None:
                raise validation("ExportTime cannot be specified for an incremental export; use "
                                 "IncrementalExportSpecification")
            start, end = spec.get("ExportFromTime"), spec.get("ExportToTime")
            if start is None or end is None:
                raise validation("IncrementalExportSpecification must provide ExportFromTime and ExportToTime")
            start, end = float(start), float(end)
            if start < earliest - 1:
                raise invalid_export_time(f"ExportFromTime {_iso(start)} is before the earliest restorable time "
                                          f"{_iso(earliest)}")
            if end > now:
                raise invalid_export_time(f"ExportToTime {_iso(end)} is in the future")
            if end - start < _MIN_WINDOW:
                raise invalid_export_time("Difference between ExportFromTime and ExportToTime must be at least "
                                          "15 minutes")
            if end - start > _MAX_WINDOW:
                raise invalid_export_time("Difference between ExportFromTime and ExportToTime must be at most "
                                          "24 hours")
            description["IncrementalExportSpecification"] = {
                "ExportFromTime": start, "ExportToTime": end,
                "ExportViewType": spec.get("ExportViewType") or "NEW_AND_OLD_IMAGES"}
            when = end
        else:
            when = float(params["ExportTime"]) if params.get("ExportTime") is not None else now
            if not earliest - 1 <= when <= now:
                raise invalid_export_time("Export Time is invalid")  # AWS's words, whatever the reason
        export_id = _job_id(now)
        export_arn = f"{table.arn}/export/{export_id}"
        description.update({
            "ExportArn": export_arn, "ExportStatus": "IN_PROGRESS", "StartTime": now, "TableArn": table.arn,
            "TableId": table.definition.get("TableId", ""), "ExportTime": when, "S3Bucket": params["S3Bucket"],
            "S3SseAlgorithm": params.get("S3SseAlgorithm") or "AES256", "ExportFormat": export_format,
            "ExportType": kind})
        for key in ("S3BucketOwner", "S3Prefix", "S3SseKmsKeyId"):
            if params.get(key):
                description[key] = params[key]
        description["ClientToken"] = token or str(uuid.uuid4())  # AWS always answers one
        if kind == "INCREMENTAL_EXPORT":
            description.pop("ExportTime")
        if not params.get("ExportType"):
            description.pop("ExportType")  # AWS leaves the default FULL_EXPORT out (ScyllaDB's AWS-run suite)
        self.store.execute("INSERT INTO dynamodb_exports(arn, account, region, table_arn, client_token, created, "
                           "description) VALUES(?,?,?,?,?,?,?)",
                           (export_arn, ctx.account, ctx.region, table.arn, token, now, json.dumps(description)))
        self.cloud.jobs.enqueue("dynamodb.export", {"arn": export_arn, "table_id": table.id})
        return {"ExportDescription": description}

    def _export_row(self, ctx: RequestContext, arn: str) -> dict:
        row = self.store.one("SELECT description FROM dynamodb_exports WHERE arn=? AND account=? AND region=?",
                             (arn, ctx.account, ctx.region))
        if row is None:
            raise export_not_found(arn)
        return json.loads(row[0])

    def describe_export(self, ctx: RequestContext, params: dict) -> dict:
        return {"ExportDescription": self._export_row(ctx, params["ExportArn"])}

    def list_exports(self, ctx: RequestContext, params: dict) -> dict:
        return self._list(ctx, params, "exports", "MaxResults", "maxResults", "ExportSummaries",
                          ("ExportArn", "ExportStatus", "ExportType"))

    def _list(self, ctx: RequestContext, params: dict, kind: str, limit_param: str, limit_name: str, key: str,
              fields: tuple[str, ...]) -> dict:
        """ListExports and ListImports: the account's jobs of one kind, oldest first, optionally of one table."""
        limit = params.get(limit_param)
        if limit is not None and not 1 <= limit <= 25:
            raise validation(f"1 validation error detected: Value '{limit}' at '{limit_name}' failed to satisfy "
                             "constraint: Member must have value " +
                             ("less than or equal to 25" if limit > 25 else "greater than or equal to 1"))
        where, args = "account=? AND region=?", [ctx.account, ctx.region]
        if params.get("TableArn"):
            where += " AND table_arn=?"
            args.append(params["TableArn"])
        summaries = []
        for (text,) in self.store.all(f"SELECT description FROM dynamodb_{kind} WHERE {where} ORDER BY created, arn",
                                      args):
            d = json.loads(text)
            summaries.append({k: d[k] for k in fields if k in d})
        return paged(key, summaries, params.get("NextToken"), limit, default=25)

    async def _run_export(self, payload: dict, attempt: int) -> None:
        """The export job: the items as of ExportTime (or the window's changes) into S3, with
        AWS's manifests, and the export COMPLETED, in one transaction."""
        with self.store.transaction():
            row = self.store.one("SELECT description FROM dynamodb_exports WHERE arn=?", (payload["arn"],))
            if row is None:
                return
            d = json.loads(row[0])
            if d["ExportStatus"] != "IN_PROGRESS":
                return
            table = self.table_by_id(payload["table_id"])  # type: ignore[attr-defined]
            if table is None or table.arn != d["TableArn"]:
                self._finish_export(d, "FAILED", failure=("DynamoDBTableNotFound", "The table was deleted before "
                                                          "the export completed"))
                return
            if d.get("ExportType") == "INCREMENTAL_EXPORT":
                spec = d["IncrementalExportSpecification"]
                lines = self._changes(table, spec["ExportFromTime"], spec["ExportToTime"],
                                      spec["ExportViewType"] == "NEW_AND_OLD_IMAGES")
            elif d["ExportFormat"] == "ION":
                from unkai.services.dynamodb.ion import export_line

                lines = [export_line(attributes.loads(text))
                         for text in items_at(self.store, table.id, d["ExportTime"]).values() if text is not None]
            else:
                lines = ['{"Item":' + text + "}" for text in items_at(self.store, table.id, d["ExportTime"]).values()
                         if text is not None]
            try:
                billed = self._write_export(d, lines)
            except ServiceError as e:
                code = "S3NoSuchBucket" if e.code == "NoSuchBucket" else e.code
                self._finish_export(d, "FAILED", failure=(code, e.message))
                return
            except Exception:  # a fault of unkai's must not leave the export IN_PROGRESS for ever
                log.exception("DynamoDB export %s failed", d["ExportArn"])
                self._finish_export(d, "FAILED", failure=("UnknownError", "The export failed because of an "
                                                          "internal error."))
                return
            self._finish_export(d, "COMPLETED", items=len(lines), billed=billed)

    def _changes(self, table: Table, start: float, end: float, old_images: bool) -> list[str]:
        """An incremental export's lines: each key written in (start, end], with its image at
        ``end`` (none when deleted) and, for NEW_AND_OLD_IMAGES, at ``start``."""
        changed: dict[tuple[bytes, bytes], list] = {}
        after: dict[tuple[bytes, bytes], str | None] = {}
        for at, pk, rk, before in self.store.execute(
                "SELECT at, pk, rk, before FROM dynamodb_pitr_log WHERE table_id=? AND at>? ORDER BY seq",
                (table.id, start)):
            key = (pk, rk)
            if at <= end:
                if key in changed:
                    changed[key][1] = at
                else:
                    changed[key] = [before, at]
            elif key in changed and key not in after:
                after[key] = before
        lines = []
        for key, (old, at) in changed.items():
            if key in after:
                new = after[key]
            else:
                found = self.store.one("SELECT item FROM dynamodb_items WHERE table_id=? AND pk=? AND rk=?",
                                       (table.id, key[0], key[1]))
                new = found[0] if found else None
            if old is None and new is None:
                continue
            image = attributes.loads(new or old)  # type: ignore[arg-type]
            keys = attributes.dumps(table.schema.item_key(image))
            line = ('{"Metadata":{"WriteTimestampMicros":{"N":"%d"}},"Key":%s' % (int(at * 1_000_000), keys))
            if new is not None:
                line += ',"NewImage":' + new
            if old is not None and old_images:
                line += ',"OldImage":' + old
            lines.append(line + "}")
        return lines

    def _write_export(self, d: dict, lines: list[str]) -> int:
        """The export's objects, as AWS lays them out; the bytes written (BilledSizeBytes)."""
        s3 = self.cloud.service("s3")
        region = d["ExportArn"].split(":")[3]
        export_id = d["ExportArn"].rsplit("/", 1)[-1]
        base = f"{d['S3Prefix'].rstrip('/')}/AWSDynamoDB/{export_id}" if d.get("S3Prefix") else \
            f"AWSDynamoDB/{export_id}"
        bucket = d["S3Bucket"]
        s3.put_object_bytes(bucket, f"{base}/_started", b"", "application/octet-stream", region,
                            principal="dynamodb.amazonaws.com")
        raw = "".join(line + "\n" for line in lines).encode()
        data = gzip.compress(raw, mtime=0)
        data_key = f"{base}/data/{_data_name()}.{'ion' if d['ExportFormat'] == 'ION' else 'json'}.gz"
        put = s3.put_object_bytes(bucket, data_key, data, "application/x-gzip", region,
                                  principal="dynamodb.amazonaws.com")
        files = json.dumps({"itemCount": len(lines), "md5Checksum": base64.b64encode(
            hashlib.md5(data).digest()).decode(), "etag": str(put.get("ETag", "")).strip('"'),
            "dataFileS3Key": data_key}, separators=(",", ":")) + "\n"
        summary: dict[str, Any] = {
            "version": "2023-08-01" if d.get("ExportType") == "INCREMENTAL_EXPORT" else "2020-06-30",
            "exportArn": d["ExportArn"], "startTime": _iso(d["StartTime"]), "endTime": _iso(self.clock.now()),
            "tableArn": d["TableArn"], "tableId": d["TableId"]}
        if d.get("ExportType") == "INCREMENTAL_EXPORT":
            spec = d["IncrementalExportSpecification"]
            summary.update({"exportFromTime": _iso(spec["ExportFromTime"]), "exportToTime": _iso(spec["ExportToTime"])})
        else:
            summary["exportTime"] = _iso(d["ExportTime"])
        summary.update({
            "s3Bucket": bucket, "s3Prefix": d.get("S3Prefix"), "s3SseAlgorithm": d["S3SseAlgorithm"],
            "s3SseKmsKeyId": d.get("S3SseKmsKeyId"), "manifestFilesS3Key": f"{base}/manifest-files.json",
            "billedSizeBytes": len(raw), "itemCount": len(lines), "outputFormat": d["ExportFormat"],
            "exportType": d.get("ExportType", "FULL_EXPORT")})
        if d.get("ExportType") == "INCREMENTAL_EXPORT":
            summary["outputView"] = d["IncrementalExportSpecification"]["ExportViewType"]
        manifest = json.dumps(summary, separators=(",", ":")).encode()
        for name, body in (("manifest-files", files.encode()), ("manifest-summary", manifest)):
            s3.put_object_bytes(bucket, f"{base}/{name}.json", body, "application/json", region,
                                principal="dynamodb.amazonaws.com")
            s3.put_object_bytes(bucket, f"{base}/{name}.checksum", hashlib.md5(body).hexdigest().encode(),
                                "text/plain", region, principal="dynamodb.amazonaws.com")
        d["ExportManifest"] = f"{base}/manifest-summary.json"
        return len(raw)

    def _finish_export(self, d: dict, status: str, *, items: int = 0, billed: int = 0,
                       failure: tuple[str, str] | None = None) -> None:
        d.update({"ExportStatus": status, "EndTime": self.clock.now()})
        if failure:
            d["FailureCode"], d["FailureMessage"] = failure
        else:
            d.update({"ItemCount": items, "BilledSizeBytes": billed})
        self.store.execute("UPDATE dynamodb_exports SET description=? WHERE arn=?", (json.dumps(d), d["ExportArn"]))
        fields = {"export": d["ExportArn"], "table": d["TableArn"].rsplit("/", 1)[-1], "status": status,
                  "bucket": d["S3Bucket"], "items": items if status == "COMPLETED" else None,
                  "failure_code": (failure or (None,))[0]}
        self.store.after_commit(lambda: self.cloud.feed.publish(
            "dynamodb.export", **{k: v for k, v in fields.items() if v is not None}))

    # -- imports -------------------------------------------------------------------------

    def import_table(self, ctx: RequestContext, params: dict) -> dict:
        """Creates the table and records the import; the job reads S3 after the commit. As AWS
        answers (measured by ScyllaDB's AWS-run conformance suite, test/alternator/test_import.py):
        an existing table is ResourceInUseException before the ClientToken is looked at; a token
        replayed while its import runs returns that import, whatever else changed, unless the
        TableName differs (ImportConflictException)."""
        source, fmt = params["S3BucketSource"], params["InputFormat"]
        creation = dict(params["TableCreationParameters"])
        compression = params.get("InputCompressionType") or "NONE"
        if fmt not in ("DYNAMODB_JSON", "ION", "CSV"):
            raise validation(f"1 validation error detected: Value '{fmt}' at 'inputFormat' failed to satisfy "
                             "constraint: Member must satisfy enum value set: [DYNAMODB_JSON, ION, CSV]")
        if compression not in ("GZIP", "ZSTD", "NONE"):
            raise validation(f"1 validation error detected: Value '{compression}' at 'inputCompressionType' failed "
                             "to satisfy constraint: Member must satisfy enum value set: [GZIP, ZSTD, NONE]")
        bucket = source.get("S3Bucket") or ""
        if not _S3_BUCKET.match(bucket) or len(bucket) > 255:
            raise validation(f"1 validation error detected: Value '{bucket}' at 's3BucketSource.s3Bucket' failed to "
                             "satisfy constraint: Member must " + (
                                 "have length less than or equal to 255" if len(bucket) > 255 else
                                 "satisfy regular expression pattern: ^[a-z0-9A-Z]+[\\.\\-\\w]*[a-z0-9A-Z]+$"))
        if len(source.get("S3KeyPrefix") or "") > 1024:
            raise validation("1 validation error detected: Value at 's3BucketSource.s3KeyPrefix' failed to satisfy "
                             "constraint: Member must have length less than or equal to 1024")
        if params.get("InputFormatOptions") and fmt != "CSV":
            raise validation("InputFormatOptions can only be specified when InputFormat is CSV")
        token = params.get("ClientToken")
        if token is not None and (not token or "$" in token):
            raise validation(f"1 validation error detected: Value '{token}' at 'clientToken' failed to satisfy "
                             "constraint: Member must satisfy regular expression pattern: ^[^\\$]+$")
        now = self.clock.now()
        if token:  # only a running import answers for its token: a finished one's table exists
            row = self.store.one("SELECT description, created FROM dynamodb_imports WHERE account=? AND region=? "
                                 "AND client_token=? ORDER BY created DESC LIMIT 1", (ctx.account, ctx.region, token))
            earlier = json.loads(row[0]) if row is not None and now - row[1] < _IDEMPOTENT_FOR else None
            if earlier is not None and earlier["ImportStatus"] == "IN_PROGRESS":
                if earlier["TableCreationParameters"]["TableName"] != creation.get("TableName"):
                    raise ServiceError("ImportConflictException",
                                       "Duplicate request detected with conflicting parameters")
                return {"ImportTableDescription": earlier}
        created = self.create_table(ctx, creation)["TableDescription"]  # ResourceInUseException when it exists
        # AWS shows the table CREATING until its import ends (the job sets it ACTIVE)
        self.store.execute("UPDATE dynamodb_tables SET status='CREATING' WHERE account=? AND region=? AND name=?",
                           (ctx.account, ctx.region, creation["TableName"]))
        self._changed()  # type: ignore[attr-defined]
        import_id = _job_id(now)
        import_arn = f"{created['TableArn']}/import/{import_id}"
        description: dict[str, Any] = {
            "ImportArn": import_arn, "ImportStatus": "IN_PROGRESS", "TableArn": created["TableArn"],
            "TableId": created["TableId"], "S3BucketSource": source,
            "CloudWatchLogGroupArn": f"arn:aws:logs:{ctx.region}:{ctx.account}:log-group:{IMPORT_LOG_GROUP}:*",
            "InputFormat": fmt, "InputCompressionType": compression,
            "TableCreationParameters": params["TableCreationParameters"], "StartTime": now,
            "ProcessedItemCount": 0, "ImportedItemCount": 0, "ErrorCount": 0,
            "ClientToken": token or str(uuid.uuid4())}  # AWS always answers one (botocore always sends one)
        if params.get("InputFormatOptions"):
            description["InputFormatOptions"] = params["InputFormatOptions"]
        self.store.execute("INSERT INTO dynamodb_imports(arn, account, region, table_arn, client_token, created, "
                           "description) VALUES(?,?,?,?,?,?,?)",
                           (import_arn, ctx.account, ctx.region, created["TableArn"], token, now,
                            json.dumps(description)))
        self.cloud.jobs.enqueue("dynamodb.import", {"arn": import_arn})
        return {"ImportTableDescription": description}

    def _import_row(self, ctx: RequestContext, arn: str) -> dict:
        if not _IMPORT_ARN.match(arn):
            raise validation(f"Invalid Import ARN: {arn}")
        row = self.store.one("SELECT description FROM dynamodb_imports WHERE arn=? AND account=? AND region=?",
                             (arn, ctx.account, ctx.region))
        if row is None:
            raise import_not_found(arn)
        return json.loads(row[0])

    def describe_import(self, ctx: RequestContext, params: dict) -> dict:
        return {"ImportTableDescription": self._import_row(ctx, params["ImportArn"])}

    def list_imports(self, ctx: RequestContext, params: dict) -> dict:
        return self._list(ctx, params, "imports", "PageSize", "pageSize", "ImportSummaryList",
                          ("ImportArn", "ImportStatus", "TableArn", "S3BucketSource", "CloudWatchLogGroupArn",
                           "InputFormat", "StartTime", "EndTime"))

    async def _run_import(self, payload: dict, attempt: int) -> None:
        """The import job: every object under the source prefix into the new table, the
        import COMPLETED (or FAILED, its table removed), in one transaction."""
        with self.store.transaction():
            row = self.store.one("SELECT account, region, description FROM dynamodb_imports WHERE arn=?",
                                 (payload["arn"],))
            if row is None:
                return
            account, region, d = row[0], row[1], json.loads(row[2])
            if d["ImportStatus"] != "IN_PROGRESS":
                return
            table = self.find_table(account, region, d["TableCreationParameters"]["TableName"])
            source = d["S3BucketSource"]
            removed = False
            try:
                if table is None:
                    raise ServiceError("DynamoDBTableNotFound", "The table was deleted before the import completed")
                # a prefix that matches nothing is an empty success, its table kept (AWS)
                objects = self.cloud.service("s3").object_files(source["S3Bucket"], source.get("S3KeyPrefix") or "")
                errors: list[tuple[int, str]] = []
                for key, content in objects:
                    data = content if isinstance(content, bytes) else content.read_bytes()
                    data = self._decompressed(d["InputCompressionType"], source["S3Bucket"], key, data)
                    if data:  # AWS counts the bytes read, uncompressed, and reports none until then
                        d["ProcessedSizeBytes"] = d.get("ProcessedSizeBytes", 0) + len(data)
                    self._import_object(table, d, source["S3Bucket"], key, data, errors)
                if errors:
                    self.cloud.service("logs").append(account, region, IMPORT_LOG_GROUP,
                                                      d["ImportArn"].rsplit("/", 1)[-1], errors)
                    # AWS: an import that skipped any item FAILED, its table kept with what was valid
                    raise ItemsRefused(f"{d['ErrorCount']} item(s) could not be imported; see the log group "
                                       f"{IMPORT_LOG_GROUP}")
            except ItemsRefused as e:
                d.update({"ImportStatus": "FAILED", "EndTime": self.clock.now(), "FailureCode": "ItemValidationError",
                          "FailureMessage": str(e)})
            except ServiceError as e:
                code = "S3NoSuchBucket" if e.code == "NoSuchBucket" else e.code
                d.update({"ImportStatus": "FAILED", "EndTime": self.clock.now(), "FailureCode": code,
                          "FailureMessage": e.message})
                if table is not None:
                    removed = True
                    self.delete_table(RequestContext(service="dynamodb", operation="DeleteTable",  # type: ignore
                                                     region=region, account=account, request_id="import",
                                                     request=None, protocol="internal"),
                                      {"TableName": table.name})
            except Exception:  # a fault of unkai's must not leave the import IN_PROGRESS for ever
                log.exception("DynamoDB import %s failed", d["ImportArn"])
                d.update({"ImportStatus": "FAILED", "EndTime": self.clock.now(), "FailureCode": "UnknownError",
                          "FailureMessage": "The import failed because of an internal error."})
            else:
                d.update({"ImportStatus": "COMPLETED", "EndTime": self.clock.now()})
            if table is not None and not removed:
                self.store.execute("UPDATE dynamodb_tables SET status='ACTIVE' WHERE id=?", (table.id,))
                self._changed()  # type: ignore[attr-defined]
            self.store.execute("UPDATE dynamodb_imports SET description=? WHERE arn=?", (json.dumps(d), d["ImportArn"]))
            fields = {"import": d["ImportArn"], "table": d["TableCreationParameters"]["TableName"],
                      "status": d["ImportStatus"], "imported": d["ImportedItemCount"], "errors": d["ErrorCount"],
                      "failure_code": d.get("FailureCode")}
            self.store.after_commit(lambda: self.cloud.feed.publish(
                "dynamodb.import", **{k: v for k, v in fields.items() if v is not None}))

    @staticmethod
    def _decompressed(compression: str, bucket: str, key: str, data: bytes) -> bytes:
        try:
            if compression == "GZIP":
                return gzip.decompress(data)
            if compression == "ZSTD":
                import cramjam  # a dependency already (Firehose's Snappy); imported only here

                return bytes(cramjam.zstd.decompress(data))
        except Exception as e:  # gzip's OSError/EOFError, cramjam's DecompressionError
            raise ServiceError("InvalidCompressionFormat",
                               f"Unable to decompress s3://{bucket}/{key} as {compression}: {e}") from None
        return data

    def _import_object(self, table: Table, d: dict, bucket: str, key: str, data: bytes,
                       errors: list[tuple[int, str]]) -> None:
        """One object's items into the table; a line that is no valid item is an error, logged."""
        text = data.decode("utf-8", errors="replace")
        rows: list[Any]
        if d["InputFormat"] == "CSV":
            rows = self._csv_items(table, d.get("InputFormatOptions", {}).get("Csv") or {}, text)
        elif d["InputFormat"] == "ION":
            from unkai.services.dynamodb.ion import import_items

            try:
                rows = import_items(text)
            except Exception as e:  # amazon-ion's IonException: the whole object is unreadable
                rows = [f"Unable to parse the Ion object: {e}"]
        else:
            rows = [line for line in text.splitlines() if line.strip()]
        now_ms = self.clock.now_ms()
        for index, raw in enumerate(rows):
            d["ProcessedItemCount"] += 1
            try:
                if isinstance(raw, str) and d["InputFormat"] in ("ION", "CSV"):
                    raise ValueError(raw)  # a value the format's reader could not read as an item
                item = json.loads(raw)["Item"] if isinstance(raw, str) else raw
                if not isinstance(item, dict):
                    raise ValueError("Item must be a map of attribute values")
                item, pk, rk = self.prepare_put(table, attributes.from_wire(item))
                self.items.write(table, table.schema.item_key(item), pk, rk, self.items.get(table, pk, rk), item)
                d["ImportedItemCount"] += 1
            except (ServiceError, ValueError, KeyError, TypeError, AttributeError) as e:
                d["ErrorCount"] += 1
                message = e.message if isinstance(e, ServiceError) else \
                    str(e) if d["InputFormat"] in ("ION", "CSV") else f"Unable to parse the item: {e}"
                errors.append((now_ms, json.dumps({"itemS3Pointer": {"bucket": bucket, "key": key,
                                                                     "itemIndex": index},
                                                   "importArn": d["ImportArn"], "errorMessages": [message]})))
                return  # AWS abandons the rest of an object at its first line that is no item

    @staticmethod
    def _csv_items(table: Table, options: dict, text: str) -> list[Any]:
        """CSV rows as items: key attributes typed by the table's AttributeDefinitions, every
        other column a string (AWS), empty cells left out; the header is the first line unless
        HeaderList gives it. A row that cannot be read (a binary key that is not base64, a cell
        past the csv module's limit) is its error message, refused like any bad item."""
        reader = csv.reader(io.StringIO(text), delimiter=options.get("Delimiter") or ",")
        header = options.get("HeaderList")
        types = table.attribute_types
        items: list[Any] = []
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return items
            except csv.Error as e:
                items.append(f"Unable to parse the item: {e}")
                return items
            if header is None:
                header = cells
                continue
            if not any(cells):
                continue
            item: dict[str, Any] = {}
            for name, cell in zip(header, cells):
                if cell == "":
                    continue
                kind = types.get(name, "S")
                try:
                    item[name] = {kind: base64.b64decode(cell, validate=True) if kind == "B" else cell}
                except ValueError as e:  # binascii.Error: a binary key that is not base64
                    item = f"Unable to parse the item: {name}: {e}"  # type: ignore[assignment]
                    break
            items.append(item)
