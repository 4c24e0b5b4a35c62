"""What a publish carries and how each protocol receives it: validation of the message,
its subject and attributes (with AWS's error texts), MessageStructure=json, and the
delivered formats — the JSON envelope (SQS, HTTP/S, email-json), the Lambda event and
the email texts."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from json.encoder import encode_basestring
from typing import Any

from unkai.protocol import ServiceError
from unkai.services.sns import filters
from unkai.services.sns.attributes import invalid

MAX_MESSAGE = 256 * 1024  # the default MaximumMessageSize of a topic
ATTRIBUTE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,256}$")
DATA_TYPE = re.compile(r"^(String|Number|Binary)(\.[^\s]{1,255})?$")
SUBJECT = re.compile(r"^[^\x00-\x1f\x7f-\x9f\u2028\u2029]{1,100}$")  # UTF-8 text, no line breaks or controls
SNS_SENDER = "AIDAIT2UOQQY3AUEKVGXU"  # the SenderId of messages SNS puts in SQS queues


def invalid_value(message: str) -> ServiceError:
    return ServiceError("ParameterValueInvalid", message)


@dataclass
class Outgoing:
    """One published message, validated; formats are computed once and shared by subscribers."""

    message: str
    subject: str | None = None
    attributes: dict[str, dict] = field(default_factory=dict)
    structure: dict[str, str] | None = None
    group: str | None = None
    dedup: str | None = None
    message_id: str = ""
    timestamp: str = ""
    sequence: str | None = None
    _typed: dict | None = None
    _bodies: dict[str, Any] = field(default_factory=dict)
    _envelope_attrs: str | None = None

    def text_for(self, protocol: str) -> str:
        if self.structure is None:
            return self.message
        return self.structure.get(protocol, self.structure["default"])

    def typed_attributes(self) -> dict[str, list[Any]]:
        if self._typed is None:
            self._typed = filters.attribute_values(self.attributes)
        return self._typed

    def flat_body(self, protocol: str) -> dict[str, list[Any]] | None:
        text = self.text_for(protocol)
        if text not in self._bodies:
            self._bodies[text] = filters.flatten_body(text)
        return self._bodies[text]

    def sns_attributes(self) -> dict[str, dict[str, str]]:
        """The attributes as SNS shows them in envelopes and events: {Type, Value}."""
        out = {}
        for name, attr in self.attributes.items():
            if "BinaryValue" in attr:
                value = base64.b64encode(attr["BinaryValue"]).decode()
            else:
                value = attr.get("StringValue", "")
            out[name] = {"Type": attr["DataType"], "Value": value}
        return out

    def envelope_attributes(self) -> str:
        """The MessageAttributes member of an envelope, rendered once per message."""
        if self._envelope_attrs is None:
            lines = [f"    {_j(name)} : {json.dumps(v, ensure_ascii=False, separators=(',', ':'))}"
                     for name, v in self.sns_attributes().items()]
            self._envelope_attrs = "{\n" + ",\n".join(lines) + "\n  }"
        return self._envelope_attrs


def from_sns_attributes(attributes: dict[str, dict[str, str]]) -> dict[str, dict]:
    """The inverse of ``Outgoing.sns_attributes`` (for deliveries that run later)."""
    out: dict[str, dict] = {}
    for name, attr in attributes.items():
        if attr["Type"].startswith("Binary"):
            out[name] = {"DataType": attr["Type"], "BinaryValue": base64.b64decode(attr["Value"])}
        else:
            out[name] = {"DataType": attr["Type"], "StringValue": attr["Value"]}
    return out


def check_message(params: dict, fifo: bool, content_dedup: bool, max_size: int = MAX_MESSAGE) -> Outgoing:
    """Validate one message of a Publish or a PublishBatch entry."""
    message = params.get("Message")
    if message is None or message == "":
        raise invalid("Empty message")
    subject = params.get("Subject")
    if subject is not None and not SUBJECT.match(subject):
        raise invalid("Subject")
    attributes = params.get("MessageAttributes") or {}
    check_attributes(attributes)
    size = len(message.encode()) + attributes_size(attributes)
    if size > max_size:
        raise invalid("Message too long")
    structure = None
    kind = params.get("MessageStructure")
    if kind is not None:
        if kind != "json":
            raise invalid("MessageStructure")
        structure = parse_structure(message)
    group = params.get("MessageGroupId")
    dedup = params.get("MessageDeduplicationId")
    if fifo:
        if not group:
            raise invalid("The MessageGroupId parameter is required for FIFO topics")
        if not dedup and not content_dedup:
            raise invalid("The topic should either have ContentBasedDeduplication enabled or "
                          "MessageDeduplicationId provided explicitly")
    elif dedup is not None:
        raise invalid("MessageDeduplicationId Reason: The request includes MessageDeduplicationId parameter "
                      "that is not valid for this topic type")
    for name, value in (("MessageGroupId", group), ("MessageDeduplicationId", dedup)):
        if value is not None and not re.fullmatch(r"[\x21-\x7e]{1,128}", value):
            raise invalid(f"{name} Reason: {name} can only include alphanumeric and punctuation characters. "
                          "1 to 128 in length.")
    return Outgoing(message=message, subject=subject, attributes=attributes, structure=structure, group=group,
                    dedup=dedup)


def parse_structure(message: str) -> dict[str, str]:
    try:
        doc = json.loads(message)
    except ValueError:
        raise invalid("Message Structure - JSON message body failed to parse") from None
    if not isinstance(doc, dict):
        raise invalid("Message Structure - JSON message body failed to parse")
    texts = {k: v for k, v in doc.items() if isinstance(v, str)}  # non-string values are ignored
    if "default" not in texts:
        raise invalid("Message Structure - No default entry in JSON message body")
    return texts


def check_attributes(attributes: dict[str, dict]) -> None:
    for name, attr in attributes.items():
        check_attribute_name(name)
        data_type = attr.get("DataType") or ""
        if not DATA_TYPE.match(data_type):
            raise invalid_value(f"The message attribute '{name}' has an invalid message attribute type, the set "
                                "of supported type prefixes is Binary, Number, and String.")
        binary = data_type.startswith("Binary")
        key = "BinaryValue" if binary else "StringValue"
        if "StringValue" not in attr and "BinaryValue" not in attr:
            raise invalid_value(f"The message attribute '{name}' must contain non-empty message attribute value "
                                f"for message attribute type '{data_type}'.")
        if key not in attr:
            raise invalid_value(f"The message attribute '{name}' with type '{data_type}' must use field "
                                f"'{'Binary' if binary else 'String'}'.")
        value = attr[key]
        if value is None or value == "" or value == b"":
            raise invalid_value(f"The message attribute '{name}' must contain non-empty message attribute value "
                                f"for message attribute type '{data_type}'.")
        if data_type.startswith("Number") and not _is_number(value):
            raise invalid_value(f"Could not cast message attribute '{name}' value to number.")
        if data_type == "String.Array" and not _is_array(value):
            raise invalid_value(f"The message attribute '{name}' with type 'String.Array' must contain a JSON "
                                "array of strings, numbers, true, false or null.")


def check_attribute_name(name: str) -> None:
    if len(name) > 256:
        raise invalid_value("Length of message attribute name must be less than 256 bytes.")
    if name.startswith("."):
        raise invalid_value("Invalid message attribute name starting with character '.' was found.")
    if name.endswith("."):
        raise invalid_value("Invalid message attribute name ending with character '.' was found.")
    if not ATTRIBUTE_NAME.match(name):
        bad = next((c for c in name if not re.match(r"[A-Za-z0-9_.-]", c)), "?")
        raise invalid_value(f"Invalid non-alphanumeric character '#x{ord(bad):X}' was found in the message "
                            "attribute name. Can only include alphanumeric characters, hyphens, underscores, or dots.")
    if ".." in name:
        raise invalid_value("Message attribute name can not have successive '.' character.")
    low = name.lower()
    if (low.startswith("aws.") or low.startswith("amazon.")) and not name.startswith(("AWS.SNS.", "AWS.MM.")):
        # SNS's own documented attributes (AWS.SNS.SMS.SMSType, AWS.MM.SMS.OriginationNumber...) are allowed
        raise invalid_value(f"The message attribute name '{name}' is reserved for use by Amazon.")


def attributes_size(attributes: dict[str, dict]) -> int:
    """Name, type and value all count toward the 256 KB limit."""
    total = 0
    for name, attr in attributes.items():
        total += len(name.encode()) + len((attr.get("DataType") or "").encode())
        value = attr.get("BinaryValue", attr.get("StringValue")) or b""
        total += len(value) if isinstance(value, bytes) else len(value.encode())
    return total


def _is_number(value: str) -> bool:
    return bool(re.fullmatch(r"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*", value))


def _is_array(value: str) -> bool:
    try:
        doc = json.loads(value)
    except ValueError:
        return False
    return isinstance(doc, list) and all(v is None or isinstance(v, (str, int, float, bool)) for v in doc)


# -- delivered formats -----------------------------------------------------------------

def _j(value: Any) -> str:
    """A JSON value as SNS writes it (non-ASCII kept); strings take the fast path."""
    return encode_basestring(value) if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def render(pairs: list[tuple[str, Any]]) -> str:
    """SNS's envelope layout: ``{\\n  "Key" : value,\\n ...}``; values already rendered stay as they are."""
    lines = [f"  {_j(k)} : {v if isinstance(v, Raw) else _j(v)}" for k, v in pairs]
    return "{\n" + ",\n".join(lines) + "\n}"


