"""Amazon Data Firehose through boto3: Direct PUT and Kinesis sources to S3, buffering
flushed on unkai's clock, AWS's object names and prefixes, dynamic partitioning with
JQ, compression, Lambda transformation with error output, backups, S3 notifications on
the delivered objects, and the template resource."""

from __future__ import annotations

import base64
import gzip
import json
import re
import textwrap
import uuid

import pytest
from lambda_code import deploy, private_server

unkai = private_server("firehose")
ROLE = "arn:aws:iam::000000000000:role/firehose"


@pytest.fixture(scope="module")
def fh(unkai):
    return unkai.client("firehose")


@pytest.fixture(scope="module")
def s3(unkai):
    return unkai.client("s3")


def bucket(s3) -> str:
    name = f"b-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=name)
    return name


def objects(s3, name: str, prefix: str = "") -> dict[str, bytes]:
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=name, Prefix=prefix).get("Contents", [])]
    return {k: s3.get_object(Bucket=name, Key=k)["Body"].read() for k in keys}


def stream(fh, dest: dict, **kwargs) -> str:
    name = f"d-{uuid.uuid4().hex[:8]}"
    fh.create_delivery_stream(DeliveryStreamName=name, ExtendedS3DestinationConfiguration=dict(dest, RoleARN=ROLE),
                              **kwargs)
    return name


def test_records_are_buffered_until_the_interval_then_land_with_aws_names(fh, s3, unkai):
    b = bucket(s3)
    name = stream(fh, {"BucketARN": f"arn:aws:s3:::{b}", "BufferingHints": {"IntervalInSeconds": 60, "SizeInMBs": 5}})
    desc = fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
    assert desc["DeliveryStreamStatus"] == "ACTIVE" and desc["DeliveryStreamType"] == "DirectPut"
    dest = desc["Destinations"][0]["ExtendedS3DestinationDescription"]
    assert dest["CompressionFormat"] == "UNCOMPRESSED" and dest["BufferingHints"]["IntervalInSeconds"] == 60
    fh.put_record(DeliveryStreamName=name, Record={"Data": b"one\n"})
    out = fh.put_record_batch(DeliveryStreamName=name, Records=[{"Data": b"two\n"}, {"Data": b"three\n"}])
    assert out["FailedPutCount"] == 0 and len(out["RequestResponses"]) == 2
    unkai.drain()
    assert objects(s3, b) == {}
    unkai.advance(61)
    unkai.drain()
    [(key, body)] = objects(s3, b).items()
    assert body == b"one\ntwo\nthree\n"
    assert re.fullmatch(rf"\d{{4}}/\d\d/\d\d/\d\d/{name}-1-\d{{4}}-\d\d-\d\d-\d\d-\d\d-\d\d-[0-9a-f-]{{36}}", key), key
    assert name in fh.list_delivery_streams()["DeliveryStreamNames"]


