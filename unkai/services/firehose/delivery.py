"""Delivering a buffer to S3: record processing (decompression, CloudWatch Logs
extraction, Lambda transformation, JQ metadata extraction, delimiters), dynamic
partitioning, prefixes with their ``!{...}`` namespaces, AWS's object names,
compression, error output and source-record backup.

A flush is pure work over the buffered rows: ``build`` turns them into a list of S3
objects (bucket, key, bytes) without touching the store, so the caller can write the
objects and forget the rows in one transaction. The object names follow AWS:
``{prefix}{stream}-{version}-{yyyy-MM-dd-HH-mm-ss}-{uuid}{extension}``, where a prefix
without a ``!{timestamp:...}`` namespace gets ``yyyy/MM/dd/HH/`` appended (unless
dynamic partitioning is on), all times being the oldest record's arrival in UTC.
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import io
import json
import logging
import random
import re
import string
import uuid
import zipfile
from dataclasses import dataclass, field
from typing import Any

from unkai.protocol import ServiceError
from unkai.services.firehose.streams import DeliveryStream

log = logging.getLogger(__name__)

_NAMESPACE = re.compile(r"!\{([A-Za-z]+):([^}]*)\}")
_JAVA_TOKENS = re.compile(r"'[^']*'|yyyy|yy|MM|dd|HH|mm|ss|SSS|[A-Za-z]+|[^A-Za-z']+")
_JAVA = {"yyyy": "%Y", "yy": "%y", "MM": "%m", "dd": "%d", "HH": "%H", "mm": "%M", "ss": "%S"}
EXTENSIONS = {"GZIP": ".gz", "ZIP": ".zip", "Snappy": ".snappy", "HADOOP_SNAPPY": ".snappy"}


@dataclass
class Record:
    id: int
    arrival_ms: int
    data: bytes
    meta: dict | None = None  # Kinesis source metadata
    keys: dict = field(default_factory=dict)  # partition keys


@dataclass
class Failed:
    record: Record
    kind: str  # the error-output-type: processing-failed, partitioning-failed...
    code: str
    message: str
    attempts: int = 1
    lambda_arn: str = ""


@dataclass
class S3Object:
    bucket: str
    key: str
    body: bytes


def java_time(pattern: str, when: dt.datetime) -> str:
    """A Java DateTimeFormatter pattern (what ``!{timestamp:...}`` takes) applied to ``when``."""
    out = []
    for token in _JAVA_TOKENS.findall(pattern):
        if token.startswith("'"):
            out.append(token[1:-1])
        elif token == "SSS":
            out.append(f"{when.microsecond // 1000:03d}")
        elif token in _JAVA:
            out.append(when.strftime(_JAVA[token]))
        else:
            out.append(token)
    return "".join(out)


def _bucket(arn: str) -> str:
    return arn.split(":::", 1)[-1]


def _params(processor: dict) -> dict[str, str]:
    return {p["ParameterName"]: p["ParameterValue"] for p in processor.get("Parameters") or []}


def _processors(config: dict) -> list[dict]:
    processing = config.get("ProcessingConfiguration") or {}
    if not processing.get("Enabled", bool(processing.get("Processors"))):
        return []
    return processing.get("Processors") or []


def _unescape(text: str) -> str:
    return text.encode().decode("unicode_escape") if "\\" in text else text


def compress(data: bytes, fmt: str, name: str = "data") -> bytes:
    if fmt == "GZIP":
        return gzip.compress(data)
    if fmt == "ZIP":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(name, data)
        return buf.getvalue()
    if fmt == "Snappy":
        import cramjam

        return bytes(cramjam.snappy.compress(data))  # the Snappy framing format
    if fmt == "HADOOP_SNAPPY":
        import cramjam

        block = bytes(cramjam.snappy.compress_raw(data))
        return len(data).to_bytes(4, "big") + len(block).to_bytes(4, "big") + block
    return data


class Builder:
    """Turns one buffer of a delivery stream into S3 objects."""

    def __init__(self, cloud: Any, stream: DeliveryStream) -> None:
        self.cloud = cloud
        self.stream = stream
        self.config = stream.destination
        self.failed: list[Failed] = []

    # -- processing ---------------------------------------------------------------------------

    async def process(self, records: list[Record]) -> list[Record]:
        """Run the configured processors in AWS's order; failures land in ``self.failed``."""
        processors = _processors(self.config)
        by_type = {p["Type"]: p for p in processors}
        if "Decompression" in by_type:
            records = self._decompress(records)
        if "CloudWatchLogProcessing" in by_type:
            records = self._extract_logs(records, _params(by_type["CloudWatchLogProcessing"]))
        if "Lambda" in by_type:
            records = await self._transform(records, _params(by_type["Lambda"]))
        if (self.config.get("DynamicPartitioningConfiguration") or {}).get("Enabled"):
            query = _params(by_type.get("MetadataExtraction", {})).get("MetadataExtractionQuery")
            records = self._extract_keys(records, query)
        if "AppendDelimiterToRecord" in by_type:
            delimiter = _unescape(_params(by_type["AppendDelimiterToRecord"]).get("Delimiter", "\\n")).encode()
            for record in records:
                record.data += delimiter
        return records

    def _decompress(self, records: list[Record]) -> list[Record]:
        out = []
        for record in records:
            try:
                record.data = gzip.decompress(record.data)
                out.append(record)
            except (OSError, EOFError) as exc:
                self.failed.append(Failed(record, "processing-failed", "Decompression.Failed", str(exc)))
        return out

    def _extract_logs(self, records: list[Record], params: dict) -> list[Record]:
        """CloudWatch Logs subscription payloads: DATA_MESSAGE records become their log
        events' messages, one per line; CONTROL_MESSAGEs are dropped."""
        if str(params.get("DataMessageExtraction", "false")).lower() != "true":  # a template may give a boolean
            return records
        out = []
        for record in records:
            try:
                message = json.loads(record.data)
            except ValueError as exc:
                self.failed.append(Failed(record, "processing-failed", "CloudWatchLogProcessing.Failed", str(exc)))
                continue
            if message.get("messageType") != "DATA_MESSAGE":
                continue
            record.data = b"\n".join(e["message"].encode() for e in message.get("logEvents") or [])
            out.append(record)
        return out

    async def _transform(self, records: list[Record], params: dict) -> list[Record]:
        """AWS's transformation event and answer: each record comes back ``Ok`` (with new
        data), ``Dropped`` or ``ProcessingFailed``; an invocation error after the retries
        fails the whole batch."""
        arn = params.get("LambdaArn", "")
        retries = int(params.get("NumberOfRetries", "3"))
        limit = int(float(params.get("BufferSizeInMBs", "1")) * 1024 * 1024)
        out: list[Record] = []
        batch: list[Record] = []
        size = 0
        for record in records + [None]:  # type: ignore[list-item]
            if record is not None and (not batch or size + len(record.data) <= limit):
                batch.append(record)
                size += len(record.data)
                continue
            if batch:
                out += await self._invoke(arn, retries, batch)
            batch, size = ([record], len(record.data)) if record is not None else ([], 0)
        return out

    async def _invoke(self, arn: str, retries: int, batch: list[Record]) -> list[Record]:
        ids = {f"{r.id:020d}": r for r in batch}
        event: dict[str, Any] = {"invocationId": str(uuid.uuid4()), "deliveryStreamArn": self.stream.arn,
                                 "region": self.stream.region, "records": []}
        source = self.stream.source.get("KinesisStreamARN")
        if source:
            event["sourceKinesisStreamArn"] = source
        for rid, r in ids.items():
            item: dict[str, Any] = {"recordId": rid, "approximateArrivalTimestamp": r.arrival_ms,
                                    "data": base64.b64encode(r.data).decode()}
            if r.meta:
                item["kinesisRecordMetadata"] = r.meta
            event["records"].append(item)
        payload = json.dumps(event).encode()
        lam = self.cloud.service("lambda")
        attempts, error = 0, ("Lambda.FunctionError", "")
        denied = self._role_denied("lambda:InvokeFunction", arn)
        if denied is not None:  # Firehose invokes the function with the stream's role
            attempts, retries = 1, -1
            error = ("Lambda.AssumeRoleAccessDenied", "Access was denied. Ensure that the trust policy for the "
                     "provided IAM role allows Firehose to assume the role.") if "sts:AssumeRole" in denied else \
                ("Lambda.InvokeAccessDenied", "Access was denied. Ensure that the access policy allows access to "
                 "the Lambda function.")
        while attempts <= retries:
            attempts += 1
            try:
                result = await lam.invoke(arn, payload, region=arn.split(":")[3] if arn.count(":") >= 6 else
                                          self.stream.region, wait_for_slot=True)
            except ServiceError as exc:
                error = (f"Lambda.{exc.code}", exc.message)
                continue
            if result.function_error:
                error = ("Lambda.FunctionError", "The Lambda function was successfully invoked but it returned an "
                         "error result.")
                continue
            return self._answer(arn, ids, result.payload, attempts)
        for r in batch:
            self.failed.append(Failed(r, "processing-failed", error[0], error[1], attempts, arn))
        return []

    def _role_denied(self, action: str, resource: str) -> str | None:
        """Under ``--enforce-iam``: why the stream's role (``RoleARN``) may not do ``action``."""
        if not self.cloud.config.enforce_iam:
            return None
        from unkai.services.iam.enforcement import role_denied

        with self.cloud.store.transaction():
            return role_denied(self.cloud, "firehose.amazonaws.com", self.config.get("RoleARN") or "", action,
                               resource, self.stream.arn)

    def _answer(self, arn: str, ids: dict[str, Record], payload: bytes, attempts: int) -> list[Record]:
        try:
            answer = json.loads(payload or b"null")
            items = {i["recordId"]: i for i in answer["records"]}
        except (ValueError, KeyError, TypeError):
            for r in ids.values():
                self.failed.append(Failed(r, "processing-failed", "Lambda.FunctionError",
                                          "The Lambda function returned an invalid response.", attempts, arn))
            return []
        out = []
        for rid, record in ids.items():
            item = items.get(rid)
            if item is None:
                self.failed.append(Failed(record, "processing-failed", "Lambda.MissingRecordId",
                                          f"Record {rid} was not returned by the Lambda function.", attempts, arn))
                continue
            result = item.get("result")
            if result == "Dropped":
                continue
            if result != "Ok":
                self.failed.append(Failed(record, "processing-failed", "Lambda.ProcessingFailed",
                                          "The record was marked ProcessingFailed by the Lambda function.",
                                          attempts, arn))
                continue
            try:
                record.data = base64.b64decode(item.get("data") or "")
            except ValueError:
                self.failed.append(Failed(record, "processing-failed", "Lambda.InvalidData",
                                          "The record's data is not base64.", attempts, arn))
                continue
            keys = ((item.get("metadata") or {}).get("partitionKeys") or {})
            record.keys.update({f"partitionKeyFromLambda:{k}": str(v) for k, v in keys.items()})
            out.append(record)
        return out

    def _extract_keys(self, records: list[Record], query: str | None) -> list[Record]:
        """``partitionKeyFromQuery``: the JQ expression over each record's JSON gives an
        object whose values name the record's partition."""
        if not query:
            return records
        import jq

        try:
            program = jq.compile(query)
        except ValueError as exc:
            for r in records:
                self.failed.append(Failed(r, "partitioning-failed", "DynamicPartitioning.MetadataExtractionFailed",
                                          str(exc)))
            return []
        out = []
        for record in records:
            try:
                value = program.input_text(record.data.decode()).first()
                if not isinstance(value, dict):
                    raise ValueError("The query did not return an object")
            except (ValueError, UnicodeDecodeError, StopIteration) as exc:
                self.failed.append(Failed(record, "partitioning-failed",
                                          "DynamicPartitioning.MetadataExtractionFailed",
                                          f"Non JSON record provided or query failed: {exc}"))
                continue
            record.keys.update({f"partitionKeyFromQuery:{k}": "null" if v is None else
                                (json.dumps(v) if isinstance(v, (dict, list)) else str(v).lower()
                                 if isinstance(v, bool) else str(v)) for k, v in value.items()})
            out.append(record)
        return out

    # -- naming ------------------------------------------------------------------------------

    def prefix(self, template: str, when: dt.datetime, keys: dict, error_type: str | None = None) -> str:
        """A prefix with its ``!{namespace:value}`` expressions evaluated; KeyError when a
        partition key it names is missing."""
        def replace(match: re.Match) -> str:
            ns, value = match.group(1), match.group(2)
            if ns == "timestamp":
                return java_time(value, when)
            if ns == "firehose":
                if value == "random-string":
                    return "".join(random.choices(string.ascii_letters + string.digits, k=11))
                if value == "error-output-type":
                    return error_type or ""
                return ""
            return keys[f"{ns}:{value}"]

        return _NAMESPACE.sub(replace, template)

    def object_name(self, when: dt.datetime, fmt: str) -> str:
        ext = self.config.get("FileExtension") or EXTENSIONS.get(fmt, "")
        return f"{self.stream.name}-{self.stream.version}-{when.strftime('%Y-%m-%d-%H-%M-%S')}-{uuid.uuid4()}{ext}"

    def _data_prefix(self) -> str:
        template = self.config.get("Prefix") or ""
        dynamic = (self.config.get("DynamicPartitioningConfiguration") or {}).get("Enabled")
        if "!{timestamp:" not in template and not dynamic:
            template += "!{timestamp:yyyy/MM/dd/HH/}"
        return template

    # -- the objects ---------------------------------------------------------------------------

    async def build(self, source: list[Record]) -> list[S3Object]:
        fmt = self.config.get("CompressionFormat") or "UNCOMPRESSED"
        bucket = _bucket(self.config["BucketARN"])
        objects: list[S3Object] = []
        backup = self.config.get("S3BackupConfiguration")
        if backup and self.config.get("S3BackupMode") == "Enabled":
            objects += self._backup(backup, source)
        records = await self.process([Record(r.id, r.arrival_ms, r.data, r.meta) for r in source])
        groups: dict[str, list[Record]] = {}
        template = self._data_prefix()
        for record in records:
            when = dt.datetime.fromtimestamp(record.arrival_ms / 1000, dt.timezone.utc)
            try:
                prefix = self.prefix(template, when, record.keys)
            except KeyError as exc:
                self.failed.append(Failed(record, "partitioning-failed", "DynamicPartitioning.MissingKey",
                                          f"Partition key {exc.args[0]} is missing from the record"))
                continue
            groups.setdefault(prefix, []).append(record)
        for prefix, group in groups.items():
            when = dt.datetime.fromtimestamp(group[0].arrival_ms / 1000, dt.timezone.utc)
            body = b"".join(r.data for r in group)
            objects.append(S3Object(bucket, prefix + self.object_name(when, fmt), compress(body, fmt)))
        objects += self._errors(bucket, fmt)
        return objects

    def _errors(self, bucket: str, fmt: str) -> list[S3Object]:
        """Failed records as AWS writes them: one JSON line each under the error prefix."""
        by_prefix: dict[str, list[bytes]] = {}
        now_ms = self.cloud.clock.now_ms()
        template = self.config.get("ErrorOutputPrefix") or "!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd/HH/}"
        first: dict[str, dt.datetime] = {}
        for failure in self.failed:
            when = dt.datetime.fromtimestamp(failure.record.arrival_ms / 1000, dt.timezone.utc)
            try:
                prefix = self.prefix(template, when, {}, failure.kind)
            except KeyError:
                prefix = f"{failure.kind}/{when.strftime('%Y/%m/%d/%H/')}"
            line: dict[str, Any] = {"attemptsMade": failure.attempts, "arrivalTimestamp": failure.record.arrival_ms,
                                    "errorCode": failure.code, "errorMessage": failure.message,
                                    "attemptEndingTimestamp": now_ms,
                                    "rawData": base64.b64encode(failure.record.data).decode()}
            if failure.lambda_arn:
                line["lambdaArn"] = failure.lambda_arn
            by_prefix.setdefault(prefix, []).append(json.dumps(line).encode())
            first.setdefault(prefix, when)
        return [S3Object(bucket, prefix + self.object_name(first[prefix], fmt), compress(b"\n".join(lines) + b"\n", fmt))
                for prefix, lines in by_prefix.items()]

    def _backup(self, backup: dict, source: list[Record]) -> list[S3Object]:
        if not source:
            return []
        fmt = backup.get("CompressionFormat") or "UNCOMPRESSED"
        when = dt.datetime.fromtimestamp(source[0].arrival_ms / 1000, dt.timezone.utc)
        template = backup.get("Prefix") or ""
        if "!{timestamp:" not in template:
            template += "!{timestamp:yyyy/MM/dd/HH/}"
        prefix = self.prefix(template, when, {})
        body = b"".join(r.data for r in source)
        return [S3Object(_bucket(backup["BucketARN"]), prefix + self.object_name(when, fmt), compress(body, fmt))]