class Raw(str):
    """A pre-rendered JSON value."""


@dataclass
class Head:
    """A notification's signed part, rendered once and shared by every subscriber that gets
    this text: the envelope up to the UnsubscribeURL value, and what a Lambda event needs."""

    prefix: str
    signature: str
    cert_url: str


def notification_head(msg: Outgoing, topic_arn: str, text: str, signature_version: str, signature: str,
                      cert_url: str) -> Head:
    s = encode_basestring  # every value here is a string
    sequence = "" if msg.sequence is None else f'  "SequenceNumber" : {s(msg.sequence)},\n'
    subject = "" if msg.subject is None else f'  "Subject" : {s(msg.subject)},\n'
    prefix = (f'{{\n  "Type" : "Notification",\n  "MessageId" : {s(msg.message_id)},\n{sequence}'
              f'  "TopicArn" : {s(topic_arn)},\n{subject}  "Message" : {s(text)},\n'
              f'  "Timestamp" : {s(msg.timestamp)},\n  "SignatureVersion" : {s(signature_version)},\n'
              f'  "Signature" : {s(signature)},\n  "SigningCertURL" : {s(cert_url)},\n  "UnsubscribeURL" : ')
    return Head(prefix, signature, cert_url)


def notification(head: Head, unsubscribe_url: str, msg: Outgoing) -> str:
    body = head.prefix + _j(unsubscribe_url)
    if msg.attributes:
        body += ',\n  "MessageAttributes" : ' + msg.envelope_attributes()
    return body + "\n}"


