"""Start-up without loading every model: routing reads a small per-botocore-version
index kept in the user's cache directory (``models.service_index``). A broken or
unwritable cache only costs time; every protocol still routes."""

from __future__ import annotations

import json

from unkai.testing import UnkaiServer


def _every_protocol_routes(server: UnkaiServer) -> None:
    sqs = server.client("sqs")  # JSON (X-Amz-Target)
    url = sqs.create_queue(QueueName="startup")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="hello")
    assert sqs.receive_message(QueueUrl=url)["Messages"][0]["Body"] == "hello"
    sns = server.client("sns")  # query
    assert sns.create_topic(Name="startup")["TopicArn"].endswith(":startup")
    s3 = server.client("s3")  # rest-xml
    s3.create_bucket(Bucket="startup-bucket")
    s3.put_object(Bucket="startup-bucket", Key="k", Body=b"v")
    assert s3.get_object(Bucket="startup-bucket", Key="k")["Body"].read() == b"v"
    logs = server.client("logs")  # JSON with a signing name of its own
    logs.create_log_group(logGroupName="/startup")
    assert [g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]] == ["/startup"]


def test_a_corrupt_service_index_is_rebuilt(tmp_path):
    cache = tmp_path / "cache"
    first = UnkaiServer(tmp_path / "one", env={"XDG_CACHE_HOME": str(cache)}).start()
    try:
        _every_protocol_routes(first)
    finally:
        first.stop()
    (index,) = (cache / "unkai").glob("service-index-*.json")
    services = json.loads(index.read_text())["services"]
    assert services["sqs"]["target_prefix"] == "AmazonSQS"
    assert services["sns"]["protocols"][0] == "query"
    index.write_text("{not json")
    second = UnkaiServer(tmp_path / "two", env={"XDG_CACHE_HOME": str(cache)}).start()
    try:
        _every_protocol_routes(second)
    finally:
        second.stop()
    assert json.loads(index.read_text())["services"]["s3"]["protocols"][0] == "rest-xml"


def test_an_unwritable_cache_directory_only_costs_time(tmp_path):
    blocker = tmp_path / "cache"
    blocker.write_text("not a directory")
    server = UnkaiServer(tmp_path / "state", env={"XDG_CACHE_HOME": str(blocker)}).start()
    try:
        _every_protocol_routes(server)
    finally:
        server.stop()
