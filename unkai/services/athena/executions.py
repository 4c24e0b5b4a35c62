"""Athena's rows: query executions (with their results), workgroups and named queries.

An execution's results are kept with it (as well as written to its S3 output location
as Athena writes them), so GetQueryResults pages through them without re-reading S3 and
they survive a restart like any other acknowledged state.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

MIGRATIONS = [
    """
    CREATE TABLE athena_executions (
        id TEXT PRIMARY KEY,
        account TEXT NOT NULL, region TEXT NOT NULL, workgroup TEXT NOT NULL,
        query TEXT NOT NULL, database TEXT, catalog TEXT,
        output TEXT, statement_type TEXT NOT NULL,
        state TEXT NOT NULL, reason TEXT, error TEXT,
        submitted REAL NOT NULL, completed REAL,
        scanned INTEGER NOT NULL DEFAULT 0, engine_ms INTEGER NOT NULL DEFAULT 0,
        columns TEXT, rows TEXT, header INTEGER NOT NULL DEFAULT 1,
        token TEXT
    );
    CREATE INDEX athena_executions_wg ON athena_executions(account, region, workgroup, submitted);
    CREATE TABLE athena_workgroups (
        account TEXT NOT NULL, region TEXT NOT NULL, name TEXT NOT NULL, body TEXT NOT NULL,
        tags TEXT NOT NULL DEFAULT '[]',
        PRIMARY KEY (account, region, name)
    );
    CREATE TABLE athena_named_queries (
        id TEXT PRIMARY KEY,
        account TEXT NOT NULL, region TEXT NOT NULL, body TEXT NOT NULL
    );
    """
]

COLUMNS = ("id, account, region, workgroup, query, database, catalog, output, statement_type, state, reason, error, "
           "submitted, completed, scanned, engine_ms")


@dataclass
class Execution:
    id: str
    account: str
    region: str
    workgroup: str
    query: str
    database: str | None
    catalog: str | None
    output: str | None
    statement_type: str
    state: str
    reason: str | None
    error: str | None
    submitted: float
    completed: float | None
    scanned: int
    engine_ms: int

    def out(self) -> dict[str, Any]:
        """The QueryExecution structure."""
        status: dict[str, Any] = {"State": self.state, "SubmissionDateTime": self.submitted}
        if self.completed is not None:
            status["CompletionDateTime"] = self.completed
        if self.reason:
            status["StateChangeReason"] = self.reason
        if self.error:
            status["AthenaError"] = json.loads(self.error)
        result: dict[str, Any] = {
            "QueryExecutionId": self.id, "Query": self.query, "StatementType": self.statement_type,
            "ResultConfiguration": {"OutputLocation": self.output} if self.output else {},
            "QueryExecutionContext": {k: v for k, v in (("Database", self.database), ("Catalog", self.catalog)) if v},
            "Status": status, "WorkGroup": self.workgroup,
            "EngineVersion": {"SelectedEngineVersion": "AUTO", "EffectiveEngineVersion": "Athena engine version 3"},
            "Statistics": {"EngineExecutionTimeInMillis": self.engine_ms, "DataScannedInBytes": self.scanned,
                           "TotalExecutionTimeInMillis": self.engine_ms, "QueryQueueTimeInMillis": 0,
                           "ServicePreProcessingTimeInMillis": 0, "QueryPlanningTimeInMillis": 0,
                           "ServiceProcessingTimeInMillis": 0,
                           "ResultReuseInformation": {"ReusedPreviousResult": False}},
            "SubstatementType": _substatement(self.statement_type, self.query),
        }
        return result


def _substatement(kind: str, query: str) -> str | None:
    """Athena's SubstatementType: SELECT, INSERT, CREATE_TABLE_AS_SELECT, CREATE_TABLE..."""
    from unkai.services.athena import ddl

    words = query.split(None, 2)
    return {"ctas": "CREATE_TABLE_AS_SELECT", "insert": "INSERT", "create_external": "CREATE_TABLE"}.get(
        ddl.classify(query) or "") or ({"DML": "SELECT", "UTILITY": "SHOW"}.get(kind) or
                                       "_".join(w.upper() for w in words[:2]))


def from_row(row: tuple) -> Execution:
    return Execution(*row)
