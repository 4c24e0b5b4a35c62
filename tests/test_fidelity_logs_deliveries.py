"""CloudWatch Logs deliveries and StartLiveTail as AWS answers them (issue 23, item 3: Logs).

Shapes and ARNs from botocore's model and AWS's API reference; the live tail is read with boto3's
own event-stream parser, as a client on AWS reads it."""

from __future__ import annotations

import gzip
import time

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError


@pytest.fixture(scope="module")
def logs(unkai):
    return unkai.client("logs")


@pytest.fixture(scope="module")
def tail_client(unkai):
    # StartLiveTail's model asks for a "stream-" host prefix; a local endpoint has no such host
    return unkai.client("logs", config=Config(inject_host_prefix=False, retries={"max_attempts": 1}))


def clock_ms(unkai) -> int:
    """Now on the server's clock, which other tests sharing the server may have moved on: AWS (and unkai)
    refuses events more than 14 days older than that."""
    return int(unkai.advance(0)["epoch"] * 1000)


def error_of(exc: pytest.ExceptionInfo) -> tuple[str, str]:
    return exc.value.response["Error"]["Code"], exc.value.response["Error"]["Message"]


def test_a_delivery_pairs_a_source_and_a_destination_and_guards_them(unkai, logs):
    tag = str(time.time_ns())
    group = f"/vended/{tag}"
    logs.create_log_group(logGroupName=group)
    group_arn = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0]["arn"].removesuffix(":*")
    source = logs.put_delivery_source(name=f"src-{tag}", logType="ACCESS_LOGS",
                                      resourceArn="arn:aws:cloudfront::123456789012:distribution/E1ABCDEF")[
        "deliverySource"]
    assert source["arn"].endswith(f":delivery-source:src-{tag}") and source["arn"].startswith("arn:aws:logs:")
    assert source["service"] == "cloudfront" and source["logType"] == "ACCESS_LOGS"
    assert source["resourceArns"] == ["arn:aws:cloudfront::123456789012:distribution/E1ABCDEF"]
    destination = logs.put_delivery_destination(
        name=f"dst-{tag}", outputFormat="json",
        deliveryDestinationConfiguration={"destinationResourceArn": group_arn})["deliveryDestination"]
    assert destination["deliveryDestinationType"] == "CWL"
    assert destination["arn"].endswith(f":delivery-destination:dst-{tag}")
    s3_destination = logs.put_delivery_destination(
        name=f"s3-{tag}", deliveryDestinationConfiguration={"destinationResourceArn": "arn:aws:s3:::logs-bucket"})[
        "deliveryDestination"]
    assert s3_destination["deliveryDestinationType"] == "S3"
    delivery = logs.create_delivery(deliverySourceName=f"src-{tag}", deliveryDestinationArn=destination["arn"],
                                    recordFields=["date", "time"], fieldDelimiter=",")["delivery"]
    assert delivery["deliveryDestinationType"] == "CWL" and delivery["arn"].endswith(f":delivery:{delivery['id']}")
    assert delivery["id"].isalnum() and delivery["recordFields"] == ["date", "time"]
    assert logs.get_delivery(id=delivery["id"])["delivery"] == delivery
    with pytest.raises(ClientError) as exc:
        logs.create_delivery(deliverySourceName=f"src-{tag}", deliveryDestinationArn=destination["arn"])
    assert error_of(exc)[0] == "ConflictException"
    with pytest.raises(ClientError) as exc:
        logs.delete_delivery_source(name=f"src-{tag}")
    assert error_of(exc)[0] == "ConflictException"
    with pytest.raises(ClientError) as exc:
        logs.delete_delivery_destination(name=f"dst-{tag}")
    assert error_of(exc)[0] == "ConflictException"
    with pytest.raises(ClientError) as exc:
        logs.create_delivery(deliverySourceName=f"none-{tag}", deliveryDestinationArn=destination["arn"])
    assert error_of(exc)[0] == "ResourceNotFoundException"
    listed = logs.describe_deliveries(deliverySourceNames=[f"src-{tag}"])["deliveries"]
    assert [d["id"] for d in listed] == [delivery["id"]]
    assert f"src-{tag}" in [s["name"] for s in logs.describe_delivery_sources()["deliverySources"]]
    assert [d["name"] for d in logs.describe_delivery_destinations(names=[f"dst-{tag}"])["deliveryDestinations"]] \
        == [f"dst-{tag}"]
    logs.delete_delivery(id=delivery["id"])
    with pytest.raises(ClientError) as exc:
        logs.get_delivery(id=delivery["id"])
    assert error_of(exc)[0] == "ResourceNotFoundException"
    logs.delete_delivery_source(name=f"src-{tag}")
    logs.delete_delivery_destination(name=f"dst-{tag}")
    with pytest.raises(ClientError) as exc:
        logs.get_delivery_source(name=f"src-{tag}")
    assert error_of(exc)[0] == "ResourceNotFoundException"