def test_size_hint_flushes_at_once_with_gzip_and_notifies_s3(fh, s3, unkai):
    sqs = unkai.client("sqs")
    url = sqs.create_queue(QueueName=f"n-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    qarn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    b = bucket(s3)
    s3.put_bucket_notification_configuration(Bucket=b, NotificationConfiguration={"QueueConfigurations": [
        {"QueueArn": qarn, "Events": ["s3:ObjectCreated:*"]}]})
    name = stream(fh, {"BucketARN": f"arn:aws:s3:::{b}", "Prefix": "logs/!{timestamp:yyyy}/", "CompressionFormat": "GZIP",
                       "BufferingHints": {"IntervalInSeconds": 900, "SizeInMBs": 1}})
    chunk = b"x" * 1000 + b"\n"
    for _ in range(3):
        fh.put_record_batch(DeliveryStreamName=name, Records=[{"Data": chunk}] * 400)
    unkai.drain()
    got = objects(s3, b, "logs/")
    assert got and all(k.endswith(".gz") and re.match(r"logs/\d{4}/" + name, k) for k in got)
    assert sum(len(gzip.decompress(v)) for v in got.values()) >= 1024 * 1024
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    keys = {json.loads(m["Body"])["Records"][0]["s3"]["object"]["key"] for m in messages if "Records" in m["Body"]}
    assert keys & set(got)


def test_dynamic_partitioning_with_jq_and_a_newline_delimiter(fh, s3, unkai):
    b = bucket(s3)
    name = stream(fh, {
        "BucketARN": f"arn:aws:s3:::{b}", "Prefix": "c=!{partitionKeyFromQuery:customer}/",
        "ErrorOutputPrefix": "errors/!{firehose:error-output-type}/",
        "BufferingHints": {"IntervalInSeconds": 60, "SizeInMBs": 64},
        "DynamicPartitioningConfiguration": {"Enabled": True},
        "ProcessingConfiguration": {"Enabled": True, "Processors": [
            {"Type": "MetadataExtraction", "Parameters": [
                {"ParameterName": "MetadataExtractionQuery", "ParameterValue": "{customer: .customer}"},
                {"ParameterName": "JsonParsingEngine", "ParameterValue": "JQ-1.6"}]},
            {"Type": "AppendDelimiterToRecord", "Parameters": []}]}})
    records = [{"customer": "a", "n": 1}, {"customer": "b", "n": 2}, {"customer": "a", "n": 3}]
    fh.put_record_batch(DeliveryStreamName=name, Records=[{"Data": json.dumps(r).encode()} for r in records]
                        + [{"Data": b"not json"}])
    unkai.advance(61)
    unkai.drain()
    got = objects(s3, b)
    by_prefix = {k.split("/")[0]: v for k, v in got.items() if not k.startswith("errors/")}
    assert by_prefix["c=a"] == b'{"customer": "a", "n": 1}\n{"customer": "a", "n": 3}\n'
    assert by_prefix["c=b"] == b'{"customer": "b", "n": 2}\n'
    [error] = [v for k, v in got.items() if k.startswith("errors/partitioning-failed/")]
    assert base64.b64decode(json.loads(error)["rawData"]) == b"not json"
    with pytest.raises(fh.exceptions.InvalidArgumentException):
        stream(fh, {"BucketARN": f"arn:aws:s3:::{b}", "Prefix": "!{partitionKeyFromQuery:x}/"})


TRANSFORM = """
import base64, json
def handler(event, context):
    out = []
    for r in event['records']:
        text = base64.b64decode(r['data']).decode()
        if text == 'drop':
            out.append({'recordId': r['recordId'], 'result': 'Dropped', 'data': r['data']})
        elif text == 'bad':
            out.append({'recordId': r['recordId'], 'result': 'ProcessingFailed', 'data': r['data']})
        else:
            data = base64.b64encode((text.upper() + '\\n').encode()).decode()
            out.append({'recordId': r['recordId'], 'result': 'Ok', 'data': data})
    print('STREAM ' + event['deliveryStreamArn'])
    return {'records': out}
"""


def test_lambda_transformation_with_error_output_and_source_backup(fh, s3, unkai):
    lam = unkai.client("lambda")
    fn = deploy(lam, TRANSFORM)
    fn_arn = lam.get_function(FunctionName=fn)["Configuration"]["FunctionArn"]
    b, backup = bucket(s3), bucket(s3)
    name = stream(fh, {
        "BucketARN": f"arn:aws:s3:::{b}", "Prefix": "ok/", "ErrorOutputPrefix": "err/!{firehose:error-output-type}/",
        "BufferingHints": {"IntervalInSeconds": 60, "SizeInMBs": 5},
        "ProcessingConfiguration": {"Enabled": True, "Processors": [{"Type": "Lambda", "Parameters": [
            {"ParameterName": "LambdaArn", "ParameterValue": fn_arn}]}]},
        "S3BackupMode": "Enabled",
        "S3BackupConfiguration": {"RoleARN": ROLE, "BucketARN": f"arn:aws:s3:::{backup}", "Prefix": "raw/"}})
    fh.put_record_batch(DeliveryStreamName=name, Records=[{"Data": d} for d in (b"hello", b"drop", b"bad", b"world")])
    unkai.advance(61)
    unkai.drain()
    got = objects(s3, b)
    assert [v for k, v in got.items() if k.startswith("ok/")] == [b"HELLO\nWORLD\n"]
    [failed] = [v for k, v in got.items() if k.startswith("err/processing-failed/")]
    line = json.loads(failed)
    assert line["errorCode"] == "Lambda.ProcessingFailed" and base64.b64decode(line["rawData"]) == b"bad"
    assert line["lambdaArn"] == fn_arn
    assert list(objects(s3, backup, "raw/").values()) == [b"hellodropbadworld"]


def test_kinesis_source_reads_from_latest(fh, s3, unkai):
    kin = unkai.client("kinesis")
    kname = f"k-{uuid.uuid4().hex[:8]}"
    kin.create_stream(StreamName=kname, ShardCount=2)
    karn = kin.describe_stream_summary(StreamName=kname)["StreamDescriptionSummary"]["StreamARN"]
    kin.put_record(StreamName=kname, Data=b"before\n", PartitionKey="p")
    b = bucket(s3)
    name = f"d-{uuid.uuid4().hex[:8]}"
    fh.create_delivery_stream(DeliveryStreamName=name, DeliveryStreamType="KinesisStreamAsSource",
                              KinesisStreamSourceConfiguration={"KinesisStreamARN": karn, "RoleARN": ROLE},
                              ExtendedS3DestinationConfiguration={"RoleARN": ROLE, "BucketARN": f"arn:aws:s3:::{b}",
                                                                  "BufferingHints": {"IntervalInSeconds": 60}})
    desc = fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
    assert desc["Source"]["KinesisStreamSourceDescription"]["KinesisStreamARN"] == karn
    with pytest.raises(fh.exceptions.InvalidArgumentException):
        fh.put_record(DeliveryStreamName=name, Record={"Data": b"x"})
    kin.put_record(StreamName=kname, Data=b"after\n", PartitionKey="p")
    unkai.drain()
    unkai.advance(61)
    unkai.drain()
    assert list(objects(s3, b).values()) == [b"after\n"]


def test_bad_input_gets_firehose_errors(fh, s3):
    b = bucket(s3)
    name = stream(fh, {"BucketARN": f"arn:aws:s3:::{b}"})
    with pytest.raises(fh.exceptions.ResourceInUseException):
        stream_again = fh.create_delivery_stream(
            DeliveryStreamName=name, ExtendedS3DestinationConfiguration={"RoleARN": ROLE,
                                                                         "BucketARN": f"arn:aws:s3:::{b}"})
    with pytest.raises(fh.exceptions.ResourceNotFoundException) as exc:
        fh.put_record(DeliveryStreamName="missing", Record={"Data": b"x"})
    assert exc.value.response["Error"]["Message"] == "Firehose missing under account 000000000000 not found."
    with pytest.raises(fh.exceptions.InvalidArgumentException):
        fh.put_record(DeliveryStreamName=name, Record={"Data": b"x" * (1000 * 1024 + 1)})
    with pytest.raises(fh.exceptions.ConcurrentModificationException):
        fh.update_destination(DeliveryStreamName=name, CurrentDeliveryStreamVersionId="7",
                              DestinationId="destinationId-000000000001",
                              ExtendedS3DestinationUpdate={"Prefix": "x/"})
    fh.update_destination(DeliveryStreamName=name, CurrentDeliveryStreamVersionId="1",
                          DestinationId="destinationId-000000000001", ExtendedS3DestinationUpdate={"Prefix": "x/"})
    desc = fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
    assert desc["VersionId"] == "2"
    assert desc["Destinations"][0]["ExtendedS3DestinationDescription"]["Prefix"] == "x/"
    fh.delete_delivery_stream(DeliveryStreamName=name)
    with pytest.raises(fh.exceptions.ResourceNotFoundException):
        fh.describe_delivery_stream(DeliveryStreamName=name)


def test_delivery_stream_template_resource(tmp_path):
    from unkai.testing import UnkaiServer

    (tmp_path / "template.yaml").write_text(textwrap.dedent("""
        AWSTemplateFormatVersion: '2010-09-09'
        Resources:
          Archive:
            Type: AWS::S3::Bucket
          Delivery:
            Type: AWS::KinesisFirehose::DeliveryStream
            Properties:
              DeliveryStreamType: DirectPut
              ExtendedS3DestinationConfiguration:
                BucketARN: !GetAtt Archive.Arn
                RoleARN: arn:aws:iam::000000000000:role/firehose
                Prefix: events/
                BufferingHints:
                  IntervalInSeconds: 60
                  SizeInMBs: 1
                CompressionFormat: GZIP
        Outputs:
          Stream:
            Value: !Ref Delivery
          StreamArn:
            Value: !GetAtt Delivery.Arn
          Bucket:
            Value: !Ref Archive
    """))
    with UnkaiServer(tmp_path / "state", str(tmp_path / "template.yaml")).start() as server:
        cfn = server.client("cloudformation")
        stack = cfn.list_stacks()["StackSummaries"][0]["StackName"]
        out = {o["OutputKey"]: o["OutputValue"] for o in cfn.describe_stacks(StackName=stack)["Stacks"][0]["Outputs"]}
        assert out["StreamArn"].endswith(f":deliverystream/{out['Stream']}")
        server.client("firehose").put_record(DeliveryStreamName=out["Stream"], Record={"Data": b"templated\n"})
        server.advance(61)
        server.drain()
        s3c = server.client("s3")
        [item] = s3c.list_objects_v2(Bucket=out["Bucket"], Prefix="events/")["Contents"]
        assert item["Key"].endswith(".gz")
        assert gzip.decompress(s3c.get_object(Bucket=out["Bucket"], Key=item["Key"])["Body"].read()) == b"templated\n"


def test_snappy_objects_and_encryption_settings(fh, s3, unkai):
    import cramjam

    b = bucket(s3)
    name = stream(fh, {"BucketARN": f"arn:aws:s3:::{b}", "CompressionFormat": "Snappy",
                       "BufferingHints": {"IntervalInSeconds": 60, "SizeInMBs": 5}})
    fh.put_record_batch(DeliveryStreamName=name, Records=[{"Data": b"one\n"}, {"Data": b"two\n"}])
    unkai.advance(61)
    unkai.drain()
    [(key, body)] = objects(s3, b).items()
    assert key.endswith(".snappy") and bytes(cramjam.snappy.decompress(body)) == b"one\ntwo\n"
    fh.start_delivery_stream_encryption(DeliveryStreamName=name,
                                        DeliveryStreamEncryptionConfigurationInput={"KeyType": "AWS_OWNED_CMK"})
    enc = fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"][
        "DeliveryStreamEncryptionConfiguration"]
    assert enc["Status"] == "ENABLED" and enc["KeyType"] == "AWS_OWNED_CMK"
    fh.stop_delivery_stream_encryption(DeliveryStreamName=name)
    assert fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"][
        "DeliveryStreamEncryptionConfiguration"]["Status"] == "DISABLED"


