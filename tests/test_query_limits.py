"""Queries stopped while they run: a Logs Insights query stopped by StopQuery (Cancelled) or
at AWS's 60-minute limit (Timeout), and an Athena query past its 30-minute DML timeout
(FAILED with Trino's EXCEEDED_TIME_LIMIT), both limits on unkai's clock. The module has its
own server, since it moves the clock."""

from __future__ import annotations

import time
import uuid

import pytest
from botocore.exceptions import ClientError
from lambda_code import private_server

unkai = private_server("query-limits")

EVENTS = 100_000  # enough that a query is still running when the next request arrives


@pytest.fixture(scope="module")
def logs(unkai):
    return unkai.client("logs")


@pytest.fixture(scope="module")
def busy_group(unkai, logs) -> tuple[str, int]:
    """A group with EVENTS JSON events in the last minute of unkai's clock."""
    name = f"/limits/{uuid.uuid4().hex[:8]}"
    logs.create_log_group(logGroupName=name)
    logs.create_log_stream(logGroupName=name, logStreamName="s")
    now = int(unkai.advance(0)["epoch"] * 1000)
    for chunk in range(0, EVENTS, 10_000):
        logs.put_log_events(logGroupName=name, logStreamName="s", logEvents=[
            {"timestamp": now - 60_000 + i // 10_000, "message": f'{{"n": {i}, "level": "INFO", "device": "d{i % 97}"}}'}
            for i in range(chunk, chunk + 10_000)])
    return name, now


def status_of(logs, qid: str) -> str:
    return logs.get_query_results(queryId=qid)["status"]


def start(logs, group: tuple[str, int]) -> str:
    name, now = group
    return logs.start_query(logGroupName=name, startTime=now // 1000 - 120, endTime=now // 1000 + 60,
                            queryString="filter level = 'INFO' | stats count(*) by device")["queryId"]


def test_stop_query_cancels_a_running_insights_query(logs, busy_group):
    qid = start(logs, busy_group)
    assert status_of(logs, qid) == "Running"
    assert logs.stop_query(queryId=qid)["success"] is True
    out = logs.get_query_results(queryId=qid)
    assert (out["status"], out["results"]) == ("Cancelled", [])
    described = {q["queryId"]: q["status"] for q in logs.describe_queries(logGroupName=busy_group[0])["queries"]}
    assert described[qid] == "Cancelled"
    with pytest.raises(ClientError) as exc:  # a stopped query is no longer running
        logs.stop_query(queryId=qid)
    assert exc.value.response["Error"] == {"Code": "InvalidParameterException", "Message": "Query is not running."}


def test_an_insights_query_running_past_sixty_minutes_times_out(unkai, logs, busy_group):
    qid = start(logs, busy_group)
    assert status_of(logs, qid) == "Running"
    unkai.advance(3601)
    out = logs.get_query_results(queryId=qid)
    assert (out["status"], out["results"]) == ("Timeout", [])
    # a query that is not stopped completes with its answer
    done = start(logs, busy_group)
    deadline = time.monotonic() + 120
    while status_of(logs, done) == "Running" and time.monotonic() < deadline:
        time.sleep(0.2)
    out = logs.get_query_results(queryId=done)
    assert out["status"] == "Complete" and out["statistics"]["recordsMatched"] == 97


def test_an_athena_query_past_its_timeout_fails_with_trinos_time_limit(unkai):
    s3, glue, athena = unkai.client("s3"), unkai.client("glue"), unkai.client("athena")
    bucket = f"limits-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    glue.create_database(DatabaseInput={"Name": "limits"})
    endless = ("SELECT count(*) FROM UNNEST(sequence(1, 5000)) AS a(x) CROSS JOIN UNNEST(sequence(1, 5000)) AS b(y) "
               "CROSS JOIN UNNEST(sequence(1, 5000)) AS c(z) WHERE x + y + z = 7")
    qid = athena.start_query_execution(QueryString=endless, QueryExecutionContext={"Database": "limits"},
                                       ResultConfiguration={"OutputLocation": f"s3://{bucket}/results/"})[
        "QueryExecutionId"]
    deadline = time.monotonic() + 60

    def state() -> dict:
        return athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]["Status"]

    while state()["State"] == "QUEUED" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert state()["State"] == "RUNNING"
    unkai.advance(30 * 60 + 1)  # Athena's default DML query timeout
    while state()["State"] == "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.05)
    status = state()
    assert status["State"] == "FAILED"
    assert status["StateChangeReason"] == "EXCEEDED_TIME_LIMIT: Query exceeded maximum time limit of 30.00m"
    assert status["AthenaError"]["ErrorMessage"] == status["StateChangeReason"]
    with pytest.raises(ClientError) as exc:
        athena.get_query_results(QueryExecutionId=qid)
    assert exc.value.response["Error"]["Code"] == "InvalidRequestException"