def test_delivery_destination_policies_are_stored_and_names_validated(logs):
    tag = str(time.time_ns())
    logs.put_delivery_destination(name=f"pol-{tag}", deliveryDestinationConfiguration={
        "destinationResourceArn": "arn:aws:firehose:us-east-1:000000000000:deliverystream/s"})
    assert logs.get_delivery_destination(name=f"pol-{tag}")["deliveryDestination"]["deliveryDestinationType"] == "FH"
    policy = '{"Version":"2012-10-17","Statement":[]}'
    assert logs.put_delivery_destination_policy(deliveryDestinationName=f"pol-{tag}",
                                                deliveryDestinationPolicy=policy)["policy"] == {
        "deliveryDestinationPolicy": policy}
    assert logs.get_delivery_destination_policy(deliveryDestinationName=f"pol-{tag}")["policy"][
        "deliveryDestinationPolicy"] == policy
    logs.delete_delivery_destination_policy(deliveryDestinationName=f"pol-{tag}")
    assert logs.get_delivery_destination_policy(deliveryDestinationName=f"pol-{tag}")["policy"] == {}
    with pytest.raises(ClientError) as exc:
        logs.put_delivery_destination_policy(deliveryDestinationName=f"none-{tag}", deliveryDestinationPolicy=policy)
    assert error_of(exc)[0] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as exc:
        logs.put_delivery_source(name="bad name!", logType="ACCESS_LOGS",
                                 resourceArn="arn:aws:cloudfront::123456789012:distribution/E1")
    assert error_of(exc) == ("ValidationException", "1 validation error detected: Value 'bad name!' at 'name' "
                             "failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w-]*")
    with pytest.raises(ClientError) as exc:
        logs.describe_deliveries(limit=51)
    assert error_of(exc)[0] == "ValidationException"


def test_live_tail_streams_a_session_start_then_the_matching_events_while_open(unkai, logs, tail_client):
    group = f"/tail/{time.time_ns()}"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="app")
    logs.create_log_stream(logGroupName=group, logStreamName="other")
    logs.put_log_events(logGroupName=group, logStreamName="app",
                        logEvents=[{"timestamp": clock_ms(unkai), "message": "ERROR before the session"}])
    response = tail_client.start_live_tail(logGroupIdentifiers=[group], logStreamNamePrefixes=["ap"],
                                           logEventFilterPattern="ERROR")
    stream = iter(response["responseStream"])
    first = next(stream)
    start = first["sessionStart"]
    assert start["logGroupIdentifiers"] == [group] and start["logEventFilterPattern"] == "ERROR"
    assert start["sessionId"] and start["requestId"] and start["logStreamNamePrefixes"] == ["ap"]
    now = clock_ms(unkai)
    logs.put_log_events(logGroupName=group, logStreamName="app", logEvents=[
        {"timestamp": now, "message": "INFO skipped"}, {"timestamp": now + 1, "message": "ERROR one"}])
    logs.put_log_events(logGroupName=group, logStreamName="other",
                        logEvents=[{"timestamp": now, "message": "ERROR in another stream"}])
    seen: list[dict] = []
    for _, event in zip(range(30), stream):  # updates come at least once a second: 30 is ample
        update = event["sessionUpdate"]
        assert update["sessionMetadata"] == {"sampled": False}
        seen += update["sessionResults"]
        if seen:
            break
    response["responseStream"].close()
    assert [(e["message"], e["logStreamName"], e["logGroupIdentifier"]) for e in seen] == [
        ("ERROR one", "app", group)]
    assert seen[0]["timestamp"] == now + 1 and seen[0]["ingestionTime"] >= seen[0]["timestamp"] - 60_000


