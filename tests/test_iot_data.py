"""AWS IoT Core's data plane through boto3 (``iot-data``): Publish with retained messages,
classic and named device shadows (desired, reported, delta, versions, metadata, the
shadow topics' messages), and the rules engine: AWS IoT SQL on each message and its
actions (SQS, Lambda, Kinesis, Firehose, DynamoDB, DynamoDBv2, SNS, S3, republish,
CloudWatch Logs) with the error action when one fails."""

from __future__ import annotations

import base64
import json
import uuid

import pytest
from botocore.exceptions import ClientError
from lambda_code import deploy, private_server

unkai = private_server("iot-data")
ROLE = "arn:aws:iam::000000000000:role/iot"


@pytest.fixture(scope="module")
def data(unkai):
    return unkai.client("iot-data")


@pytest.fixture(scope="module")
def iot(unkai):
    return unkai.client("iot")


@pytest.fixture(scope="module")
def sqs(unkai):
    return unkai.client("sqs")


def code(exc: pytest.ExceptionInfo) -> str:
    return exc.value.response["Error"]["Code"]


def queue(sqs) -> tuple[str, str]:
    url = sqs.create_queue(QueueName=f"q-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    return url, sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def bodies(sqs, url: str) -> list[str]:
    msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
    return [m["Body"] for m in msgs]


def rule(iot, sql: str, *actions: dict, error: dict | None = None) -> str:
    name = f"r_{uuid.uuid4().hex[:8]}"
    payload = {"sql": sql, "actions": list(actions), "awsIotSqlVersion": "2016-03-23"}
    if error:
        payload["errorAction"] = error
    iot.create_topic_rule(ruleName=name, topicRulePayload=payload)
    return name


def test_publish_retains_the_last_message_and_an_empty_one_clears_it(data):
    data.publish(topic="post/box-1/status", payload=b'{"door": "closed"}', qos=1, retain=True)
    data.publish(topic="post/box-1/status", payload=b'{"door": "open"}', qos=1, retain=True)
    got = data.get_retained_message(topic="post/box-1/status")
    assert got["payload"] == b'{"door": "open"}' and got["qos"] == 1
    assert [t["topic"] for t in data.list_retained_messages()["retainedTopics"]] == ["post/box-1/status"]
    data.publish(topic="post/box-1/status", payload=b"", retain=True)
    with pytest.raises(ClientError) as exc:
        data.get_retained_message(topic="post/box-1/status")
    assert code(exc) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as exc:
        data.publish(topic="post/+/status", payload=b"x")
    assert code(exc) == "InvalidRequestException"


def test_a_shadow_keeps_desired_and_reported_and_reads_the_delta(data, unkai):
    thing = f"box-{uuid.uuid4().hex[:6]}"
    first = json.loads(data.update_thing_shadow(thingName=thing, payload=json.dumps({
        "state": {"desired": {"lock": "closed", "led": {"color": "red"}}}, "clientToken": "tok-1"}))["payload"].read())
    assert first["version"] == 1 and first["clientToken"] == "tok-1"
    assert first["state"] == {"desired": {"lock": "closed", "led": {"color": "red"}}}
    assert isinstance(first["metadata"]["desired"]["led"]["color"]["timestamp"], int)
    data.update_thing_shadow(thingName=thing, payload=json.dumps({
        "state": {"reported": {"lock": "open", "led": {"color": "red"}, "battery": 80}}}))
    shadow = json.loads(data.get_thing_shadow(thingName=thing)["payload"].read())
    assert shadow["version"] == 2
    assert shadow["state"]["delta"] == {"lock": "closed"}
    assert shadow["state"]["reported"]["battery"] == 80
    with pytest.raises(ClientError) as exc:
        data.update_thing_shadow(thingName=thing, payload=json.dumps({"state": {"reported": {}}, "version": 1}))
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409
    # null removes a key; reported catching up removes the delta
    data.update_thing_shadow(thingName=thing, payload=json.dumps({
        "state": {"reported": {"lock": "closed", "battery": None}}, "version": 2}))
    shadow = json.loads(data.get_thing_shadow(thingName=thing)["payload"].read())
    assert "delta" not in shadow["state"] and "battery" not in shadow["state"]["reported"]
    for bad, message in ((b"not json", "Payload contains invalid json"), (b'{"x": 1}', "Missing required node: state")):
        with pytest.raises(ClientError) as exc:
            data.update_thing_shadow(thingName=thing, payload=bad)
        assert code(exc) == "InvalidRequestException" and exc.value.response["Error"]["Message"] == message
    deleted = json.loads(data.delete_thing_shadow(thingName=thing)["payload"].read())
    assert deleted["version"] == 3
    with pytest.raises(ClientError) as exc:
        data.get_thing_shadow(thingName=thing)
    assert code(exc) == "ResourceNotFoundException"


def test_named_shadows_are_separate_documents_listed_per_thing(data):
    thing = f"hub-{uuid.uuid4().hex[:6]}"
    for name in ("config", "firmware"):
        data.update_thing_shadow(thingName=thing, shadowName=name, payload=json.dumps({
            "state": {"reported": {"name": name}}}))
    assert json.loads(data.get_thing_shadow(thingName=thing, shadowName="firmware")["payload"].read())[
        "state"]["reported"] == {"name": "firmware"}
    assert data.list_named_shadows_for_thing(thingName=thing)["results"] == ["config", "firmware"]
    with pytest.raises(ClientError) as exc:
        data.get_thing_shadow(thingName=thing)
    assert code(exc) == "ResourceNotFoundException"


def test_shadow_updates_publish_accepted_delta_and_documents_messages_rules_can_read(data, iot, sqs):
    url, arn = queue(sqs)
    thing = f"box-{uuid.uuid4().hex[:6]}"
    rule(iot, f"SELECT topic(6) AS kind, * FROM '$aws/things/{thing}/shadow/update/#'",
         {"sqs": {"queueUrl": url, "roleArn": ROLE}})
    data.update_thing_shadow(thingName=thing, payload=json.dumps({"state": {"desired": {"lock": "closed"}}}))
    got = {m["kind"]: m for m in map(json.loads, bodies(sqs, url) + bodies(sqs, url))}
    assert set(got) == {"accepted", "delta", "documents"}
    assert got["delta"]["state"] == {"lock": "closed"} and got["delta"]["version"] == 1
    assert got["documents"]["current"]["state"]["desired"] == {"lock": "closed"}
    assert "previous" not in got["documents"]


def test_a_shadow_request_published_as_a_message_is_answered_on_its_topics(data, iot, sqs):
    url, _ = queue(sqs)
    thing = f"box-{uuid.uuid4().hex[:6]}"
    rule(iot, f"SELECT topic(5) AS verb, topic(6) AS result, * FROM '$aws/things/{thing}/shadow/+/+'",
         {"sqs": {"queueUrl": url, "roleArn": ROLE}})
    data.publish(topic=f"$aws/things/{thing}/shadow/update", payload=json.dumps({
        "state": {"reported": {"temp": 21}}, "clientToken": "c1"}).encode())
    data.publish(topic=f"$aws/things/{thing}/shadow/update", payload=b'{"state": "x"}')
    data.publish(topic=f"$aws/things/{thing}/shadow/get", payload=b"{}")
    got = [json.loads(b) for b in bodies(sqs, url) + bodies(sqs, url)]
    by = {(m["verb"], m["result"]): m for m in got}
    assert by[("update", "accepted")]["clientToken"] == "c1"
    assert by[("update", "rejected")]["code"] == 400
    assert by[("get", "accepted")]["state"]["reported"] == {"temp": 21}


def test_rule_sql_selects_nested_fields_functions_and_filters_with_where(data, iot, sqs):
    url, _ = queue(sqs)
    rule(iot, "SELECT device.id AS id, readings[1] AS second, upper(status) AS status, topic(2) AS box, "
              "timestamp() AS ts, clientid() AS client, temp * 2 AS double FROM 'sql/+/events' "
              "WHERE temp > 20 AND status <> 'test'", {"sqs": {"queueUrl": url, "roleArn": ROLE}})
    data.publish(topic="sql/box-7/events", payload=json.dumps({
        "device": {"id": "d-1"}, "readings": [1, 2, 3], "status": "ok", "temp": 25}).encode())
    data.publish(topic="sql/box-8/events", payload=json.dumps({"temp": 10, "status": "ok"}).encode())
    data.publish(topic="sql/box-9/events", payload=json.dumps({"temp": 30, "status": "test"}).encode())
    data.publish(topic="sql/box-7/other", payload=json.dumps({"temp": 99, "status": "ok"}).encode())
    got = [json.loads(b) for b in bodies(sqs, url)]
    assert len(got) == 1
    out = got[0]
    assert {k: out[k] for k in ("id", "second", "status", "box", "double")} == {
        "id": "d-1", "second": 2, "status": "OK", "box": "box-7", "double": 50}
    assert isinstance(out["ts"], int) and "client" not in out  # no MQTT client: clientid() is undefined


def test_rule_actions_reach_lambda_kinesis_firehose_dynamodb_sns_s3_and_logs(data, iot, unkai, sqs):
    lam, kinesis, ddb, s3 = (unkai.client(n) for n in ("lambda", "kinesis", "dynamodb", "s3"))
    fh, sns, logs = unkai.client("firehose"), unkai.client("sns"), unkai.client("logs")
    fn = deploy(lam, "import json\ndef handler(event, context):\n    print('EVENT ' + json.dumps(event))\n")
    fn_arn = lam.get_function(FunctionName=fn)["Configuration"]["FunctionArn"]
    kinesis.create_stream(StreamName="box-events", ShardCount=1)
    ddb.create_table(TableName="Events", KeySchema=[{"AttributeName": "box", "KeyType": "HASH"},
                                                    {"AttributeName": "ts", "KeyType": "RANGE"}],
                     AttributeDefinitions=[{"AttributeName": "box", "AttributeType": "S"},
                                           {"AttributeName": "ts", "AttributeType": "N"}],
                     BillingMode="PAY_PER_REQUEST")
    ddb.create_table(TableName="Latest", KeySchema=[{"AttributeName": "box", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "box", "AttributeType": "S"}],
                     BillingMode="PAY_PER_REQUEST")
    s3.create_bucket(Bucket="box-archive")
    fh.create_delivery_stream(DeliveryStreamName="box-fh", ExtendedS3DestinationConfiguration={
        "BucketARN": "arn:aws:s3:::box-archive", "RoleARN": ROLE, "Prefix": "fh/",
        "BufferingHints": {"IntervalInSeconds": 60, "SizeInMBs": 1}})
    topic_arn = sns.create_topic(Name="box-alerts")["TopicArn"]
    sub_url, sub_arn = queue(sqs)
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=sub_arn, Attributes={"RawMessageDelivery": "true"})
    logs.create_log_group(logGroupName="/iot/boxes")
    rule(iot, "SELECT *, topic(2) AS box FROM 'act/+/event'",
         {"lambda": {"functionArn": fn_arn}},
         {"kinesis": {"streamName": "box-events", "partitionKey": "${topic(2)}", "roleArn": ROLE}},
         {"firehose": {"deliveryStreamName": "box-fh", "separator": "\n", "roleArn": ROLE}},
         {"dynamoDB": {"tableName": "Events", "hashKeyField": "box", "hashKeyValue": "${topic(2)}",
                       "rangeKeyField": "ts", "rangeKeyValue": "${seq}", "rangeKeyType": "NUMBER",
                       "roleArn": ROLE}},
         {"dynamoDBv2": {"putItem": {"tableName": "Latest"}, "roleArn": ROLE}},
         {"sns": {"targetArn": topic_arn, "messageFormat": "RAW", "roleArn": ROLE}},
         {"s3": {"bucketName": "box-archive", "key": "raw/${topic(2)}/${seq}.json", "roleArn": ROLE}},
         {"cloudwatchLogs": {"logGroupName": "/iot/boxes", "roleArn": ROLE}})
    data.publish(topic="act/box-3/event", payload=json.dumps({"seq": 7, "kind": "parcel", "weight": 1.5}).encode())
    shard = kinesis.list_shards(StreamName="box-events")["Shards"][0]["ShardId"]
    it = kinesis.get_shard_iterator(StreamName="box-events", ShardId=shard,
                                    ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    records = kinesis.get_records(ShardIterator=it)["Records"]
    assert [json.loads(r["Data"])["seq"] for r in records] == [7] and records[0]["PartitionKey"] == "box-3"
    item = ddb.get_item(TableName="Events", Key={"box": {"S": "box-3"}, "ts": {"N": "7"}})["Item"]
    assert item["payload"]["M"]["kind"] == {"S": "parcel"}
    latest = ddb.get_item(TableName="Latest", Key={"box": {"S": "box-3"}})["Item"]
    assert latest["weight"] == {"N": "1.5"} and latest["seq"] == {"N": "7"}
    assert json.loads(bodies(sqs, sub_url)[0])["kind"] == "parcel"
    assert json.loads(s3.get_object(Bucket="box-archive", Key="raw/box-3/7.json")["Body"].read())["box"] == "box-3"
    events = logs.filter_log_events(logGroupName="/iot/boxes")["events"]
    assert json.loads(events[0]["message"])["seq"] == 7
    unkai.advance(61)
    unkai.drain()
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="box-archive", Prefix="fh/").get("Contents", [])]
    assert len(keys) == 1
    assert s3.get_object(Bucket="box-archive", Key=keys[0])["Body"].read().endswith(b'"box":"box-3"}\n')
    printed = logs.filter_log_events(logGroupName=f"/aws/lambda/{fn}", filterPattern="EVENT")["events"]
    assert json.loads(printed[0]["message"].split("EVENT ", 1)[1])["weight"] == 1.5


