"""Logs Insights' operations (StartQuery, GetQueryResults, StopQuery, DescribeQueries, query
definitions) and metric filters (PutMetricFilter ... TestMetricFilter), as mixins of the
Logs service.

A query runs when StartQuery is called: its events are read in one store read and the
compiled pipeline (``insights.py``) runs over them off the event loop; the results are
kept with the query (so GetQueryResults, DescribeQueries and a restart see them) and its
status goes Running -> Complete (or Failed; Cancelled by StopQuery; Timeout after AWS's 60
minutes, on unkai's clock, which follows wall time unless moved). A stopped or timed-out
query's worker thread sees a flag between chunks of events and steps, and ends.

Metric filters apply to every event stored after they are created (``append`` and
PutLogEvents alike, through the service's listeners), inside the transaction that stores
the event, and put their values through CloudWatch's ``record``.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import uuid
from typing import Any

from unkai.protocol import ServiceError
from unkai.services import RequestContext
from unkai.services.logs import insights
from unkai.services.logs.patterns import compile_pattern

MIGRATIONS = [
    """
    CREATE TABLE logs_queries (
        id TEXT PRIMARY KEY,
        account TEXT NOT NULL, region TEXT NOT NULL,
        query TEXT NOT NULL, groups TEXT NOT NULL, start INTEGER NOT NULL, end INTEGER NOT NULL,
        lim INTEGER, status TEXT NOT NULL, created INTEGER NOT NULL,
        results TEXT, statistics TEXT
    );
    CREATE TABLE logs_query_definitions (
        id TEXT PRIMARY KEY,
        account TEXT NOT NULL, region TEXT NOT NULL, name TEXT NOT NULL, query TEXT NOT NULL,
        groups TEXT NOT NULL, modified INTEGER NOT NULL
    );
    CREATE TABLE logs_metric_filters (
        account TEXT NOT NULL, region TEXT NOT NULL, grp TEXT NOT NULL, name TEXT NOT NULL,
        pattern TEXT NOT NULL, transformations TEXT NOT NULL, created INTEGER NOT NULL,
        PRIMARY KEY (account, region, grp, name)
    );
    """
]
MAX_SCAN = 10_000_000
QUERY_TIMEOUT = 3600.0


def _invalid(message: str) -> ServiceError:
    return ServiceError("InvalidParameterException", message)


def _malformed(error: insights.InsightsError) -> ServiceError:
    return ServiceError("MalformedQueryException", error.message, queryCompileError={
        "location": {"startCharOffset": error.start, "endCharOffset": error.end}, "message": error.message})


class InsightsQueries:
    """StartQuery and friends (mixed into the Logs service)."""

    def _insights_setup(self) -> None:
        self.store.migrate("logs_insights", MIGRATIONS)
        self._query_tasks: dict[str, asyncio.Task] = {}
        self._query_stops: dict[str, threading.Event] = {}
        self._filters: dict[tuple[str, str, str], list[tuple[str, Any, list]]] | None = None
        self.listeners.append(self._apply_metric_filters)

    def _group_names(self, params: dict) -> list[str]:
        names = list(params.get("logGroupNames") or [])
        if params.get("logGroupName"):
            names.append(params["logGroupName"])
        for ident in params.get("logGroupIdentifiers") or []:
            names.append(ident.split(":log-group:", 1)[1].removesuffix(":*") if ":log-group:" in ident else ident)
        return names

    def start_query(self, ctx: RequestContext, params: dict) -> dict:
        names = self._group_names(params)
        given = sum(bool(params.get(k)) for k in ("logGroupName", "logGroupNames", "logGroupIdentifiers"))
        if given > 1:
            raise _invalid("LogGroup name and LogGroup identifiers are mutually exclusive parameters.")
        text = params["queryString"]
        if not names and not re.match(r"\s*(?:source|SOURCE)\b", text):
            raise _invalid("Specify either the log group names or the log group identifiers.")
        if len(names) > 50:
            raise _invalid("Only 50 log groups can be queried at a time.")
        if params["endTime"] < params["startTime"]:
            raise _invalid("End time should not be before the start time.")
        limit = params.get("limit")
        if limit is not None and not 1 <= limit <= 10000:
            raise _invalid("1 validation error detected: Value at 'limit' failed to satisfy constraint: Member must "
                           "have value less than or equal to 10000")
        for name in names:
            if not self.store.one("SELECT 1 FROM logs_groups WHERE account=? AND region=? AND name=?",
                                  (ctx.account, ctx.region, name)):
                raise ServiceError("ResourceNotFoundException", f"Log group '{name}' does not exist for account ID "
                                   f"'{ctx.account}' (Service: AWSLogs; Status Code: 400; Error Code: "
                                   "ResourceNotFoundException)")
        try:
            compiled = insights.compile_query(text)
        except insights.InsightsError as exc:
            raise _malformed(exc) from None
        qid = str(uuid.uuid4())
        self.store.execute(
            "INSERT INTO logs_queries(id, account, region, query, groups, start, end, lim, status, created) "
            "VALUES(?,?,?,?,?,?,?,?,?,?)", (qid, ctx.account, ctx.region, text, json.dumps(names),
                                            params["startTime"], params["endTime"], limit, "Running",
                                            self.clock.now_ms()))
        self.store.after_commit(lambda: self._launch_query(qid, ctx.account, ctx.region, compiled, names,
                                                           params["startTime"], params["endTime"], limit or 10000))
        return {"queryId": qid}

    def _launch_query(self, qid: str, account: str, region: str, compiled: insights.Query, names: list[str],
                      start: int, end: int, limit: int) -> None:
        stop = threading.Event()
        task = asyncio.get_running_loop().create_task(
            self._run_query(qid, account, region, compiled, names, start, end, limit, stop))
        self._query_tasks[qid] = task
        self._query_stops[qid] = stop
        timer = self.clock.call_later(QUERY_TIMEOUT, lambda: self._time_out(qid))

        def done(_t: asyncio.Task) -> None:
            timer.cancel()
            self._query_tasks.pop(qid, None)
            self._query_stops.pop(qid, None)

        task.add_done_callback(done)

    def _time_out(self, qid: str) -> None:
        """AWS stops a query after 60 minutes with status Timeout."""
        stop = self._query_stops.get(qid)
        if stop is not None:
            stop.set()
        with self.store.transaction():
            self.store.execute("UPDATE logs_queries SET status='Timeout', results='[]' WHERE id=? AND "
                               "status='Running'", (qid,))

    async def _run_query(self, qid: str, account: str, region: str, compiled: insights.Query, names: list[str],
                         start: int, end: int, limit: int, stop: threading.Event) -> None:
        # The streams first (few rows), then their events as plain numbers and the message:
        # a million rows read as five-tuples with one string each, not three.
        of_groups = ("SELECT s.id, s.name, g.name FROM logs_streams s JOIN logs_groups g ON g.id=s.group_id "
                     f"WHERE g.account=? AND g.region=? AND g.name IN ({','.join('?' * len(names))})")
        events_in = (f"FROM logs_events WHERE stream_id IN (SELECT id FROM ({of_groups})) AND ts>=? AND ts<=? "
                     "LIMIT ?")
        events_args = (account, region, *names, start * 1000, end * 1000 + 999, MAX_SCAN)
        if compiled.counted is not None and not compiled.discover:
            # `stats count(*) [by bin(...)]` first: SQLite counts per bin, the later commands run on its rows
            first, _, _, bin_ms = compiled.counted
            key = f"CAST(ts / {int(bin_ms)} AS INTEGER) * {int(bin_ms)}" if bin_ms else "NULL"
            counts = self.store.all(f"SELECT {key} AS k, COUNT(*), SUM(length(message)) FROM "
                                    f"(SELECT ts, message {events_in}) GROUP BY k", events_args)

            def counted() -> tuple[list, dict]:
                out = insights.run_after(compiled, insights.counted_rows(compiled, [(k, n) for k, n, _ in counts]),
                                         first + 1, stop.is_set)
                stats = {"recordsMatched": float(len(out)), "recordsScanned": float(sum(n for _, n, _ in counts)),
                         "bytesScanned": float(sum(b or 0 for _, _, b in counts)),
                         "logGroupsScanned": float(len(names)), "estimatedRecordsSkipped": 0.0,
                         "estimatedBytesSkipped": 0.0}
                return insights.rows(compiled, out, limit), stats

            await self._finish_query(qid, counted)
            return
        streams = {sid: (stream, f"{account}:{group}", group.startswith("/aws/lambda/"))
                   for sid, stream, group in self.store.all(of_groups, (account, region, *names))}
        rows = self.store.all(f"SELECT id, ts, ingest, message, stream_id {events_in}", events_args)

        def work() -> tuple[list, dict]:
            records = []
            size = 0
            discover, pointers = compiled.discover, compiled.pointers or not compiled.stats
            record = insights.record
            for i, (eid, ts, ingest, message, sid) in enumerate(rows):
                if not i & 4095 and stop.is_set():
                    raise insights.Stopped
                stream, log, lambda_group = streams[sid]
                rec = record(ts, ingest, message, stream, log, lambda_group, discover)
                if pointers:
                    rec["@ptr"] = f"unkai-{eid}"
                size += len(message)
                records.append(rec)
            scanned = len(records)
            out = insights.run(compiled, records, stop.is_set)
            matched = len(out) if compiled.stats else sum(1 for _ in out)
            stats = {"recordsMatched": float(matched), "recordsScanned": float(scanned),
                     "bytesScanned": float(size), "logGroupsScanned": float(len(names)),
                     "estimatedRecordsSkipped": 0.0, "estimatedBytesSkipped": 0.0}
            return insights.rows(compiled, out, limit), stats

        await self._finish_query(qid, work)

    async def _finish_query(self, qid: str, work: Any) -> None:
        """Run a query's work off the event loop and keep its results with it."""
        try:
            results, stats = await asyncio.to_thread(work)
            status = "Complete"
        except insights.Stopped:
            return  # StopQuery or the timeout already wrote the status
        except Exception:  # noqa: BLE001 - a failing query fails alone
            results, stats, status = [], {}, "Failed"
        with self.store.transaction():
            self.store.execute("UPDATE logs_queries SET status=?, results=?, statistics=? WHERE id=? AND "
                               "status='Running'", (status, json.dumps(results), json.dumps(stats), qid))

    def _query(self, ctx: RequestContext, qid: str) -> tuple:
        row = self.store.one("SELECT id, query, groups, status, created, results, statistics FROM logs_queries "
                             "WHERE id=? AND account=? AND region=?", (qid, ctx.account, ctx.region))
        if row is None:
            raise ServiceError("ResourceNotFoundException", "Query does not exist.")
        return row

    def get_query_results(self, ctx: RequestContext, params: dict) -> dict:
        _, _, _, status, _, results, stats = self._query(ctx, params["queryId"])
        return {"queryLanguage": "CWLI", "results": json.loads(results or "[]"),
                "statistics": json.loads(stats or "{}") or {"recordsMatched": 0.0, "recordsScanned": 0.0,
                                                           "bytesScanned": 0.0},
                "status": status}

    def stop_query(self, ctx: RequestContext, params: dict) -> dict:
        qid, _, _, status, *_ = self._query(ctx, params["queryId"])
        if status != "Running":
            raise _invalid("Query is not running.")
        stop = self._query_stops.get(qid)
        if stop is not None:
            stop.set()  # the worker thread ends at its next check
        self.store.execute("UPDATE logs_queries SET status='Cancelled', results='[]' WHERE id=?", (qid,))
        return {"success": True}

    def describe_queries(self, ctx: RequestContext, params: dict) -> dict:
        rows = self.store.all("SELECT id, query, groups, status, created FROM logs_queries WHERE account=? AND "
                              "region=? ORDER BY created DESC", (ctx.account, ctx.region))
        out = []
        for qid, text, groups, status, created in rows:
            names = json.loads(groups)
            if params.get("logGroupName") and params["logGroupName"] not in names:
                continue
            if params.get("status") and params["status"] != status:
                continue
            out.append({"queryLanguage": "CWLI", "queryId": qid, "queryString": text, "status": status,
                        "createTime": created, "logGroupName": names[0] if names else None})
        size = params.get("maxResults") or 1000
        return {"queries": out[:size]}

    def put_query_definition(self, ctx: RequestContext, params: dict) -> dict:
        try:
            insights.compile_query(params["queryString"])
        except insights.InsightsError as exc:
            raise _malformed(exc) from None
        qid = params.get("queryDefinitionId") or str(uuid.uuid4())
        if params.get("queryDefinitionId") and not self.store.one(
                "SELECT 1 FROM logs_query_definitions WHERE id=? AND account=? AND region=?",
                (qid, ctx.account, ctx.region)):
            raise ServiceError("ResourceNotFoundException", "Query definition does not exist.")
        self.store.execute("INSERT OR REPLACE INTO logs_query_definitions(id, account, region, name, query, groups, "
                           "modified) VALUES(?,?,?,?,?,?,?)",
                           (qid, ctx.account, ctx.region, params["name"], params["queryString"],
                            json.dumps(params.get("logGroupNames") or []), self.clock.now_ms()))
        return {"queryDefinitionId": qid}

    def describe_query_definitions(self, ctx: RequestContext, params: dict) -> dict:
        prefix = params.get("queryDefinitionNamePrefix") or ""
        rows = self.store.all("SELECT id, name, query, groups, modified FROM logs_query_definitions WHERE account=? "
                              "AND region=? ORDER BY name", (ctx.account, ctx.region))
        return {"queryDefinitions": [
            {"queryLanguage": "CWLI", "queryDefinitionId": i, "name": n, "queryString": q,
             "lastModified": m, "logGroupNames": json.loads(g)}
            for i, n, q, g, m in rows if n.startswith(prefix)][: params.get("maxResults") or 1000]}

    def delete_query_definition(self, ctx: RequestContext, params: dict) -> dict:
        done = self.store.execute("DELETE FROM logs_query_definitions WHERE id=? AND account=? AND region=?",
                                  (params["queryDefinitionId"], ctx.account, ctx.region)).rowcount
        if not done:
            raise ServiceError("ResourceNotFoundException", "Query definition does not exist.")
        return {"success": True}

    # -- metric filters ------------------------------------------------------------------------------

    def put_metric_filter(self, ctx: RequestContext, params: dict) -> dict:
        row = self._group(ctx, params)
        pattern = params["filterPattern"]
        try:
            compile_pattern(pattern)
        except Exception:  # noqa: BLE001 - the pattern module's own error type
            raise _invalid("Invalid metric filter pattern") from None
        transformations = params["metricTransformations"]
        if len(transformations) != 1:
            raise _invalid("1 validation error detected: Value at 'metricTransformations' failed to satisfy "
                           "constraint: Member must have length less than or equal to 1")
        for t in transformations:
            value = t["metricValue"]
            if not (re.fullmatch(r"-?\d+(\.\d+)?", value) or re.fullmatch(r"\$[\w.\[\]]+", value)):
                raise _invalid(f"Invalid metric value: {value}")
            if t.get("dimensions") and t.get("defaultValue") is not None:
                raise _invalid("Metric filters with dimensions cannot have a default value.")
        count = self.store.one("SELECT count(*) FROM logs_metric_filters WHERE account=? AND region=? AND grp=? AND "
                               "name<>?", (ctx.account, ctx.region, row[1], params["filterName"]))[0]
        if count >= 100:
            raise ServiceError("LimitExceededException", "Resource limit exceeded.")
        self.store.execute("INSERT OR REPLACE INTO logs_metric_filters(account, region, grp, name, pattern, "
                           "transformations, created) VALUES(?,?,?,?,?,?,?)",
                           (ctx.account, ctx.region, row[1], params["filterName"], pattern,
                            json.dumps(transformations), self.clock.now_ms()))
        self.store.after_commit(self._forget_filters)
        return {}

    def describe_metric_filters(self, ctx: RequestContext, params: dict) -> dict:
        sql = "SELECT grp, name, pattern, transformations, created FROM logs_metric_filters WHERE account=? AND region=?"
        args: list[Any] = [ctx.account, ctx.region]
        if params.get("logGroupName"):
            self._group(ctx, params)
            sql += " AND grp=?"
            args.append(params["logGroupName"])
        out = []
        for grp, name, pattern, transformations, created in self.store.all(sql + " ORDER BY grp, name", args):
            ts = json.loads(transformations)
            if params.get("filterNamePrefix") and not name.startswith(params["filterNamePrefix"]):
                continue
            if params.get("metricName") and not any(t["metricName"] == params["metricName"] for t in ts):
                continue
            if params.get("metricNamespace") and not any(t["metricNamespace"] == params["metricNamespace"]
                                                         for t in ts):
                continue
            out.append({"filterName": name, "filterPattern": pattern, "metricTransformations": ts,
                        "creationTime": created, "logGroupName": grp, "applyOnTransformedLogs": False})
        return {"metricFilters": out[: params.get("limit") or 50]}

    def delete_metric_filter(self, ctx: RequestContext, params: dict) -> dict:
        self._group(ctx, params)
        done = self.store.execute("DELETE FROM logs_metric_filters WHERE account=? AND region=? AND grp=? AND name=?",
                                  (ctx.account, ctx.region, params["logGroupName"], params["filterName"])).rowcount
        if not done:
            raise ServiceError("ResourceNotFoundException", "The specified metric filter does not exist.")
        self.store.after_commit(self._forget_filters)
        return {}

    def test_metric_filter(self, ctx: RequestContext, params: dict) -> dict:
        try:
            matcher = compile_pattern(params["filterPattern"])
        except Exception:  # noqa: BLE001
            raise _invalid("Invalid metric filter pattern") from None
        out = []
        for i, message in enumerate(params["logEventMessages"], 1):
            fields = _fields(matcher, message)
            if fields is not None:
                out.append({"eventNumber": i, "eventMessage": message, "extractedValues": fields})
        return {"matches": out}

    def metric_filter_resource(self, ctx: Any, logical_id: str, props: dict) -> Any:
        """``AWS::Logs::MetricFilter``: Ref is the filter's name (physical id ``group|name``)."""
        from unkai.services import Provisioned
        from unkai.template.names import physical_name

        name = props.get("FilterName") or physical_name(ctx.stack_name, logical_id, 512)
        transformations = []
        for t in props.get("MetricTransformations") or []:
            item = {"metricName": t["MetricName"], "metricNamespace": t["MetricNamespace"],
                    "metricValue": str(t["MetricValue"])}
            if t.get("DefaultValue") is not None:
                item["defaultValue"] = float(t["DefaultValue"])
            if t.get("Unit"):
                item["unit"] = t["Unit"]
            if t.get("Dimensions"):
                item["dimensions"] = {d["Key"]: d["Value"] for d in t["Dimensions"]}
            transformations.append(item)
        self.put_metric_filter(ctx.request_context("logs"), {
            "logGroupName": props["LogGroupName"], "filterName": name, "filterPattern": props.get("FilterPattern", ""),
            "metricTransformations": transformations})
        return Provisioned(f"{props['LogGroupName']}|{name}", name)

    def _forget_filters(self) -> None:
        self._filters = None

    def _apply_metric_filters(self, account: str, region: str, group: str, stream: str,
                              events: list[tuple[int, str]]) -> None:
        if self._filters is None:
            loaded: dict[tuple[str, str, str], list[tuple[str, Any, list]]] = {}
            for acc, reg, grp, name, pattern, ts in self.store.all(
                    "SELECT account, region, grp, name, pattern, transformations FROM logs_metric_filters"):
                try:
                    loaded.setdefault((acc, reg, grp), []).append((name, compile_pattern(pattern), json.loads(ts)))
                except Exception:  # noqa: BLE001 - validated when put
                    continue
            self._filters = loaded
        filters = self._filters.get((account, region, group))
        if not filters or "cloudwatch" not in self.cloud.services:
            return
        cw = self.cloud.service("cloudwatch")
        for _name, matcher, transformations in filters:
            for ts, message in events:
                matched = _match(matcher, message)
                for t in transformations:
                    if matched is None:
                        if t.get("defaultValue") is not None and not t.get("dimensions"):
                            cw.record(account, region, t["metricNamespace"], t["metricName"], None,
                                      float(t["defaultValue"]), t.get("unit") or "None", ts / 1000.0)
                        continue
                    value = _metric_value(t["metricValue"], message, matched)
                    if value is None:
                        continue
                    dims = []
                    for dname, selector in (t.get("dimensions") or {}).items():
                        dv = _selector(selector, message, matched)
                        if dv is None:
                            break
                        dims.append({"Name": dname, "Value": str(dv)})
                    else:
                        cw.record(account, region, t["metricNamespace"], t["metricName"], dims or None, value,
                                  t.get("unit") or "None", ts / 1000.0)