def test_live_tail_validates_its_groups_and_stream_filters(tail_client, logs):
    with pytest.raises(ClientError) as exc:
        tail_client.start_live_tail(logGroupIdentifiers=["/no/such/group"])
    assert error_of(exc)[0] == "ResourceNotFoundException"
    group = f"/tail/{time.time_ns()}"
    logs.create_log_group(logGroupName=group)
    with pytest.raises(ClientError) as exc:
        tail_client.start_live_tail(logGroupIdentifiers=[group], logStreamNames=["a"], logStreamNamePrefixes=["b"])
    assert error_of(exc)[0] == "InvalidParameterException"
    with pytest.raises(ClientError) as exc:
        tail_client.start_live_tail(logGroupIdentifiers=[group, group], logStreamNames=["a"])
    assert error_of(exc)[0] == "InvalidParameterException"


def test_live_tail_allows_15_sessions_at_once_and_a_closed_one_frees_its_place(unkai):
    region = "eu-north-1"  # a region of its own: the count is per account and region
    config = Config(inject_host_prefix=False, retries={"max_attempts": 1})
    logs = unkai.client("logs", region)
    group = f"/tail/{time.time_ns()}"
    logs.create_log_group(logGroupName=group)
    opened = []
    try:
        for _ in range(15):
            stream = unkai.client("logs", region, config=config).start_live_tail(
                logGroupIdentifiers=[group])["responseStream"]
            assert "sessionStart" in next(iter(stream))
            opened.append(stream)
        with pytest.raises(ClientError) as exc:
            unkai.client("logs", region, config=config).start_live_tail(logGroupIdentifiers=[group])
        assert error_of(exc)[0] == "LimitExceededException"
        opened.pop().close()
        deadline = time.monotonic() + 30  # the server notices the closed connection at its next update
        while True:
            try:
                stream = unkai.client("logs", region, config=config).start_live_tail(
                    logGroupIdentifiers=[group])["responseStream"]
                break
            except ClientError as e:
                assert e.response["Error"]["Code"] == "LimitExceededException" and time.monotonic() < deadline
                time.sleep(0.2)
        assert "sessionStart" in next(iter(stream))
        opened.append(stream)
    finally:
        for stream in opened:
            stream.close()


def test_live_tail_sends_at_most_500_events_an_update_and_says_it_sampled(unkai, logs, tail_client):
    group = f"/tail/{time.time_ns()}"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="burst")
    response = tail_client.start_live_tail(logGroupIdentifiers=[group])
    stream = iter(response["responseStream"])
    assert "sessionStart" in next(stream)
    now = clock_ms(unkai)
    logs.put_log_events(logGroupName=group, logStreamName="burst",
                        logEvents=[{"timestamp": now, "message": f"line {i}"} for i in range(600)])
    update = next(u["sessionUpdate"] for _, u in zip(range(30), stream) if u["sessionUpdate"]["sessionResults"])
    assert update["sessionMetadata"] == {"sampled": True} and len(update["sessionResults"]) == 500
    messages = [e["message"] for e in update["sessionResults"]]
    assert messages[0] == "line 0" and messages[-1] != "line 499"  # spread over the 600, not the first 500
    quiet = next(stream)["sessionUpdate"]  # the next second had nothing: an empty update, as AWS sends
    response["responseStream"].close()
    assert quiet == {"sessionMetadata": {"sampled": False}, "sessionResults": []}


