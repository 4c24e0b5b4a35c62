"""CloudWatch Logs through boto3, and `unkai logs` through the CLI."""

from __future__ import annotations

import subprocess
import sys
import uuid

import pytest
from botocore.exceptions import ClientError


@pytest.fixture(scope="module")
def logs(unkai):
    return unkai.client("logs")


def group_name() -> str:
    return f"/test/{uuid.uuid4().hex[:10]}"


def now_ms(unkai) -> int:
    """Now on the server's clock (other tests may have moved it on: events 14 days older are refused)."""
    return int(unkai.advance(0)["epoch"] * 1000)


def test_groups_and_streams_lifecycle(logs):
    name = group_name()
    logs.create_log_group(logGroupName=name, tags={"team": "a"})
    with pytest.raises(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_group(logGroupName=name)
    groups = logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"]
    assert [g["logGroupName"] for g in groups] == [name]
    assert groups[0]["arn"] == f"arn:aws:logs:us-east-1:000000000000:log-group:{name}:*"
    assert "retentionInDays" not in groups[0]
    logs.put_retention_policy(logGroupName=name, retentionInDays=7)
    assert logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"][0]["retentionInDays"] == 7
    with pytest.raises(ClientError) as exc:
        logs.put_retention_policy(logGroupName=name, retentionInDays=8)
    assert exc.value.response["Error"]["Code"] == "InvalidParameterException"
    logs.create_log_stream(logGroupName=name, logStreamName="b")
    logs.create_log_stream(logGroupName=name, logStreamName="a")
    with pytest.raises(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_stream(logGroupName=name, logStreamName="a")
    streams = logs.describe_log_streams(logGroupName=name)["logStreams"]
    assert [s["logStreamName"] for s in streams] == ["a", "b"]
    assert logs.list_tags_log_group(logGroupName=name)["tags"] == {"team": "a"}
    logs.delete_log_stream(logGroupName=name, logStreamName="a")
    logs.delete_log_group(logGroupName=name)
    with pytest.raises(logs.exceptions.ResourceNotFoundException):
        logs.describe_log_streams(logGroupName=name)
    with pytest.raises(logs.exceptions.ResourceNotFoundException):
        logs.create_log_stream(logGroupName=name, logStreamName="x")


def test_put_and_get_events_with_tokens(unkai, logs):
    name = group_name()
    logs.create_log_group(logGroupName=name)
    logs.create_log_stream(logGroupName=name, logStreamName="s")
    base = now_ms(unkai)
    logs.put_log_events(logGroupName=name, logStreamName="s",
                        logEvents=[{"timestamp": base + i, "message": f"line {i}"} for i in range(5)])
    with pytest.raises(ClientError) as exc:
        logs.put_log_events(logGroupName=name, logStreamName="s",
                            logEvents=[{"timestamp": base + 2, "message": "b"}, {"timestamp": base, "message": "a"}])
    assert "chronological order" in exc.value.response["Error"]["Message"]
    page = logs.get_log_events(logGroupName=name, logStreamName="s", startFromHead=True, limit=2)
    assert [e["message"] for e in page["events"]] == ["line 0", "line 1"]
    page2 = logs.get_log_events(logGroupName=name, logStreamName="s", nextToken=page["nextForwardToken"], limit=2)
    assert [e["message"] for e in page2["events"]] == ["line 2", "line 3"]
    latest = logs.get_log_events(logGroupName=name, logStreamName="s", limit=2)
    assert [e["message"] for e in latest["events"]] == ["line 3", "line 4"]
    end = logs.get_log_events(logGroupName=name, logStreamName="s", startFromHead=True)
    again = logs.get_log_events(logGroupName=name, logStreamName="s", nextToken=end["nextForwardToken"])
    assert again["events"] == [] and again["nextForwardToken"] == end["nextForwardToken"]
    rejected = logs.put_log_events(logGroupName=name, logStreamName="s", logEvents=[
        {"timestamp": base - 20 * 86400 * 1000, "message": "too old"}])
    assert rejected["rejectedLogEventsInfo"] == {"tooOldLogEventEndIndex": 0}


@pytest.mark.parametrize("pattern,expected", [
    ("", ["ERROR disk full", "INFO started", '{"level": "ERROR", "ms": 250}', '{"level": "INFO", "ms": 20}',
          "127.0.0.1 GET /index 404 512"]),
    ("ERROR", ["ERROR disk full", '{"level": "ERROR", "ms": 250}']),
    ('"disk full"', ["ERROR disk full"]),
    ("?started ?full", ["ERROR disk full", "INFO started"]),
    ("ERROR -disk", ['{"level": "ERROR", "ms": 250}']),
    ('{ $.level = "ERROR" }', ['{"level": "ERROR", "ms": 250}']),
    ("{ $.ms > 100 }", ['{"level": "ERROR", "ms": 250}']),
    ('{ $.ms < 100 && $.level = "INF*" }', ['{"level": "INFO", "ms": 20}']),
    ("[ip, method, path, status = 404, size]", ["127.0.0.1 GET /index 404 512"]),
    ("[..., status = 4*, size]", ["127.0.0.1 GET /index 404 512"]),
    ("%dis[k]%", ["ERROR disk full"]),
])
def test_filter_patterns(unkai, logs, pattern, expected):
    name = group_name()
    logs.create_log_group(logGroupName=name)
    logs.create_log_stream(logGroupName=name, logStreamName="one")
    logs.create_log_stream(logGroupName=name, logStreamName="two")
    base = now_ms(unkai)
    messages = ["ERROR disk full", "INFO started", '{"level": "ERROR", "ms": 250}', '{"level": "INFO", "ms": 20}',
                "127.0.0.1 GET /index 404 512"]
    for i, message in enumerate(messages):
        logs.put_log_events(logGroupName=name, logStreamName="one" if i % 2 else "two",
                            logEvents=[{"timestamp": base + i, "message": message}])
    events = logs.filter_log_events(logGroupName=name, filterPattern=pattern)["events"]
    assert [e["message"] for e in events] == expected
    assert all(e["eventId"] and e["logStreamName"] in ("one", "two") for e in events)


def test_filter_pagination_and_bad_pattern(unkai, logs):
    name = group_name()
    logs.create_log_group(logGroupName=name)
    logs.create_log_stream(logGroupName=name, logStreamName="s")
    base = now_ms(unkai)
    logs.put_log_events(logGroupName=name, logStreamName="s",
                        logEvents=[{"timestamp": base + i, "message": f"m{i}"} for i in range(7)])
    seen, token = [], None
    while True:
        kwargs = {"nextToken": token} if token else {}
        page = logs.filter_log_events(logGroupName=name, limit=3, **kwargs)
        seen += [e["message"] for e in page["events"]]
        token = page.get("nextToken")
        if not token:
            break
    assert seen == [f"m{i}" for i in range(7)]
    with pytest.raises(ClientError) as exc:
        logs.filter_log_events(logGroupName=name, filterPattern="{ $.x = ")
    assert exc.value.response["Error"]["Code"] == "InvalidParameterException"


def test_unkai_logs_command_prints_a_functions_log(unkai):
    from lambda_code import call, deploy

    lam = unkai.client("lambda")
    name = deploy(lam, "def handler(e, c):\n    print('hello from', e['who'])\n    return 1\n")
    call(lam, name, {"who": "cli"})
    out = subprocess.run([sys.executable, "-m", "unkai", "logs", name, "--endpoint-url", unkai.endpoint],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "hello from cli" in out.stdout
    assert "REPORT RequestId:" in out.stdout
    missing = subprocess.run([sys.executable, "-m", "unkai", "logs", "nope", "--endpoint-url", unkai.endpoint],
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 1 and "no log group /aws/lambda/nope" in missing.stderr


def test_unkai_logs_follow_streams_new_lines(unkai):
    from lambda_code import call, deploy

    lam = unkai.client("lambda")
    name = deploy(lam, "def handler(e, c):\n    print('line', e['n'])\n    return 1\n")
    call(lam, name, {"n": 1})
    proc = subprocess.Popen([sys.executable, "-m", "unkai", "logs", name, "-f", "--endpoint-url", unkai.endpoint],
                            stdout=subprocess.PIPE, text=True)
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if "line 1" in line:
                call(lam, name, {"n": 2})
            if "line 2" in line:
                break
        assert any("line 2" in line for line in lines)
    finally:
        proc.kill()
        proc.wait()