def _match(matcher: Any, message: str) -> dict | None:
    """Whether a filter pattern matches: the extracted fields (possibly empty), or None."""
    try:
        result = matcher(message) if callable(matcher) else matcher.match(message)
    except Exception:  # noqa: BLE001
        return None
    if not result:
        return None
    return result if isinstance(result, dict) else {}


def _fields(matcher: Any, message: str) -> dict | None:
    found = _match(matcher, message)
    return None if found is None else {k: str(v) for k, v in found.items()}


def _selector(selector: str, message: str, matched: dict) -> Any:
    if not selector.startswith("$"):
        return selector
    name = selector[1:]
    if name.startswith("."):
        try:
            doc = json.loads(message)
        except ValueError:
            return None
        for part in re.findall(r"[^.\[\]]+", name):
            if isinstance(doc, dict):
                doc = doc.get(part)
            elif isinstance(doc, list) and part.isdigit() and int(part) < len(doc):
                doc = doc[int(part)]
            else:
                return None
        return doc if not isinstance(doc, (dict, list)) else None
    return matched.get(name) if name in matched else matched.get(f"${name}")


def _metric_value(spec: str, message: str, matched: dict) -> float | None:
    if not spec.startswith("$"):
        return float(spec)
    value = _selector(spec, message, matched)
    try:
        return float(value) if value is not None and not isinstance(value, bool) else None
    except (TypeError, ValueError):
        return None
