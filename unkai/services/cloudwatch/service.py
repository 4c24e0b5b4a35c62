"""Amazon CloudWatch: metrics (PutMetricData, GetMetricData, GetMetricStatistics,
ListMetrics) and alarms (metric, metric-math and composite), served over the JSON
protocol boto3 speaks today and the query protocol older clients speak.

Operation handlers only: the metric store is ``metrics.py``, metric math
``mathexpr.py`` / ``queries.py``, alarms and their evaluation ``alarms.py``, the
metrics unkai's own services emit ``emitted.py``.
"""

from __future__ import annotations

import json
import logging
import math
import re
from typing import Any

from unkai.services import RequestContext, Service
from unkai.services.cloudwatch import alarms as al
from unkai.services.cloudwatch import emitted, errors, queries
from unkai.services.cloudwatch.metrics import BASIC_STATS, INCOMING_MIGRATIONS, MIGRATIONS as METRIC_MIGRATIONS, ROLLUP_MIGRATIONS, MetricStore, Point, valid_stat
from unkai.services.cloudwatch.metrics import dims_key

log = logging.getLogger(__name__)

UNITS = ("Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes", "Terabytes",
         "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count", "Bytes/Second",
         "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second", "Bits/Second",
         "Kilobits/Second", "Megabits/Second", "Gigabits/Second", "Terabits/Second", "Count/Second", "None")
MAX_DATUMS = 1000
MAX_VALUES = 150
MAX_DIMENSIONS = 30
TWO_WEEKS = 14 * 86400
_UNITS = frozenset(UNITS)
_BIG, _SMALL = 2.0 ** 360, 2.0 ** -260  # the magnitudes CloudWatch accepts


def _accepted(v: Any) -> bool:
    """Whether CloudWatch accepts ``v`` as a value: a finite number of bounded magnitude."""
    if type(v) is float:  # the usual case (NaN fails ``v == v``; an infinity fails the bound)
        return v == v and -_BIG <= v <= _BIG and (v == 0 or v >= _SMALL or v <= -_SMALL)
    if not isinstance(v, (int, float)):
        return False
    if isinstance(v, int) and abs(v) > _BIG:  # an integer past a float's range: float(v) would raise
        return False
    return not math.isnan(v) and not math.isinf(v) and abs(v) <= _BIG and (v == 0 or abs(v) >= _SMALL)


def _finite(v: Any, name: str) -> float:
    """``v`` as a float, if CloudWatch accepts it (InvalidParameterValue naming ``name`` if not)."""
    if not _accepted(v):
        raise errors.invalid(f"The value {v} for parameter {name} is invalid.")
    return float(v)


def _check_dimensions(dims: list[dict], i: int) -> None:
    """MetricData member ``i``'s Dimensions as AWS checks them: how many, no name twice, every
    value given (the messages are built only for a member that fails)."""
    if len(dims) > MAX_DIMENSIONS:
        raise errors.invalid(f"The collection MetricData.member.{i}.Dimensions must not have a size greater than "
                             f"{MAX_DIMENSIONS}.")
    if len(dims) > 1:  # one dimension cannot repeat a name
        names = [x.get("Name") for x in dims]
        if len(set(names)) != len(names):
            raise errors.invalid(f"No Metric may specify the same dimension name twice "
                                 f"(MetricData.member.{i}.Dimensions).")
    for j, x in enumerate(dims, 1):
        if not x.get("Value"):
            raise errors.invalid(f"The parameter MetricData.member.{i}.Dimensions.member.{j}.Value is required.")


_BAND = re.compile(r"^\s*ANOMALY_DETECTION_BAND\s*\(\s*([a-z][A-Za-z0-9_]*)\s*(?:,\s*([0-9]+(?:\.[0-9]*)?)\s*)?\)\s*$")


def _band_of(metrics: list[dict], threshold_id: str | None) -> tuple[str, float] | None:
    """The metric id and width (standard deviations, 2 by default) of the
    ANOMALY_DETECTION_BAND expression an alarm's ThresholdMetricId names."""
    q = next((q for q in metrics if q.get("Id") == threshold_id), None)
    m = _BAND.match((q or {}).get("Expression") or "")
    if m is None or not any(x.get("Id") == m.group(1) for x in metrics):
        return None
    return m.group(1), float(m.group(2) or 2)


def _page(items: list, token: str | None, size: int) -> tuple[list, str | None]:
    try:
        start = int(token) if token else 0
    except ValueError:
        raise errors.invalid_token() from None
    end = start + size
    return items[start:end], (str(end) if end < len(items) else None)


