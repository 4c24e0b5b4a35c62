"""Amazon Athena's operations: query executions run by DuckDB over Glue tables in S3,
their results (API and CSV in the output location), workgroups and named queries.

An execution is QUEUED when StartQueryExecution answers; a task then moves it to
RUNNING, plans it on the event loop, runs it in a worker thread (stopped by
StopQueryExecution or the timeout) and writes ``<id>.csv`` and ``<id>.csv.metadata``
to the output location before it is SUCCEEDED, as Athena does. Executions found QUEUED
or RUNNING at start-up (the server stopped mid-query) run again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from pathlib import Path
from typing import Any

from unkai.services import RequestContext, Service
from unkai.services.athena import ddl, writes
from unkai.services.athena import engine as eng
from unkai.services.athena import errors
from unkai.services.athena import sql as athena_sql
from unkai.services.athena.executions import COLUMNS, MIGRATIONS, Execution, from_row

log = logging.getLogger(__name__)

QUERY_TIMEOUT = 30 * 60  # Athena's default DML query timeout (a service quota)
MAX_QUERY = 262_144
_WG_NAME = re.compile(r"^[a-zA-Z0-9._-]{1,128}$")


class Athena(Service):
    name = "athena"
    migrations = MIGRATIONS
    resource_types = ("AWS::Athena::WorkGroup", "AWS::Athena::NamedQuery")

    def check_unimplemented(self, ctx: RequestContext, operation: str, params: dict) -> None:
        """An operation unkai does not serve still answers InvalidRequestException for a missing workgroup first, as AWS does."""
        if isinstance(params.get("WorkGroup"), str):
            self._workgroup(ctx, params["WorkGroup"])

    def __init__(self, cloud: Any) -> None:
        super().__init__(cloud)
        self._running: dict[str, eng.Engine] = {}
        self._tasks: set[asyncio.Task] = set()
        self.timeout = QUERY_TIMEOUT

    async def start(self) -> None:
        for (qid,) in self.store.all("SELECT id FROM athena_executions WHERE state IN ('QUEUED', 'RUNNING')"):
            self._launch(qid)

    async def stop(self) -> None:
        for engine in list(self._running.values()):
            engine.interrupt()

    async def pausing(self) -> None:
        for engine in list(self._running.values()):
            engine.interrupt()

    def pending(self) -> dict[str, int]:
        busy = sum(1 for t in self._tasks if not t.done())
        return {"athena queries": busy} if busy else {}

    # -- workgroups ---------------------------------------------------------------------------

    def _workgroup(self, ctx: RequestContext, name: str) -> dict:
        row = self.store.one("SELECT body FROM athena_workgroups WHERE account=? AND region=? AND name=?",
                             (ctx.account, ctx.region, name))
        if row:
            return json.loads(row[0])
        if name == "primary":
            body = {"Name": "primary", "State": "ENABLED", "Configuration": {
                "EnforceWorkGroupConfiguration": False, "PublishCloudWatchMetricsEnabled": False,
                "RequesterPaysEnabled": False, "EngineVersion": {
                    "SelectedEngineVersion": "AUTO", "EffectiveEngineVersion": "Athena engine version 3"}},
                "CreationTime": 0.0}
            return body
        raise errors.invalid(f"WorkGroup {name} is not found.")

    def create_work_group(self, ctx: RequestContext, params: dict) -> dict:
        name = params["Name"]
        if not _WG_NAME.match(name):
            raise errors.invalid(f"1 validation error detected: Value '{name}' at 'name' failed to satisfy "
                                 "constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9._-]{1,128}")
        if name == "primary" or self.store.one("SELECT 1 FROM athena_workgroups WHERE account=? AND region=? AND "
                                               "name=?", (ctx.account, ctx.region, name)):
            raise errors.invalid("WorkGroup is already created")
        config = dict(params.get("Configuration") or {})
        config.setdefault("EnforceWorkGroupConfiguration", True)
        config.setdefault("PublishCloudWatchMetricsEnabled", True)
        config.setdefault("RequesterPaysEnabled", False)
        config["EngineVersion"] = {"SelectedEngineVersion": "AUTO",
                                   "EffectiveEngineVersion": "Athena engine version 3"}
        body = {"Name": name, "State": "ENABLED", "Configuration": config,
                "Description": params.get("Description"), "CreationTime": self.clock.now()}
        self.store.execute("INSERT INTO athena_workgroups(account, region, name, body, tags) VALUES(?,?,?,?,?)",
                           (ctx.account, ctx.region, name, json.dumps(body), json.dumps(params.get("Tags") or [])))
        return {}

    def get_work_group(self, ctx: RequestContext, params: dict) -> dict:
        return {"WorkGroup": self._workgroup(ctx, params["WorkGroup"])}

    def list_work_groups(self, ctx: RequestContext, params: dict) -> dict:
        rows = [json.loads(r[0]) for r in self.store.all(
            "SELECT body FROM athena_workgroups WHERE account=? AND region=? ORDER BY name", (ctx.account, ctx.region))]
        groups = [self._workgroup(ctx, "primary")] + rows
        return {"WorkGroups": [{"Name": g["Name"], "State": g["State"], "Description": g.get("Description") or "",
                                "CreationTime": g.get("CreationTime") or 0.0,
                                "EngineVersion": g["Configuration"]["EngineVersion"]} for g in groups]}

    def update_work_group(self, ctx: RequestContext, params: dict) -> dict:
        body = self._workgroup(ctx, params["WorkGroup"])
        if params.get("Description") is not None:
            body["Description"] = params["Description"]
        if params.get("State"):
            body["State"] = params["State"]
        updates = params.get("ConfigurationUpdates") or {}
        config = body["Configuration"]
        if updates.get("ResultConfigurationUpdates"):
            rc = dict(config.get("ResultConfiguration") or {})
            u = updates["ResultConfigurationUpdates"]
            if u.get("OutputLocation"):
                rc["OutputLocation"] = u["OutputLocation"]
            if u.get("RemoveOutputLocation"):
                rc.pop("OutputLocation", None)
            config["ResultConfiguration"] = rc
        for k in ("EnforceWorkGroupConfiguration", "PublishCloudWatchMetricsEnabled", "BytesScannedCutoffPerQuery",
                  "RequesterPaysEnabled"):
            if updates.get(k) is not None:
                config[k] = updates[k]
        self.store.execute("INSERT OR REPLACE INTO athena_workgroups(account, region, name, body) VALUES(?,?,?,?)",
                           (ctx.account, ctx.region, body["Name"], json.dumps(body)))
        return {}

    def delete_work_group(self, ctx: RequestContext, params: dict) -> dict:
        if params["WorkGroup"] == "primary":
            raise errors.invalid("The primary workgroup cannot be deleted.")
        self._workgroup(ctx, params["WorkGroup"])
        self.store.execute("DELETE FROM athena_workgroups WHERE account=? AND region=? AND name=?",
                           (ctx.account, ctx.region, params["WorkGroup"]))
        return {}

    # -- named queries -----------------------------------------------------------------------------

    def create_named_query(self, ctx: RequestContext, params: dict) -> dict:
        self._workgroup(ctx, params.get("WorkGroup") or "primary")
        qid = str(uuid.uuid4())
        body = {"Name": params["Name"], "Description": params.get("Description"), "Database": params["Database"],
                "QueryString": params["QueryString"], "NamedQueryId": qid,
                "WorkGroup": params.get("WorkGroup") or "primary"}
        self.store.execute("INSERT INTO athena_named_queries(id, account, region, body) VALUES(?,?,?,?)",
                           (qid, ctx.account, ctx.region, json.dumps(body)))
        return {"NamedQueryId": qid}

    def _named(self, ctx: RequestContext, qid: str) -> dict | None:
        row = self.store.one("SELECT body FROM athena_named_queries WHERE id=? AND account=? AND region=?",
                             (qid, ctx.account, ctx.region))
        return json.loads(row[0]) if row else None

    def get_named_query(self, ctx: RequestContext, params: dict) -> dict:
        found = self._named(ctx, params["NamedQueryId"])
        if found is None:
            raise errors.invalid(f"NamedQuery {params['NamedQueryId']} was not found.")
        return {"NamedQuery": found}

    def batch_get_named_query(self, ctx: RequestContext, params: dict) -> dict:
        found, missing = [], []
        for qid in params["NamedQueryIds"]:
            q = self._named(ctx, qid)
            if q:
                found.append(q)
            else:
                missing.append({"NamedQueryId": qid, "ErrorCode": "INVALID_INPUT",
                                "ErrorMessage": "The named query was not found."})
        return {"NamedQueries": found, "UnprocessedNamedQueryIds": missing}

    def list_named_queries(self, ctx: RequestContext, params: dict) -> dict:
        wg = params.get("WorkGroup") or "primary"
        ids = [json.loads(r[0]) for r in self.store.all(
            "SELECT body FROM athena_named_queries WHERE account=? AND region=? ORDER BY rowid", (ctx.account, ctx.region))]
        return {"NamedQueryIds": [q["NamedQueryId"] for q in ids if q["WorkGroup"] == wg]}

    def delete_named_query(self, ctx: RequestContext, params: dict) -> dict:
        self.store.execute("DELETE FROM athena_named_queries WHERE id=? AND account=? AND region=?",
                           (params["NamedQueryId"], ctx.account, ctx.region))
        return {}

    # -- query executions ---------------------------------------------------------------------------

    def start_query_execution(self, ctx: RequestContext, params: dict) -> dict:
        text = params["QueryString"]
        if not 1 <= len(text) <= MAX_QUERY:
            raise errors.invalid(f"1 validation error detected: Value at 'queryString' failed to satisfy constraint: "
                                 f"Member must have length less than or equal to {MAX_QUERY}")
        token = params.get("ClientRequestToken")
        if token:
            row = self.store.one("SELECT id FROM athena_executions WHERE account=? AND region=? AND token=?",
                                 (ctx.account, ctx.region, token))
            if row:
                return {"QueryExecutionId": row[0]}
        wg_name = params.get("WorkGroup") or "primary"
        wg = self._workgroup(ctx, wg_name)
        if wg.get("State") == "DISABLED":
            raise errors.invalid(f"WorkGroup {wg_name} is disabled.")
        config = wg.get("Configuration") or {}
        output = ((params.get("ResultConfiguration") or {}).get("OutputLocation"))
        if config.get("EnforceWorkGroupConfiguration") or not output:
            output = (config.get("ResultConfiguration") or {}).get("OutputLocation") or output
        if not output:
            raise errors.invalid("No output location provided. An output location is required either through the "
                                 "Workgroup result configuration setting or as an API input.")
        context = params.get("QueryExecutionContext") or {}
        database = (context.get("Database") or "default").lower()
        qid = str(uuid.uuid4())
        self.store.execute(
            f"INSERT INTO athena_executions({COLUMNS}, token) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (qid, ctx.account, ctx.region, wg_name, text, database, context.get("Catalog") or "AwsDataCatalog",
             output.rstrip("/") + "/" + qid + ".csv" if athena_sql.statement_kind(text) == "DML"
             else output.rstrip("/") + "/" + qid + ".txt", athena_sql.statement_kind(text), "QUEUED", None, None,
             self.clock.now(), None, 0, 0, token))
        self.store.after_commit(lambda: self._launch(qid))
        return {"QueryExecutionId": qid}

    def _execution(self, ctx: RequestContext | None, qid: str) -> Execution:
        if not re.fullmatch(r"[a-f0-9-]{36}", qid or ""):
            raise errors.invalid(f"QueryExecution {qid} was not found")
        row = self.store.one(f"SELECT {COLUMNS} FROM athena_executions WHERE id=?", (qid,))
        if row is None or (ctx is not None and (row[1], row[2]) != (ctx.account, ctx.region)):
            raise errors.invalid(f"QueryExecution {qid} was not found")
        return from_row(row)

    def get_query_execution(self, ctx: RequestContext, params: dict) -> dict:
        return {"QueryExecution": self._execution(ctx, params["QueryExecutionId"]).out()}

    def batch_get_query_execution(self, ctx: RequestContext, params: dict) -> dict:
        found, missing = [], []
        for qid in params["QueryExecutionIds"]:
            try:
                found.append(self._execution(ctx, qid).out())
            except Exception:  # noqa: BLE001 - reported per id
                missing.append({"QueryExecutionId": qid, "ErrorCode": "INVALID_INPUT",
                                "ErrorMessage": "QueryExecution was not found."})
        return {"QueryExecutions": found, "UnprocessedQueryExecutionIds": missing}

    def list_query_executions(self, ctx: RequestContext, params: dict) -> dict:
        wg = params.get("WorkGroup") or "primary"
        self._workgroup(ctx, wg)
        ids = [r[0] for r in self.store.all("SELECT id FROM athena_executions WHERE account=? AND region=? AND "
                                            "workgroup=? ORDER BY submitted DESC, rowid DESC",
                                            (ctx.account, ctx.region, wg))]
        size = params.get("MaxResults") or 50
        start = int(params["NextToken"]) if (params.get("NextToken") or "").isdigit() else 0
        out: dict[str, Any] = {"QueryExecutionIds": ids[start:start + size]}
        if start + size < len(ids):
            out["NextToken"] = str(start + size)
        return out

    def stop_query_execution(self, ctx: RequestContext, params: dict) -> dict:
        ex = self._execution(ctx, params["QueryExecutionId"])
        if ex.state in ("QUEUED", "RUNNING"):
            engine = self._running.get(ex.id)
            if engine is not None:
                engine.interrupt()
            self._finish(ex.id, "CANCELLED", reason="Query cancelled by user")
        return {}

    def get_query_results(self, ctx: RequestContext, params: dict) -> dict:
        ex = self._execution(ctx, params["QueryExecutionId"])
        if ex.state in ("QUEUED", "RUNNING"):
            raise errors.not_running(ex.id, ex.state)
        if ex.state != "SUCCEEDED":
            raise errors.invalid(f"Query did not finish successfully. Final query state: {ex.state}\n"
                                 f"{ex.reason or ''}".rstrip())
        size = params.get("MaxResults") or 1000
        if not 1 <= size <= 1000:
            raise errors.invalid("1 validation error detected: Value at 'maxResults' failed to satisfy constraint: "
                                 "Member must have value less than or equal to 1000")
        row = self.store.one("SELECT columns, rows, header FROM athena_executions WHERE id=?", (ex.id,))
        columns, rows, header = json.loads(row[0] or "[]"), json.loads(row[1] or "[]"), bool(row[2])
        all_rows = ([[c["Name"] for c in columns]] if header else []) + rows
        token = params.get("NextToken")
        start = int(token) if token and token.isdigit() else 0
        if token and not token.isdigit():
            raise errors.invalid("The NextToken is not valid.")
        page = all_rows[start:start + size]
        written = ddl.classify(ex.query) in ("ctas", "insert") and rows and rows[0] and (rows[0][0] or "").isdigit()
        out: dict[str, Any] = {
            "UpdateCount": int(rows[0][0]) if written else 0,  # the rows CTAS or INSERT INTO wrote
            "ResultSet": {"Rows": [{"Data": [{"VarCharValue": v} if v is not None else {} for v in r]} for r in page],
                          "ResultSetMetadata": {"ColumnInfo": columns}}}
        if start + size < len(all_rows):
            out["NextToken"] = str(start + size)
        return out

    # -- running ------------------------------------------------------------------------------------

    def _launch(self, qid: str) -> None:
        task = asyncio.get_running_loop().create_task(self._run(qid))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _finish(self, qid: str, state: str, reason: str | None = None, error: dict | None = None,
                **fields: Any) -> bool:
        """Move an execution to a final state, unless it already is in one (a stopped query
        stays CANCELLED when its thread returns)."""
        with self.store.transaction():
            row = self.store.one("SELECT state FROM athena_executions WHERE id=?", (qid,))
            if row is None or row[0] not in ("QUEUED", "RUNNING"):
                return False
            sets = {"state": state, "reason": reason, "error": json.dumps(error) if error else None,
                    "completed": self.clock.now(), **fields}
            self.store.execute(f"UPDATE athena_executions SET {', '.join(k + '=?' for k in sets)} WHERE id=?",
                               (*sets.values(), qid))
        return True

    async def _run(self, qid: str) -> None:
        with self.store.transaction():
            row = self.store.one(f"SELECT {COLUMNS} FROM athena_executions WHERE id=?", (qid,))
            if row is None or row[9] not in ("QUEUED", "RUNNING"):
                return
            ex = from_row(row)
            self.store.execute("UPDATE athena_executions SET state='RUNNING' WHERE id=?", (qid,))
        started = time.monotonic()
        try:
            write = ddl.classify(ex.query)
            if write in ("ctas", "insert"):
                outcome = await writes.run(self, ex, write)
                scanned = 0
            elif ex.statement_type == "DML":
                outcome, scanned = await self._select(ex)
            else:
                with self.store.transaction():
                    outcome = self._utility(ex)
                scanned = 0
            data = eng.csv_text(outcome.columns, outcome.rows, outcome.header) if ex.statement_type == "DML" else \
                ("\n".join("\t".join(v or "" for v in r) for r in outcome.rows) + "\n").encode()
            await self._write_output(ex, data, outcome.columns)
        except eng.QueryFailed as exc:
            self._finish(qid, "FAILED", reason=exc.message, error={
                "ErrorCategory": exc.category, "ErrorType": exc.error_type, "Retryable": False,
                "ErrorMessage": exc.message}, engine_ms=int((time.monotonic() - started) * 1000))
            return
        except Exception as exc:  # noqa: BLE001 - an engine bug fails the query, never the server
            log.exception("athena query %s failed", qid)
            self._finish(qid, "FAILED", reason=f"GENERIC_INTERNAL_ERROR: {exc}", error={
                "ErrorCategory": 1, "ErrorType": 401, "Retryable": False, "ErrorMessage": str(exc)})
            return
        self._finish(qid, "SUCCEEDED", scanned=scanned, engine_ms=int((time.monotonic() - started) * 1000),
                     columns=json.dumps(outcome.columns), rows=json.dumps(outcome.rows),
                     header=1 if outcome.header else 0)

    async def _select(self, ex: Execution) -> tuple[eng.Outcome, int]:
        with self.store.transaction():
            query_plan = eng.plan(self.cloud, ex.account, ex.region, ex.database or "default", ex.query)
        scratch = Path(self.config.state_dir) / "athena"  # inline (small) objects are copied here
        scratch.mkdir(parents=True, exist_ok=True)
        engine = eng.Engine(scratch)
        outcome = await self.run_engine(ex, engine, engine.execute, ex.query, query_plan)
        return outcome, query_plan.scanned

    async def run_engine(self, ex: Execution, engine: eng.Engine, work: Any, *args: Any) -> Any:
        """Run ``work`` (the engine's execute or write) in a worker thread, stoppable by
        StopQueryExecution and stopped at the timeout."""
        self._running[ex.id] = engine
        # the timeout runs on unkai's clock (which follows wall time unless it is moved),
        # from the query's submission: a clock moved before the engine starts counts too
        timer = self.clock.call_at(ex.submitted + self.timeout, engine.interrupt)
        try:
            return await asyncio.to_thread(work, *args)
        except eng.QueryFailed as exc:
            if engine.cancelled and not self._is_cancelled(ex.id):
                # Athena runs Trino, which words its time limit so (EXCEEDED_TIME_LIMIT)
                raise eng.QueryFailed(f"EXCEEDED_TIME_LIMIT: Query exceeded maximum time limit of "
                                      f"{self.timeout / 60:.2f}m", 1, 1) from None
            raise exc
        finally:
            timer.cancel()
            self._running.pop(ex.id, None)

    def _is_cancelled(self, qid: str) -> bool:
        row = self.store.one("SELECT state FROM athena_executions WHERE id=?", (qid,))
        return bool(row) and row[0] == "CANCELLED"

    def _utility(self, ex: Execution) -> eng.Outcome:
        """SHOW, DESCRIBE, MSCK REPAIR TABLE and ALTER TABLE ADD PARTITION, from the Glue catalog."""
        from unkai.services.athena import statements

        return statements.run(self.cloud, ex.account, ex.region, ex.database or "default", ex.query)

    async def _write_output(self, ex: Execution, data: bytes, columns: list[dict]) -> None:
        bucket, key = eng.split_s3(ex.output or "")
        s3 = self.cloud.service("s3")
        try:
            with self.store.transaction():
                s3.put_object_bytes(bucket, key, data, "text/csv" if key.endswith(".csv") else "text/plain",
                                    ex.region, "athena.amazonaws.com")
                s3.put_object_bytes(bucket, key + ".metadata", json.dumps({"ColumnInfo": columns}).encode(),
                                    "application/octet-stream", ex.region, "athena.amazonaws.com")
        except Exception as exc:  # noqa: BLE001 - reported as Athena reports an unwritable output
            raise eng.QueryFailed(f"Unable to verify/create output bucket {bucket}", 2, 1301) from exc

    # -- the catalog as Athena lists it ----------------------------------------------------------------

    def list_data_catalogs(self, ctx: RequestContext, params: dict) -> dict:
        return {"DataCatalogsSummary": [{"CatalogName": "AwsDataCatalog", "Type": "GLUE"}]}

    def list_databases(self, ctx: RequestContext, params: dict) -> dict:
        glue = self.cloud.service("glue")
        return {"DatabaseList": [{"Name": d["Name"], "Description": d.get("Description") or ""}
                                 for d in glue.catalog.databases(ctx.account, ctx.region)]}

    def get_table_metadata(self, ctx: RequestContext, params: dict) -> dict:
        glue = self.cloud.service("glue")
        table = glue.catalog.table(ctx.account, ctx.region, params["DatabaseName"], params["TableName"])
        if table is None:
            raise errors.invalid(f"Table {params['TableName']} not found.", "ENTITY_NOT_FOUND")
        return {"TableMetadata": _table_metadata(table)}

    def list_table_metadata(self, ctx: RequestContext, params: dict) -> dict:
        glue = self.cloud.service("glue")
        if glue.catalog.database(ctx.account, ctx.region, params["DatabaseName"]) is None:
            raise errors.not_found(f"Database {params['DatabaseName']} not found.")
        return {"TableMetadataList": [_table_metadata(t) for t in glue.catalog.tables(
            ctx.account, ctx.region, params["DatabaseName"])]}


def _table_metadata(table: dict) -> dict:
    sd = table.get("StorageDescriptor") or {}
    return {"Name": table["Name"], "CreateTime": table.get("CreateTime"), "TableType": table.get("TableType"),
            "Columns": [{"Name": c["Name"], "Type": c.get("Type")} for c in sd.get("Columns") or []],
            "PartitionKeys": [{"Name": c["Name"], "Type": c.get("Type")} for c in table.get("PartitionKeys") or []],
            "Parameters": table.get("Parameters") or {}}
