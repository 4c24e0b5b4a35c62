"""Amazon SQS: standard and FIFO queues over the store.

Messages are rows; a receive is one transaction that picks visible rows by the
``(queue, visible_at)`` index and pushes their visibility forward, so concurrent
receivers can never get the same message inside its visibility timeout and a
queue 100,000 deep answers as fast as an empty one. Time comes from the shared
clock; long polls wait on a signal that a send (or a clock advance) fires.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import secrets
from typing import Any
from urllib.parse import urlsplit

from unkai.feed import TRACE, trace_header
from unkai.ids import uuid4
from unkai.protocol import ParamError, ServiceError
from unkai.services import Provisioned, RequestContext, ResourceContext, Service
from unkai.services.sqs import attributes as qattrs
from unkai.services.sqs import messages, resources
from unkai.services.sqs.digest import attributes_size, md5_attributes, md5_body
from unkai.services.sqs.errors import invalid, missing
from unkai.services.sqs.moves import MoveTasks
from unkai.services.sqs.queues import Queue

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
ACTIVE_WINDOW = 6 * 3600.0  # AWS: a queue's metrics are reported while it was active in the last six hours


_OPTIONAL = ("attributes", "md5_attributes", "system_attributes", "group_id", "dedup_id", "seq")
_INSERTS: dict[tuple[bool, ...], str] = {}
_PLAIN = (False,) * len(_OPTIONAL)


def _insert_sql(present: tuple[bool, ...]) -> str:
    """The INSERT of a message naming only the optional columns it has: the others default
    to NULL, which costs less than binding None (sqlite3 sends None through its adapters)."""
    names = [name for name, has in zip(_OPTIONAL, present) if has]
    sql = _INSERTS[present] = (
        f"INSERT INTO sqs_messages(queue_id, message_id, body, md5_body, sender, sent, visible_at, expires"
        f"{''.join(', ' + n for n in names)}) VALUES(?,?,?,?,?,?,?,?{',?' * len(names)})")
    return sql


_REGIONAL_HOST = re.compile(r"^(?:sqs(?:-fips)?\.([a-z]{2}(?:-[a-z]+)+-\d)\.|([a-z]{2}(?:-[a-z]+)+-\d)\.queue\.)")


def url_region(host: str) -> str | None:
    """The region a queue URL's host names, in every form AWS has used: ``sqs.REGION.amazonaws.com``
    (today's, also ``.amazonaws.com.cn``, ``sqs.REGION.api.aws`` and ``sqs-fips.``), the legacy
    ``REGION.queue.amazonaws.com`` and ``queue.amazonaws.com`` (us-east-1), and the same shapes
    under a local suffix (``sqs.REGION.localhost``). None for a host that names no region
    (127.0.0.1, localhost): such a URL means the request's own region."""
    if host == "queue.amazonaws.com":
        return "us-east-1"
    m = _REGIONAL_HOST.match(host)
    return (m.group(1) or m.group(2)) if m else None


class SQS(Service):
    name = "sqs"
    max_body = 4 * 1024 * 1024  # 1 MiB of messages a call, percent- or JSON-encoded, with room to spare
    migrations = MIGRATIONS
    resource_types = ("AWS::SQS::Queue", "AWS::SQS::QueuePolicy")

    def __init__(self, cloud: Any) -> None:
        super().__init__(cloud)
        self.signals = cloud.signals
        self._queues: dict[tuple[str, str, str], Queue] = {}
        self._url_keys: dict[tuple[str, str], tuple[str, str, str]] = {}  # queue URL -> queue key
        self._receive_attempts: dict[tuple[int, str], tuple[float, list[dict]]] = {}
        self._active: dict[int, float] = {}  # queue id -> when it last sent, received or deleted (in memory)
        self.moves = MoveTasks(self)

    async def start(self) -> None:
        self.moves.resume()

    async def stop(self) -> None:
        self.moves.stop()

    async def pausing(self) -> None:
        self.moves.stop()
        self.moves.running.clear()

    async def resetting(self) -> None:
        self._queues.clear()
        self._url_keys.clear()
        self._receive_attempts.clear()
        self._active.clear()
        self.moves.resume()

    def param_error(self, error: ParamError, protocol: str) -> ServiceError:
        if error.kind == "missing":
            return missing(error.name)
        return invalid(error.message)

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
            raise missing("QueueUrl")
        parts = urlsplit(url)
        segments = [s for s in parts.path.split("/") if s]
        # As AWS: the queue is looked up in the region the request went to, by the account and name
        # of the URL's path; a URL whose host names another region finds nothing there
        # ("The specified queue does not exist.", AWS.SimpleQueueService.NonExistentQueue)
        region = ctx.region
        named = url_region((parts.hostname or "").lower())
        if named is not None and named != region:
            raise ServiceError("QueueDoesNotExist", "The specified queue does not exist.")
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
            raise invalid("Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length")
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
            raise invalid(f"Value {limit} for parameter MaxResults is invalid. Reason: Must be between 1 and 1000, if provided.")
        after = ""
        if params.get("NextToken"):
            try:
                after = base64.urlsafe_b64decode(params["NextToken"].encode()).decode()
            except (binascii.Error, UnicodeDecodeError, ValueError):
                raise invalid("Invalid NextToken value.") from None
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

    def in_flight(self, queue: Queue) -> dict[int, int]:
        """The messages received and not yet visible again, as {row id: receive count}: what a
        Lambda poller starting up finds in flight, from a process that a crash interrupted."""
        now = self.clock.now()
        return dict(self.store.all("SELECT id, receive_count FROM sqs_messages WHERE queue_id=? AND visible_at > ? "
                                   "AND receive_count > 0 AND expires > ?", (queue.id, now, now)))

    def still_in_flight(self, queue: Queue, seen: dict[int, int]) -> int:
        """How many of ``seen`` (from ``in_flight``) are still invisible and not received since."""
        if not seen:
            return 0
        now = self.clock.now()
        found = self.store.all(
            f"SELECT id, receive_count FROM sqs_messages WHERE id IN ({','.join('?' * len(seen))}) "
            "AND visible_at > ? AND expires > ?", (*seen, now, now))
        return sum(1 for row_id, count in found if seen.get(row_id) == count)

    def metric_samples(self, when: float) -> list[tuple[str, str, str, str, list[dict], float, str]]:
        """AWS/SQS's once-a-minute gauges per queue, as the Approximate* attributes would
        have read at ``when``: one query over all queues per clock minute, none per request."""
        out: list[tuple[str, str, str, str, list[dict], float, str]] = []
        rows = self.store.all(
            "SELECT q.id, q.modified, q.account, q.region, q.name, COUNT(m.id), SUM(m.visible_at <= ?), "
            "SUM(m.visible_at > ? AND m.receive_count > 0), SUM(m.visible_at > ? AND m.receive_count = 0), "
            "MIN(m.sent) FROM sqs_queues q "
            "LEFT JOIN sqs_messages m ON m.queue_id = q.id AND m.sent <= ? AND m.expires > ? GROUP BY q.id",
            (when, when, when, when, when))
        recent = when - ACTIVE_WINDOW
        for qid, changed, account, region, name, held, visible, hidden, delayed, oldest in rows:
            if not held and changed < recent and self._active.get(qid, 0.0) < recent:
                continue  # AWS reports a queue's gauges only while it is active (six hours)
            dims = [{"Name": "QueueName", "Value": name}]
            for metric, value in (("ApproximateNumberOfMessagesVisible", visible),
                                  ("ApproximateNumberOfMessagesNotVisible", hidden),
                                  ("ApproximateNumberOfMessagesDelayed", delayed)):
                out.append((account, region, "AWS/SQS", metric, dims, float(value or 0), "Count"))
            age = max(0.0, when - oldest) if oldest is not None else 0.0
            out.append((account, region, "AWS/SQS", "ApproximateAgeOfOldestMessage", dims, float(int(age)), "Seconds"))
        return out

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
        if not params.get("Tags"):
            raise missing("Tags")
        tags = dict(queue.tags)
        tags.update(params["Tags"])
        if len(tags) > 50:
            raise invalid(f"Too many tags added for queue {queue.name}.")
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
        # the policy AWS generates: Id "<arn>/SQSDefaultPolicy", one principal or action as a plain string
        policy = json.loads(queue.attributes.get("Policy") or json.dumps(
            {"Version": "2012-10-17", "Id": f"{queue.arn}/SQSDefaultPolicy", "Statement": []}))
        label = params["Label"]
        if any(s.get("Sid") == label for s in policy.get("Statement", [])):
            raise invalid(f"Value {label} for parameter Label is invalid. Reason: Already exists.")
        principals = [f"arn:aws:iam::{a}:root" for a in params["AWSAccountIds"]]
        actions = [f"SQS:{a}" for a in params["Actions"]]
        policy.setdefault("Statement", []).append({
            "Sid": label, "Effect": "Allow",
            "Principal": {"AWS": principals[0] if len(principals) == 1 else principals},
            "Action": actions[0] if len(actions) == 1 else actions, "Resource": queue.arn,
        })
        self._set_policy(queue, policy)
        return {}

    def remove_permission(self, ctx: RequestContext, params: dict) -> dict:
        queue = self._queue(ctx, params["QueueUrl"])
        policy = json.loads(queue.attributes.get("Policy") or '{"Statement":[]}')
        before = len(policy.get("Statement", []))
        policy["Statement"] = [s for s in policy.get("Statement", []) if s.get("Sid") != params["Label"]]
        if len(policy["Statement"]) == before:
            raise invalid(f"Value {params['Label']} for parameter Label is invalid. Reason: can't find label.")
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
        entry = messages.check_entry(queue, params)
        return self._send_checked(queue, entry, ctx.access_key or ctx.account)

    def send_message_batch(self, ctx: RequestContext, params: dict) -> dict:
        queue = self._queue(ctx, params["QueueUrl"])
        entries = messages.check_batch(params.get("Entries") or [])
        total = sum(len(e.get("MessageBody", "").encode()) + attributes_size(e.get("MessageAttributes"))
                    for e in entries)
        limit = queue.attr_int("MaximumMessageSize")
        if total > limit:
            raise ServiceError("BatchRequestTooLong", f"Batch requests cannot be longer than {limit} bytes. "
                               f"You have sent {total} bytes.")
        ok, failed = [], []
        for entry in entries:
            try:
                checked = messages.check_entry(queue, entry)
                with self.store.transaction():
                    result = self._send_checked(queue, checked, ctx.access_key or ctx.account)
            except ServiceError as exc:
                failed.append({"Id": entry["Id"], "SenderFault": True, "Code": exc.code, "Message": exc.message})
                continue
            result["Id"] = entry["Id"]
            ok.append(result)
        return {"Successful": ok, "Failed": failed}

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
        if TRACE.get() and not (system or {}).get("AWSTraceHeader"):  # a traced sender's (SNS fan-out too)
            system = {**(system or {}), "AWSTraceHeader": {"DataType": "String",
                                                             "StringValue": trace_header(TRACE.get())}}
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
        row = (queue.id, message_id, body, md5_body(body), sender, now, now + delay,
               now + queue.attr_int("MessageRetentionPeriod"))
        if not attributes and not system and group is None and dedup is None and seq is None:
            self.store.execute(_INSERTS.get(_PLAIN) or _insert_sql(_PLAIN), row)  # most deliveries: no extras
        else:
            optional = (messages.dump_attrs(attributes), md5_attrs, messages.dump_attrs(system), group, dedup, seq)
            present = tuple(v is not None for v in optional)
            self.store.execute(_INSERTS.get(present) or _insert_sql(present),
                               row + tuple(v for v in optional if v is not None))
        qid = queue.id
        self.store.after_commit(lambda: self.signals.notify(("sqs", qid)))
        self._metric(queue, "NumberOfMessagesSent")
        return message_id, seq, md5_attrs

    def enqueue_many(self, queue: Queue, bodies: list[str], sender: str = "") -> None:
        """``enqueue`` of each body as a plain message (no attributes, group or dedup id), in the
        current transaction, as one batch insert: a PutEvents that sends many events to one
        queue. Each body still gets its own message id, MD5 and NumberOfMessagesSent count."""
        if queue.fifo or TRACE.get() or len(bodies) < 2:  # the per-message path adds what these need
            for body in bodies:
                self.enqueue(queue, body, sender=sender)
            return
        now = self.clock.now()
        qid = queue.id
        visible, expires = now + queue.attr_int("DelaySeconds"), now + queue.attr_int("MessageRetentionPeriod")
        self.store.db.executemany(_INSERTS.get(_PLAIN) or _insert_sql(_PLAIN),
                                  [(qid, uuid4(), body, md5_body(body), sender, now, visible, expires)
                                   for body in bodies])
        self.store.after_commit(lambda: self.signals.notify(("sqs", qid)))
        cw = self.cloud.services.get("cloudwatch")
        if cw is not None:  # as _metric, one sample per message (its SampleCount), counted at once
            cw.count(queue.account, queue.region, "AWS/SQS", "NumberOfMessagesSent",
                     [{"Name": "QueueName", "Value": queue.name}], samples=len(bodies))
            self._active[qid] = now

    def _metric(self, queue: Queue, name: str, value: float = 1.0) -> None:
        """AWS/SQS's metric ``name`` for the queue (CloudWatch's ``count`` contract)."""
        cw = self.cloud.services.get("cloudwatch")
        if cw is not None:
            cw.count(queue.account, queue.region, "AWS/SQS", name, [{"Name": "QueueName", "Value": queue.name}], value)
            self._active[queue.id] = self.clock.now()  # for metric_samples: an active queue reports its gauges

    # -- receiving ----------------------------------------------------------------

    async def receive_message(self, ctx: RequestContext, params: dict) -> dict:
        with self.store.transaction():
            queue = self._queue(ctx, params["QueueUrl"])
        limit = params.get("MaxNumberOfMessages", 1)
        if not 1 <= limit <= 10:
            raise invalid(f"Value {limit} for parameter MaxNumberOfMessages is invalid. Reason: Must be between "
                           "1 and 10, if provided.")
        wait = params.get("WaitTimeSeconds")
        if wait is None:
            wait = queue.attr_int("ReceiveMessageWaitTimeSeconds")
        if not 0 <= wait <= 20:
            raise invalid(f"Value {wait} for parameter WaitTimeSeconds is invalid. Reason: Must be >= 0 and <= 20, "
                           "if provided.")
        visibility = params.get("VisibilityTimeout")
        if visibility is not None and not 0 <= visibility <= 43200:
            raise invalid(f"Value {visibility} for parameter VisibilityTimeout is invalid. Reason: Must be >= 0 "
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

    def has_visible(self, queue: Queue) -> bool:
        """Whether a message of the queue is visible now (Lambda's poller asks after a partial batch)."""
        return self.store.one("SELECT 1 FROM sqs_messages WHERE queue_id=? AND visible_at <= ? LIMIT 1",
                              (queue.id, self.clock.now())) is not None

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
            rows = messages.by_group(rows, limit)
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
                "ReceiptHandle": messages.receipt(queue.id, rowid, nonce),
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
                trace = messages.load_attrs(system).get("AWSTraceHeader")
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
                picked = messages.pick_attributes(messages.load_attrs(attrs), attr_names)
                if picked:
                    msg["MessageAttributes"] = picked
                    msg["MD5OfMessageAttributes"] = md5_attributes(picked)
            out.append(msg)
        if out:
            self._metric(queue, "NumberOfMessagesReceived", float(len(out)))
        return out

    def peek(self, queue: Queue, limit: int = 10) -> list[dict]:
        """The oldest ``limit`` messages as they stand, changing nothing: no receive count,
        no visibility, no dead-lettering (the dashboard shows a queue with it)."""
        now = self.clock.now()
        rows = self.store.all(
            "SELECT message_id, body, attributes, sent, receive_count, visible_at, group_id, dlq_source "
            "FROM sqs_messages WHERE queue_id=? AND expires > ? ORDER BY id LIMIT ?", (queue.id, now, limit))
        return [{"MessageId": mid, "Body": body, "MessageAttributes": messages.load_attrs(attrs) if attrs else {},
                 "SentTimestamp": sent, "ApproximateReceiveCount": count, "Visible": visible_at <= now,
                 "MessageGroupId": group, "DeadLetterQueueSourceArn": source}
                for mid, body, attrs, sent, count, visible_at, group, source in rows]

    def _move_to_dlq(self, queue: Queue, dlq: Queue, rowid: int) -> None:
        self.store.execute(
            "UPDATE sqs_messages SET queue_id=?, visible_at=?, receipt=NULL, dlq_source=?, expires=? "
            "WHERE id=?",
            (dlq.id, self.clock.now(), queue.arn,
             self.clock.now() + dlq.attr_int("MessageRetentionPeriod"), rowid))
        qid = dlq.id
        self.store.after_commit(lambda: self.signals.notify(("sqs", qid)))
        self.store.after_commit(lambda: self.cloud.feed.publish(
            "sqs.dlq", queue=queue.name, dlq=dlq.name, max_receive_count=(queue.redrive or ("", 0))[1]))

    # -- deleting and visibility --------------------------------------------------

    def delete_message(self, ctx: RequestContext, params: dict) -> dict:
        queue = self._queue(ctx, params["QueueUrl"])
        self.delete_receipt(queue, params["ReceiptHandle"])
        return {}

    def delete_receipt(self, queue: Queue, handle: str) -> None:
        """Delete by receipt handle in the current transaction (Lambda pollers use this too)."""
        rowid, nonce = messages.parse_receipt(queue, handle)
        # A stale handle (the message was received again since) succeeds without deleting, as on AWS.
        self.store.execute("DELETE FROM sqs_messages WHERE id=? AND queue_id=? AND receipt=?",
                           (rowid, queue.id, nonce))
        self._metric(queue, "NumberOfMessagesDeleted")

    def delete_message_batch(self, ctx: RequestContext, params: dict) -> dict:
        queue = self._queue(ctx, params["QueueUrl"])
        entries = messages.check_batch(params.get("Entries") or [], "DeleteMessageBatchRequestEntry")
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
        rowid, nonce = messages.parse_receipt(queue, handle)
        if not 0 <= timeout <= 43200:
            raise invalid(f"Value {timeout} for parameter VisibilityTimeout is invalid. Reason: Must be >= 0 and "
                           "<= 43200, if provided.")
        now = self.clock.now()
        row = self.store.one("SELECT visible_at, first_receive FROM sqs_messages WHERE id=? AND queue_id=? AND receipt=?",
                             (rowid, queue.id, nonce))
        if row is None or row[0] <= now:
            raise invalid(f"Value {handle} for parameter ReceiptHandle is invalid. Reason: Message does not exist "
                           "or is not available for visibility timeout change.")
        if row[1] is not None and now + timeout - row[1] > 43200:
            raise invalid(f"Value {timeout} for parameter VisibilityTimeout is invalid. Reason: Total "
                           "VisibilityTimeout for the message is beyond the limit [43200 seconds]")
        self.store.execute("UPDATE sqs_messages SET visible_at=? WHERE id=?", (now + timeout, rowid))
        qid = queue.id
        self.store.after_commit(lambda: self.signals.notify(("sqs", qid)))

    def change_message_visibility_batch(self, ctx: RequestContext, params: dict) -> dict:
        queue = self._queue(ctx, params["QueueUrl"])
        entries = messages.check_batch(params.get("Entries") or [], "ChangeMessageVisibilityBatchRequestEntry")
        ok, failed = [], []
        for entry in entries:
            try:
                with self.store.transaction():
                    self.change_visibility(queue, entry["ReceiptHandle"], entry.get("VisibilityTimeout", 0))
                ok.append({"Id": entry["Id"]})
            except ServiceError as exc:
                failed.append({"Id": entry["Id"], "SenderFault": True, "Code": exc.code, "Message": exc.message})
        return {"Successful": ok, "Failed": failed}

    # -- DLQ redrive ------------------------------------------------------------------

    def start_message_move_task(self, ctx: RequestContext, params: dict) -> dict:
        return self.moves.start(params)

    def cancel_message_move_task(self, ctx: RequestContext, params: dict) -> dict:
        return self.moves.cancel(params)

    def list_message_move_tasks(self, ctx: RequestContext, params: dict) -> dict:
        return self.moves.list(params)

    def pending(self) -> dict[str, int]:
        return {"move_tasks": len(self.moves.running)}

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


