"""Amazon SQS: standard and FIFO queues over the store.

Messages are rows; a receive is one transaction that picks visible rows by the
``(queue, visible_at)`` index and pushes their visibility forward, so concurrent
receivers can never get the same message inside its visibility timeout and a
queue 100,000 deep answers as fast as an empty one. Time comes from the shared
clock; long polls wait on a signal that a send (or a clock advance) fires.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import re
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from unkai.ids import uuid4
from unkai.protocol import ParamError, ServiceError
from unkai.services import Provisioned, RequestContext, ResourceContext, Service
from unkai.services.sqs import attributes as qattrs
from unkai.services.sqs import resources
from unkai.services.sqs.digest import attributes_size, md5_attributes, md5_body

MIGRATIONS = [
    """
    CREATE TABLE sqs_queues (
        id INTEGER PRIMARY KEY,
        account TEXT NOT NULL,
        region TEXT NOT NULL,
        name TEXT NOT NULL,
        attributes TEXT NOT NULL,
        tags TEXT NOT NULL DEFAULT '{}',
        created REAL NOT NULL,
        modified REAL NOT NULL,
        purged REAL,
        seq INTEGER NOT NULL DEFAULT 0,
        UNIQUE(account, region, name)
    );
    CREATE TABLE sqs_messages (
        id INTEGER PRIMARY KEY,
        queue_id INTEGER NOT NULL REFERENCES sqs_queues(id) ON DELETE CASCADE,
        message_id TEXT NOT NULL,
        body TEXT NOT NULL,
        md5_body TEXT NOT NULL,
        attributes TEXT,
        md5_attributes TEXT,
        system_attributes TEXT,
        sender TEXT NOT NULL,
        sent REAL NOT NULL,
        visible_at REAL NOT NULL,
        expires REAL NOT NULL,
        receive_count INTEGER NOT NULL DEFAULT 0,
        first_receive REAL,
        receipt TEXT,
        group_id TEXT,
        dedup_id TEXT,
        seq TEXT,
        dlq_source TEXT
    );
    CREATE INDEX sqs_messages_ready ON sqs_messages(queue_id, visible_at);
    CREATE TABLE sqs_dedup (
        queue_id INTEGER NOT NULL REFERENCES sqs_queues(id) ON DELETE CASCADE,
        dedup_key TEXT NOT NULL,
        message_id TEXT NOT NULL,
        seq TEXT,
        expires REAL NOT NULL,
        PRIMARY KEY (queue_id, dedup_key)
    );
    CREATE TABLE sqs_move_tasks (
        task_id TEXT PRIMARY KEY,
        source_arn TEXT NOT NULL,
        destination_arn TEXT,
        max_per_second INTEGER,
        status TEXT NOT NULL,
        moved INTEGER NOT NULL DEFAULT 0,
        to_move INTEGER NOT NULL,
        started REAL NOT NULL,
        failure TEXT
    );
    """
]

DEDUP_WINDOW = 300.0
MAX_BATCH = 10
BATCH_ID = re.compile(r"^[A-Za-z0-9_-]{1,80}$")
ATTRIBUTE_NAME = re.compile(r"^(?!aws\.|amazon\.)(?!\.)(?!.*\.\.)(?!.*\.$)[A-Za-z0-9_.-]{1,256}$", re.IGNORECASE)
GROUP_ID = re.compile(r"^[\x21-\x7e]{1,128}$")
VALID_BODY = re.compile("^[\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]*$")
SYSTEM_ATTRIBUTES = ("SenderId", "SentTimestamp", "ApproximateReceiveCount", "ApproximateFirstReceiveTimestamp",
                     "SequenceNumber", "MessageDeduplicationId", "MessageGroupId", "AWSTraceHeader",
                     "DeadLetterQueueSourceArn")
_RECEIPT_PREFIX = "AQEB"


@dataclass
class Queue:
    id: int
    account: str
    region: str
    name: str
    attributes: dict[str, str]
    tags: dict[str, str]
    created: float
    modified: float
    purged: float | None

    @property
    def fifo(self) -> bool:
        return self.name.endswith(".fifo")

    @property
    def arn(self) -> str:
        return f"arn:aws:sqs:{self.region}:{self.account}:{self.name}"

    def attr_int(self, name: str) -> int:
        return qattrs.as_int(self.attributes, name)

    @property
    def redrive(self) -> tuple[str, int] | None:
        raw = self.attributes.get("RedrivePolicy")
        if not raw:
            return None
        policy = json.loads(raw)
        return policy["deadLetterTargetArn"], int(policy["maxReceiveCount"])

    def url(self, base: str) -> str:
        return f"{base}/{self.account}/{self.name}"


def _invalid(message: str) -> ServiceError:
    return ServiceError("InvalidParameterValue", message)


def _missing(name: str) -> ServiceError:
    return ServiceError("MissingParameter", f"The request must contain the parameter {name}.")


class SQS(Service):
    name = "sqs"
    migrations = MIGRATIONS
    resource_types = ("AWS::SQS::Queue", "AWS::SQS::QueuePolicy")

    def __init__(self, cloud: Any) -> None:
        super().__init__(cloud)
        self.signals = cloud.signals
        self._queues: dict[tuple[str, str, str], Queue] = {}
        self._url_keys: dict[tuple[str, str], tuple[str, str, str]] = {}  # queue URL -> queue key
        self._receive_attempts: dict[tuple[int, str], tuple[float, list[dict]]] = {}
        self._moves: dict[str, asyncio.Task] = {}

    async def start(self) -> None:
        for (task_id,) in self.store.all("SELECT task_id FROM sqs_move_tasks WHERE status='RUNNING'"):
            self._moves[task_id] = asyncio.create_task(self._run_move(task_id))

    async def stop(self) -> None:
        for task in self._moves.values():
            task.cancel()

    def param_error(self, error: ParamError, protocol: str) -> ServiceError:
        if error.kind == "missing":
            return _missing(error.name)
        return _invalid(error.message)

    def rewrite_request(self, request: Any) -> None:
        """Older SDKs post query actions to the queue URL itself, without a QueueUrl."""
        m = re.match(r"^/(\d{12})/([A-Za-z0-9_.-]+)/?$", request.raw_path)
        if m is None or request.headers.get("x-amz-target"):
            return
        body = request._body or b""
        if "QueueUrl=" in request.query_string or b"QueueUrl=" in body:
            return
        url = f"{request.scheme}://{request.host}{request.raw_path}"
        from urllib.parse import quote

        extra = f"QueueUrl={quote(url, safe='')}"
        request.query_string = f"{request.query_string}&{extra}" if request.query_string else extra
        request._query = None

    # -- queues -----------------------------------------------------------------

    def _row_to_queue(self, row: tuple) -> Queue:
        qid, account, region, name, attrs, tags, created, modified, purged = row
        return Queue(qid, account, region, name, json.loads(attrs), json.loads(tags), created, modified, purged)

    def find(self, account: str, region: str, name: str) -> Queue | None:
        key = (account, region, name)
        queue = self._queues.get(key)
        if queue is None:
            row = self.store.one(
                "SELECT id, account, region, name, attributes, tags, created, modified, purged FROM sqs_queues "
                "WHERE account=? AND region=? AND name=?", key)
            if row is None:
                return None
            queue = self._queues[key] = self._row_to_queue(row)
        return queue

    def queue_by_arn(self, arn: str) -> Queue | None:
        """The queue an ARN names (used by SNS, Lambda mappings and S3 notifications)."""
        m = qattrs.QUEUE_ARN.match(arn or "")
        return self.find(m.group(2), m.group(1), m.group(3)) if m else None

    def _forget(self, queue: Queue) -> None:
        self._queues.pop((queue.account, queue.region, queue.name), None)

    def _queue(self, ctx: RequestContext, url: str) -> Queue:
        key = self._url_keys.get((ctx.region, url))
        if key is not None:
            queue = self.find(*key)
            if queue is not None:
                return queue
        if not url:
            raise _missing("QueueUrl")
        parts = urlsplit(url)
        segments = [s for s in parts.path.split("/") if s]
        region = ctx.region
        host = (parts.hostname or "").lower()
        if host.endswith(".amazonaws.com"):
            for label in host.split("."):
                if re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d", label):
                    region = label
        if len(segments) >= 2 and re.fullmatch(r"\d{12}", segments[-2]):
            account, name = segments[-2], segments[-1]
        elif len(segments) == 1 and not parts.scheme:
            account, name = ctx.account, segments[0]
        else:
            raise ServiceError("InvalidAddress", f"The address {url} is not valid for this endpoint.")
        queue = self.find(account, region, name)
        if queue is None:
            raise ServiceError("QueueDoesNotExist", "The specified queue does not exist.")
        if len(self._url_keys) > 10000:
            self._url_keys.clear()
        self._url_keys[(ctx.region, url)] = (account, region, name)
        return queue

    def create_queue(self, ctx: RequestContext, params: dict) -> dict:
        name = params["QueueName"]
        fifo = name.endswith(".fifo")
        if not qattrs.QUEUE_NAME.match(name[:-5] if fifo else name) or len(name) > 80:
            raise _invalid("Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length")
        wanted = qattrs.validate(params.get("Attributes") or {}, fifo, creating=True)
        if fifo and wanted.get("FifoQueue") != "true" and "FifoQueue" not in (params.get("Attributes") or {}):
            wanted.setdefault("FifoQueue", "true")
        if not fifo and (params.get("Attributes") or {}).get("FifoQueue", "").lower() == "true":
            raise qattrs.invalid("FifoQueue", "The queue name must end with the .fifo suffix for a FIFO queue.")
        self._check_redrive_target(ctx, wanted, f"arn:aws:sqs:{ctx.region}:{ctx.account}:{name}")
        tags = params.get("tags") or {}
        existing = self.find(ctx.account, ctx.region, name)
        if existing is not None:
            different = qattrs.differing(existing.attributes, wanted, fifo)
            if different:
                raise ServiceError("QueueNameExists",
                                   f"A queue already exists with the same name and a different value for attribute {different}")
            return {"QueueUrl": existing.url(ctx.base_url)}
        attrs = dict(qattrs.DEFAULTS, **(qattrs.FIFO_DEFAULTS if fifo else {}))
        attrs.update(wanted)
        now = self.clock.now()
        self.store.execute(
            "INSERT INTO sqs_queues(account, region, name, attributes, tags, created, modified) VALUES(?,?,?,?,?,?,?)",
            (ctx.account, ctx.region, name, json.dumps(attrs), json.dumps(tags), now, now))
        return {"QueueUrl": f"{ctx.base_url}/{ctx.account}/{name}"}

    def _check_redrive_target(self, ctx: RequestContext, attrs: dict[str, str], source_arn: str = "") -> None:
        """The dead-letter queue must exist and its RedriveAllowPolicy must let this queue use it."""
        raw = attrs.get("RedrivePolicy")
        if not raw:
            return
        target = self.queue_by_arn(json.loads(raw)["deadLetterTargetArn"])
        if target is None:
            raise qattrs.invalid("RedrivePolicy", "Dead letter target does not exist.")
        allow = target.attributes.get("RedriveAllowPolicy")
        if allow:
            policy = json.loads(allow)
            permission = policy.get("redrivePermission")
            if permission == "denyAll" or (
                    permission == "byQueue" and source_arn not in (policy.get("sourceQueueArns") or [])):
                raise qattrs.invalid("RedrivePolicy", "Queue is not allowed to use this dead-letter queue "
                                     "(its RedriveAllowPolicy denies it).")

    def get_queue_url(self, ctx: RequestContext, params: dict) -> dict:
        account = params.get("QueueOwnerAWSAccountId") or ctx.account
        queue = self.find(account, ctx.region, params["QueueName"])
        if queue is None:
            raise ServiceError("QueueDoesNotExist", "The specified queue does not exist.")
        return {"QueueUrl": queue.url(ctx.base_url)}

    def list_queues(self, ctx: RequestContext, params: dict) -> dict:
        prefix = params.get("QueueNamePrefix") or ""
        limit = params.get("MaxResults")
        if limit is not None and not 1 <= limit <= 1000:
            raise _invalid(f"Value {limit} for parameter MaxResults is invalid. Reason: Must be between 1 and 1000, if provided.")
        after = ""
        if params.get("NextToken"):
            try:
                after = base64.urlsafe_b64decode(params["NextToken"].encode()).decode()
            except (binascii.Error, UnicodeDecodeError, ValueError):
                raise _invalid("Invalid NextToken value.") from None
        rows = self.store.all(
            "SELECT name FROM sqs_queues WHERE account=? AND region=? AND name >= ? AND name > ? ORDER BY name LIMIT ?",
            (ctx.account, ctx.region, prefix, after, (limit or 1000) + 1))
        names = [n for (n,) in rows if n.startswith(prefix)]
        result: dict[str, Any] = {}
        if limit and len(names) > limit:
            names = names[:limit]
            result["NextToken"] = base64.urlsafe_b64encode(names[-1].encode()).decode()
        names = names[:1000]
        if names:
            result["QueueUrls"] = [f"{ctx.base_url}/{ctx.account}/{n}" for n in names]
        return result

    def delete_queue(self, ctx: RequestContext, params: dict) -> dict:
        queue = self._queue(ctx, params["QueueUrl"])
        self.store.execute("DELETE FROM sqs_messages WHERE queue_id=?", (queue.id,))
        self.store.execute("DELETE FROM sqs_queues WHERE id=?", (queue.id,))
        self._forget(queue)
        self.store.after_commit(lambda: self.signals.notify(("sqs", queue.id)))
        return {}

    def purge_queue(self, ctx: RequestContext, params: dict) -> dict:
        queue = self._queue(ctx, params["QueueUrl"])
        now = self.clock.now()
        if queue.purged is not None and now - queue.purged < 60:
            raise ServiceError("PurgeQueueInProgress",
                               f"Only one PurgeQueue operation on {queue.name} is allowed every 60 seconds.")
        self.store.execute("DELETE FROM sqs_messages WHERE queue_id=?", (queue.id,))
        self.store.execute("UPDATE sqs_queues SET purged=? WHERE id=?", (now, queue.id))
        self._forget(queue)
        return {}

    def get_queue_attributes(self, ctx: RequestContext, params: dict) -> dict:
        queue = self._queue(ctx, params["QueueUrl"])
        names = params.get("AttributeNames") or []
        for n in names:
            if n != "All" and n not in qattrs.ALL_NAMES:
                raise ServiceError("InvalidAttributeName", f"Unknown Attribute {n}.")
        want_all = "All" in names
        wanted = set(names)
        out: dict[str, str] = {}
        for name, value in queue.attributes.items():
            if (want_all or name in wanted) and value != "":
                out[name] = value
        computed = {"CreatedTimestamp": str(int(queue.created)), "LastModifiedTimestamp": str(int(queue.modified)),
                    "QueueArn": queue.arn}
        for name, value in computed.items():
            if want_all or name in wanted:
                out[name] = value
        counts = ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                  "ApproximateNumberOfMessagesDelayed")
        if want_all or wanted.intersection(counts):
            visible, inflight, delayed = self.counts(queue)
            for name, value in zip(counts, (visible, inflight, delayed)):
                if want_all or name in wanted:
                    out[name] = str(value)
        return {"Attributes": out} if out else {}

    def counts(self, queue: Queue) -> tuple[int, int, int]:
        """Visible, in-flight and delayed messages, as the Approximate* attributes report."""
        now = self.clock.now()
        row = self.store.one(
            "SELECT SUM(visible_at <= ?), SUM(visible_at > ? AND receive_count > 0), "
            "SUM(visible_at > ? AND receive_count = 0) FROM sqs_messages WHERE queue_id=? AND expires > ?",
            (now, now, now, queue.id, now))
        return tuple(int(v or 0) for v in row)  # type: ignore[return-value]

    def set_queue_attributes(self, ctx: RequestContext, params: dict) -> dict:
        queue = self._queue(ctx, params["QueueUrl"])
        wanted = qattrs.validate(params.get("Attributes") or {}, queue.fifo, creating=False)
        self._check_redrive_target(ctx, wanted, queue.arn)
        attrs = dict(queue.attributes)
        for name, value in wanted.items():
            if value == "" and name in ("RedrivePolicy", "Policy", "RedriveAllowPolicy", "KmsMasterKeyId"):
                attrs.pop(name, None)
            else:
                attrs[name] = value
        self.store.execute("UPDATE sqs_queues SET attributes=?, modified=? WHERE id=?",
                           (json.dumps(attrs), self.clock.now(), queue.id))
        self._forget(queue)
        self.store.after_commit(lambda: self.signals.notify(("sqs", queue.id)))
        return {}

    def tag_queue(self, ctx: RequestContext, params: dict) -> dict:
        queue = self._queue(ctx, params["QueueUrl"])
        tags = dict(queue.tags)
        tags.update(params.get("Tags") or {})
        if len(tags) > 50:
            raise _invalid("Too many tags added for queue. Queues can have at most 50 tags.")
        self._save_tags(queue, tags)
        return {}

    def untag_queue(self, ctx: RequestContext, params: dict) -> dict:
        queue = self._queue(ctx, params["QueueUrl"])
        tags = {k: v for k, v in queue.tags.items() if k not in set(params.get("TagKeys") or [])}
        self._save_tags(queue, tags)
        return {}

    def _save_tags(self, queue: Queue, tags: dict[str, str]) -> None:
        self.store.execute("UPDATE sqs_queues SET tags=? WHERE id=?", (json.dumps(tags), queue.id))
        self._forget(queue)

    def list_queue_tags(self, ctx: RequestContext, params: dict) -> dict:
        queue = self._queue(ctx, params["QueueUrl"])
        return {"Tags": queue.tags} if queue.tags else {}

    def add_permission(self, ctx: RequestContext, params: dict) -> dict:
        queue = self._queue(ctx, params["QueueUrl"])
        policy = json.loads(queue.attributes.get("Policy") or '{"Version":"2012-10-17","Statement":[]}')
        label = params["Label"]
        if any(s.get("Sid") == label for s in policy.get("Statement", [])):
            raise _invalid(f"Value {label} for parameter Label is invalid. Reason: Already exists.")
        policy.setdefault("Statement", []).append({
            "Sid": label, "Effect": "Allow",
            "Principal": {"AWS": [f"arn:aws:iam::{a}:root" for a in params["AWSAccountIds"]]},
            "Action": [f"SQS:{a}" for a in params["Actions"]], "Resource": queue.arn,
        })
        self._set_policy(queue, policy)
        return {}

    def remove_permission(self, ctx: RequestContext, params: dict) -> dict:
        queue = self._queue(ctx, params["QueueUrl"])
        policy = json.loads(queue.attributes.get("Policy") or '{"Statement":[]}')
        before = len(policy.get("Statement", []))
        policy["Statement"] = [s for s in policy.get("Statement", []) if s.get("Sid") != params["Label"]]
        if len(policy["Statement"]) == before:
            raise _invalid(f"Value {params['Label']} for parameter Label is invalid. Reason: can't find label.")
        self._set_policy(queue, policy if policy["Statement"] else None)
        return {}

    def _set_policy(self, queue: Queue, policy: dict | None) -> None:
        attrs = dict(queue.attributes)
        if policy:
            attrs["Policy"] = json.dumps(policy)
        else:
            attrs.pop("Policy", None)
        self.store.execute("UPDATE sqs_queues SET attributes=? WHERE id=?", (json.dumps(attrs), queue.id))
        self._forget(queue)

    def list_dead_letter_source_queues(self, ctx: RequestContext, params: dict) -> dict:
        queue = self._queue(ctx, params["QueueUrl"])
        urls = []
        for (name, attrs) in self.store.all(
                "SELECT name, attributes FROM sqs_queues WHERE account=? AND region=? ORDER BY name",
                (ctx.account, ctx.region)):
            policy = json.loads(attrs).get("RedrivePolicy")
            if policy and json.loads(policy)["deadLetterTargetArn"] == queue.arn:
                urls.append(f"{ctx.base_url}/{ctx.account}/{name}")
        return {"queueUrls": urls}

    # -- sending ------------------------------------------------------------------

    def send_message(self, ctx: RequestContext, params: dict) -> dict:
        queue = self._queue(ctx, params["QueueUrl"])
        entry = self._check_entry(queue, params)
        return self._send_checked(queue, entry, ctx.access_key or ctx.account)

    def send_message_batch(self, ctx: RequestContext, params: dict) -> dict:
        queue = self._queue(ctx, params["QueueUrl"])
        entries = self._check_batch(params.get("Entries") or [])
        total = sum(len(e.get("MessageBody", "").encode()) + attributes_size(e.get("MessageAttributes"))
                    for e in entries)
        if total > queue.attr_int("MaximumMessageSize"):
            raise ServiceError("BatchRequestTooLong", f"Batch requested message too long: {total} bytes.")
        ok, failed = [], []
        for entry in entries:
            try:
                checked = self._check_entry(queue, entry)
                with self.store.transaction():
                    result = self._send_checked(queue, checked, ctx.access_key or ctx.account)
            except ServiceError as exc:
                failed.append({"Id": entry["Id"], "SenderFault": True, "Code": exc.code, "Message": exc.message})
                continue
            result["Id"] = entry["Id"]
            ok.append(result)
        return {"Successful": ok, "Failed": failed}

    def _check_batch(self, entries: list[dict]) -> list[dict]:
        if not entries:
            raise ServiceError("EmptyBatchRequest", "There should be at least one SendMessageBatchRequestEntry in the request.")
        if len(entries) > MAX_BATCH:
            raise ServiceError("TooManyEntriesInBatchRequest",
                               f"Maximum number of entries per request are 10. You have sent {len(entries)}.")
        seen = set()
        for e in entries:
            if not BATCH_ID.match(e.get("Id", "")):
                raise ServiceError("InvalidBatchEntryId", "A batch entry id can only contain alphanumeric characters, "
                                   "hyphens and underscores. It can be at most 80 letters long.")
            if e["Id"] in seen:
                raise ServiceError("BatchEntryIdsNotDistinct", f"Id {e['Id']} repeated.")
            seen.add(e["Id"])
        return entries

    def _check_entry(self, queue: Queue, params: dict) -> dict:
        body = params.get("MessageBody")
        if body is None or body == "":
            raise _missing("MessageBody")
        if not VALID_BODY.match(body):
            raise ServiceError("InvalidMessageContents",
                               "Invalid characters found. Valid unicode characters are #x9 | #xA | #xD | #x20 to "
                               "#xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF")
        attrs = params.get("MessageAttributes") or {}
        self._check_message_attributes(attrs)
        limit = queue.attr_int("MaximumMessageSize")
        size = len(body.encode()) + attributes_size(attrs)
        if size > limit:
            raise _invalid(f"One or more parameters are invalid. Reason: Message must be shorter than {limit} bytes.")
        delay = params.get("DelaySeconds")
        if delay is not None:
            if queue.fifo:
                raise _invalid(f"Value {delay} for parameter DelaySeconds is invalid. Reason: The request include "
                               "parameter that is not valid for this queue type.")
            if not 0 <= delay <= 900:
                raise _invalid(f"Value {delay} for parameter DelaySeconds is invalid. Reason: DelaySeconds must be "
                               ">= 0 and <= 900.")
        group = params.get("MessageGroupId")
        dedup = params.get("MessageDeduplicationId")
        if queue.fifo:
            if not group:
                raise _missing("MessageGroupId")
            if not dedup and queue.attributes.get("ContentBasedDeduplication") != "true":
                raise _invalid("The queue should either have ContentBasedDeduplication enabled or "
                               "MessageDeduplicationId provided explicitly")
        elif dedup is not None:
            raise _invalid(f"Value {dedup} for parameter MessageDeduplicationId is invalid. Reason: The request "
                           "includes a parameter that is not valid for this queue type.")
        if group is not None and not GROUP_ID.match(group):
            raise _invalid(f"Value {group} for parameter MessageGroupId is invalid. Reason: MessageGroupId can only "
                           "include alphanumeric and punctuation characters. 1 to 128 in length.")
        if dedup is not None and not GROUP_ID.match(dedup):
            raise _invalid(f"Value {dedup} for parameter MessageDeduplicationId is invalid. Reason: "
                           "MessageDeduplicationId can only include alphanumeric and punctuation characters. "
                           "1 to 128 in length.")
        system = params.get("MessageSystemAttributes") or {}
        for name, value in system.items():
            if name != "AWSTraceHeader":
                raise _invalid(f"Message system attribute name '{name}' is invalid.")
            if value.get("DataType") != "String" or not value.get("StringValue"):
                raise _invalid("Message (user) system attribute 'AWSTraceHeader' must have DataType String "
                               "and a non-empty StringValue.")
        return {"body": body, "attributes": attrs, "delay": delay, "group": group, "dedup": dedup,
                "system": system}

    @staticmethod
    def _check_message_attributes(attrs: dict) -> None:
        if len(attrs) > 10:
            raise _invalid("Number of message attributes [%d] exceeds the allowed maximum [10]." % len(attrs))
        for name, attr in attrs.items():
            if not ATTRIBUTE_NAME.match(name):
                raise _invalid(f"Message attribute name '{name}' is invalid. Attribute name can contain A-Z, a-z, "
                               "0-9, underscore (_), hyphen (-), and period (.) characters.")
            data_type = attr.get("DataType") or ""
            base = data_type.split(".", 1)[0]
            if base not in ("String", "Number", "Binary") or len(data_type) > 256:
                raise _invalid(f"The message attribute '{name}' has an invalid message attribute type, the set of "
                               "supported type prefixes is Binary, Number, and String.")
            if "StringListValues" in attr or "BinaryListValues" in attr:
                raise _invalid(f"Message attribute list values in '{name}' are not supported.")
            if base == "Binary":
                if not attr.get("BinaryValue"):
                    raise _invalid(f"The message attribute '{name}' must contain non-empty message attribute value "
                                   f"for message attribute type '{data_type}'.")
            else:
                value = attr.get("StringValue")
                if value is None or value == "":
                    raise _invalid(f"The message attribute '{name}' must contain non-empty message attribute value "
                                   f"for message attribute type '{data_type}'.")
                if not VALID_BODY.match(value):
                    raise _invalid(f"The message attribute '{name}' contains invalid characters.")
                if base == "Number" and not re.fullmatch(r"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*", value):
                    raise _invalid(f"Can't cast the value of message (user) attribute '{name}' to a number.")

    def _send_checked(self, queue: Queue, entry: dict, sender: str) -> dict:
        message_id, seq, md5_attrs = self.enqueue(
            queue, entry["body"], entry["attributes"], entry["system"], entry["group"], entry["dedup"],
            entry["delay"], sender)
        result = {"MessageId": message_id, "MD5OfMessageBody": md5_body(entry["body"])}
        if md5_attrs:
            result["MD5OfMessageAttributes"] = md5_attrs
        if entry["system"]:
            result["MD5OfMessageSystemAttributes"] = md5_attributes(entry["system"])
        if seq:
            result["SequenceNumber"] = seq
        return result

    def enqueue(self, queue: Queue, body: str, attributes: dict | None = None, system: dict | None = None,
                group: str | None = None, dedup: str | None = None, delay: int | None = None,
                sender: str = "", message_id: str | None = None) -> tuple[str, str | None, str | None]:
        """Store one message in the current transaction: (MessageId, SequenceNumber, MD5OfMessageAttributes).

        Other services deliver through this (SNS fan-out, S3 notifications, DLQs).
        """
        now = self.clock.now()
        md5_attrs = md5_attributes(attributes) if attributes else None
        seq = None
        if queue.fifo:
            if not dedup:
                dedup = hashlib.sha256(body.encode()).hexdigest()
            key = dedup if queue.attributes.get("DeduplicationScope") != "messageGroup" else f"{group}\x00{dedup}"
            hit = self.store.one("SELECT message_id, seq, expires FROM sqs_dedup WHERE queue_id=? AND dedup_key=?",
                                 (queue.id, key))
            if hit and hit[2] > now:
                return hit[0], hit[1], md5_attrs
            counter = self.store.one("UPDATE sqs_queues SET seq=seq+1 WHERE id=? RETURNING seq", (queue.id,))[0]
            seq = f"{18000000000000000000 + counter:020d}"
            message_id = message_id or uuid4()
            self.store.execute(
                "INSERT INTO sqs_dedup(queue_id, dedup_key, message_id, seq, expires) VALUES(?,?,?,?,?) "
                "ON CONFLICT(queue_id, dedup_key) DO UPDATE SET message_id=excluded.message_id, seq=excluded.seq, "
                "expires=excluded.expires", (queue.id, key, message_id, seq, now + DEDUP_WINDOW))
        message_id = message_id or uuid4()
        if delay is None:
            delay = queue.attr_int("DelaySeconds")
        self.store.execute(
            "INSERT INTO sqs_messages(queue_id, message_id, body, md5_body, attributes, md5_attributes, "
            "system_attributes, sender, sent, visible_at, expires, group_id, dedup_id, seq) "
            "VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (queue.id, message_id, body, md5_body(body), _dump_attrs(attributes), md5_attrs,
             _dump_attrs(system), sender, now, now + delay, now + queue.attr_int("MessageRetentionPeriod"),
             group, dedup, seq))
        qid = queue.id
        self.store.after_commit(lambda: self.signals.notify(("sqs", qid)))
        return message_id, seq, md5_attrs

    # -- receiving ----------------------------------------------------------------

    async def receive_message(self, ctx: RequestContext, params: dict) -> dict:
        with self.store.transaction():
            queue = self._queue(ctx, params["QueueUrl"])
        limit = params.get("MaxNumberOfMessages", 1)
        if not 1 <= limit <= 10:
            raise _invalid(f"Value {limit} for parameter MaxNumberOfMessages is invalid. Reason: Must be between "
                           "1 and 10, if provided.")
        wait = params.get("WaitTimeSeconds")
        if wait is None:
            wait = queue.attr_int("ReceiveMessageWaitTimeSeconds")
        if not 0 <= wait <= 20:
            raise _invalid(f"Value {wait} for parameter WaitTimeSeconds is invalid. Reason: Must be >= 0 and <= 20, "
                           "if provided.")
        visibility = params.get("VisibilityTimeout")
        if visibility is not None and not 0 <= visibility <= 43200:
            raise _invalid(f"Value {visibility} for parameter VisibilityTimeout is invalid. Reason: Must be >= 0 "
                           "and <= 43200, if provided.")
        system_names = set(params.get("AttributeNames") or []) | set(params.get("MessageSystemAttributeNames") or [])
        attr_names = params.get("MessageAttributeNames") or []
        attempt = params.get("ReceiveRequestAttemptId")
        if attempt and queue.fifo:
            cached = self._receive_attempts.get((queue.id, attempt))
            if cached and cached[0] > self.clock.now():
                return {"Messages": cached[1]} if cached[1] else {}
        deadline = self.clock.now() + wait
        while True:
            with self.store.transaction():
                queue = self._queue(ctx, params["QueueUrl"])
                messages = self.receive(queue, limit, visibility, system_names, attr_names)
                next_visible = None if messages else self._next_visible(queue)
            if messages or self.clock.now() >= deadline:
                break
            until = deadline if next_visible is None else min(deadline, next_visible)
            await self.signals.wait(("sqs", queue.id), until=until)
        if attempt and queue.fifo:
            self._receive_attempts[(queue.id, attempt)] = (self.clock.now() + DEDUP_WINDOW, messages)
        return {"Messages": messages} if messages else {}

    def _next_visible(self, queue: Queue) -> float | None:
        row = self.store.one("SELECT MIN(visible_at) FROM sqs_messages WHERE queue_id=? AND visible_at > ?",
                             (queue.id, self.clock.now()))
        return row[0] if row else None

    def receive(self, queue: Queue, limit: int, visibility: int | None = None,
                system_names: set[str] | frozenset = frozenset(("All",)),
                attr_names: list[str] | tuple = ("All",)) -> list[dict]:
        """Take up to ``limit`` visible messages in the current transaction (Lambda pollers use this too)."""
        now = self.clock.now()
        vt = queue.attr_int("VisibilityTimeout") if visibility is None else visibility
        redrive = queue.redrive
        dlq = self.queue_by_arn(redrive[0]) if redrive else None
        columns = ("id, message_id, body, md5_body, attributes, md5_attributes, system_attributes, sender, sent, "
                   "receive_count, first_receive, group_id, dedup_id, seq, expires, dlq_source")
        if queue.fifo:
            rows = self.store.all(
                f"SELECT {columns} FROM sqs_messages WHERE queue_id=? AND visible_at <= ? AND group_id NOT IN "
                "(SELECT group_id FROM sqs_messages WHERE queue_id=? AND visible_at > ?) ORDER BY id LIMIT ?",
                (queue.id, now, queue.id, now, max(100, limit * 10)))
            rows = _by_group(rows, limit)
        else:
            rows = self.store.all(
                f"SELECT {columns} FROM sqs_messages WHERE queue_id=? AND visible_at <= ? "
                "ORDER BY visible_at LIMIT ?", (queue.id, now, limit + 10))
        out: list[dict] = []
        for row in rows:
            if len(out) >= limit:
                break
            (rowid, message_id, body, md5b, attrs, md5a, system, sender, sent, count, first, group, dedup, seq,
             expires, dlq_source) = row
            if expires <= now:
                self.store.execute("DELETE FROM sqs_messages WHERE id=?", (rowid,))
                continue
            if redrive and dlq is not None and count >= redrive[1]:
                self._move_to_dlq(queue, dlq, rowid)
                continue
            nonce = secrets.token_hex(8)
            self.store.execute(
                "UPDATE sqs_messages SET receive_count=receive_count+1, visible_at=?, first_receive=coalesce("
                "first_receive, ?), receipt=? WHERE id=?", (now + vt, now, nonce, rowid))
            count += 1
            first = first or now
            msg: dict[str, Any] = {
                "MessageId": message_id,
                "ReceiptHandle": _receipt(queue.id, rowid, nonce),
                "MD5OfBody": md5b,
                "Body": body,
            }
            sysattrs = {
                "SenderId": sender, "SentTimestamp": str(int(sent * 1000)), "ApproximateReceiveCount": str(count),
                "ApproximateFirstReceiveTimestamp": str(int(first * 1000)),
            }
            if queue.fifo:
                sysattrs.update({"SequenceNumber": seq, "MessageDeduplicationId": dedup, "MessageGroupId": group})
            elif group:
                sysattrs["MessageGroupId"] = group
            if system:
                trace = _load_attrs(system).get("AWSTraceHeader")
                if trace:
                    sysattrs["AWSTraceHeader"] = trace["StringValue"]
            if dlq_source:
                sysattrs["DeadLetterQueueSourceArn"] = dlq_source
            if system_names:
                if "All" not in system_names:
                    sysattrs = {k: v for k, v in sysattrs.items() if k in system_names}
                if sysattrs:
                    msg["Attributes"] = sysattrs
            if attrs and attr_names:
                picked = _pick_attributes(_load_attrs(attrs), attr_names)
                if picked:
                    msg["MessageAttributes"] = picked
                    msg["MD5OfMessageAttributes"] = md5_attributes(picked)
            out.append(msg)
        return out

    def _move_to_dlq(self, queue: Queue, dlq: Queue, rowid: int) -> None:
        self.store.execute(
            "UPDATE sqs_messages SET queue_id=?, visible_at=?, receipt=NULL, dlq_source=?, expires=? "
            "WHERE id=?",
            (dlq.id, self.clock.now(), queue.arn,
             self.clock.now() + dlq.attr_int("MessageRetentionPeriod"), rowid))
        qid = dlq.id
        self.store.after_commit(lambda: self.signals.notify(("sqs", qid)))

    # -- deleting and visibility --------------------------------------------------

    def _handle(self, queue: Queue, handle: str) -> tuple[int, str]:
        try:
            raw = base64.urlsafe_b64decode(handle[len(_RECEIPT_PREFIX):].encode())
            qid, rowid, nonce = raw.decode().split(":")
            if not handle.startswith(_RECEIPT_PREFIX) or int(qid) != queue.id:
                raise ValueError
            return int(rowid), nonce
        except (ValueError, UnicodeDecodeError, binascii.Error):
            raise ServiceError("ReceiptHandleIsInvalid",
                               f'The input receipt handle "{handle}" is not a valid receipt handle.') from None

    def delete_message(self, ctx: RequestContext, params: dict) -> dict:
        queue = self._queue(ctx, params["QueueUrl"])
        self.delete_receipt(queue, params["ReceiptHandle"])
        return {}

    def delete_receipt(self, queue: Queue, handle: str) -> None:
        """Delete by receipt handle in the current transaction (Lambda pollers use this too)."""
        rowid, nonce = self._handle(queue, handle)
        # A stale handle (the message was received again since) succeeds without deleting, as on AWS.
        self.store.execute("DELETE FROM sqs_messages WHERE id=? AND queue_id=? AND receipt=?",
                           (rowid, queue.id, nonce))

    def delete_message_batch(self, ctx: RequestContext, params: dict) -> dict:
        queue = self._queue(ctx, params["QueueUrl"])
        entries = self._check_batch(params.get("Entries") or [])
        ok, failed = [], []
        for entry in entries:
            try:
                self.delete_receipt(queue, entry["ReceiptHandle"])
                ok.append({"Id": entry["Id"]})
            except ServiceError as exc:
                failed.append({"Id": entry["Id"], "SenderFault": True, "Code": exc.code, "Message": exc.message})
        return {"Successful": ok, "Failed": failed}

    def change_message_visibility(self, ctx: RequestContext, params: dict) -> dict:
        queue = self._queue(ctx, params["QueueUrl"])
        self.change_visibility(queue, params["ReceiptHandle"], params["VisibilityTimeout"])
        return {}

    def change_visibility(self, queue: Queue, handle: str, timeout: int) -> None:
        """Set a received message's visibility timeout (0 returns it to the queue at once)."""
        rowid, nonce = self._handle(queue, handle)
        if not 0 <= timeout <= 43200:
            raise _invalid(f"Value {timeout} for parameter VisibilityTimeout is invalid. Reason: Must be >= 0 and "
                           "<= 43200, if provided.")
        now = self.clock.now()
        row = self.store.one("SELECT visible_at, first_receive FROM sqs_messages WHERE id=? AND queue_id=? AND receipt=?",
                             (rowid, queue.id, nonce))
        if row is None or row[0] <= now:
            raise _invalid(f"Value {handle} for parameter ReceiptHandle is invalid. Reason: Message does not exist "
                           "or is not available for visibility timeout change.")
        if row[1] is not None and now + timeout - row[1] > 43200:
            raise _invalid(f"Value {timeout} for parameter VisibilityTimeout is invalid. Reason: Total "
                           "VisibilityTimeout for the message is beyond the limit [43200 seconds]")
        self.store.execute("UPDATE sqs_messages SET visible_at=? WHERE id=?", (now + timeout, rowid))
        qid = queue.id
        self.store.after_commit(lambda: self.signals.notify(("sqs", qid)))

    def change_message_visibility_batch(self, ctx: RequestContext, params: dict) -> dict:
        queue = self._queue(ctx, params["QueueUrl"])
        entries = self._check_batch(params.get("Entries") or [])
        ok, failed = [], []
        for entry in entries:
            try:
                with self.store.transaction():
                    self.change_visibility(queue, entry["ReceiptHandle"], entry.get("VisibilityTimeout", 0))
                ok.append({"Id": entry["Id"]})
            except ServiceError as exc:
                failed.append({"Id": entry["Id"], "SenderFault": True, "Code": exc.code, "Message": exc.message})
        return {"Successful": ok, "Failed": failed}

    # -- DLQ redrive (message move tasks) ----------------------------------------

    def start_message_move_task(self, ctx: RequestContext, params: dict) -> dict:
        source = self.queue_by_arn(params["SourceArn"])
        if source is None:
            raise ServiceError("ResourceNotFoundException", "The resource that you specified for the SourceArn "
                               "parameter doesn't exist.")
        if not self._is_dead_letter_queue(source):
            raise _invalid("Source queue must be configured as a Dead Letter Queue.")
        destination = params.get("DestinationArn")
        if destination and self.queue_by_arn(destination) is None:
            raise ServiceError("ResourceNotFoundException", "The resource that you specified for the "
                               "DestinationArn parameter doesn't exist.")
        rate = params.get("MaxNumberOfMessagesPerSecond")
        if rate is not None and not 1 <= rate <= 500:
            raise _invalid("Value for parameter MaxNumberOfMessagesPerSecond is invalid. Reason: Must be between "
                           "1 and 500.")
        if self.store.one("SELECT 1 FROM sqs_move_tasks WHERE source_arn=? AND status='RUNNING'", (source.arn,)):
            raise ServiceError("UnsupportedOperation", "There is already a task running. Only one active task is "
                               "allowed for a source queue arn at a given time.")
        task_id = uuid4()
        to_move = self.store.one("SELECT COUNT(*) FROM sqs_messages WHERE queue_id=?", (source.id,))[0]
        self.store.execute(
            "INSERT INTO sqs_move_tasks(task_id, source_arn, destination_arn, max_per_second, status, to_move, started)"
            " VALUES(?,?,?,?,?,?,?)", (task_id, source.arn, destination, rate, "RUNNING", to_move, self.clock.now()))
        self.store.after_commit(lambda: self._moves.__setitem__(task_id, asyncio.ensure_future(self._run_move(task_id))))
        handle = base64.b64encode(json.dumps({"taskId": task_id, "sourceArn": source.arn}).encode()).decode()
        return {"TaskHandle": handle}

    def _is_dead_letter_queue(self, queue: Queue) -> bool:
        for (attrs,) in self.store.all("SELECT attributes FROM sqs_queues WHERE account=? AND region=?",
                                       (queue.account, queue.region)):
            policy = json.loads(attrs).get("RedrivePolicy")
            if policy and json.loads(policy)["deadLetterTargetArn"] == queue.arn:
                return True
        return False

    async def _run_move(self, task_id: str) -> None:
        try:
            while True:
                row = self.store.one("SELECT source_arn, destination_arn, max_per_second, status FROM "
                                     "sqs_move_tasks WHERE task_id=?", (task_id,))
                if row is None or row[3] != "RUNNING":
                    return
                source_arn, destination_arn, rate, _ = row
                batch = rate or 500
                with self.store.transaction():
                    moved = self._move_batch(task_id, source_arn, destination_arn, batch)
                if moved == 0:
                    with self.store.transaction():
                        self.store.execute("UPDATE sqs_move_tasks SET status='COMPLETED' WHERE task_id=? AND "
                                           "status='RUNNING'", (task_id,))
                    return
                await asyncio.sleep(1.0 if rate else 0)
        finally:
            self._moves.pop(task_id, None)

    def _move_batch(self, task_id: str, source_arn: str, destination_arn: str | None, limit: int) -> int:
        source = self.queue_by_arn(source_arn)
        if source is None:
            self.store.execute("UPDATE sqs_move_tasks SET status='FAILED', failure=? WHERE task_id=?",
                               ("AWS.SimpleQueueService.NonExistentQueue", task_id))
            return 0
        rows = self.store.all("SELECT id, dlq_source FROM sqs_messages WHERE queue_id=? ORDER BY id LIMIT ?",
                              (source.id, limit))
        moved = 0
        now = self.clock.now()
        for rowid, dlq_source in rows:
            target = self.queue_by_arn(destination_arn or dlq_source or "")
            if target is None:
                continue
            self.store.execute(
                "UPDATE sqs_messages SET queue_id=?, visible_at=?, receive_count=0, first_receive=NULL, receipt=NULL,"
                " dlq_source=NULL, expires=? WHERE id=?",
                (target.id, now, now + target.attr_int("MessageRetentionPeriod"), rowid))
            tid = target.id
            self.store.after_commit(lambda tid=tid: self.signals.notify(("sqs", tid)))
            moved += 1
        self.store.execute("UPDATE sqs_move_tasks SET moved=moved+? WHERE task_id=?", (moved, task_id))
        return moved

    def cancel_message_move_task(self, ctx: RequestContext, params: dict) -> dict:
        task_id = _task_id(params["TaskHandle"])
        row = self.store.one("SELECT status, moved FROM sqs_move_tasks WHERE task_id=?", (task_id,))
        if row is None or row[0] != "RUNNING":
            raise ServiceError("ResourceNotFoundException", "Task does not exist or is not running.")
        self.store.execute("UPDATE sqs_move_tasks SET status='CANCELLED' WHERE task_id=?", (task_id,))
        return {"ApproximateNumberOfMessagesMoved": row[1]}

    def list_message_move_tasks(self, ctx: RequestContext, params: dict) -> dict:
        source = self.queue_by_arn(params["SourceArn"])
        if source is None:
            raise ServiceError("ResourceNotFoundException", "The resource that you specified for the SourceArn "
                               "parameter doesn't exist.")
        limit = params.get("MaxResults", 1)
        if not 1 <= limit <= 10:
            raise _invalid("Value for parameter MaxResults is invalid. Reason: Must be between 1 and 10.")
        rows = self.store.all(
            "SELECT task_id, source_arn, destination_arn, max_per_second, status, moved, to_move, started, failure "
            "FROM sqs_move_tasks WHERE source_arn=? ORDER BY started DESC LIMIT ?", (source.arn, limit))
        results = []
        for task_id, src, dst, rate, status, moved, to_move, started, failure in rows:
            entry: dict[str, Any] = {"Status": status, "SourceArn": src, "ApproximateNumberOfMessagesMoved": moved,
                                     "ApproximateNumberOfMessagesToMove": to_move,
                                     "StartedTimestamp": int(started * 1000)}
            if status == "RUNNING":
                entry["TaskHandle"] = base64.b64encode(json.dumps({"taskId": task_id, "sourceArn": src}).encode()).decode()
            if dst:
                entry["DestinationArn"] = dst
            if rate:
                entry["MaxNumberOfMessagesPerSecond"] = rate
            if failure:
                entry["FailureReason"] = failure
            results.append(entry)
        return {"Results": results}

    def pending(self) -> dict[str, int]:
        return {"move_tasks": len(self._moves)}

    # -- template resources -------------------------------------------------------

    def create_resource(self, ctx: ResourceContext, resource_type: str, logical_id: str, props: dict) -> Provisioned:
        if resource_type == "AWS::SQS::Queue":
            return resources.create_queue(self, ctx, logical_id, props)
        resources.set_policy(self, ctx, props)
        return Provisioned(f"{ctx.stack_name}-{logical_id}")

    def update_resource(self, ctx: ResourceContext, resource_type: str, logical_id: str, physical_id: str,
                        old_props: dict, props: dict) -> Provisioned:
        if resource_type == "AWS::SQS::Queue":
            updated = resources.update_queue(self, ctx, logical_id, physical_id, old_props, props)
            if updated is not None:
                return updated
        return super().update_resource(ctx, resource_type, logical_id, physical_id, old_props, props)

    def delete_resource(self, ctx: ResourceContext, resource_type: str, physical_id: str, props: dict) -> None:
        rctx = ctx.request_context("sqs", "DeleteQueue")
        if resource_type == "AWS::SQS::Queue":
            try:
                self.delete_queue(rctx, {"QueueUrl": physical_id})
            except ServiceError:
                pass  # already gone
        else:
            resources.set_policy(self, ctx, props, remove=True)


