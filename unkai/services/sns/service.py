"""Amazon SNS: standard and FIFO topics, subscriptions and publishing over the store.

A publish and its whole fan-out are one store transaction: SQS subscribers get their
message through ``sqs.enqueue`` and every delivery that leaves the process (HTTP/S,
email, Lambda) becomes a durable job, so a publish that returned is never lost.
Topics and their subscriptions (with compiled filter policies) are cached in memory
and dropped whenever any of them changes, so a publish parses nothing it has seen.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import re
import secrets

from dataclasses import dataclass, field
from typing import Any

from unkai.ids import uuid4
from unkai.protocol import ParamError, ServiceError
from unkai.protocol.values import iso8601
from unkai.services import Provisioned, RequestContext, ResourceContext, Service
from unkai.services.sns import attributes as attrs_mod
from unkai.services.sns import messages, pages, resources
from unkai.services.sns.attributes import invalid
from unkai.services.sns.delivery import Delivery
from unkai.services.sns.filters import FilterPolicy, compile_policy
from unkai.services.sns.messages import Outgoing
from unkai.services.sns.signing import Signer, canonical
from unkai.services.sns.push import MIGRATION as PUSH_MIGRATION
from unkai.services.sns.push import PushOps
from unkai.services.sns.sms import MIGRATION as SMS_MIGRATION
from unkai.services.sns.sms import SmsOps

log = logging.getLogger("unkai.sns")

MIGRATIONS = [
    """
    CREATE TABLE sns_topics (
        id INTEGER PRIMARY KEY,
        account TEXT NOT NULL,
        region TEXT NOT NULL,
        name TEXT NOT NULL,
        attributes TEXT NOT NULL,
        tags TEXT NOT NULL DEFAULT '[]',
        data_protection TEXT,
        created REAL NOT NULL,
        seq INTEGER NOT NULL DEFAULT 0,
        deleted_subscriptions INTEGER NOT NULL DEFAULT 0,
        UNIQUE(account, region, name)
    );
    CREATE TABLE sns_subscriptions (
        id INTEGER PRIMARY KEY,
        arn TEXT NOT NULL UNIQUE,
        topic_id INTEGER NOT NULL REFERENCES sns_topics(id) ON DELETE CASCADE,
        protocol TEXT NOT NULL,
        endpoint TEXT NOT NULL,
        owner TEXT NOT NULL,
        attributes TEXT NOT NULL DEFAULT '{}',
        pending INTEGER NOT NULL,
        authenticated INTEGER NOT NULL DEFAULT 0,
        auth_unsubscribe INTEGER NOT NULL DEFAULT 0,
        created REAL NOT NULL
    );
    CREATE INDEX sns_subscriptions_topic ON sns_subscriptions(topic_id);
    CREATE TABLE sns_tokens (
        token TEXT PRIMARY KEY,
        topic_arn TEXT NOT NULL,
        subscription_arn TEXT NOT NULL,
        expires REAL NOT NULL,
        restore TEXT
    );
    CREATE TABLE sns_dedup (
        topic_id INTEGER NOT NULL REFERENCES sns_topics(id) ON DELETE CASCADE,
        dedup_key TEXT NOT NULL,
        message_id TEXT NOT NULL,
        seq TEXT,
        expires REAL NOT NULL,
        PRIMARY KEY (topic_id, dedup_key)
    );
    """,
    SMS_MIGRATION,  # SMS attributes and the opt-out list (sms.py)
    PUSH_MIGRATION,  # platform applications, endpoints and the push outbox (push.py)
]

DEDUP_WINDOW = 300.0
DEDUP_SWEEP = 1000  # FIFO publishes between sweeps of expired deduplication ids
TOKEN_LIFETIME = 3 * 24 * 3600.0
PAGE = 100
MAX_TAGS = 50
MAX_BATCH = 10
BATCH_ID = re.compile(r"^[A-Za-z0-9_-]{1,80}$")
LAMBDA_ARN = re.compile(r"^arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:function:[A-Za-z0-9_-]{1,140}(:[A-Za-z0-9$_-]+)?$")
FIREHOSE_ARN = re.compile(r"^arn:aws[a-z-]*:firehose:[a-z0-9-]+:\d{12}:deliverystream/.+$")
PHONE = re.compile(r"^\+?[1-9]\d{1,14}$")
CONFIRM_TEXT = ("You have chosen to subscribe to the topic {topic}.\n"
                "To confirm the subscription, visit the SubscribeURL included in this message.")
UNSUBSCRIBE_TEXT = ("You have chosen to deactivate subscription {sub}.\n"
                    "To cancel this operation and restore the subscription, visit the SubscribeURL included in "
                    "this message.")


@dataclass
class Topic:
    id: int
    account: str
    region: str
    name: str
    attributes: dict[str, str]
    tags: list[dict[str, str]]
    created: float
    deleted: int
    arn: str = ""

    def __post_init__(self) -> None:
        self.arn = f"arn:aws:sns:{self.region}:{self.account}:{self.name}"

    @property
    def fifo(self) -> bool:
        return self.attributes.get("FifoTopic") == "true"

    @property
    def content_dedup(self) -> bool:
        return self.attributes.get("ContentBasedDeduplication") == "true"

    @property
    def signature_version(self) -> str:
        return self.attributes.get("SignatureVersion") or "1"

    @property
    def display_name(self) -> str:
        return self.attributes.get("DisplayName", "")

    @property
    def max_size(self) -> int:
        return int(self.attributes.get("MaximumMessageSize") or attrs_mod.DEFAULT_SIZE)


@dataclass
class Subscription:
    id: int
    arn: str
    topic: Topic
    protocol: str
    endpoint: str
    owner: str
    attributes: dict[str, str]
    pending: bool
    authenticated: bool
    auth_unsubscribe: bool
    raw: bool = False
    filter: FilterPolicy | None = None
    dead_letter: str | None = None
    _http: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.raw = self.attributes.get("RawMessageDelivery") == "true"
        text = self.attributes.get("FilterPolicy")
        if text:
            try:
                self.filter = compile_policy(text, self.attributes.get("FilterPolicyScope") or "MessageAttributes")
            except ServiceError as exc:  # stored by an older unkai that accepted it: deliver nothing
                log.warning("sns: the filter policy of %s no longer compiles (%s)", self.arn, exc.message)
                self.filter = FilterPolicy(text, "MessageAttributes", [])
        redrive = self.attributes.get("RedrivePolicy")
        if redrive:
            self.dead_letter = json.loads(redrive).get("deadLetterTargetArn")

    def http_policy(self) -> attrs_mod.HttpPolicy:
        if self._http is None:
            self._http = attrs_mod.http_policy(self.topic.attributes.get("DeliveryPolicy"),
                                               self.attributes.get("DeliveryPolicy"), self.protocol)
        return self._http


def _parse_arn(arn: Any, param: str) -> tuple[str, str, str]:
    """(region, account, resource) of an SNS ARN, or AWS's InvalidParameter."""
    parts = arn.split(":") if isinstance(arn, str) else []
    if len(parts) < 6 or parts[0] != "arn":
        raise invalid(f"{param} Reason: An ARN must have at least 6 elements, not {len(parts)}")
    if parts[2] != "sns" or not parts[3] or not parts[4]:
        raise invalid(param)
    return parts[3], parts[4], ":".join(parts[5:])


