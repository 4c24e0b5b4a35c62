"""examples/structured-logs end to end (talk 003): a function logs structured records with
InfoLogger/ErrorLogger; they reach S3 through Kinesis -> Firehose and through a Logs
subscription filter -> Firehose; Athena answers the talk's query over both Glue tables,
newest first; Logs Insights shows the same; an error sends the Errors alarm to ALARM and
mails the operator through the SNS email subscription."""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError  # noqa: F401

sys.path.insert(0, str(Path(__file__).resolve().parent))

from examples_support import EXAMPLES, eventually, outputs, reader_steps, request, run_readme, start_example  # noqa: E402,E501

OPERATOR = "operator@example.com"
DEVICE = "123456789"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    server = start_example(tmp_path_factory.mktemp("structured") / "state", "structured-logs",
                           OperatorEmail=OPERATOR)
    try:
        yield server, outputs(server, "structured-logs")
    finally:
        server.stop()


def mails(server) -> list[dict]:
    return [m for m in server.mail() if OPERATOR in (m.get("to") or [])]


def athena_rows(server, out: dict, query: str) -> list[list]:
    athena = server.client("athena")
    qid = athena.start_query_execution(QueryString=query, WorkGroup=out["WorkGroupName"],
                                       QueryExecutionContext={"Database": out["DatabaseName"]})["QueryExecutionId"]
    deadline = time.monotonic() + 60
    while athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]["Status"]["State"] in (
            "QUEUED", "RUNNING") and time.monotonic() < deadline:
        time.sleep(0.1)
    status = athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]["Status"]
    assert status["State"] == "SUCCEEDED", status
    rows = athena.get_query_results(QueryExecutionId=qid)["ResultSet"]["Rows"]
    return [[d.get("VarCharValue") for d in r["Data"]] for r in rows]


@pytest.fixture(scope="module")
def logged(stack, tmp_path_factory):
    """The README's commands, run as written in a clean shell: the operator confirmed the
    subscription; the device registered a node once and failed once (another device, with
    boto3, registered once); a minute passed (Firehose flushed, the alarm ran); the talk's
    query answered."""
    server, out = stack
    (confirmation,) = eventually(lambda: mails(server))
    link = re.search(r"http://\S+/_unkai/sns/confirmation\.html\?\S+", confirmation["text"]).group(0)
    assert request(link)[0] == 200  # what the reader does after the README's first `unkai mail`
    invoked = server.client("lambda").invoke(FunctionName=out["FunctionName"], Payload=json.dumps(
        {"device_id": "555", "hub_uuid": "hub-2", "nodes": ["node-9"]}).encode())
    assert "FunctionError" not in invoked
    home = tmp_path_factory.mktemp("home")
    invoking, querying = reader_steps("structured-logs", "lambda invoke", pause_after=("curl ",))
    done = run_readme(invoking, server, EXAMPLES.parent, home)
    assert done.returncode == 0, done.stdout + done.stderr
    assert '"errorType": "ValueError"' in done.stdout and '"StatusCode": 200' in done.stdout
    server.drain()  # the reader's pause: Firehose's flush and the alarm run after the clock moved
    done = run_readme(querying, server, EXAMPLES.parent, home)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f'ALARM: "{out["AlarmName"]}"' in done.stdout  # `unkai mail`
    rows = re.findall(r"^(ERROR|INFO)\t(\w+)\t", done.stdout, re.M)  # the query's rows
    assert rows == [("ERROR", "ValueError"), ("INFO", "NodeRegisterStarted"), ("INFO", "NodeRegisterFinished"),
                    ("INFO", "NodeRegisterStarted")], done.stdout
    return server, out


# newest first: the failed request's ERROR and its start, then the good request's finish and start
EXPECTED = [["ERROR", "ValueError"], ["INFO", "NodeRegisterStarted"], ["INFO", "NodeRegisterFinished"],
            ["INFO", "NodeRegisterStarted"]]


@pytest.mark.parametrize("table", ["application", "application_logs"])
def test_the_talks_query_answers_the_devices_logs_newest_first(logged, table):
    """Over both legs: Kinesis -> Firehose (``application``) and the Logs subscription ->
    Firehose (``application_logs``)."""
    server, out = logged
    query = ("SELECT level, log_event, lambda_handler, lambda_commit_id, timestamp_jst FROM {table} "
             "WHERE device_id='123456789' AND timestamp>=1527744698 ORDER BY timestamp DESC").format(table=table)
    rows = eventually(lambda: athena_rows(server, out, query)[1:] or None)
    assert [r[:2] for r in rows] == EXPECTED
    assert {r[2] for r in rows} == {out["FunctionName"]} and {r[3] for r in rows} == {"000000000"}
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", r[4]) for r in rows)


def test_the_named_query_is_the_talks_query(logged):
    server, out = logged
    athena = server.client("athena")
    named = athena.get_named_query(NamedQueryId=out["DeviceLogsQueryId"])["NamedQuery"]
    rows = athena_rows(server, out, named["QueryString"])
    assert rows[0] == ["level", "log_event", "lambda_handler", "lambda_commit_id", "timestamp_jst"]
    assert [r[:2] for r in rows[1:]] == EXPECTED


def test_an_error_sets_off_the_alarm_and_mails_the_operator(logged):
    server, out = logged
    cw = server.client("cloudwatch")
    # by now the alarm may be OK again (a later minute without errors): its history tells
    history = cw.describe_alarm_history(AlarmName=out["AlarmName"], HistoryItemType="StateUpdate")
    assert any(h["HistorySummary"].endswith("to ALARM") for h in history["AlarmHistoryItems"])
    (mail,) = eventually(lambda: [m for m in mails(server) if m["subject"].startswith("ALARM")])
    assert mail["subject"] == f'ALARM: "{out["AlarmName"]}" in US East (N. Virginia)'
    body = json.loads(mail["text"].split("\n\n--\n")[0])
    assert body["NewStateValue"] == "ALARM" and body["Trigger"]["MetricName"] == "Errors"
    assert body["Trigger"]["Dimensions"] == [{"value": out["FunctionName"], "name": "FunctionName"}]


def test_logs_insights_shows_the_same_records(logged):
    server, out = logged
    logs = server.client("logs")
    now = int(time.time())
    qid = logs.start_query(logGroupName=out["LogGroupName"], startTime=now - 3600, endTime=now + 7200,
                           queryString="fields level, log_event | filter device_id = '123456789' "
                                       "| sort timestamp desc")["queryId"]
    result = eventually(lambda: (r := logs.get_query_results(queryId=qid))["status"] == "Complete" and r)
    rows = [[f["value"] for f in row if f["field"] in ("level", "log_event")] for row in result["results"]]
    assert rows == EXPECTED