def _task_id(handle: str) -> str:
    try:
        return json.loads(base64.b64decode(handle))["taskId"]
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise _invalid("Value for parameter TaskHandle is invalid.") from None


def _receipt(queue_id: int, rowid: int, nonce: str) -> str:
    return _RECEIPT_PREFIX + base64.urlsafe_b64encode(f"{queue_id}:{rowid}:{nonce}".encode()).decode()


def _dump_attrs(attrs: dict | None) -> str | None:
    if not attrs:
        return None
    return json.dumps({
        name: {k: (base64.b64encode(v).decode() if k == "BinaryValue" else v) for k, v in attr.items()}
        for name, attr in attrs.items()
    })


def _load_attrs(raw: str) -> dict:
    data = json.loads(raw)
    for attr in data.values():
        if "BinaryValue" in attr:
            attr["BinaryValue"] = base64.b64decode(attr["BinaryValue"])
    return data


def _pick_attributes(attrs: dict, names: list[str] | tuple) -> dict:
    if "All" in names or ".*" in names:
        return attrs
    picked = {}
    for name, attr in attrs.items():
        for want in names:
            if want == name or (want.endswith(".*") and name.startswith(want[:-1])):
                picked[name] = attr
                break
    return picked


def _by_group(rows: list[tuple], limit: int) -> list[tuple]:
    """FIFO: as many messages from one group as possible, groups in order of their oldest message."""
    groups: dict[str, list[tuple]] = {}
    for row in rows:
        groups.setdefault(row[11], []).append(row)
    out: list[tuple] = []
    for group_rows in groups.values():
        out.extend(group_rows)
        if len(out) >= limit:
            break
    return out