def _camel(path: str) -> str:
    return ".".join(p[:1].lower() + p[1:] for p in path.split("."))


def _page_token(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"unkai:{last_id}".encode()).decode()


def _after(token: str | None) -> int:
    if not token:
        return 0
    try:
        prefix, _, value = base64.urlsafe_b64decode(token.encode()).decode().partition(":")
        if prefix != "unkai":
            raise ValueError
        return int(value)
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise invalid("NextToken") from None


class SNS(SmsOps, PushOps, Service):
    name = "sns"
    serves_routes = True  # the signing certificate, confirmation and unsubscribe pages, SMS opt-out
    migrations = MIGRATIONS
    resource_types = resources.TYPES
    anonymous_operations = frozenset({"ConfirmSubscription", "Unsubscribe"})  # the links in messages and mail

    def __init__(self, cloud: Any) -> None:
        super().__init__(cloud)
        self.signer = Signer(self.store, cloud.sealer)
        self.delivery = Delivery(self)
        self._topics: dict[str, Topic] = {}
        self._subs: dict[int, list[Subscription]] = {}
        self._caching = True

    async def start(self) -> None:
        await self.signer.prepare()
        self.delivery.start()
        pages.register(self)
        self.start_sms()
        self.start_push()

    async def stop(self) -> None:
        await self.delivery.stop()

    async def resetting(self) -> None:
        self._resume_caching()

    def param_error(self, error: ParamError, protocol: str) -> ServiceError:
        if error.kind == "missing":
            return ServiceError("ValidationError", f"1 validation error detected: Value null at '{_camel(error.name)}' "
                                "failed to satisfy constraint: Member must not be null")
        return invalid(error.name)

    # -- the cache ------------------------------------------------------------------

    def _changed(self) -> None:
        """A topic or subscription changed: drop what is cached, and cache nothing more
        until this transaction commits (so a rollback can never leave a stale entry)."""
        self._topics.clear()
        self._subs.clear()
        self._caching = False
        self.store.after_commit(self._resume_caching)

    def _resume_caching(self) -> None:
        self._topics.clear()
        self._subs.clear()
        self._caching = True

    def _row_topic(self, row: tuple) -> Topic:
        tid, account, region, name, attributes, tags, created, deleted = row
        return Topic(tid, account, region, name, json.loads(attributes), json.loads(tags), created, deleted)

    def find_topic(self, account: str, region: str, name: str) -> Topic | None:
        arn = f"arn:aws:sns:{region}:{account}:{name}"
        topic = self._topics.get(arn)
        if topic is None:
            row = self.store.one(
                "SELECT id, account, region, name, attributes, tags, created, deleted_subscriptions FROM sns_topics "
                "WHERE account=? AND region=? AND name=?", (account, region, name))
            if row is None:
                return None
            topic = self._row_topic(row)
            if self._caching:
                self._topics[arn] = topic
        return topic

    def topic_by_arn(self, arn: str) -> Topic | None:
        """The topic an ARN names, in the ARN's own account and region."""
        topic = self._topics.get(arn)
        if topic is not None:
            return topic
        parts = arn.split(":") if isinstance(arn, str) else []
        if len(parts) != 6 or parts[2] != "sns":
            return None
        return self.find_topic(parts[4], parts[3], parts[5])

    def _topic(self, arn: Any, param: str = "TopicArn") -> Topic:
        topic = self._topics.get(arn)
        if topic is None:
            region, account, name = _parse_arn(arn, param)
            topic = self.find_topic(account, region, name)
            if topic is None:
                raise ServiceError("NotFound", "Topic does not exist")
        return topic

    def subscriptions(self, topic: Topic) -> list[Subscription]:
        subs = self._subs.get(topic.id)
        if subs is None:
            rows = self.store.all(
                "SELECT id, arn, protocol, endpoint, owner, attributes, pending, authenticated, auth_unsubscribe "
                "FROM sns_subscriptions WHERE topic_id=? ORDER BY id", (topic.id,))
            subs = [self._row_subscription(row, topic) for row in rows]
            if self._caching:
                self._subs[topic.id] = subs
        return subs

    @staticmethod
    def _row_subscription(row: tuple, topic: Topic) -> Subscription:
        sid, arn, protocol, endpoint, owner, attributes, pending, authenticated, auth_unsub = row
        return Subscription(sid, arn, topic, protocol, endpoint, owner, json.loads(attributes), bool(pending),
                            bool(authenticated), bool(auth_unsub))

    def subscription(self, arn: str) -> Subscription | None:
        row = self.store.one("SELECT topic_id FROM sns_subscriptions WHERE arn=?", (arn,))
        if row is None:
            return None
        topic_row = self.store.one(
            "SELECT id, account, region, name, attributes, tags, created, deleted_subscriptions FROM sns_topics "
            "WHERE id=?", (row[0],))
        topic = self.topic_by_arn(self._row_topic(topic_row).arn)
        return next((s for s in self.subscriptions(topic) if s.arn == arn), None) if topic else None

    def _subscription(self, arn: Any) -> Subscription:
        if not isinstance(arn, str) or len(arn.split(":")) < 6:
            raise invalid("SubscriptionArn")
        sub = self.subscription(arn)
        if sub is None:
            raise ServiceError("NotFound", "Subscription does not exist")
        return sub

    # -- topics ---------------------------------------------------------------------

    def create_topic(self, ctx: RequestContext, params: dict) -> dict:
        name = params["Name"]
        given = params.get("Attributes") or {}
        fifo = str(given.get("FifoTopic", "")).lower() == "true"
        attrs_mod.check_topic_name(name, fifo)
        wanted = {k: attrs_mod.check_topic_attribute(k, v, fifo, creating=True) for k, v in given.items()}
        tags = params.get("Tags") or []
        _check_tags(tags)
        existing = self.find_topic(ctx.account, ctx.region, name)
        if existing is not None:
            current = dict(attrs_mod.topic_defaults(existing.fifo), **existing.attributes)
            if not fifo and existing.fifo:
                current.pop("FifoTopic", None)
            for key, value in wanted.items():
                if key == "FifoTopic" and value == "false" and not existing.fifo:
                    continue
                if current.get(key, "") != value:
                    raise invalid("Attributes Reason: Topic already exists with different attributes")
            if any(tag not in existing.tags for tag in tags):
                raise invalid("Tags Reason: Topic already exists with different tags")
            return {"TopicArn": existing.arn}
        stored = {k: v for k, v in wanted.items() if v != "" or k == "DisplayName"}
        stored.pop("FifoTopic", None)
        if fifo:
            stored["FifoTopic"] = "true"
            stored.setdefault("ContentBasedDeduplication", "false")
        self.store.execute(
            "INSERT INTO sns_topics(account, region, name, attributes, tags, data_protection, created) "
            "VALUES(?,?,?,?,?,?,?)", (ctx.account, ctx.region, name, json.dumps(stored), json.dumps(tags),
                                      params.get("DataProtectionPolicy"), self.clock.now()))
        self._changed()
        return {"TopicArn": f"arn:aws:sns:{ctx.region}:{ctx.account}:{name}"}

    def delete_topic(self, ctx: RequestContext, params: dict) -> dict:
        region, account, name = _parse_arn(params["TopicArn"], "TopicArn")
        topic = self.find_topic(account, region, name)
        if topic is not None:  # deleting a topic that does not exist is not an error
            self.store.execute("DELETE FROM sns_topics WHERE id=?", (topic.id,))
            self._changed()
        return {}

    def list_topics(self, ctx: RequestContext, params: dict) -> dict:
        after = _after(params.get("NextToken"))
        rows = self.store.all("SELECT id, name FROM sns_topics WHERE account=? AND region=? AND id > ? ORDER BY id "
                              "LIMIT ?", (ctx.account, ctx.region, after, PAGE + 1))
        result: dict[str, Any] = {"Topics": [{"TopicArn": f"arn:aws:sns:{ctx.region}:{ctx.account}:{n}"}
                                             for _, n in rows[:PAGE]]}
        if len(rows) > PAGE:
            result["NextToken"] = _page_token(rows[PAGE - 1][0])
        return result

    def get_topic_attributes(self, ctx: RequestContext, params: dict) -> dict:
        topic = self._topic(params["TopicArn"])
        subs = self.subscriptions(topic)
        pending = sum(1 for s in subs if s.pending)
        a = topic.attributes
        out = {
            "Policy": a.get("Policy") or attrs_mod.default_policy(topic.arn, topic.account),
            "Owner": topic.account,
            "SubscriptionsPending": str(pending),
            "TopicArn": topic.arn,
            "EffectiveDeliveryPolicy": attrs_mod.effective_topic_policy(a.get("DeliveryPolicy")),
            "SubscriptionsConfirmed": str(len(subs) - pending),
            "DisplayName": a.get("DisplayName", ""),
            "SubscriptionsDeleted": str(topic.deleted),
        }
        for key, value in a.items():
            if key not in out and value != "":
                out[key] = value
        if topic.fifo:
            out.setdefault("FifoThroughputScope", "Topic")
            if a.get("ArchivePolicy"):
                out["BeginningArchiveTime"] = iso8601(topic.created)
        return {"Attributes": out}

    def set_topic_attributes(self, ctx: RequestContext, params: dict) -> dict:
        topic = self._topic(params["TopicArn"])
        name = params["AttributeName"]
        value = attrs_mod.check_topic_attribute(name, params.get("AttributeValue"), topic.fifo, creating=False)
        if name == "MaximumMessageSize" and int(value) > attrs_mod.DEFAULT_SIZE:
            subs = self.subscriptions(topic)
            if len(subs) > attrs_mod.MAX_LARGE_SUBSCRIPTIONS or any(
                    s.protocol not in attrs_mod.LARGE_PROTOCOLS for s in subs):
                raise invalid("MaximumMessageSize Reason: a topic with a MaximumMessageSize above 262144 can have "
                              "at most 100 subscriptions, each of them sqs, firehose or lambda")
        self._save_topic_attributes(topic, {name: value})
        return {}

    def _save_topic_attributes(self, topic: Topic, changes: dict[str, str]) -> None:
        stored = dict(topic.attributes)
        for name, value in changes.items():
            if value == "" and name != "DisplayName":
                stored.pop(name, None)
            else:
                stored[name] = value
        self.store.execute("UPDATE sns_topics SET attributes=? WHERE id=?", (json.dumps(stored), topic.id))
        self._changed()

    def add_permission(self, ctx: RequestContext, params: dict) -> dict:
        topic = self._topic(params["TopicArn"])
        label = params["Label"]
        policy, statements = self._policy(topic)
        if any(s.get("Sid") == label for s in statements):
            raise invalid("Statement already exists")
        accounts = [f"arn:aws:iam::{a}:root" for a in params["AWSAccountId"]]
        actions = [f"SNS:{a}" for a in params["ActionName"]]
        statements.append({"Sid": label, "Effect": "Allow",
                           "Principal": {"AWS": accounts[0] if len(accounts) == 1 else accounts},
                           "Action": actions[0] if len(actions) == 1 else actions, "Resource": topic.arn})
        self._save_topic_attributes(topic, {"Policy": json.dumps(policy, separators=(",", ":"))})
        return {}

    def remove_permission(self, ctx: RequestContext, params: dict) -> dict:
        topic = self._topic(params["TopicArn"])
        policy, statements = self._policy(topic)
        kept = [s for s in statements if s.get("Sid") != params["Label"]]
        if len(kept) != len(statements):
            policy["Statement"] = kept
            self._save_topic_attributes(topic, {"Policy": json.dumps(policy, separators=(",", ":"))})
        return {}

    @staticmethod
    def _policy(topic: Topic) -> tuple[dict, list[dict]]:
        """The topic's access policy and its statements (a lone statement object becomes a list)."""
        policy = json.loads(topic.attributes.get("Policy") or attrs_mod.default_policy(topic.arn, topic.account))
        statements = policy.get("Statement")
        if not isinstance(statements, list):
            statements = [statements]
        policy["Statement"] = [st for st in statements if isinstance(st, dict)]
        return policy, policy["Statement"]

    def get_data_protection_policy(self, ctx: RequestContext, params: dict) -> dict:
        topic = self._topic(params["ResourceArn"], "ResourceArn")
        row = self.store.one("SELECT data_protection FROM sns_topics WHERE id=?", (topic.id,))
        return {"DataProtectionPolicy": row[0]} if row and row[0] else {}

    def put_data_protection_policy(self, ctx: RequestContext, params: dict) -> dict:
        topic = self._topic(params["ResourceArn"], "ResourceArn")
        policy = params["DataProtectionPolicy"]
        try:
            json.loads(policy)
        except ValueError:
            raise invalid("DataProtectionPolicy") from None
        self.store.execute("UPDATE sns_topics SET data_protection=? WHERE id=?", (policy, topic.id))
        return {}

    # -- tags -----------------------------------------------------------------------

    def _tagged(self, arn: Any) -> Topic:
        topic = self.topic_by_arn(arn) if isinstance(arn, str) else None
        if topic is None:
            raise ServiceError("ResourceNotFound", "Resource does not exist")
        return topic

    def tag_resource(self, ctx: RequestContext, params: dict) -> dict:
        topic = self._tagged(params["ResourceArn"])
        new = params["Tags"]
        _check_tags(new)
        tags = {t["Key"]: t["Value"] for t in topic.tags}
        tags.update({t["Key"]: t["Value"] for t in new})
        if len(tags) > MAX_TAGS:
            raise ServiceError("TagLimitExceeded", "Could not complete request: tag quota of per resource exceeded")
        self._save_tags(topic, tags)
        return {}

    def untag_resource(self, ctx: RequestContext, params: dict) -> dict:
        topic = self._tagged(params["ResourceArn"])
        drop = set(params["TagKeys"])
        self._save_tags(topic, {t["Key"]: t["Value"] for t in topic.tags if t["Key"] not in drop})
        return {}

    def _save_tags(self, topic: Topic, tags: dict[str, str]) -> None:
        self.store.execute("UPDATE sns_topics SET tags=? WHERE id=?",
                           (json.dumps([{"Key": k, "Value": v} for k, v in tags.items()]), topic.id))
        self._changed()

    def list_tags_for_resource(self, ctx: RequestContext, params: dict) -> dict:
        return {"Tags": self._tagged(params["ResourceArn"]).tags}

    # -- subscriptions --------------------------------------------------------------

    def subscribe(self, ctx: RequestContext, params: dict) -> dict:
        topic = self._topic(params["TopicArn"])
        protocol = params["Protocol"]
        endpoint = params.get("Endpoint") or ""
        given = params.get("Attributes") or {}
        self._check_endpoint(topic, protocol, endpoint, given)
        wanted = {k: attrs_mod.check_subscription_attribute(k, v, protocol, topic.fifo, endpoint, subscribe_call=True)
                  for k, v in given.items()}
        if wanted.get("FilterPolicy"):
            compile_policy(wanted["FilterPolicy"], wanted.get("FilterPolicyScope") or "MessageAttributes",
                           subscribe_call=True)
        existing = next((s for s in self.subscriptions(topic) if s.protocol == protocol and s.endpoint == endpoint),
                        None)
        if existing is not None:
            if any(existing.attributes.get(k, "") != v for k, v in wanted.items()):
                raise invalid("Attributes Reason: Subscription already exists with different attributes")
            if existing.pending:
                self._ask_confirmation(ctx.base_url, existing)
                return {"SubscriptionArn": existing.arn if params.get("ReturnSubscriptionArn")
                        else "pending confirmation"}
            return {"SubscriptionArn": existing.arn}
        stored = {k: v for k, v in wanted.items() if v != ""}
        principal = self._caller_arn(ctx)
        if principal:  # AWS reports who subscribed as SubscriptionPrincipal
            stored["SubscriptionPrincipal"] = principal
        sub = self._add_subscription(topic, protocol, endpoint, ctx.account, stored)
        if sub.pending:
            self._ask_confirmation(ctx.base_url, sub)
            if not params.get("ReturnSubscriptionArn"):
                return {"SubscriptionArn": "pending confirmation"}
        return {"SubscriptionArn": sub.arn}

    def _caller_arn(self, ctx: RequestContext) -> str:
        try:
            return self.cloud.service("sts").identity_of(ctx).arn
        except (KeyError, AttributeError):  # no STS in this cloud
            return f"arn:aws:iam::{ctx.account}:root"

    def _check_endpoint(self, topic: Topic, protocol: str, endpoint: str, given: dict) -> None:
        if protocol not in attrs_mod.PROTOCOLS:
            raise invalid(f"Amazon SNS does not support this protocol string: {protocol}")
        if topic.fifo and protocol != "sqs":
            raise invalid(f"Invalid protocol type: {protocol}")
        if topic.max_size > attrs_mod.DEFAULT_SIZE and (protocol not in attrs_mod.LARGE_PROTOCOLS or len(
                self.subscriptions(topic)) >= attrs_mod.MAX_LARGE_SUBSCRIPTIONS):
            raise invalid(f"Protocol Reason: a topic with a MaximumMessageSize above 262144 accepts at most 100 "
                          f"subscriptions, each of them sqs, firehose or lambda; not {protocol}")
        if not endpoint:
            raise invalid("Endpoint")
        if protocol in ("http", "https"):
            if not endpoint.lower().startswith(f"{protocol}://") or len(endpoint) <= len(protocol) + 3:
                raise invalid("Endpoint must match the specified protocol")
        elif protocol in ("email", "email-json"):
            if not re.fullmatch(r"[^@\s]+@[^@\s]+", endpoint):
                raise invalid("Email address")
        elif protocol == "sqs":
            if not attrs_mod.QUEUE_ARN.match(endpoint):
                raise invalid("SQS endpoint ARN")
            if endpoint.endswith(".fifo") and not topic.fifo:
                raise invalid("Invalid parameter: Endpoint Reason: FIFO SQS Queues can not be subscribed to standard "
                              "SNS topics")
        elif protocol == "lambda":
            if not LAMBDA_ARN.match(endpoint):
                raise invalid("Lambda endpoint ARN")
        elif protocol == "sms":
            if not PHONE.match(endpoint):
                raise ServiceError("InvalidParameter", f"Invalid SMS endpoint: {endpoint}")
        elif protocol == "application":
            if not self.endpoint_exists(endpoint):
                raise invalid(f"Endpoint Reason: Endpoint does not exist for endpoint arn{endpoint}")
        elif protocol == "firehose":
            if not FIREHOSE_ARN.match(endpoint):
                raise invalid("Firehose endpoint ARN")
            if not given.get("SubscriptionRoleArn"):
                raise invalid("Attributes Reason: SubscriptionRoleArn must be set for firehose subscriptions")

    def _add_subscription(self, topic: Topic, protocol: str, endpoint: str, owner: str,
                          attributes: dict[str, str], pending: bool | None = None) -> Subscription:
        arn = f"{topic.arn}:{uuid4()}"
        if pending is None:
            pending = protocol in ("http", "https", "email", "email-json") or (
                protocol == "sqs" and endpoint.split(":")[4] != topic.account)
        self.store.execute(
            "INSERT INTO sns_subscriptions(arn, topic_id, protocol, endpoint, owner, attributes, pending, "
            "authenticated, created) VALUES(?,?,?,?,?,?,?,?,?)",
            (arn, topic.id, protocol, endpoint, owner, json.dumps(attributes), int(pending), int(not pending),
             self.clock.now()))
        self._changed()
        sub = self.subscription(arn)
        assert sub is not None
        return sub

    def _new_token(self, topic_arn: str, subscription_arn: str, restore: dict | None = None) -> str:
        token = secrets.token_hex(64)
        self.store.execute("DELETE FROM sns_tokens WHERE expires < ?", (self.clock.now(),))
        self.store.execute("INSERT INTO sns_tokens(token, topic_arn, subscription_arn, expires, restore) "
                           "VALUES(?,?,?,?,?)", (token, topic_arn, subscription_arn,
                                                 self.clock.now() + TOKEN_LIFETIME,
                                                 json.dumps(restore) if restore else None))
        return token

    def _ask_confirmation(self, base: str, sub: Subscription) -> None:
        """Send the SubscriptionConfirmation the endpoint must answer (HTTP/S, email, another account's queue)."""
        topic = sub.topic
        token = self._new_token(topic.arn, sub.arn)
        fields = messages.signed_fields("SubscriptionConfirmation", uuid4(), topic.arn,
                                        CONFIRM_TEXT.format(topic=topic.arn), iso8601(self.clock.now()),
                                        token=token, subscribe_url=self.subscribe_url(base, topic.arn, token))
        if sub.protocol in ("http", "https", "email", "email-json"):
            self.delivery.enqueue(sub, base, fields)
        elif sub.protocol == "sqs":
            queue = self.cloud.service("sqs").queue_by_arn(sub.endpoint)
            if queue is not None:
                body = messages.confirmation(fields, topic.signature_version,
                                             self.sign(fields, topic.signature_version), self.cert_url(base))
                self.cloud.service("sqs").enqueue(queue, body, sender=messages.SNS_SENDER)

    def confirm_subscription(self, ctx: RequestContext, params: dict) -> dict:
        authenticate = str(params.get("AuthenticateOnUnsubscribe") or "").lower() == "true"
        arn = self.confirm(params["TopicArn"], params["Token"], bool(ctx.access_key), authenticate)
        return {"SubscriptionArn": arn}

    def confirm(self, topic_arn: Any, token: Any, authenticated: bool = False, auth_unsubscribe: bool = False) -> str:
        """Confirm (or, with an unsubscribe token, restore) a subscription; its ARN."""
        try:
            _parse_arn(topic_arn, "Topic")
        except ServiceError:
            raise invalid("Topic") from None
        row = self.store.one("SELECT topic_arn, subscription_arn, expires, restore FROM sns_tokens WHERE token=?",
                             (token,))
        if row is None or row[0] != topic_arn or row[2] < self.clock.now():
            raise invalid("Token")
        sub = self.subscription(row[1])
        if sub is None:
            topic = self.topic_by_arn(topic_arn)
            if not row[3] or topic is None:
                raise invalid("Token")
            saved = json.loads(row[3])
            sub = self._add_subscription(topic, saved["protocol"], saved["endpoint"], saved["owner"],
                                         saved["attributes"], pending=False)
            return sub.arn
        if sub.pending:
            self.store.execute("UPDATE sns_subscriptions SET pending=0, authenticated=?, auth_unsubscribe=? "
                               "WHERE id=?", (int(authenticated), int(auth_unsubscribe and authenticated), sub.id))
            self._changed()
        return sub.arn

    def unsubscribe(self, ctx: RequestContext, params: dict) -> dict:
        arn = params["SubscriptionArn"]
        parts = arn.split(":")
        if len(parts) < 6:
            raise invalid(f"SubscriptionArn Reason: An ARN must have at least 6 elements, not {len(parts)}")
        if len(parts) != 7 or parts[2] != "sns":
            raise invalid("SubscriptionId")
        sub = self.subscription(arn)
        if sub is None:
            return {}  # unsubscribing twice is not an error
        if sub.auth_unsubscribe and not ctx.access_key:
            raise ServiceError("AuthorizationError", "Unsubscribing requires an authenticated request for this "
                               "subscription.")
        self.remove_subscription(sub, ctx.base_url)
        return {}

    def remove_subscription(self, sub: Subscription, base: str) -> None:
        self.store.execute("DELETE FROM sns_subscriptions WHERE id=?", (sub.id,))
        self.store.execute("UPDATE sns_topics SET deleted_subscriptions=deleted_subscriptions+1 WHERE id=?",
                           (sub.topic.id,))
        self._changed()
        if sub.protocol in ("http", "https") and not sub.pending:
            restore = {"protocol": sub.protocol, "endpoint": sub.endpoint, "owner": sub.owner,
                       "attributes": sub.attributes}
            token = self._new_token(sub.topic.arn, sub.arn, restore)
            fields = messages.signed_fields("UnsubscribeConfirmation", uuid4(), sub.topic.arn,
                                            UNSUBSCRIBE_TEXT.format(sub=sub.arn), iso8601(self.clock.now()),
                                            token=token, subscribe_url=self.subscribe_url(base, sub.topic.arn, token))
            self.delivery.enqueue(sub, base, fields)

    def list_subscriptions(self, ctx: RequestContext, params: dict) -> dict:
        rows = self.store.all(
            "SELECT s.id, s.arn, s.owner, s.protocol, s.endpoint, s.pending, t.name FROM sns_subscriptions s "
            "JOIN sns_topics t ON t.id = s.topic_id WHERE t.account=? AND t.region=? AND s.id > ? ORDER BY s.id "
            "LIMIT ?", (ctx.account, ctx.region, _after(params.get("NextToken")), PAGE + 1))
        return self._subscription_page(rows, ctx.account, ctx.region)

    def list_subscriptions_by_topic(self, ctx: RequestContext, params: dict) -> dict:
        topic = self._topic(params["TopicArn"])
        rows = self.store.all(
            "SELECT s.id, s.arn, s.owner, s.protocol, s.endpoint, s.pending, ? FROM sns_subscriptions s "
            "WHERE s.topic_id=? AND s.id > ? ORDER BY s.id LIMIT ?",
            (topic.name, topic.id, _after(params.get("NextToken")), PAGE + 1))
        return self._subscription_page(rows, topic.account, topic.region)

    @staticmethod
    def _subscription_page(rows: list[tuple], account: str, region: str) -> dict:
        items = [{"SubscriptionArn": "PendingConfirmation" if pending else arn, "Owner": owner,
                  "Protocol": protocol, "Endpoint": endpoint, "TopicArn": f"arn:aws:sns:{region}:{account}:{name}"}
                 for _, arn, owner, protocol, endpoint, pending, name in rows[:PAGE]]
        result: dict[str, Any] = {"Subscriptions": items}
        if len(rows) > PAGE:
            result["NextToken"] = _page_token(rows[PAGE - 1][0])
        return result

    def get_subscription_attributes(self, ctx: RequestContext, params: dict) -> dict:
        sub = self._subscription(params["SubscriptionArn"])
        out = {
            "Owner": sub.owner, "RawMessageDelivery": "true" if sub.raw else "false",
            "TopicArn": sub.topic.arn, "Endpoint": sub.endpoint, "Protocol": sub.protocol,
            "PendingConfirmation": "true" if sub.pending else "false",
            "ConfirmationWasAuthenticated": "true" if sub.authenticated else "false",
            "SubscriptionArn": sub.arn,
        }
        if sub.protocol in ("http", "https"):
            out["EffectiveDeliveryPolicy"] = sub.http_policy().subscription_view()
        else:
            out["EffectiveDeliveryPolicy"] = attrs_mod.HttpPolicy(dict(attrs_mod.DEFAULT_RETRY), None,
                                                                  attrs_mod.DEFAULT_CONTENT_TYPE).subscription_view()
        for key, value in sub.attributes.items():
            if key not in ("RawMessageDelivery", "FilterPolicyScope") and value != "":
                out[key] = value
        if sub.attributes.get("FilterPolicy"):
            out["FilterPolicyScope"] = sub.attributes.get("FilterPolicyScope") or "MessageAttributes"
        return {"Attributes": out}

    def set_subscription_attributes(self, ctx: RequestContext, params: dict) -> dict:
        sub = self._subscription(params["SubscriptionArn"])
        name = params["AttributeName"]
        value = attrs_mod.check_subscription_attribute(name, params.get("AttributeValue"), sub.protocol,
                                                       sub.topic.fifo, sub.endpoint)
        stored = dict(sub.attributes)
        if value == "":
            stored.pop(name, None)
        else:
            stored[name] = value
        if stored.get("FilterPolicy") and name in ("FilterPolicy", "FilterPolicyScope"):
            compile_policy(stored["FilterPolicy"], stored.get("FilterPolicyScope") or "MessageAttributes")
        self.store.execute("UPDATE sns_subscriptions SET attributes=? WHERE id=?", (json.dumps(stored), sub.id))
        self._changed()
        return {}

    # -- publishing -----------------------------------------------------------------

    def publish(self, ctx: RequestContext, params: dict) -> dict:
        if params.get("PhoneNumber") is not None:
            if params.get("TopicArn") or params.get("TargetArn"):
                raise invalid("PhoneNumber Reason: Only one of the following parameters can be used: TopicArn, "
                              "TargetArn, PhoneNumber")
            return self.publish_sms(ctx, params)
        topic_arn, target = params.get("TopicArn"), params.get("TargetArn")
        if topic_arn and target:
            raise invalid("TargetArn Reason: Only one of the following parameters can be used: TopicArn, TargetArn")
        if not topic_arn and not target:
            raise invalid("TopicArn or TargetArn Reason: no value for required parameter")
        if target and ":endpoint/" in target:  # a mobile endpoint (push.py): disabled is answered first
            self.check_push_target(ctx, target)
            msg = messages.check_message(params, False, False)
            message_id = uuid4()
            self.push(target, message_id, msg.message, msg.structure)
            return {"MessageId": message_id}
        topic = self._topic(topic_arn or target, "TopicArn" if topic_arn else "TargetArn")
        msg = messages.check_message(params, topic.fifo, topic.content_dedup, topic.max_size)
        return self._publish(ctx.base_url, topic, msg)

    def publish_batch(self, ctx: RequestContext, params: dict) -> dict:
        topic = self._topic(params["TopicArn"])
        entries = params.get("PublishBatchRequestEntries") or []
        if not entries:
            raise ServiceError("EmptyBatchRequest", "The batch request doesn't contain any entries.")
        if len(entries) > MAX_BATCH:
            raise ServiceError("TooManyEntriesInBatchRequest", "The batch request contains more entries than "
                               "permissible.")
        ids = [e.get("Id", "") for e in entries]
        if len(set(ids)) != len(ids):
            raise ServiceError("BatchEntryIdsNotDistinct", "Two or more batch entries in the request have the "
                               "same Id.")
        for entry_id in ids:
            if not BATCH_ID.match(entry_id):
                raise ServiceError("InvalidBatchEntryId", "The Id of a batch entry in a batch request doesn't "
                                   "abide by the specification.")
        total = sum(len((e.get("Message") or "").encode()) + messages.attributes_size(e.get("MessageAttributes") or {})
                    for e in entries)
        if total > topic.max_size:
            raise ServiceError("BatchRequestTooLong", "The length of all the messages put together is more than "
                               "the limit.")
        ok, failed = [], []
        for entry in entries:
            try:
                msg = messages.check_message(entry, topic.fifo, topic.content_dedup, topic.max_size)
                with self.store.transaction():
                    result = self._publish(ctx.base_url, topic, msg)
            except ServiceError as exc:
                failed.append({"Id": entry["Id"], "Code": exc.code, "Message": exc.message, "SenderFault": True})
                continue
            ok.append({"Id": entry["Id"], **result})
        return {"Successful": ok, "Failed": failed}

    def _publish(self, base: str, topic: Topic, msg: Outgoing) -> dict:
        now = self.clock.now()
        msg.message_id = uuid4()
        msg.timestamp = iso8601(now)
        if topic.fifo:
            msg.dedup = msg.dedup or hashlib.sha256(msg.message.encode()).hexdigest()
            key = msg.dedup if topic.attributes.get("FifoThroughputScope") != "MessageGroup" else \
                f"{msg.group}\x00{msg.dedup}"
            hit = self.store.one("SELECT message_id, seq, expires FROM sns_dedup WHERE topic_id=? AND dedup_key=?",
                                 (topic.id, key))
            if hit and hit[2] > now:
                return {"MessageId": hit[0], "SequenceNumber": hit[1]}
            counter = self.store.one("UPDATE sns_topics SET seq=seq+1 WHERE id=? RETURNING seq", (topic.id,))[0]
            if counter % DEDUP_SWEEP == 0:  # forget deduplication ids past their window now and then
                self.store.execute("DELETE FROM sns_dedup WHERE topic_id=? AND expires < ?", (topic.id, now))
            msg.sequence = f"{10000000000000000000 + counter:020d}"
            self.store.execute(
                "INSERT INTO sns_dedup(topic_id, dedup_key, message_id, seq, expires) VALUES(?,?,?,?,?) "
                "ON CONFLICT(topic_id, dedup_key) DO UPDATE SET message_id=excluded.message_id, seq=excluded.seq, "
                "expires=excluded.expires", (topic.id, key, msg.message_id, msg.sequence, now + DEDUP_WINDOW))
        self._fan_out(base, topic, msg)
        cw = self.cloud.services.get("cloudwatch")
        if cw is not None:  # AWS/SNS's metrics (CloudWatch's ``count`` contract)
            dims = [{"Name": "TopicName", "Value": topic.name}]
            cw.count(topic.account, topic.region, "AWS/SNS", "NumberOfMessagesPublished", dims)
            cw.count(topic.account, topic.region, "AWS/SNS", "PublishSize", dims, float(len(msg.message.encode())),
                     "Bytes")
        result = {"MessageId": msg.message_id}
        if msg.sequence is not None:
            result["SequenceNumber"] = msg.sequence
        return result

    def _fan_out(self, base: str, topic: Topic, msg: Outgoing) -> None:
        heads: dict[str, messages.Head] = {}
        for sub in self.subscriptions(topic):
            if sub.pending:
                continue
            protocol = sub.protocol
            if sub.filter is not None and not sub.filter.matches(msg.typed_attributes(),
                                                                 lambda: msg.flat_body(protocol)):
                continue
            text = msg.text_for(protocol)
            if protocol in ("sqs", "lambda") and self.cloud.config.enforce_iam and self._refused(topic, sub):
                continue
            if protocol == "sqs":
                self._to_queue(base, sub, msg, text, heads)
            elif protocol == "lambda":
                head = self._head(base, topic, msg, text, heads)
                event = messages.lambda_event(msg, topic.arn, sub.arn, text, topic.signature_version,
                                              head.signature, head.cert_url, self.unsubscribe_url(base, sub.arn))
                self.cloud.jobs.enqueue("lambda.invoke", {"function": sub.endpoint, "payload": event,
                                                          "source": "sns"})
                self.delivery_metric(topic.arn, delivered=True)  # Lambda took the event, as its async invoke does
            elif protocol in ("http", "https", "email", "email-json"):
                fields = messages.signed_fields("Notification", msg.message_id, topic.arn, text, msg.timestamp,
                                                subject=msg.subject)
                self.delivery.enqueue(sub, base, fields, msg)
            elif protocol == "sms":
                self.send_sms(topic.account, topic.region, sub.endpoint, text)
            elif protocol == "application":
                self.push(sub.endpoint, msg.message_id, msg.message, msg.structure, topic.arn)
            else:
                log.info("sns: %s delivery to %s is not performed locally", protocol, sub.endpoint)

    def _refused(self, topic: Topic, sub: Subscription) -> bool:
        """``--enforce-iam``: the queue's or function's own policy must let SNS deliver, as on
        AWS; a refused delivery fails (the subscription's dead-letter queue gets nothing: AWS
        counts it as a failed notification)."""
        from unkai.services.iam.enforcement import service_denied

        denied = service_denied(self.cloud, "sns.amazonaws.com", sub.endpoint, topic.arn)
        if denied is None:
            return False
        self.cloud.feed.publish("delivery.failed", source="sns", target=sub.endpoint, subscription=sub.arn,
                                error_code="AccessDenied", error_message=denied)
        return True

    def _head(self, base: str, topic: Topic, msg: Outgoing, text: str,
              heads: dict[str, messages.Head]) -> messages.Head:
        """The signed envelope fields for one message text, shared by every subscriber that gets it."""
        head = heads.get(text)
        if head is None:
            fields = messages.signed_fields("Notification", msg.message_id, topic.arn, text, msg.timestamp,
                                            subject=msg.subject)
            signature = self.sign(fields, topic.signature_version)
            head = heads[text] = messages.notification_head(msg, topic.arn, text, topic.signature_version,
                                                            signature, self.cert_url(base))
        return head

    def _to_queue(self, base: str, sub: Subscription, msg: Outgoing, text: str,
                  heads: dict[str, messages.Head]) -> None:
        sqs = self.cloud.service("sqs")
        if sub.raw:
            body, attributes = text, (msg.attributes or None)  # String.Array travels as a custom String type
        else:
            body = messages.notification(self._head(base, sub.topic, msg, text, heads),
                                         self.unsubscribe_url(base, sub.arn), msg)
            attributes = None
        queue = sqs.queue_by_arn(sub.endpoint)
        too_many = attributes is not None and len(attributes) > 10
        if queue is None or too_many or len(body.encode()) > int(queue.attributes.get("MaximumMessageSize",
                                                                                      "1048576")):
            self.dead_letter(sub, body, attributes, msg.group, msg.dedup)
            return
        group = msg.group
        dedup = msg.dedup if queue.fifo else None
        sqs.enqueue(queue, body, attributes, None, group, dedup, None, messages.SNS_SENDER)
        self.delivery_metric(sub.topic.arn, delivered=True)

    def delivery_metric(self, topic_arn: str, delivered: bool) -> None:
        """AWS/SNS NumberOfNotificationsDelivered or NumberOfNotificationsFailed for the topic
        (CloudWatch's ``count`` contract), once per subscriber a message reached or was given up for."""
        cw = self.cloud.services.get("cloudwatch")
        parts = topic_arn.split(":")
        if cw is None or len(parts) < 6:
            return
        name = "NumberOfNotificationsDelivered" if delivered else "NumberOfNotificationsFailed"
        cw.count(parts[4], parts[3], "AWS/SNS", name, [{"Name": "TopicName", "Value": parts[5]}])

    def dead_letter(self, sub: Subscription, body: str, attributes: dict | None, group: str | None = None,
                    dedup: str | None = None, counted: bool = False) -> bool:
        """Put an undeliverable message in the subscription's DLQ, if it has one (in this transaction);
        ``counted`` when its failure is already in NumberOfNotificationsFailed (HTTP/S counts attempts)."""
        if not counted:
            self.delivery_metric(sub.topic.arn, delivered=False)
        self.cloud.feed.publish("delivery.failed", source="sns", target=sub.endpoint, subscription=sub.arn,
                                dlq=sub.dead_letter or None)
        if not sub.dead_letter:
            log.info("sns: dropped a message for %s (no dead-letter queue)", sub.arn)
            return False
        sqs = self.cloud.service("sqs")
        queue = sqs.queue_by_arn(sub.dead_letter)
        if queue is None:
            log.info("sns: dead-letter queue %s of %s does not exist; message dropped", sub.dead_letter, sub.arn)
            return False
        fifo = queue.fifo
        sqs.enqueue(queue, body, attributes, None, group if fifo else None,
                    (dedup or hashlib.sha256(body.encode()).hexdigest()) if fifo else None, None, messages.SNS_SENDER)
        return True

    # -- URLs and signatures --------------------------------------------------------

    def sign(self, fields: dict, version: str) -> str:
        return self.signer.sign(canonical(fields), version)

    def cert_url(self, base: str) -> str:
        return f"{base}/_unkai/sns/{self.signer.certificate()[0]}"

    @staticmethod
    def unsubscribe_url(base: str, subscription_arn: str) -> str:
        return f"{base}/?Action=Unsubscribe&SubscriptionArn={subscription_arn}"

    @staticmethod
    def subscribe_url(base: str, topic_arn: str, token: str) -> str:
        return f"{base}/?Action=ConfirmSubscription&TopicArn={topic_arn}&Token={token}"

    # -- template resources ---------------------------------------------------------

    def create_resource(self, ctx: ResourceContext, resource_type: str, logical_id: str, props: dict) -> Provisioned:
        return resources.create(self, ctx, resource_type, logical_id, props)

    def update_resource(self, ctx: ResourceContext, resource_type: str, logical_id: str, physical_id: str,
                        old_props: dict, props: dict) -> Provisioned:
        updated = resources.update(self, ctx, resource_type, logical_id, physical_id, old_props, props)
        if updated is not None:
            return updated
        return super().update_resource(ctx, resource_type, logical_id, physical_id, old_props, props)

    def delete_resource(self, ctx: ResourceContext, resource_type: str, physical_id: str, props: dict) -> None:
        resources.delete(self, ctx, resource_type, physical_id, props)


def _check_tags(tags: list[dict]) -> None:
    keys = [t.get("Key") for t in tags]
    if len(set(keys)) != len(keys):
        raise invalid("Duplicated keys are not allowed.")
    for tag in tags:
        key, value = tag.get("Key") or "", tag.get("Value")
        if not 1 <= len(key) <= 128 or key.lower().startswith("aws:"):
            raise ServiceError("InvalidParameter", f"Invalid parameter: Tags Reason: Tag key '{key}' is invalid")
        if value is None or len(value) > 256:
            raise ServiceError("InvalidParameter", f"Invalid parameter: Tags Reason: Tag value for key '{key}' is "
                               "invalid")
    if len(tags) > MAX_TAGS:
        raise ServiceError("TagLimitExceeded", "Could not complete request: tag quota of per resource exceeded")