def signed_fields(kind: str, message_id: str, topic_arn: str, text: str, timestamp: str,
                  subject: str | None = None, token: str | None = None,
                  subscribe_url: str | None = None) -> dict[str, str | None]:
    return {"Type": kind, "MessageId": message_id, "TopicArn": topic_arn, "Subject": subject, "Message": text,
            "Timestamp": timestamp, "Token": token, "SubscribeURL": subscribe_url}


def confirmation(fields: dict[str, Any], signature_version: str, signature: str, cert_url: str) -> str:
    """SubscriptionConfirmation / UnsubscribeConfirmation documents."""
    return render([("Type", fields["Type"]), ("MessageId", fields["MessageId"]), ("Token", fields["Token"]),
                   ("TopicArn", fields["TopicArn"]), ("Message", fields["Message"]),
                   ("SubscribeURL", fields["SubscribeURL"]), ("Timestamp", fields["Timestamp"]),
                   ("SignatureVersion", signature_version), ("Signature", signature),
                   ("SigningCertURL", cert_url)])


def lambda_event(msg: Outgoing, topic_arn: str, subscription_arn: str, text: str, signature_version: str,
                 signature: str, cert_url: str, unsubscribe_url: str) -> str:
    """AWS's SNS -> Lambda event (note the casing: SigningCertUrl, UnsubscribeUrl)."""
    sns = {
        "Type": "Notification", "MessageId": msg.message_id, "TopicArn": topic_arn, "Subject": msg.subject,
        "Message": text, "Timestamp": msg.timestamp, "SignatureVersion": signature_version,
        "Signature": signature, "SigningCertUrl": cert_url, "UnsubscribeUrl": unsubscribe_url,
        "MessageAttributes": msg.sns_attributes(),
    }
    event = {"Records": [{"EventSource": "aws:sns", "EventVersion": "1.0",
                          "EventSubscriptionArn": subscription_arn, "Sns": sns}]}
    return json.dumps(event, ensure_ascii=False)


EMAIL_SENDER = "no-reply@sns.amazonaws.com"
EMAIL_SUBJECT = "AWS Notification Message"
CONFIRM_SUBJECT = "AWS Notification - Subscription Confirmation"


def email_from(display_name: str) -> str:
    return f'"{(display_name or "AWS Notifications").replace(chr(34), "")}" <{EMAIL_SENDER}>'


def email_text(text: str, unsubscribe_link: str) -> str:
    return (f"{text}\n\n--\nIf you wish to stop receiving notifications from this topic, please click or visit "
            f"the link below to unsubscribe:\n{unsubscribe_link}\n\nPlease do not reply directly to this email. "
            "If you have any questions or comments regarding this email, please contact us at "
            "https://aws.amazon.com/support\n")


def confirm_email(topic_arn: str, link: str) -> tuple[str, str]:
    """The subscription confirmation mail: (text, html)."""
    text = (f"You have chosen to subscribe to the topic: \n{topic_arn}\n\nTo confirm this subscription, click or "
            f"visit the link below (If this was in error no action is necessary): \n{link}\n\nPlease do not reply "
            "directly to this email. If you wish to remove yourself from receiving all future SNS subscription "
            "confirmation requests please send an email to sns-opt-out\n")
    from html import escape
    html = (f"<p>You have chosen to subscribe to the topic: <br><b>{escape(topic_arn)}</b></p>"
            "<p>To confirm this subscription, click or visit the link below (If this was in error no action is "
            f'necessary):<br><a href="{escape(link)}">Confirm subscription</a></p>'
            "<p><small>Please do not reply directly to this email. If you wish to remove yourself from receiving "
            "all future SNS subscription confirmation requests please send an email to sns-opt-out</small></p>")
    return text, html
