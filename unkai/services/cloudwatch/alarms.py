"""Alarms: their rows, how they are evaluated on unkai's clock, and what a state change does.

Every minute of unkai's clock (and after an advance, at each minute boundary it passed,
up to an hour of them) each metric alarm reads its last ``EvaluationPeriods`` periods
ending at that boundary, applies ``TreatMissingData`` and ``DatapointsToAlarm`` ("M out
of N") as AWS's "Evaluating an alarm" page describes, and moves to ALARM, OK or
INSUFFICIENT_DATA. Composite alarms follow their children's states. A change is recorded
in the alarm's history and, when actions are enabled, runs the actions of the new state
through ``unkai.targets.deliver`` (SNS gets AWS's alarm notification JSON, Lambda the
alarm's event), and an EventBridge "CloudWatch Alarm State Change" event is put on the
default bus, all in the transaction that changed the state.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from unkai import targets

if TYPE_CHECKING:
    from unkai.cloud import Cloud

MIGRATIONS = [
    """
    CREATE TABLE cloudwatch_alarms (
        id INTEGER PRIMARY KEY,
        account TEXT NOT NULL, region TEXT NOT NULL, name TEXT NOT NULL,
        kind TEXT NOT NULL,
        config TEXT NOT NULL,
        state TEXT NOT NULL, reason TEXT NOT NULL, reason_data TEXT,
        state_updated REAL NOT NULL, state_transitioned REAL NOT NULL, config_updated REAL NOT NULL,
        actions_enabled INTEGER NOT NULL DEFAULT 1,
        tags TEXT NOT NULL DEFAULT '{}',
        UNIQUE(account, region, name)
    );
    CREATE TABLE cloudwatch_history (
        id INTEGER PRIMARY KEY,
        account TEXT NOT NULL, region TEXT NOT NULL, name TEXT NOT NULL, kind TEXT NOT NULL,
        ts REAL NOT NULL, item_type TEXT NOT NULL, summary TEXT NOT NULL, data TEXT NOT NULL
    );
    CREATE INDEX cloudwatch_history_name ON cloudwatch_history(account, region, name, ts);
    """
]

STATES = ("OK", "ALARM", "INSUFFICIENT_DATA")
OPERATORS = {
    "GreaterThanOrEqualToThreshold": (lambda v, t: v >= t, "greater than or equal to"),
    "GreaterThanThreshold": (lambda v, t: v > t, "greater than"),
    "LessThanThreshold": (lambda v, t: v < t, "less than"),
    "LessThanOrEqualToThreshold": (lambda v, t: v <= t, "less than or equal to"),
}
BAND_OPERATORS = ("LessThanLowerOrGreaterThanUpperThreshold", "LessThanLowerThreshold", "GreaterThanUpperThreshold")
REGION_NAMES = {
    "us-east-1": "US East (N. Virginia)", "us-east-2": "US East (Ohio)", "us-west-1": "US West (N. California)",
    "us-west-2": "US West (Oregon)", "ap-northeast-1": "Asia Pacific (Tokyo)", "ap-northeast-2": "Asia Pacific (Seoul)",
    "ap-northeast-3": "Asia Pacific (Osaka)", "ap-southeast-1": "Asia Pacific (Singapore)",
    "ap-southeast-2": "Asia Pacific (Sydney)", "ap-south-1": "Asia Pacific (Mumbai)", "eu-west-1": "EU (Ireland)",
    "eu-west-2": "EU (London)", "eu-west-3": "EU (Paris)", "eu-central-1": "EU (Frankfurt)",
    "eu-north-1": "EU (Stockholm)", "ca-central-1": "Canada (Central)", "sa-east-1": "South America (Sao Paulo)",
}
MAX_CATCH_UP = 60  # minute boundaries evaluated after one clock advance, at most
MIN_TRAINING = 5  # periods of history an anomaly-detection band needs before it exists
TRAINING_PERIODS = 1440  # and the most it trains on (at most two weeks, AWS's training window)


@dataclass
class Alarm:
    id: int
    account: str
    region: str
    name: str
    kind: str  # metric | composite
    config: dict
    state: str
    reason: str
    reason_data: str | None
    state_updated: float
    state_transitioned: float
    config_updated: float
    actions_enabled: bool
    tags: dict

    @property
    def arn(self) -> str:
        return f"arn:aws:cloudwatch:{self.region}:{self.account}:alarm:{self.name}"


COLUMNS = ("id, account, region, name, kind, config, state, reason, reason_data, state_updated, state_transitioned, "
           "config_updated, actions_enabled, tags")


def from_row(row: tuple) -> Alarm:
    return Alarm(*row[:5], json.loads(row[5]), *row[6:12], bool(row[12]), json.loads(row[13]))


def iso(ts: float) -> str:
    """AWS's timestamp text in notifications: 2026-12-03T06:31:00.123+0000."""
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"