class CloudWatch(Service):
    name = "cloudwatch"
    listens_to = ("lambda", "apigateway", "apigatewayv2", "logs")  # feed events and log lines (emitted.py)
    migrations = METRIC_MIGRATIONS + al.MIGRATIONS + ROLLUP_MIGRATIONS + INCOMING_MIGRATIONS  # appended: by position
    resource_types = ("AWS::CloudWatch::Alarm", "AWS::CloudWatch::CompositeAlarm")

    def __init__(self, cloud: Any) -> None:
        super().__init__(cloud)
        self.metrics = MetricStore(self.store, self.clock)
        self._last_eval = 0.0
        self._timer: Any = None

    async def start(self) -> None:
        self._last_eval = math.floor(self.clock.now() / 60) * 60
        self._arm()
        emitted.start(self)

    async def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    async def resetting(self) -> None:
        self.metrics.forget()

    # -- the in-process API (other services' metrics, EMF, metric filters) ------------------

    def record(self, account: str, region: str, namespace: str, name: str, dimensions: list[dict] | None,
               value: float, unit: str = "None", ts: float | None = None, resolution: int = 60) -> None:
        """Add one value to a metric (AWS namespaces allowed); joins the caller's transaction."""
        ts = self.clock.now() if ts is None else ts
        self.metrics.put(account, region, namespace, name, dimensions,
                         [Point(ts, unit, 1.0, value, value, value, None, resolution)], self.clock.now())

    def count(self, account: str, region: str, namespace: str, name: str, dimensions: list[dict] | None,
              value: float = 1.0, unit: str = "Count", now: bool = False, keep: bool = False,
              samples: int = 1) -> None:
        """Add one value to a metric from a hot path (SQS, SNS, DynamoDB requests): once the
        caller's transaction commits, it joins an in-memory per-minute statistic set that is
        written before the next metric read, so a request pays no SQL for its metrics.
        ``now=True`` counts at once, for a request that is about to fail (a throttle) and
        whose transaction will roll back. ``keep``: each value is kept too, for percentiles.
        ``samples``: that many values ``value`` at once (ten messages sent in one batch)."""
        ts = self.clock.now()
        key = dims_key(dimensions)
        if now:
            self.metrics.tally(account, region, namespace, name, key, value, unit, ts, keep, samples)
            return
        self.store.after_commit(lambda: self.metrics.tally(account, region, namespace, name, key, value, unit, ts,
                                                           keep, samples))

    # -- metrics ------------------------------------------------------------------------------

    def put_metric_data(self, ctx: RequestContext, params: dict) -> dict:
        namespace = params["Namespace"]
        if namespace.startswith("AWS/") or not namespace or ":" in namespace:
            raise errors.invalid(f"The value {namespace} for parameter Namespace is invalid.")
        data = params.get("MetricData") or []
        if len(data) > MAX_DATUMS:
            raise errors.invalid(f"The collection MetricData must not have a size greater than {MAX_DATUMS}.")
        now = self.clock.now()
        rows = [self._datum(d, i, now) for i, d in enumerate(data, 1)]  # all checked before any is stored
        put, account, region = self.metrics.put_row, ctx.account, ctx.region
        for datum, row in zip(data, rows):
            put(account, region, namespace, datum["MetricName"], datum.get("Dimensions"), row, now)
        return {}

    def _datum(self, d: dict, i: int, now: float) -> tuple:
        """One MetricData member checked as AWS checks it (in AWS's order), as a data row
        without its metric (``MetricStore.put_row``). The checks' messages are built only for
        a member that fails one."""
        if not d.get("MetricName"):
            raise errors.missing(f"MetricData.member.{i}.MetricName")
        dims = d.get("Dimensions")
        if dims:
            _check_dimensions(dims, i)
        unit = d.get("Unit") or "None"
        if unit not in _UNITS:
            raise errors.invalid(f"The value {unit} for parameter MetricData.member.{i}.Unit is invalid.")
        resolution = d.get("StorageResolution") or 60
        if resolution != 60 and resolution != 1:
            raise errors.invalid(f"The value {resolution} for parameter MetricData.member.{i}.StorageResolution is "
                                 "invalid.")
        ts = d.get("Timestamp") or now
        if ts < now - TWO_WEEKS:
            raise errors.invalid(f"The parameter MetricData.member.{i}.Timestamp must specify a time no more than two "
                                 "weeks in the past.")
        if ts > now + 7200:
            raise errors.invalid(f"The parameter MetricData.member.{i}.Timestamp must specify a time no more than two "
                                 "hours in the future.")
        value, stats, values = d.get("Value"), d.get("StatisticValues"), d.get("Values")
        if value is not None and stats is None and values is None:  # the usual datum: one value
            if not _accepted(value):
                raise errors.invalid(f"The value {value} for parameter MetricData.member.{i}.Value is invalid.")
            value = float(value)
            return ts, unit, resolution, 1.0, value, value, value, None
        where = f"MetricData.member.{i}"
        given = [k for k, v in (("Value", value), ("StatisticValues", stats), ("Values", values)) if v is not None]
        if len(given) > 1:
            raise errors.combination(f"The parameters {where}.{given[0]} and {where}.{given[1]} are mutually "
                                     "exclusive and you have specified both.")
        if not given:
            raise errors.missing(f"{where}.Value")
        if stats is not None:
            count = _finite(stats["SampleCount"], f"{where}.StatisticValues.SampleCount")
            if count <= 0:
                raise errors.invalid(f"The value {count} for parameter {where}.StatisticValues.SampleCount is "
                                     "invalid.")
            low, high = _finite(stats["Minimum"], "Minimum"), _finite(stats["Maximum"], "Maximum")
            if low > high:
                raise errors.invalid(f"The parameter {where}.StatisticValues.Maximum must be greater than "
                                     f"{where}.StatisticValues.Minimum.")
            return ts, unit, resolution, count, _finite(stats["Sum"], "Sum"), low, high, None
        values = [_finite(v, f"{where}.Values") for v in values]
        if len(values) > MAX_VALUES:
            raise errors.invalid(f"The collection {where}.Values must not have a size greater than {MAX_VALUES}.")
        counts = d.get("Counts")
        if counts is not None and len(counts) != len(values):
            raise errors.invalid(f"The parameters {where}.Values and {where}.Counts must be of the same size.")
        counts = [float(c) for c in counts] if counts is not None else [1.0] * len(values)
        if not values:
            raise errors.invalid(f"The collection {where}.Values must not be empty.")
        return (ts, unit, resolution, sum(counts), sum(v * c for v, c in zip(values, counts)), min(values),
                max(values), json.dumps(list(zip(values, counts))))

    def get_metric_statistics(self, ctx: RequestContext, params: dict) -> dict:
        stats = params.get("Statistics") or []
        extended = params.get("ExtendedStatistics") or []
        if not stats and not extended:
            raise errors.missing("Statistics or ExtendedStatistics")
        if stats and extended:
            pass  # AWS accepts both together
        for s in stats:
            if s not in BASIC_STATS:
                raise errors.invalid(f"The parameter Statistics.member.1 must be a value in the set "
                                     f"[ SampleCount, Average, Sum, Minimum, Maximum ].")
        for s in extended:
            if not valid_stat(s) or s in BASIC_STATS:
                raise errors.invalid(f"The value {s} for parameter ExtendedStatistics is not a valid statistic.")
        period = params["Period"]
        self._check_period(period, "Period")
        start, end = params["StartTime"], params["EndTime"]
        if start >= end:
            raise errors.invalid("The parameter StartTime must be less than the parameter EndTime.")
        if (end - start) / period > 1440:
            raise errors.invalid("You have requested up to 1,441 datapoints, which exceeds the limit of 1,440. You "
                                 "may reduce the datapoints requested by increasing Period, or decreasing the time "
                                 "range.")
        mid = self.metrics.find(ctx.account, ctx.region, params["Namespace"], params["MetricName"],
                                params.get("Dimensions"))
        buckets = self.metrics.buckets(mid, math.floor(start / period) * period, end, period, params.get("Unit"),
                                       self.clock.now(), distribution=bool(extended))
        points = []
        for ts in sorted(buckets):
            b = buckets[ts]
            point: dict[str, Any] = {"Timestamp": ts, "Unit": b.unit}
            for s in stats:
                point[s] = b.stat(s)
            if extended:
                point["ExtendedStatistics"] = {s: b.stat(s) for s in extended if b.stat(s) is not None}
            points.append(point)
        return {"Label": params["MetricName"], "Datapoints": points}

    @staticmethod
    def _check_period(period: int, name: str) -> None:
        if period <= 0 or (period >= 60 and period % 60) or (period < 60 and period not in (1, 5, 10, 20, 30)):
            raise errors.invalid(f"The parameter {name} must be 1, 5, 10, 20, 30, or any multiple of 60.")

    def get_metric_data(self, ctx: RequestContext, params: dict) -> dict:
        qs = params["MetricDataQueries"]
        queries.validate(qs)
        start, end = params["StartTime"], params["EndTime"]
        if start >= end:
            raise errors.invalid("The parameter StartTime must be less than the parameter EndTime.")
        results = queries.run(self.metrics, ctx.account, ctx.region, qs, start, end, self.clock.now())
        descending = (params.get("ScanBy") or "TimestampDescending") == "TimestampDescending"
        rows = [(r, sorted(r.series, reverse=descending)) for r in results if r.return_data]
        # Pagination: a token is the number of data points already returned, over all results.
        limit = params.get("MaxDatapoints") or 100_800
        try:
            skip = int(params["NextToken"]) if params.get("NextToken") else 0
        except ValueError:
            raise errors.invalid_token() from None
        budget, offset, out, more = limit, 0, [], False
        for r, stamps in rows:
            lo = max(0, skip - offset)
            offset += len(stamps)
            mine = stamps[lo:lo + budget] if budget > 0 else []
            budget -= len(mine)
            if lo + len(mine) < len(stamps):
                more = True
            item: dict[str, Any] = {"Id": r.id, "Label": r.label, "Timestamps": mine,
                                    "Values": [r.series[t] for t in mine],
                                    "StatusCode": "PartialData" if lo + len(mine) < len(stamps) else r.status}
            if r.messages:
                item["Messages"] = r.messages
            out.append(item)
        result: dict[str, Any] = {"MetricDataResults": out, "Messages": []}
        if more:
            result["NextToken"] = str(skip + limit)
        return result

    def list_metrics(self, ctx: RequestContext, params: dict) -> dict:
        since = self.clock.now() - 3 * 3600 if params.get("RecentlyActive") == "PT3H" else None
        found = self.metrics.list(ctx.account, ctx.region, params.get("Namespace"), params.get("MetricName"),
                                  params.get("Dimensions"), since)
        page, token = _page(found, params.get("NextToken"), 500)
        out: dict[str, Any] = {"Metrics": page}
        if token:
            out["NextToken"] = token
        return out

    # -- alarms ---------------------------------------------------------------------------------

    def _alarm(self, account: str, region: str, name: str) -> al.Alarm | None:
        row = self.store.one(f"SELECT {al.COLUMNS} FROM cloudwatch_alarms WHERE account=? AND region=? AND name=?",
                             (account, region, name))
        return al.from_row(row) if row else None

    def _alarms(self, account: str, region: str) -> list[al.Alarm]:
        return [al.from_row(r) for r in self.store.all(
            f"SELECT {al.COLUMNS} FROM cloudwatch_alarms WHERE account=? AND region=? ORDER BY name",
            (account, region))]

    def _check_actions(self, params: dict) -> None:
        for key in ("AlarmActions", "OKActions", "InsufficientDataActions"):
            actions = params.get(key) or []
            if len(actions) > 5:
                raise errors.invalid(f"The collection {key} must not have a size greater than 5.")
            for arn in actions:
                parts = arn.split(":")
                if len(parts) < 6 or parts[0] != "arn" or parts[2] not in ("sns", "lambda", "automate", "ec2",
                                                                              "autoscaling", "ssm", "ssm-incidents"):
                    raise errors.invalid(f"Invalid arn syntax: {arn}")

    def put_metric_alarm(self, ctx: RequestContext, params: dict) -> dict:
        name = params["AlarmName"]
        self._check_actions(params)
        has_metric = bool(params.get("MetricName"))
        has_metrics = bool(params.get("Metrics"))
        if has_metric and has_metrics:
            raise errors.combination("The parameters MetricName and Metrics are mutually exclusive and you have "
                                     "specified both.")
        if not has_metric and not has_metrics:
            raise errors.missing("MetricName")
        if params.get("EvaluationPeriods") is None:
            raise errors.missing("EvaluationPeriods")
        if params["EvaluationPeriods"] < 1:
            raise errors.invalid("The parameter EvaluationPeriods must be greater than or equal to 1.")
        op = params.get("ComparisonOperator")
        if not op:
            raise errors.missing("ComparisonOperator")
        band = op in al.BAND_OPERATORS
        if not band and op not in al.OPERATORS:
            raise errors.invalid(f"The value {op} for parameter ComparisonOperator is invalid.")
        if band and not params.get("ThresholdMetricId"):
            raise errors.missing("ThresholdMetricId")
        if band and _band_of(params.get("Metrics") or [], params["ThresholdMetricId"]) is None:
            raise errors.invalid(f"ThresholdMetricId {params['ThresholdMetricId']} must name an "
                                 "ANOMALY_DETECTION_BAND expression of a metric in Metrics.")
        if not band and params.get("Threshold") is None and not params.get("ThresholdMetricId"):
            raise errors.missing("Threshold")
        d2a = params.get("DatapointsToAlarm")
        if d2a is not None and not 1 <= d2a <= params["EvaluationPeriods"]:
            raise errors.invalid("DatapointsToAlarm must be less than or equal to EvaluationPeriods.")
        treat = params.get("TreatMissingData")
        if treat is not None and treat not in ("breaching", "notBreaching", "ignore", "missing"):
            raise errors.invalid(f"The value {treat} for parameter TreatMissingData is invalid.")
        if has_metric:
            if params.get("Period") is None:
                raise errors.missing("Period")
            self._check_period(params["Period"], "Period")
            if params["Period"] * params["EvaluationPeriods"] > 86400 * 7:
                raise errors.invalid("The evaluation period of the alarm cannot exceed 7 days.")
            stat, ext = params.get("Statistic"), params.get("ExtendedStatistic")
            if bool(stat) == bool(ext):
                raise errors.invalid("Exactly one of Statistic or ExtendedStatistic must be specified.") if stat else \
                    errors.missing("Statistic")
            if stat and stat not in BASIC_STATS:
                raise errors.invalid(f"The value {stat} for parameter Statistic is invalid.")
            if ext and not valid_stat(ext):
                raise errors.invalid(f"The value {ext} for parameter ExtendedStatistic is not a valid statistic.")
        else:
            queries.validate(params["Metrics"])
            returning = [q for q in params["Metrics"] if q.get("ReturnData", True)]
            if len(returning) != 1 and not band:
                raise errors.invalid("Exactly one element of the metrics list should return data.")
        config = {k: v for k, v in params.items() if k not in ("Tags",)}
        self._save_alarm(ctx, name, "metric", config, params)
        return {}

    def _save_alarm(self, ctx: RequestContext, name: str, kind: str, config: dict, params: dict) -> None:
        now = self.clock.now()
        existing = self._alarm(ctx.account, ctx.region, name)
        enabled = 1 if params.get("ActionsEnabled", True) else 0
        if existing is not None:
            if existing.kind != kind:
                raise errors.invalid(f"An alarm of another type already exists with the name {name}.")
            self.store.execute("UPDATE cloudwatch_alarms SET config=?, config_updated=?, actions_enabled=? WHERE id=?",
                               (json.dumps(config), now, enabled, existing.id))
            self._history(existing, "ConfigurationUpdate", f'Alarm "{name}" updated', {
                "type": "Update", "version": "1.0"}, now)
            return
        tags = {t["Key"]: t["Value"] for t in params.get("Tags") or []}
        reason = "Unchecked: Initial alarm creation"
        self.store.execute(
            "INSERT INTO cloudwatch_alarms(account, region, name, kind, config, state, reason, reason_data, "
            "state_updated, state_transitioned, config_updated, actions_enabled, tags) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (ctx.account, ctx.region, name, kind, json.dumps(config), "INSUFFICIENT_DATA", reason, None, now, now, now,
             enabled, json.dumps(tags)))
        alarm = self._alarm(ctx.account, ctx.region, name)
        self._history(alarm, "ConfigurationUpdate", f'Alarm "{name}" created', {"type": "Create", "version": "1.0"},
                      now)
        if kind == "composite":
            self._evaluate_composites(ctx.account, ctx.region, now)

    def put_composite_alarm(self, ctx: RequestContext, params: dict) -> dict:
        self._check_actions(params)
        rule = params["AlarmRule"]
        if len(rule) > 10240:
            raise errors.invalid("AlarmRule must be at most 10240 characters.")
        try:
            tree = al.parse_rule(rule)
        except al.RuleError:
            raise errors.invalid(f"Error in alarm rule: {rule}") from None
        for child in al.rule_children(tree):
            if child == params["AlarmName"]:
                raise errors.invalid("An alarm rule cannot reference the alarm itself.")
            if self._alarm(ctx.account, ctx.region, child) is None:
                raise errors.invalid(f"Could not save the composite alarm as alarms [{child}] in the alarm rule do "
                                     "not exist")
        config = {k: v for k, v in params.items() if k != "Tags"}
        self._save_alarm(ctx, params["AlarmName"], "composite", config, params)
        return {}

    def _out(self, alarm: al.Alarm) -> dict:
        c = alarm.config
        out: dict[str, Any] = {
            "AlarmName": alarm.name, "AlarmArn": alarm.arn, "AlarmDescription": c.get("AlarmDescription"),
            "AlarmConfigurationUpdatedTimestamp": alarm.config_updated, "ActionsEnabled": alarm.actions_enabled,
            "OKActions": c.get("OKActions") or [], "AlarmActions": c.get("AlarmActions") or [],
            "InsufficientDataActions": c.get("InsufficientDataActions") or [], "StateValue": alarm.state,
            "StateReason": alarm.reason, "StateUpdatedTimestamp": alarm.state_updated,
            "StateTransitionedTimestamp": alarm.state_transitioned,
        }
        if alarm.reason_data:
            out["StateReasonData"] = alarm.reason_data
        if alarm.kind == "composite":
            out["AlarmRule"] = c["AlarmRule"]
            for k in ("ActionsSuppressor", "ActionsSuppressorWaitPeriod", "ActionsSuppressorExtensionPeriod"):
                if c.get(k) is not None:
                    out[k] = c[k]
            return out
        for k in ("MetricName", "Namespace", "Statistic", "ExtendedStatistic", "Dimensions", "Period", "Unit",
                  "EvaluationPeriods", "DatapointsToAlarm", "Threshold", "ComparisonOperator",
                  "EvaluateLowSampleCountPercentile", "Metrics", "ThresholdMetricId"):
            if c.get(k) is not None:
                out[k] = c[k]
        if c.get("MetricName") and "Dimensions" not in out:
            out["Dimensions"] = []
        out["TreatMissingData"] = c.get("TreatMissingData") or "missing"
        return out

    def describe_alarms(self, ctx: RequestContext, params: dict) -> dict:
        found = self._alarms(ctx.account, ctx.region)
        names = params.get("AlarmNames")
        if names:
            found = [a for a in found if a.name in names]
        if params.get("AlarmNamePrefix"):
            if names:
                raise errors.combination("AlarmNamePrefix and AlarmNames are mutually exclusive.")
            found = [a for a in found if a.name.startswith(params["AlarmNamePrefix"])]
        if params.get("StateValue"):
            found = [a for a in found if a.state == params["StateValue"]]
        if params.get("ActionPrefix"):
            p = params["ActionPrefix"]
            found = [a for a in found if any(x.startswith(p) for k in ("AlarmActions", "OKActions",
                                                                        "InsufficientDataActions")
                                             for x in a.config.get(k) or [])]
        if params.get("ChildrenOfAlarmName"):
            parent = self._alarm(ctx.account, ctx.region, params["ChildrenOfAlarmName"])
            children = al.rule_children(al.parse_rule(parent.config["AlarmRule"])) if parent and \
                parent.kind == "composite" else set()
            found = [a for a in found if a.name in children]
        if params.get("ParentsOfAlarmName"):
            child = params["ParentsOfAlarmName"]
            found = [a for a in found if a.kind == "composite"
                     and child in al.rule_children(al.parse_rule(a.config["AlarmRule"]))]
        types = params.get("AlarmTypes") or (["CompositeAlarm", "MetricAlarm"]
                                             if params.get("ChildrenOfAlarmName") or params.get("ParentsOfAlarmName")
                                             else ["MetricAlarm"])
        wanted = {"MetricAlarm": "metric", "CompositeAlarm": "composite"}
        found = [a for a in found if a.kind in {wanted[t] for t in types if t in wanted}]
        size = params.get("MaxRecords") or 50
        if not 1 <= size <= 100:
            raise errors.invalid("The parameter MaxRecords must be between 1 and 100.")
        page, token = _page(found, params.get("NextToken"), size)
        out: dict[str, Any] = {"MetricAlarms": [self._out(a) for a in page if a.kind == "metric"],
                               "CompositeAlarms": [self._out(a) for a in page if a.kind == "composite"]}
        if token:
            out["NextToken"] = token
        return out

    def describe_alarms_for_metric(self, ctx: RequestContext, params: dict) -> dict:
        from unkai.services.cloudwatch.metrics import dims_key

        want = dims_key(params.get("Dimensions"))
        found = []
        for a in self._alarms(ctx.account, ctx.region):
            c = a.config
            if a.kind != "metric" or c.get("MetricName") != params["MetricName"] or \
                    c.get("Namespace") != params["Namespace"]:
                continue
            if params.get("Dimensions") is not None and dims_key(c.get("Dimensions")) != want:
                continue
            for k in ("Statistic", "ExtendedStatistic", "Period", "Unit"):
                if params.get(k) is not None and c.get(k) != params[k]:
                    break
            else:
                found.append(self._out(a))
        return {"MetricAlarms": found}

    def delete_alarms(self, ctx: RequestContext, params: dict) -> dict:
        names = params.get("AlarmNames") or []
        if len(names) > 100:
            raise errors.invalid("The collection AlarmNames must not have a size greater than 100.")
        alarms = {a.name: a for a in self._alarms(ctx.account, ctx.region)}
        for name in names:
            if name not in alarms:
                raise errors.not_found(f"Alarm not found: {name}")
        for a in alarms.values():
            if a.kind == "composite" and a.name not in names:
                used = al.rule_children(al.parse_rule(a.config["AlarmRule"])) & set(names)
                if used:
                    raise errors.invalid(f"Alarm {sorted(used)[0]} is used in the rule of composite alarm {a.name}.")
        for name in names:
            self.store.execute("DELETE FROM cloudwatch_alarms WHERE id=?", (alarms[name].id,))
            self._history(alarms[name], "ConfigurationUpdate", f'Alarm "{name}" deleted',
                          {"type": "Delete", "version": "1.0"}, self.clock.now())
        return {}

    def _set_actions(self, ctx: RequestContext, params: dict, enabled: int) -> dict:
        for name in params.get("AlarmNames") or []:
            self.store.execute("UPDATE cloudwatch_alarms SET actions_enabled=? WHERE account=? AND region=? AND "
                               "name=?", (enabled, ctx.account, ctx.region, name))
        return {}

    def enable_alarm_actions(self, ctx: RequestContext, params: dict) -> dict:
        return self._set_actions(ctx, params, 1)

    def disable_alarm_actions(self, ctx: RequestContext, params: dict) -> dict:
        return self._set_actions(ctx, params, 0)

    def set_alarm_state(self, ctx: RequestContext, params: dict) -> dict:
        alarm = self._alarm(ctx.account, ctx.region, params["AlarmName"])
        if alarm is None:
            raise errors.not_found(f"Alarm {params['AlarmName']} not found")
        state = params["StateValue"]
        if state not in al.STATES:
            raise errors.invalid(f"The value {state} for parameter StateValue is invalid.")
        data = params.get("StateReasonData")
        if data is not None:
            try:
                json.loads(data)
            except ValueError:
                raise errors.invalid_format("State reason data must be valid JSON") from None
        self._change(alarm, state, params["StateReason"], data, self.clock.now())
        self._evaluate_composites(ctx.account, ctx.region, self.clock.now())
        return {}

    def describe_alarm_history(self, ctx: RequestContext, params: dict) -> dict:
        sql = "SELECT name, kind, ts, item_type, summary, data FROM cloudwatch_history WHERE account=? AND region=?"
        args: list[Any] = [ctx.account, ctx.region]
        if params.get("AlarmName"):
            sql += " AND name=?"
            args.append(params["AlarmName"])
        if params.get("HistoryItemType"):
            sql += " AND item_type=?"
            args.append(params["HistoryItemType"])
        if params.get("StartDate") is not None:
            sql += " AND ts>=?"
            args.append(params["StartDate"])
        if params.get("EndDate") is not None:
            sql += " AND ts<=?"
            args.append(params["EndDate"])
        order = "ASC" if params.get("ScanBy") == "TimestampAscending" else "DESC"
        types = {"MetricAlarm": "metric", "CompositeAlarm": "composite"}
        kinds = {types[t] for t in params.get("AlarmTypes") or ["MetricAlarm", "CompositeAlarm"] if t in types}
        items = [{"AlarmName": n, "AlarmType": "MetricAlarm" if k == "metric" else "CompositeAlarm", "Timestamp": ts,
                  "HistoryItemType": t, "HistorySummary": s, "HistoryData": d}
                 for n, k, ts, t, s, d in self.store.all(sql + f" ORDER BY ts {order}, id {order}", args) if k in kinds]
        page, token = _page(items, params.get("NextToken"), params.get("MaxRecords") or 100)
        out: dict[str, Any] = {"AlarmHistoryItems": page}
        if token:
            out["NextToken"] = token
        return out

    def _history(self, alarm: al.Alarm, item_type: str, summary: str, data: dict, when: float) -> None:
        self.store.execute("INSERT INTO cloudwatch_history(account, region, name, kind, ts, item_type, summary, data) "
                           "VALUES(?,?,?,?,?,?,?,?)", (alarm.account, alarm.region, alarm.name, alarm.kind, when,
                                                       item_type, summary, json.dumps(data)))

    def tag_resource(self, ctx: RequestContext, params: dict) -> dict:
        alarm = self._by_arn(ctx, params["ResourceARN"])
        tags = dict(alarm.tags, **{t["Key"]: t["Value"] for t in params.get("Tags") or []})
        self.store.execute("UPDATE cloudwatch_alarms SET tags=? WHERE id=?", (json.dumps(tags), alarm.id))
        return {}

    def untag_resource(self, ctx: RequestContext, params: dict) -> dict:
        alarm = self._by_arn(ctx, params["ResourceARN"])
        tags = {k: v for k, v in alarm.tags.items() if k not in (params.get("TagKeys") or [])}
        self.store.execute("UPDATE cloudwatch_alarms SET tags=? WHERE id=?", (json.dumps(tags), alarm.id))
        return {}

    def list_tags_for_resource(self, ctx: RequestContext, params: dict) -> dict:
        alarm = self._by_arn(ctx, params["ResourceARN"])
        return {"Tags": [{"Key": k, "Value": v} for k, v in alarm.tags.items()]}

    def _by_arn(self, ctx: RequestContext, arn: str) -> al.Alarm:
        name = arn.split(":alarm:", 1)[1] if ":alarm:" in arn else ""
        alarm = self._alarm(ctx.account, ctx.region, name) if name else None
        if alarm is None:
            raise errors.resource_not_found(f"The specified resource {arn} does not exist.")
        return alarm

    # -- evaluation on the clock ------------------------------------------------------------------

    def _arm(self) -> None:
        nxt = math.floor(self.clock.now() / 60) * 60 + 60
        self._timer = self.clock.call_at(nxt, self._tick)

    def _tick(self) -> None:
        try:
            # the minute's tallies (Lambda's Invocations, Errors, Duration are counted in memory)
            # written once a minute whether or not anything reads them: bounded memory, and a
            # kill -9 loses at most the last minute of them
            self.metrics.flush(self.clock.now())
        except Exception:
            log.exception("writing the tallied metrics failed")
        try:
            self.evaluate_due(self.clock.now())
        except Exception:
            log.exception("alarm evaluation failed")
        self._arm()

    def evaluate_due(self, now: float) -> None:
        """Evaluate every alarm at each minute boundary passed since the last evaluation."""
        boundaries = al.minute_boundaries(self._last_eval, now)
        if not boundaries:
            return
        self._last_eval = boundaries[-1]
        with self.store.transaction():
            self.metrics.expire(now)
            rows = self.store.all(f"SELECT {al.COLUMNS} FROM cloudwatch_alarms WHERE kind='metric'")
            regions = {(r[1], r[2]) for r in self.store.all(f"SELECT {al.COLUMNS} FROM cloudwatch_alarms "
                                                             "WHERE kind='composite'")}
            for when in boundaries:
                emitted.sample(self, when)  # the minute's gauges first: alarms at ``when`` read them
                for row in rows:
                    alarm = al.from_row(row)
                    self._evaluate(alarm, when)
                for account, region in regions:
                    self._evaluate_composites(account, region, when)
                if len(boundaries) > 1:
                    rows = self.store.all(f"SELECT {al.COLUMNS} FROM cloudwatch_alarms WHERE kind='metric'")

    def _evaluate(self, alarm: al.Alarm, when: float) -> None:
        c = alarm.config
        if c.get("ComparisonOperator") in al.BAND_OPERATORS:
            self._evaluate_band(alarm, when)
            return
        n = c["EvaluationPeriods"]
        if c.get("MetricName"):
            period = c["Period"]
            end = math.floor(when / period) * period
            start = end - n * period
            mid = self.metrics.find(alarm.account, alarm.region, c.get("Namespace") or "", c["MetricName"],
                                    c.get("Dimensions"))
            stat = c.get("Statistic") or c.get("ExtendedStatistic")
            buckets = self.metrics.buckets(mid, start, end, period, c.get("Unit"), when,
                                           distribution=stat not in BASIC_STATS)
            points = []
            for k in range(n):
                ts = start + k * period
                b = buckets.get(ts)
                points.append((ts, b.stat(stat) if b else None, b.count if b else 0.0))
        else:
            metrics = c["Metrics"]
            period = next((q["MetricStat"]["Period"] for q in metrics if q.get("MetricStat")), None) or \
                next((q.get("Period") for q in metrics if q.get("Period")), 60)
            end = math.floor(when / period) * period
            start = end - n * period
            results = queries.run(self.metrics, alarm.account, alarm.region, metrics, start, end, when)
            series = next((r.series for r in results if r.return_data), {})
            points = [(start + k * period, series.get(start + k * period), 1.0) for k in range(n)]
        verdict = al.judge(c, alarm.state, points, period, when)
        if verdict is None or (verdict.state == alarm.state):
            return
        self._change(alarm, verdict.state, verdict.reason, json.dumps(verdict.reason_data), when)

    def _evaluate_band(self, alarm: al.Alarm, when: float) -> None:
        """An anomaly-detection alarm: its metric's last EvaluationPeriods compared with the
        ANOMALY_DETECTION_BAND its ThresholdMetricId names, trained on the periods before them."""
        c = alarm.config
        metrics = c.get("Metrics") or []
        found = _band_of(metrics, c.get("ThresholdMetricId"))
        if found is None:
            return
        source, width = found
        inputs = [dict(q, ReturnData=q["Id"] == source) for q in metrics if q["Id"] != c["ThresholdMetricId"]]
        stat = next((q["MetricStat"] for q in inputs if q["Id"] == source and q.get("MetricStat")), None)
        period = (stat or {}).get("Period") or next((q.get("Period") for q in inputs if q["Id"] == source), None) \
            or next((q["MetricStat"]["Period"] for q in inputs if q.get("MetricStat")), 60)
        n = c["EvaluationPeriods"]
        end = math.floor(when / period) * period
        start = end - n * period
        train_from = start - min(al.TRAINING_PERIODS * period, 14 * 86400)
        results = queries.run(self.metrics, alarm.account, alarm.region, inputs, train_from, end, when)
        series = next((r.series for r in results if r.id == source), {})
        history = [v for t, v in sorted(series.items()) if t < start]
        bounds = al.band(history, width)
        points = [(start + k * period, series.get(start + k * period), 1.0) for k in range(n)]
        verdict = al.judge(c, alarm.state, points, period, when, bounds)
        if verdict is None or verdict.state == alarm.state:
            return
        self._change(alarm, verdict.state, verdict.reason, json.dumps(verdict.reason_data), when)

    def _evaluate_composites(self, account: str, region: str, when: float) -> None:
        alarms = self._alarms(account, region)
        for _ in range(5):  # composites of composites settle in a few rounds
            states = {a.name: a.state for a in alarms}
            changed = False
            for a in alarms:
                if a.kind != "composite":
                    continue
                tree = al.parse_rule(a.config["AlarmRule"])
                new = "ALARM" if al.rule_value(tree, states) else "OK"
                if new != a.state:
                    children = sorted(n for n in al.rule_children(tree) if states.get(n) == "ALARM")
                    reason = (f"arn:aws:cloudwatch:{region}:{account}:alarm:{children[0]} transitioned to ALARM"
                              if new == "ALARM" and children else "All alarms in the alarm rule are not in ALARM")
                    data = json.dumps({"triggeringAlarms": [
                        {"arn": f"arn:aws:cloudwatch:{region}:{account}:alarm:{n}", "state": {"value": states[n]}}
                        for n in children]})
                    self._change(a, new, reason, data, when)
                    changed = True
            if not changed:
                return
            alarms = self._alarms(account, region)

    def _change(self, alarm: al.Alarm, state: str, reason: str, data: str | None, when: float) -> None:
        old = alarm.state
        transitioned = when if state != old else alarm.state_transitioned
        self.store.execute("UPDATE cloudwatch_alarms SET state=?, reason=?, reason_data=?, state_updated=?, "
                           "state_transitioned=? WHERE id=?", (state, reason, data, when, transitioned, alarm.id))
        self._history(alarm, "StateUpdate", f"Alarm updated from {old} to {state}", {
            "version": "1.0", "oldState": {"stateValue": old, "stateReason": alarm.reason},
            "newState": {"stateValue": state, "stateReason": reason,
                         **({"stateReasonData": json.loads(data)} if data else {})}}, when)
        if state != old:
            al.run_actions(self.cloud, alarm, old, alarm.reason, alarm.reason_data, alarm.state_updated, state,
                           reason, data, when)
            self.cloud.feed.publish("cloudwatch.alarm", alarm=alarm.name, old=old, new=state, reason=reason)