def test_a_failing_action_runs_the_error_action_with_awss_report(data, iot, sqs):
    url, _ = queue(sqs)
    name = rule(iot, "SELECT * FROM 'err/+'",
                {"dynamoDBv2": {"putItem": {"tableName": "NoSuchTable"}, "roleArn": ROLE}},
                error={"sqs": {"queueUrl": url, "roleArn": ROLE}})
    data.publish(topic="err/1", payload=b'{"a": 1}')
    report = json.loads(bodies(sqs, url)[0])
    assert report["ruleName"] == name and report["topic"] == "err/1"
    assert base64.b64decode(report["base64OriginalPayload"]) == b'{"a": 1}'
    assert report["failures"][0]["failedAction"] == "DynamoDBv2Action"
    assert report["failures"][0]["failedResource"] == "NoSuchTable"


def test_republish_feeds_another_rule_and_disabled_rules_do_nothing(data, iot, sqs):
    url, _ = queue(sqs)
    rule(iot, "SELECT VALUE payload FROM 'rp/in'",
         {"republish": {"topic": "rp/out/${topic(2)}", "roleArn": ROLE, "qos": 1}})
    second = rule(iot, "SELECT *, topic() AS t FROM 'rp/out/#'", {"sqs": {"queueUrl": url, "roleArn": ROLE}})
    data.publish(topic="rp/in", payload=json.dumps({"payload": {"n": 1}}).encode())
    assert json.loads(bodies(sqs, url)[0]) == {"n": 1, "t": "rp/out/in"}
    iot.disable_topic_rule(ruleName=second)
    data.publish(topic="rp/in", payload=json.dumps({"payload": {"n": 2}}).encode())
    assert bodies(sqs, url) == []