def short_time(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%d/%m/%y %H:%M:%S")


# -- composite alarm rules --------------------------------------------------------------

_RULE_TOKEN = re.compile(r"\s*(\(|\)|ALARM|OK|INSUFFICIENT_DATA|TRUE|FALSE|AND|OR|NOT|\"[^\"]*\"|[^\s()]+)")


class RuleError(ValueError):
    pass


def parse_rule(text: str) -> Any:
    """An AlarmRule (``ALARM("a") AND NOT OK(b)``) as a small tree; raises RuleError."""
    tokens, pos = [], 0
    while pos < len(text):
        m = _RULE_TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            if text[pos:].strip() == "":
                break
            raise RuleError(text)
        tokens.append(m.group(1))
        pos = m.end()
    i = 0

    def peek() -> str | None:
        return tokens[i] if i < len(tokens) else None

    def take() -> str:
        nonlocal i
        if i >= len(tokens):
            raise RuleError("unexpected end")
        i += 1
        return tokens[i - 1]

    def expr() -> Any:
        left = term()
        while peek() == "OR":
            take()
            left = ("or", left, term())
        return left

    def term() -> Any:
        left = factor()
        while peek() == "AND":
            take()
            left = ("and", left, factor())
        return left

    def factor() -> Any:
        tok = take()
        if tok == "NOT":
            return ("not", factor())
        if tok == "(":
            node = expr()
            if take() != ")":
                raise RuleError("missing )")
            return node
        if tok in ("TRUE", "FALSE"):
            return ("const", tok == "TRUE")
        if tok in STATES:
            if take() != "(":
                raise RuleError("missing (")
            name = take()
            if take() != ")":
                raise RuleError("missing )")
            name = name.strip('"')
            if ":alarm:" in name:
                name = name.split(":alarm:", 1)[1]
            return ("state", tok, name)
        raise RuleError(tok)

    tree = expr()
    if i != len(tokens):
        raise RuleError("trailing tokens")
    return tree


def rule_children(tree: Any) -> set[str]:
    kind = tree[0]
    if kind == "state":
        return {tree[2]}
    if kind == "not":
        return rule_children(tree[1])
    if kind in ("and", "or"):
        return rule_children(tree[1]) | rule_children(tree[2])
    return set()


def rule_value(tree: Any, states: dict[str, str]) -> bool:
    kind = tree[0]
    if kind == "const":
        return tree[1]
    if kind == "state":
        return states.get(tree[2]) == tree[1]
    if kind == "not":
        return not rule_value(tree[1], states)
    if kind == "and":
        return rule_value(tree[1], states) and rule_value(tree[2], states)
    return rule_value(tree[1], states) or rule_value(tree[2], states)


# -- evaluating a metric alarm -----------------------------------------------------------

@dataclass
class Verdict:
    state: str
    reason: str
    reason_data: dict


def band(history: list[float], width: float) -> tuple[float, float] | None:
    """An anomaly-detection band from the metric's earlier values: the mean plus and minus
    ``width`` standard deviations (at least 1% of the mean, so a flat history still has a
    band); None while there is too little history to train on (the model is not ready)."""
    if len(history) < MIN_TRAINING:
        return None
    mean = sum(history) / len(history)
    spread = math.sqrt(sum((v - mean) ** 2 for v in history) / len(history))
    spread = max(spread, abs(mean) * 0.01, 1e-9)
    return mean - width * spread, mean + width * spread


def judge(config: dict, current: str, points: list[tuple[float, float | None, float]], period: int,
          when: float, bounds: tuple[float, float] | None = None) -> Verdict | None:
    """The state an alarm should be in given its datapoints ``[(period start, value or
    None, sample count)]``, oldest first; None when nothing changes (TreatMissingData
    ``ignore`` with no data). An anomaly-detection alarm compares with ``bounds``, the
    band's (lower, upper); without one (the model is not trained yet) its data count as missing."""
    n = len(points)
    m = config.get("DatapointsToAlarm") or n
    treat = config.get("TreatMissingData") or "missing"
    threshold = config.get("Threshold")
    op_name = config.get("ComparisonOperator") or "GreaterThanOrEqualToThreshold"
    extra: dict[str, Any] = {}
    if op_name in BAND_OPERATORS:
        if bounds is None:
            points = [(t, None, 0.0) for t, _, _ in points]
            bounds = (math.nan, math.nan)
        low, high = bounds
        compare = {"LessThanLowerOrGreaterThanUpperThreshold": lambda v, _t: v < low or v > high,
                   "LessThanLowerThreshold": lambda v, _t: v < low,
                   "GreaterThanUpperThreshold": lambda v, _t: v > high}[op_name]
        words = {"LessThanLowerOrGreaterThanUpperThreshold": f"less than the lower thresholds [{low}] or greater "
                 f"than the upper thresholds [{high}]", "LessThanLowerThreshold": f"less than the lower thresholds "
                 f"[{low}]", "GreaterThanUpperThreshold": f"greater than the upper thresholds [{high}]"}[op_name]
        extra = {"recentLowerThresholds": [low], "recentUpperThresholds": [high]}
    else:
        compare, words = OPERATORS[op_name]
    present = [(t, v, c) for t, v, c in points if v is not None]

    def details() -> dict[str, Any]:
        """StateReasonData, built only for a change of state (most evaluations change nothing)."""
        data = {"version": "1.0", "queryDate": iso(when), "startDate": iso(points[0][0]) if points else iso(when),
                "period": period, "recentDatapoints": [v for _, v, _ in present], "threshold": threshold, **extra}
        if extra:
            data.pop("threshold")
        if config.get("Statistic"):
            data["statistic"] = config["Statistic"]
        return data

    crossed, target = ("Thresholds Crossed", words) if extra else \
        ("Threshold Crossed", f"{words} the threshold ({threshold})")
    if not present:
        if treat == "ignore":
            return None
        if treat == "missing":
            if current == "INSUFFICIENT_DATA":
                return Verdict(current, "", {})
            data = details()
            data["evaluatedDatapoints"] = []
            return Verdict("INSUFFICIENT_DATA", f"Insufficient Data: {n} datapoint{'s' if n != 1 else ''} were "
                           "unknown.", data)
    hits = sum(1 for _, v, _ in points if (treat == "breaching" if v is None else compare(v, threshold)))
    state = "ALARM" if hits >= m else "OK"
    if state == current:
        return Verdict(state, "", {})
    data = details()
    shown = ", ".join(f"{v} ({short_time(t)})" for t, v, _ in reversed(present))
    data["evaluatedDatapoints"] = [
        {"timestamp": iso(t), **({"sampleCount": c, "value": v} if v is not None else {})}
        for t, v, c in reversed(points)]
    if state == "ALARM":
        count = hits
        reason = (f"{crossed}: {count} out of the last {n} datapoints [{shown}] "
                  f"{'was' if count == 1 else 'were'} {target} "
                  f"(minimum {m} datapoint{'s' if m != 1 else ''} for OK -> ALARM transition).")
    else:
        count = n - hits
        reason = (f"{crossed}: {count} out of the last {n} datapoints [{shown}] "
                  f"{'was' if count == 1 else 'were'} not {target} "
                  f"(minimum {n - m + 1} datapoint{'s' if n - m + 1 != 1 else ''} for ALARM -> OK transition).")
    return Verdict(state, reason, data)


# -- what a state change does --------------------------------------------------------------

def notification(alarm: Alarm, old: str, new: str, reason: str, when: float) -> dict:
    """The JSON an SNS action publishes, as AWS writes it."""
    c = alarm.config
    body: dict[str, Any] = {
        "AlarmName": alarm.name, "AlarmDescription": c.get("AlarmDescription"), "AWSAccountId": alarm.account,
        "AlarmConfigurationUpdatedTimestamp": iso(alarm.config_updated), "NewStateValue": new,
        "NewStateReason": reason, "StateChangeTime": iso(when),
        "Region": REGION_NAMES.get(alarm.region, alarm.region), "AlarmArn": alarm.arn, "OldStateValue": old,
        "OKActions": c.get("OKActions") or [], "AlarmActions": c.get("AlarmActions") or [],
        "InsufficientDataActions": c.get("InsufficientDataActions") or [],
    }
    if alarm.kind == "composite":
        body["AlarmRule"] = c.get("AlarmRule")
        return body
    trigger: dict[str, Any] = {
        "Period": c.get("Period"), "EvaluationPeriods": c.get("EvaluationPeriods"),
        "DatapointsToAlarm": c.get("DatapointsToAlarm") or c.get("EvaluationPeriods"),
        "ComparisonOperator": c.get("ComparisonOperator"), "Threshold": c.get("Threshold"),
        "TreatMissingData": c.get("TreatMissingData") or "missing", "EvaluateLowSampleCountPercentile": "",
    }
    if c.get("MetricName"):
        trigger.update({
            "MetricName": c["MetricName"], "Namespace": c.get("Namespace"),
            "StatisticType": "ExtendedStatistic" if c.get("ExtendedStatistic") else "Statistic",
            "Statistic": (c.get("Statistic") or "").upper() if c.get("Statistic") else None,
            "Unit": c.get("Unit"),
            "Dimensions": [{"value": d["Value"], "name": d["Name"]} for d in c.get("Dimensions") or []],
        })
        if c.get("ExtendedStatistic"):
            trigger["ExtendedStatistic"] = c["ExtendedStatistic"]
    else:
        trigger["Metrics"] = c.get("Metrics") or []
    body["Trigger"] = trigger
    return body


def _state(value: str, reason: str, data: str | None, when: float) -> dict:
    out = {"value": value, "reason": reason, "timestamp": iso(when)}
    if data:
        out["reasonData"] = data
    return out


def _configuration(alarm: Alarm) -> dict:
    c = alarm.config
    if alarm.kind == "composite":
        return {"alarmRule": c.get("AlarmRule"), "description": c.get("AlarmDescription")}
    if c.get("MetricName"):
        metrics = [{"id": str(uuid.uuid5(uuid.NAMESPACE_URL, alarm.arn)), "metricStat": {
            "metric": {"namespace": c.get("Namespace"), "name": c["MetricName"],
                       "dimensions": {d["Name"]: d["Value"] for d in c.get("Dimensions") or []}},
            "period": c.get("Period"), "stat": c.get("Statistic") or c.get("ExtendedStatistic")},
            "returnData": True}]
    else:
        metrics = []
        for q in c.get("Metrics") or []:
            item: dict[str, Any] = {"id": q["Id"], "returnData": q.get("ReturnData", True)}
            if q.get("Expression"):
                item["expression"] = q["Expression"]
            if q.get("Label"):
                item["label"] = q["Label"]
            if q.get("MetricStat"):
                ms = q["MetricStat"]
                item["metricStat"] = {"metric": {
                    "namespace": ms["Metric"].get("Namespace"), "name": ms["Metric"].get("MetricName"),
                    "dimensions": {d["Name"]: d["Value"] for d in ms["Metric"].get("Dimensions") or []}},
                    "period": ms.get("Period"), "stat": ms.get("Stat")}
            metrics.append(item)
    return {"description": c.get("AlarmDescription"), "metrics": metrics}


def alarm_event(alarm: Alarm, old: str, old_reason: str, old_data: str | None, old_time: float, new: str,
                reason: str, data: str | None, when: float) -> dict:
    """The detail of the Lambda action's event and of EventBridge's state-change event."""
    return {"alarmName": alarm.name, "state": _state(new, reason, data, when),
            "previousState": _state(old, old_reason, old_data, old_time), "configuration": _configuration(alarm)}


def run_actions(cloud: "Cloud", alarm: Alarm, old: str, old_reason: str, old_data: str | None, old_time: float,
                new: str, reason: str, data: str | None, when: float) -> None:
    """Deliver the new state's actions and the EventBridge event, in the caller's transaction."""
    detail = alarm_event(alarm, old, old_reason, old_data, old_time, new, reason, data, when)
    if "events" in cloud.services:
        try:
            cloud.call("events", "PutEvents", {"Entries": [{
                "Source": "aws.cloudwatch", "DetailType": "CloudWatch Alarm State Change",
                "Resources": [alarm.arn], "Detail": json.dumps(detail)}]}, alarm.region)
        except Exception:  # the alarm's change stands even if the bus cannot take it
            pass
    if not alarm.actions_enabled:
        return
    key = {"ALARM": "AlarmActions", "OK": "OKActions", "INSUFFICIENT_DATA": "InsufficientDataActions"}[new]
    for arn in alarm.config.get(key) or []:
        service = arn.split(":")[2] if arn.count(":") >= 5 else ""
        if service == "sns":
            body = json.dumps(notification(alarm, old, new, reason, when))
            region_name = REGION_NAMES.get(alarm.region, alarm.region)
            subject = f'{new}: "{alarm.name}" in {region_name}'[:100]
            targets.deliver(cloud, {"Arn": arn}, body, "cloudwatch", str(uuid.uuid4()), subject=subject)
        elif service == "lambda":
            event = {"source": "aws.cloudwatch", "alarmArn": alarm.arn, "accountId": alarm.account,
                     "time": iso(when), "region": alarm.region, "alarmData": detail}
            targets.deliver(cloud, {"Arn": arn}, json.dumps(event), "cloudwatch", str(uuid.uuid4()))
        # EC2, Auto Scaling and Systems Manager actions are accepted and not run (docs/cloudwatch.md).


def minute_boundaries(last: float, now: float) -> list[float]:
    """The minute boundaries after ``last`` up to ``now`` to evaluate at (at most MAX_CATCH_UP)."""
    first = math.floor(last / 60) * 60 + 60
    end = math.floor(now / 60) * 60
    if end < first:
        return []
    count = int((end - first) // 60) + 1
    if count > MAX_CATCH_UP:
        first = end - (MAX_CATCH_UP - 1) * 60
        count = MAX_CATCH_UP
    return [first + 60 * i for i in range(count)]