def test_an_export_task_writes_each_streams_events_to_s3_as_aws_lays_them_out(unkai, logs):
    s3 = unkai.client("s3")
    bucket = f"log-export-{time.time_ns()}"
    s3.create_bucket(Bucket=bucket)
    group = f"/export/{time.time_ns()}"
    logs.create_log_group(logGroupName=group)
    base = clock_ms(unkai) - 60_000
    for stream in ("web", "worker"):
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
        logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=[
            {"timestamp": base + i, "message": f"{stream} {i}"} for i in range(3)])
    with pytest.raises(ClientError) as exc:
        logs.create_export_task(logGroupName=group, fromTime=base, to=base + 10, destination="no-such-bucket-x")
    assert error_of(exc) == ("InvalidParameterException", "GetBucketAcl call on the given bucket failed. Please "
                             "check if CloudWatch Logs has been granted permission to perform this operation.")
    with pytest.raises(ClientError) as exc:
        logs.create_export_task(logGroupName="/no/such/group", fromTime=base, to=base + 10, destination=bucket)
    assert error_of(exc) == ("ResourceNotFoundException", "The specified log group does not exist.")
    task_id = logs.create_export_task(taskName="nightly", logGroupName=group, fromTime=base, to=base + 1,
                                      destination=bucket, destinationPrefix="logs")["taskId"]
    assert s3.get_object(Bucket=bucket, Key="logs/aws-logs-write-test")["Body"].read()
    unkai.drain()
    (task,) = logs.describe_export_tasks(taskId=task_id)["exportTasks"]
    assert task["status"]["code"] == "COMPLETED" and task["taskName"] == "nightly"
    assert task["executionInfo"]["completionTime"] >= task["executionInfo"]["creationTime"]
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=f"logs/{task_id}/")["Contents"])
    assert keys == [f"logs/{task_id}/web/000000.gz", f"logs/{task_id}/worker/000000.gz"]
    lines = gzip.decompress(s3.get_object(Bucket=bucket, Key=keys[0])["Body"].read()).decode().splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == ["web 0", "web 1"]  # only [from, to]
    assert lines[0].split(" ", 1)[0].endswith("Z")
    with pytest.raises(ClientError) as exc:
        logs.cancel_export_task(taskId=task_id)
    assert error_of(exc)[0] == "InvalidOperationException"


def test_list_log_groups_matches_awss_name_patterns(logs):
    tag = str(time.time_ns())[-9:]  # each alternative of a pattern is at most 24 characters
    for name in (f"/lg/{tag}/api", f"/lg/{tag}/worker", f"/other/{tag}"):
        logs.create_log_group(logGroupName=name)
    found = logs.list_log_groups(logGroupNamePattern=f"^/lg/{tag}")["logGroups"]
    assert [g["logGroupName"] for g in found] == [f"/lg/{tag}/api", f"/lg/{tag}/worker"]
    assert found[0]["logGroupArn"].endswith(f":log-group:/lg/{tag}/api") and found[0]["logGroupClass"] == "STANDARD"
    either = logs.list_log_groups(logGroupNamePattern=f"{tag}/worker|^/other/{tag}")["logGroups"]
    assert sorted(g["logGroupName"] for g in either) == [f"/lg/{tag}/worker", f"/other/{tag}"]
    with pytest.raises(ClientError) as exc:
        logs.list_log_groups(logGroupNamePattern="^ab|cd")  # an alternative of 2 characters
    assert error_of(exc)[0] == "InvalidParameterException"