def test_basic_ingest_runs_only_the_named_rule_on_the_topic_without_its_prefix(data, iot, sqs):
    url, _ = queue(sqs)
    other_url, _ = queue(sqs)
    name = rule(iot, "SELECT *, topic() AS t FROM 'ingest/#'", {"sqs": {"queueUrl": url, "roleArn": ROLE}})
    rule(iot, "SELECT * FROM 'ingest/#'", {"sqs": {"queueUrl": other_url, "roleArn": ROLE}})
    data.publish(topic=f"$aws/rules/{name}/ingest/floor-2", payload=b'{"lights": "on"}', retain=True)
    assert json.loads(bodies(sqs, url)[0]) == {"lights": "on", "t": "ingest/floor-2"}
    assert bodies(sqs, other_url) == []
    assert data.list_retained_messages()["retainedTopics"] == [] or all(
        not t["topic"].startswith("$aws") for t in data.list_retained_messages()["retainedTopics"])


def test_jobs_reach_group_members_and_complete_when_every_execution_ends(iot, unkai, sqs):
    url, _ = queue(sqs)
    jobs = unkai.client("iot-jobs-data")
    group = f"fleet-{uuid.uuid4().hex[:6]}"
    iot.create_thing_group(thingGroupName=group)
    boxes = [f"jb-{uuid.uuid4().hex[:6]}" for _ in range(2)]
    for box in boxes:
        iot.create_thing(thingName=box)
        iot.add_thing_to_thing_group(thingGroupName=group, thingName=box)
    rule(iot, f"SELECT topic(3) AS thing, * FROM '$aws/things/{boxes[0]}/jobs/notify-next'",
         {"sqs": {"queueUrl": url, "roleArn": ROLE}})
    group_arn = iot.describe_thing_group(thingGroupName=group)["thingGroupArn"]
    job_id = f"fw-{uuid.uuid4().hex[:6]}"
    iot.create_job(jobId=job_id, targets=[group_arn], document=json.dumps({"firmware": "2.0"}))
    with pytest.raises(ClientError) as exc:
        iot.create_job(jobId=job_id, targets=[group_arn], document="{}")
    assert code(exc) == "ResourceAlreadyExistsException"
    notice = json.loads(bodies(sqs, url)[0])
    assert notice["execution"]["jobId"] == job_id and notice["execution"]["status"] == "QUEUED"
    assert json.loads(notice["execution"]["jobDocument"]) == {"firmware": "2.0"}
    assert [j["jobId"] for j in jobs.get_pending_job_executions(thingName=boxes[0])["queuedJobs"]] == [job_id]
    started = jobs.start_next_pending_job_execution(thingName=boxes[0])["execution"]
    assert started["status"] == "IN_PROGRESS" and json.loads(started["jobDocument"]) == {"firmware": "2.0"}
    with pytest.raises(ClientError) as exc:
        jobs.update_job_execution(thingName=boxes[0], jobId=job_id, status="SUCCEEDED", expectedVersion=1)
    assert code(exc) == "VersionConflictException"
    state = jobs.update_job_execution(thingName=boxes[0], jobId=job_id, status="SUCCEEDED",
                                      statusDetails={"installed": "2.0"}, includeJobExecutionState=True)
    assert state["executionState"]["status"] == "SUCCEEDED"
    with pytest.raises(ClientError) as exc:
        jobs.update_job_execution(thingName=boxes[0], jobId=job_id, status="FAILED")
    assert code(exc) == "InvalidStateTransitionException"
    assert iot.describe_job(jobId=job_id)["job"]["status"] == "IN_PROGRESS"
    jobs.update_job_execution(thingName=boxes[1], jobId=job_id, status="REJECTED")
    job = iot.describe_job(jobId=job_id)["job"]
    assert job["status"] == "COMPLETED"
    assert job["jobProcessDetails"]["numberOfSucceededThings"] == 1
    assert job["jobProcessDetails"]["numberOfRejectedThings"] == 1
    summaries = iot.list_job_executions_for_job(jobId=job_id)["executionSummaries"]
    assert sorted(s["jobExecutionSummary"]["status"] for s in summaries) == ["REJECTED", "SUCCEEDED"]
    assert iot.get_job_document(jobId=job_id)["document"] == json.dumps({"firmware": "2.0"})


def test_a_canceled_job_cancels_its_queued_executions(iot, unkai):
    jobs = unkai.client("iot-jobs-data")
    box = f"jc-{uuid.uuid4().hex[:6]}"
    thing_arn = iot.create_thing(thingName=box)["thingArn"]
    job_id = f"cfg-{uuid.uuid4().hex[:6]}"
    iot.create_job(jobId=job_id, targets=[thing_arn], document='{"config": 1}', description="config push")
    assert iot.cancel_job(jobId=job_id, comment="not needed")["description"] == "config push"
    assert iot.describe_job_execution(jobId=job_id, thingName=box)["execution"]["status"] == "CANCELED"
    pending = jobs.get_pending_job_executions(thingName=box)
    assert pending["inProgressJobs"] == [] and pending["queuedJobs"] == []
    with pytest.raises(ClientError) as exc:
        iot.cancel_job(jobId=job_id)
    assert code(exc) == "InvalidStateTransitionException"
    iot.delete_job(jobId=job_id)
    with pytest.raises(ClientError) as exc:
        iot.describe_job(jobId=job_id)
    assert code(exc) == "ResourceNotFoundException"
