"""Messages on the wire: validating what clients send, receipt handles, and how
message attributes are stored and selected."""

from __future__ import annotations

import base64
import binascii
import json
import re

from unkai.protocol import ServiceError
from unkai.services.sqs.digest import attributes_size
from unkai.services.sqs.errors import invalid, missing
from unkai.services.sqs.queues import Queue

MAX_BATCH = 10
BATCH_ID = re.compile(r"^[A-Za-z0-9_-]{1,80}$")
ATTRIBUTE_NAME = re.compile(r"^(?!aws\.|amazon\.)(?!\.)(?!.*\.\.)(?!.*\.$)[A-Za-z0-9_.-]{1,256}$", re.IGNORECASE)
GROUP_ID = re.compile(r"^[\x21-\x7e]{1,128}$")
VALID_BODY = re.compile("^[\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]*$")
RECEIPT_PREFIX = "AQEB"


def check_batch(entries: list[dict], entry_type: str = "SendMessageBatchRequestEntry") -> list[dict]:
    """AWS's batch checks; ``entry_type`` names the operation's entry shape in the empty-batch message."""
    if not entries:
        raise ServiceError("EmptyBatchRequest", f"There should be at least one {entry_type} in the request.")
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

def check_entry(queue: Queue, params: dict) -> dict:
    body = params.get("MessageBody")
    if body is None or body == "":
        raise missing("MessageBody")
    if not VALID_BODY.match(body):
        raise ServiceError("InvalidMessageContents",
                           "Invalid characters found. Valid unicode characters are #x9 | #xA | #xD | #x20 to "
                           "#xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF")
    attrs = params.get("MessageAttributes") or {}
    check_message_attributes(attrs)
    limit = queue.attr_int("MaximumMessageSize")
    size = len(body.encode()) + attributes_size(attrs)
    if size > limit:
        raise invalid(f"One or more parameters are invalid. Reason: Message must be shorter than {limit} bytes.")
    delay = params.get("DelaySeconds")
    if delay is not None:
        if queue.fifo and delay != 0:  # AWS accepts an explicit 0 on a FIFO queue
            raise invalid(f"Value {delay} for parameter DelaySeconds is invalid. Reason: The request include "
                           "parameter that is not valid for this queue type.")
        if not 0 <= delay <= 900:
            raise invalid(f"Value {delay} for parameter DelaySeconds is invalid. Reason: DelaySeconds must be "
                           ">= 0 and <= 900.")
    group = params.get("MessageGroupId")
    dedup = params.get("MessageDeduplicationId")
    if queue.fifo:
        if not group:
            raise missing("MessageGroupId")
        if not dedup and queue.attributes.get("ContentBasedDeduplication") != "true":
            raise invalid("The queue should either have ContentBasedDeduplication enabled or "
                           "MessageDeduplicationId provided explicitly")
    elif dedup is not None:
        raise invalid(f"Value {dedup} for parameter MessageDeduplicationId is invalid. Reason: The request "
                       "includes a parameter that is not valid for this queue type.")
    if group is not None and not GROUP_ID.match(group):
        raise invalid(f"Value {group} for parameter MessageGroupId is invalid. Reason: MessageGroupId can only "
                       "include alphanumeric and punctuation characters. 1 to 128 in length.")
    if dedup is not None and not GROUP_ID.match(dedup):
        raise invalid(f"Value {dedup} for parameter MessageDeduplicationId is invalid. Reason: "
                       "MessageDeduplicationId can only include alphanumeric and punctuation characters. "
                       "1 to 128 in length.")
    system = params.get("MessageSystemAttributes") or {}
    for name, value in system.items():
        if name != "AWSTraceHeader":
            raise invalid(f"Message system attribute name '{name}' is invalid.")
        if value.get("DataType") != "String" or not value.get("StringValue"):
            raise invalid("Message (user) system attribute 'AWSTraceHeader' must have DataType String "
                           "and a non-empty StringValue.")
    return {"body": body, "attributes": attrs, "delay": delay, "group": group, "dedup": dedup,
            "system": system}

def check_message_attributes(attrs: dict) -> None:
    if len(attrs) > 10:
        raise invalid("Number of message attributes [%d] exceeds the allowed maximum [10]." % len(attrs))
    for name, attr in attrs.items():
        if not ATTRIBUTE_NAME.match(name):
            raise invalid(f"Message attribute name '{name}' is invalid. Attribute name can contain A-Z, a-z, "
                           "0-9, underscore (_), hyphen (-), and period (.) characters.")
        data_type = attr.get("DataType") or ""
        base = data_type.split(".", 1)[0]
        if base not in ("String", "Number", "Binary") or len(data_type) > 256:
            raise invalid(f"The message attribute '{name}' has an invalid message attribute type, the set of "
                           "supported type prefixes is Binary, Number, and String.")
        if "StringListValues" in attr or "BinaryListValues" in attr:
            raise invalid(f"Message attribute list values in '{name}' are not supported.")
        if base == "Binary":
            if not attr.get("BinaryValue"):
                raise invalid(f"The message attribute '{name}' must contain non-empty message attribute value "
                               f"for message attribute type '{data_type}'.")
        else:
            value = attr.get("StringValue")
            if value is None or value == "":
                raise invalid(f"The message attribute '{name}' must contain non-empty message attribute value "
                               f"for message attribute type '{data_type}'.")
            if not VALID_BODY.match(value):
                raise invalid(f"The message attribute '{name}' contains invalid characters.")
            if base == "Number" and not re.fullmatch(r"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*", value):
                raise invalid(f"Can't cast the value of message (user) attribute '{name}' to a number.")

def parse_receipt(queue: Queue, handle: str) -> tuple[int, str]:
    try:
        raw = base64.urlsafe_b64decode(handle[len(RECEIPT_PREFIX):].encode())
        qid, rowid, nonce = raw.decode().split(":")
        if not handle.startswith(RECEIPT_PREFIX) or int(qid) != queue.id:
            raise ValueError
        return int(rowid), nonce
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise ServiceError("ReceiptHandleIsInvalid",
                           f'The input receipt handle "{handle}" is not a valid receipt handle.') from None

def receipt(queue_id: int, rowid: int, nonce: str) -> str:
    return RECEIPT_PREFIX + base64.urlsafe_b64encode(f"{queue_id}:{rowid}:{nonce}".encode()).decode()


def dump_attrs(attrs: dict | None) -> str | None:
    if not attrs:
        return None
    return json.dumps({
        name: {k: (base64.b64encode(v).decode() if k == "BinaryValue" else v) for k, v in attr.items()}
        for name, attr in attrs.items()
    })


def load_attrs(raw: str) -> dict:
    data = json.loads(raw)
    for attr in data.values():
        if "BinaryValue" in attr:
            attr["BinaryValue"] = base64.b64decode(attr["BinaryValue"])
    return data


def pick_attributes(attrs: dict, names: list[str] | tuple) -> dict:
    if "All" in names or ".*" in names:
        return attrs
    picked = {}
    for name, attr in attrs.items():
        for want in names:
            if want == name or (want.endswith(".*") and name.startswith(want[:-1])):
                picked[name] = attr
                break
    return picked


def by_group(rows: list[tuple], limit: int) -> list[tuple]:
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
