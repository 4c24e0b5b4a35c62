"""Topic rules: their operations, and the rules engine that runs them on each message.

A rule's SQL is parsed when the rule is created (a bad statement is AWS's
SqlParseException then); the parsed rules of an account and region are cached until a
rule changes or the store is reset. ``Engine.fire`` runs inside the transaction that
accepted the message, so every action's hand-off (a ``lambda.invoke`` job, an SQS
message, a Kinesis or Firehose record, a DynamoDB item, an S3 object, a log event)
commits with the publish: an acknowledged publish never loses its rule's output.
Lambda, SQS, SNS, Kinesis and Firehose go through ``unkai.targets.deliver``; DynamoDB,
S3, CloudWatch Logs and republish call those services' own operations. An action that
fails runs the rule's ``errorAction`` with AWS's error message.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import uuid
from typing import Any

from unkai import targets
from unkai.protocol import ServiceError
from unkai.services import RequestContext
from unkai.services.iot import errors, sql
from unkai.services.iot.model import arn, dumps, loads, page
from unkai.services.iot.properties import InvalidProperties, Properties

log = logging.getLogger(__name__)

_RULE_NAME = re.compile(r"^[a-zA-Z0-9_]{1,128}$")
ACTIONS = ("lambda", "kinesis", "firehose", "dynamoDB", "dynamoDBv2", "sqs", "sns", "s3", "republish",
           "cloudwatchLogs")
MAX_REPUBLISH_DEPTH = 8


def _check_payload(payload: dict) -> sql.Query:
    try:
        query = sql.parse(payload.get("sql") or "")
    except sql.SqlError as exc:
        raise errors.sql_parse(str(exc)) from None
    version = payload.get("awsIotSqlVersion")
    if version not in (None, "2015-10-08", "2016-03-23", "beta"):
        raise errors.invalid(f"Invalid SQL version: {version}")
    for action in list(payload.get("actions") or []) + ([payload["errorAction"]] if payload.get("errorAction")
                                                        else []):
        kinds = [k for k, v in action.items() if v is not None]
        if len(kinds) != 1:
            raise errors.invalid("Each action must have exactly one action type")
    return query


class RuleOps:
    store: Any
    clock: Any
    engine: "Engine"

    def _rule(self, ctx: RequestContext, name: str) -> tuple:
        row = self.store.one("SELECT name, arn, payload, created FROM iot_rules WHERE account=? AND region=? AND "
                             "name=?", (ctx.account, ctx.region, name))
        if row is None:
            raise errors.rule_not_found(name)
        return row

    def create_topic_rule(self, ctx: RequestContext, params: dict) -> dict:
        name, payload = params["ruleName"], params["topicRulePayload"]
        if not _RULE_NAME.match(name):
            raise errors.invalid(f"1 validation error detected: Value '{name}' at 'ruleName' failed to satisfy "
                                 "constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9_]+$")
        _check_payload(payload)
        rule_arn = arn(ctx.region, ctx.account, "rule", name)
        if self.store.one("SELECT 1 FROM iot_rules WHERE account=? AND region=? AND name=?",
                          (ctx.account, ctx.region, name)):
            raise errors.exists(f"Rule {name} already exists", name, rule_arn)
        self.store.execute("INSERT INTO iot_rules VALUES (?,?,?,?,?,?)",
                           (ctx.account, ctx.region, name, rule_arn, dumps(payload), self.clock.now()))
        for tag in (params.get("tags") or "").split("&"):
            if "=" in tag:
                key, _, value = tag.partition("=")
                self.store.execute("INSERT OR REPLACE INTO iot_tags VALUES (?,?,?)", (rule_arn, key, value))
        self.engine.forget()
        return {}

    def get_topic_rule(self, ctx: RequestContext, params: dict) -> dict:
        name, rule_arn, payload, created = self._rule(ctx, params["ruleName"])
        p = loads(payload)
        rule = {"ruleName": name, "sql": p.get("sql"), "description": p.get("description", ""), "createdAt": created,
                "actions": p.get("actions") or [], "ruleDisabled": bool(p.get("ruleDisabled")),
                "awsIotSqlVersion": p.get("awsIotSqlVersion") or "2015-10-08"}
        if p.get("errorAction"):
            rule["errorAction"] = p["errorAction"]
        return {"ruleArn": rule_arn, "rule": rule}

    def list_topic_rules(self, ctx: RequestContext, params: dict) -> dict:
        rows = self.store.all("SELECT name, arn, payload, created FROM iot_rules WHERE account=? AND region=? "
                              "ORDER BY name", (ctx.account, ctx.region))
        out = []
        for name, rule_arn, payload, created in rows:
            p = loads(payload)
            try:
                topic = sql.parse(p.get("sql") or "").topic_filter
            except sql.SqlError:
                topic = ""
            if params.get("topic") and params["topic"] != topic:
                continue
            if params.get("ruleDisabled") is not None and bool(p.get("ruleDisabled")) != params["ruleDisabled"]:
                continue
            out.append({"ruleArn": rule_arn, "ruleName": name, "topicPattern": topic, "createdAt": created,
                        "ruleDisabled": bool(p.get("ruleDisabled"))})
        return page("rules", out, params, 1000)

    def replace_topic_rule(self, ctx: RequestContext, params: dict) -> dict:
        name = self._rule(ctx, params["ruleName"])[0]
        _check_payload(params["topicRulePayload"])
        self.store.execute("UPDATE iot_rules SET payload=? WHERE account=? AND region=? AND name=?",
                           (dumps(params["topicRulePayload"]), ctx.account, ctx.region, name))
        self.engine.forget()
        return {}

    def _set_disabled(self, ctx: RequestContext, name: str, disabled: bool) -> dict:
        name, _, payload, _ = self._rule(ctx, name)
        p = loads(payload)
        p["ruleDisabled"] = disabled
        self.store.execute("UPDATE iot_rules SET payload=? WHERE account=? AND region=? AND name=?",
                           (dumps(p), ctx.account, ctx.region, name))
        self.engine.forget()
        return {}

    def enable_topic_rule(self, ctx: RequestContext, params: dict) -> dict:
        return self._set_disabled(ctx, params["ruleName"], False)

    def disable_topic_rule(self, ctx: RequestContext, params: dict) -> dict:
        return self._set_disabled(ctx, params["ruleName"], True)

    def delete_topic_rule(self, ctx: RequestContext, params: dict) -> dict:
        name = self._rule(ctx, params["ruleName"])[0]
        self.store.execute("DELETE FROM iot_rules WHERE account=? AND region=? AND name=?",
                           (ctx.account, ctx.region, name))
        self.engine.forget()
        return {}


class ActionFailed(Exception):
    def __init__(self, resource: str, message: str) -> None:
        super().__init__(message)
        self.resource = resource
        self.message = message


class Engine:
    """Runs an account's enabled rules on each message (inside the caller's transaction)."""

    def __init__(self, cloud: Any) -> None:
        self.cloud = cloud
        self.store = cloud.store
        self._rules: dict[tuple[str, str], list[tuple[str, str, sql.Query, dict]]] = {}

    def forget(self) -> None:
        self._rules.clear()

    def rules(self, account: str, region: str) -> list[tuple[str, str, sql.Query, dict]]:
        key = (account, region)
        if key not in self._rules:
            parsed = []
            for name, rule_arn, payload in self.store.all("SELECT name, arn, payload FROM iot_rules WHERE account=? "
                                                          "AND region=? ORDER BY name", key):
                p = loads(payload)
                if p.get("ruleDisabled"):
                    continue
                try:
                    parsed.append((name, rule_arn, sql.parse(p.get("sql") or ""), p))
                except sql.SqlError:
                    continue
            self._rules[key] = parsed
        return self._rules[key]

    def fire(self, account: str, region: str, msg: sql.Message, publish: Any, depth: int = 0,
             only: str | None = None) -> int:
        """Run every matching rule on ``msg`` (``only``: that rule alone, Basic Ingest);
        ``publish(account, region, topic, payload, qos, depth)`` republishes. Returns how
        many rules matched."""
        fired = 0
        for name, rule_arn, query, payload in self.rules(account, region):
            if (only is not None and name != only) or not query.matches_topic(msg.topic):
                continue
            try:
                result = query.run(msg)
            except (TypeError, ValueError, KeyError, IndexError) as exc:
                log.warning("IoT rule %s could not evaluate a message on %s: %s", name, msg.topic, exc)
                continue
            if result is sql.UNDEFINED:
                continue
            fired += 1
            if not msg.trace_id:  # made when a rule first needs it (most messages match no rule)
                msg.trace_id = str(uuid.uuid4())
            body = result if isinstance(result, bytes) else json.dumps(result, separators=(",", ":")).encode()
            failures = []
            for action in payload.get("actions") or []:
                try:
                    self._run(account, region, name, action, body, result, msg, publish, depth)
                except ActionFailed as exc:
                    failures.append((action, exc))
            self.cloud.feed.publish("iot.rule", rule=name, topic=msg.topic, actions=len(payload.get("actions") or []),
                                    failed=len(failures) or None)
            if failures and payload.get("errorAction"):
                report = {"ruleName": name, "topic": msg.topic, "cloudwatchTraceId": msg.trace_id,
                          "clientId": msg.client_id or "N/A",
                          "base64OriginalPayload": base64.b64encode(msg.payload).decode(),
                          "failures": [{"failedAction": _kind(a)[:1].upper() + _kind(a)[1:] + "Action",
                                        "failedResource": e.resource, "errorMessage": e.message}
                                       for a, e in failures]}
                data = json.dumps(report).encode()
                try:
                    self._run(account, region, name, payload["errorAction"], data, report, msg, publish, depth)
                except ActionFailed as exc:
                    log.warning("IoT rule %s: the error action failed too: %s", name, exc.message)
            for action, exc in failures:
                log.warning("IoT rule %s: %s action failed on %s: %s", name, _kind(action), exc.resource, exc.message)
        return fired

    def _role_allows(self, spec: dict, action: str, resource: str, target: str, account: str, region: str,
                     rule: str) -> None:
        """Under ``--enforce-iam`` an action's role must trust ``iot.amazonaws.com`` and allow it."""
        if not self.cloud.config.enforce_iam:
            return
        from unkai.services.iam.enforcement import role_denied

        denied = role_denied(self.cloud, "iot.amazonaws.com", spec.get("roleArn") or "", action, resource,
                             f"arn:aws:iot:{region}:{account}:rule/{rule}")
        if denied is not None:
            raise ActionFailed(target, f"AccessDeniedException: {denied}")

    def _run(self, account: str, region: str, rule: str, action: dict, body: bytes, result: Any,
             msg: sql.Message, publish: Any, depth: int) -> None:
        kind = _kind(action)
        spec = action[kind]
        sub = lambda text: sql.substitute(str(text), msg)  # noqa: E731
        text = body.decode("utf-8", "replace")
        try:
            if kind == "lambda":
                target = spec["functionArn"]
                if self.cloud.config.enforce_iam:  # IoT invokes a function as itself: its policy must let it
                    from unkai.services.iam.enforcement import service_denied

                    denied = service_denied(self.cloud, "iot.amazonaws.com", target,
                                            f"arn:aws:iot:{region}:{account}:rule/{rule}")
                    if denied is not None:
                        raise ActionFailed(target, f"AccessDeniedException: {denied}")
                targets.deliver(self.cloud, {"Arn": target}, text, "iot", msg.trace_id, strict=True)
            elif kind == "sqs":
                target = _queue_arn(spec["queueUrl"], region, account)
                data = base64.b64encode(body).decode() if spec.get("useBase64") else text
                targets.deliver(self.cloud, {"Arn": target}, data, "iot", msg.trace_id, strict=True,
                                sender="iot.amazonaws.com", role_arn=spec.get("roleArn") or "")
            elif kind == "sns":
                target = sub(spec["targetArn"])
                targets.deliver(self.cloud, {"Arn": target}, text, "iot", msg.trace_id, strict=True,
                                role_arn=spec.get("roleArn") or "")
            elif kind == "kinesis":
                target = f"arn:aws:kinesis:{region}:{account}:stream/{spec['streamName']}"
                key = sub(spec["partitionKey"]) if spec.get("partitionKey") else str(uuid.uuid4())
                targets.deliver(self.cloud, {"Arn": target, "KinesisParameters": {"PartitionKeyPath": key}}, text,
                                "iot", msg.trace_id, strict=True,
                                role_arn=spec.get("roleArn") or "")
            elif kind == "firehose":
                target = f"arn:aws:firehose:{region}:{account}:deliverystream/{spec['deliveryStreamName']}"
                separator = {"\\n": "\n", "\\r\\n": "\r\n", "\\t": "\t"}.get(spec.get("separator") or "",
                                                                           spec.get("separator") or "")
                targets.deliver(self.cloud, {"Arn": target}, text + separator, "iot", msg.trace_id, strict=True,
                                role_arn=spec.get("roleArn") or "")
            elif kind == "dynamoDB":
                target = spec["tableName"]
                self._role_allows(spec, "dynamodb:PutItem", f"arn:aws:dynamodb:{region}:{account}:table/{target}",
                                  target, account, region, rule)
                item = {spec["hashKeyField"]: _typed(sub(spec["hashKeyValue"]), spec.get("hashKeyType"))}
                if spec.get("rangeKeyField"):
                    item[spec["rangeKeyField"]] = _typed(sub(spec["rangeKeyValue"]), spec.get("rangeKeyType"))
                item[spec.get("payloadField") or "payload"] = (_attribute(result) if isinstance(result, dict)
                                                               else {"B": body})
                operation = (sub(spec.get("operation") or "INSERT")).upper()
                if operation == "DELETE":
                    keys = {k: v for k, v in item.items() if k in (spec["hashKeyField"], spec.get("rangeKeyField"))}
                    self.cloud.call("dynamodb", "DeleteItem", {"TableName": target, "Key": keys}, region)
                else:
                    self.cloud.call("dynamodb", "PutItem", {"TableName": target, "Item": item}, region)
            elif kind == "dynamoDBv2":
                target = sub(spec["putItem"]["tableName"])
                self._role_allows(spec, "dynamodb:PutItem", f"arn:aws:dynamodb:{region}:{account}:table/{target}",
                                  target, account, region, rule)
                if not isinstance(result, dict):
                    raise ActionFailed(target, "The payload is not a JSON object")
                item = {k: _attribute(v) for k, v in result.items()}
                self.cloud.call("dynamodb", "PutItem", {"TableName": target, "Item": item}, region)
            elif kind == "s3":
                target = spec["bucketName"]
                self._role_allows(spec, "s3:PutObject", f"arn:aws:s3:::{target}/{sub(spec['key'])}", target, account,
                                  region, rule)
                self.cloud.service("s3").put_object_bytes(target, sub(spec["key"]), body, "application/octet-stream",
                                                          region, "iot.amazonaws.com")
            elif kind == "cloudwatchLogs":
                target = spec["logGroupName"]
                logs = self.cloud.service("logs")
                groups = self.cloud.call("logs", "DescribeLogGroups", {"logGroupNamePrefix": target}, region)
                if not any(g["logGroupName"] == target for g in groups.get("logGroups") or []):
                    raise ActionFailed(target, f"The specified log group does not exist: {target}")
                logs.append(account, region, target, msg.trace_id or rule, [(msg.timestamp_ms, text)])
            elif kind == "republish":
                target = sub(spec["topic"])
                if depth >= MAX_REPUBLISH_DEPTH:
                    raise ActionFailed(target, "Republish depth exceeded")
                try:
                    properties = Properties.from_headers(spec.get("headers") or {}, sub)
                except InvalidProperties as exc:
                    raise ActionFailed(target, f"Invalid MQTT 5 headers: {exc}") from None
                publish(account, region, target, body, int(spec.get("qos") or 0), depth + 1, properties)
            else:
                log.warning("IoT rule %s: unkai does not run %s actions (docs/iot.md)", rule, kind)
        except ServiceError as exc:
            raise ActionFailed(locals().get("target") or kind, f"{exc.code}: {exc.message}") from None
        except (KeyError, TypeError) as exc:
            raise ActionFailed(kind, f"Invalid action parameters: {exc}") from None


def _kind(action: dict) -> str:
    return next(k for k, v in action.items() if v is not None)


def _queue_arn(url: str, region: str, account: str) -> str:
    """An SQS queue ARN from a queue URL (AWS's or unkai's local one)."""
    parts = url.rstrip("/").split("/")
    name, acct = parts[-1], parts[-2] if len(parts) >= 2 and parts[-2].isdigit() else account
    m = re.search(r"sqs\.([a-z0-9-]+)\.amazonaws", url)
    return f"arn:aws:sqs:{m.group(1) if m else region}:{acct}:{name}"


def _typed(value: str, kind: str | None) -> dict:
    return {"N": value} if (kind or "STRING").upper() == "NUMBER" else {"S": value}


def _attribute(value: Any) -> dict:
    """A JSON value as a DynamoDB attribute value (as the dynamoDBv2 action writes it)."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, (int, float)):
        return {"N": str(value)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, list):
        return {"L": [_attribute(v) for v in value]}
    if isinstance(value, dict):
        return {"M": {k: _attribute(v) for k, v in value.items()}}
    if isinstance(value, bytes):
        return {"B": value}
    return {"S": str(value)}
