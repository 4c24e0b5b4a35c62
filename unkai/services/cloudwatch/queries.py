"""GetMetricData's MetricDataQueries: metric stats and the math expressions over them,
shared by the API and by metric-math alarms."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from unkai.services.cloudwatch import errors
from unkai.services.cloudwatch.mathexpr import Evaluator, Labelled, MathError, Series, references
from unkai.services.cloudwatch.metrics import BASIC_STATS, MetricStore, valid_stat

_ID = re.compile(r"^[a-z][a-zA-Z0-9_]*$")


@dataclass
class Result:
    id: str
    label: str
    series: Series = field(default_factory=dict)
    status: str = "Complete"
    messages: list[dict] = field(default_factory=list)
    return_data: bool = True


def validate(queries: list[dict]) -> None:
    """AWS's checks on the query list, before anything is read."""
    if not queries:
        raise errors.invalid("The parameter MetricDataQueries must contain at least one element.")
    if len(queries) > 500:
        raise errors.invalid("The collection MetricDataQueries must not have a size greater than 500.")
    seen = set()
    for i, q in enumerate(queries, 1):
        qid = q.get("Id") or ""
        if not _ID.match(qid):
            raise errors.invalid(f"The value {qid} for parameter MetricDataQueries.member.{i}.Id is not valid. The Id "
                                 "must start with a lowercase letter and contain only letters, numbers and "
                                 "underscores.")
        if qid in seen:
            raise errors.invalid(f"The value {qid} for field MetricDataQueries.member.{i}.Id is duplicated.")
        seen.add(qid)
        has_stat, has_expr = bool(q.get("MetricStat")), bool(q.get("Expression"))
        if has_stat == has_expr:
            raise errors.invalid(f"Exactly one element of the metrics list should be a MetricStat or an Expression "
                                 f"(MetricDataQueries.member.{i}).")
        if has_stat:
            stat = q["MetricStat"].get("Stat") or ""
            if not valid_stat(stat):
                raise errors.invalid(f"The value {stat} for parameter MetricDataQueries.member.{i}.MetricStat.Stat "
                                     "is not a valid statistic.")
            period = q["MetricStat"].get("Period") or 0
            if period <= 0 or (period >= 60 and period % 60) or (period < 60 and period not in (1, 5, 10, 20, 30)):
                raise errors.invalid(f"The parameter MetricDataQueries.member.{i}.MetricStat.Period must be 1, 5, "
                                     "10, 20, 30, or any multiple of 60.")
    if not any(q.get("ReturnData", True) for q in queries):
        raise errors.invalid("No metrics to return: at least one element of MetricDataQueries must have ReturnData "
                             "set to true.")


def run(metrics: MetricStore, account: str, region: str, queries: list[dict], start: float, end: float,
        now: float) -> list[Result]:
    """Every query's result, in request order (expressions after what they reference)."""
    results: dict[str, Result] = {}
    expressions = False
    for q in queries:
        ms = q.get("MetricStat")
        if not ms:
            expressions = True
            continue
        metric, period, stat = ms["Metric"], ms["Period"], ms["Stat"]
        mid = metrics.find(account, region, metric.get("Namespace") or "", metric.get("MetricName") or "",
                           metric.get("Dimensions"))
        first = math.floor(start / period) * period
        if stat in BASIC_STATS:  # merged in SQL, one row per period
            series = metrics.statistic(mid, first, end, period, ms.get("Unit"), now, stat)
        else:  # percentiles, trimmed means: every point's values
            series = {}
            for ts, bucket in metrics.buckets(mid, first, end, period, ms.get("Unit"), now).items():
                value = bucket.stat(stat)
                if value is not None:
                    series[ts] = value
        results[q["Id"]] = Result(q["Id"], q.get("Label") or metric.get("MetricName") or q["Id"], series,
                                  return_data=q.get("ReturnData", True))
    if expressions:
        _expressions(queries, results, start, end)
    return [results[q["Id"]] for q in queries]


def _expressions(queries: list[dict], results: dict[str, Result], start: float, end: float) -> None:
    """The math expressions' results, added to ``results`` (the metric stats' results)."""
    by_id = {q["Id"]: q for q in queries}
    stat_periods = [q["MetricStat"]["Period"] for q in queries if q.get("MetricStat")]
    default_period = min(stat_periods) if stat_periods else 60

    def all_series() -> list[Labelled]:
        return [Labelled(r.label, r.series) for r in results.values() if by_id[r.id].get("MetricStat")]

    visiting: set[str] = set()

    def lookup(qid: str) -> Any:
        if qid in results:
            r = results[qid]
            if r.status != "Complete":
                raise MathError(f"Query {qid} failed")
            return getattr(r, "value", r.series)
        q = by_id.get(qid)
        if q is None:
            raise MathError(f"Unknown metric: {qid}")
        if qid in visiting:
            raise MathError(f"Circular reference: {qid}")
        visiting.add(qid)
        evaluate(q)
        visiting.discard(qid)
        return lookup(qid)

    def evaluate(q: dict) -> None:
        period = q.get("Period") or default_period
        first = math.floor(start / period) * period
        stamps = [float(t) for t in range(int(first), int(end), int(period))]
        evaluator = Evaluator(lookup, all_series, stamps, period)
        result = Result(q["Id"], q.get("Label") or q["Id"], return_data=q.get("ReturnData", True))
        try:
            value = evaluator.run(q["Expression"])
        except MathError as exc:
            result.status = "InternalError"
            result.messages = [{"Code": "InternalError", "Value": str(exc)}]
            results[q["Id"]] = result
            return
        if isinstance(value, list):
            if len(value) == 1:
                result.series = value[0].series
            else:
                result.series = value[0].series if value else {}
                if len(value) > 1:
                    result.messages = [{"Code": "MultipleTimeSeries", "Value": "The expression returned "
                                        f"{len(value)} time series; the first is shown."}]
        elif isinstance(value, dict):
            result.series = value
        else:
            result.series = {t: float(value) for t in stamps}
        result.series = {t: v for t, v in result.series.items() if not math.isnan(v)}
        setattr(result, "value", value)
        results[q["Id"]] = result

    for q in queries:
        if q.get("Expression") and q["Id"] not in results:
            try:
                refs = references(q["Expression"])
            except MathError as exc:  # a malformed expression is the query's error, never the request's
                results[q["Id"]] = Result(q["Id"], q.get("Label") or q["Id"], status="InternalError",
                                          messages=[{"Code": "InternalError", "Value": str(exc)}],
                                          return_data=q.get("ReturnData", True))
                continue
            unknown = [r for r in refs if r not in by_id and r.upper() not in ("REPEAT", "LINEAR")]
            if unknown and not all(r.isupper() for r in unknown):
                results[q["Id"]] = Result(q["Id"], q.get("Label") or q["Id"], status="InternalError",
                                          messages=[{"Code": "InternalError",
                                                     "Value": f"Unknown metric: {sorted(unknown)[0]}"}],
                                          return_data=q.get("ReturnData", True))
                continue
            lookup(q["Id"])