PARTITION_BY_LAMBDA = """
import base64, json
def handler(event, context):
    out = []
    for r in event['records']:
        doc = json.loads(base64.b64decode(r['data']))
        out.append({'recordId': r['recordId'], 'result': 'Ok', 'data': r['data'],
                    'metadata': {'partitionKeys': {'device': doc['device']}}})
    return {'records': out}
"""


def test_partition_keys_from_a_lambda_name_the_objects(fh, s3, unkai):
    lam = unkai.client("lambda")
    fn_arn = lam.get_function(FunctionName=deploy(lam, PARTITION_BY_LAMBDA))["Configuration"]["FunctionArn"]
    b = bucket(s3)
    name = stream(fh, {
        "BucketARN": f"arn:aws:s3:::{b}", "Prefix": "by/!{partitionKeyFromLambda:device}/",
        "ErrorOutputPrefix": "err/", "BufferingHints": {"IntervalInSeconds": 60, "SizeInMBs": 64},
        "DynamicPartitioningConfiguration": {"Enabled": True},
        "ProcessingConfiguration": {"Enabled": True, "Processors": [{"Type": "Lambda", "Parameters": [
            {"ParameterName": "LambdaArn", "ParameterValue": fn_arn}]}]}})
    fh.put_record_batch(DeliveryStreamName=name, Records=[
        {"Data": json.dumps({"device": d, "n": i}).encode()} for i, d in enumerate(["a", "b", "a"])])
    unkai.advance(61)
    unkai.drain()
    got = {k.split("/")[1]: v for k, v in objects(s3, b, "by/").items()}
    assert got == {"a": b'{"device": "a", "n": 0}{"device": "a", "n": 2}', "b": b'{"device": "b", "n": 1}'}
