"""DynamoDB exports to S3 and imports from S3 as AWS runs them (issue 23, item 3: DynamoDB).

Field names and the S3 layout come from botocore's model and AWS's "DynamoDB table export
output format" and "Amazon S3 import formats" pages. The module has its own server: an
incremental export needs the clock moved by more than AWS's 15-minute minimum window."""

from __future__ import annotations

import csv
import gzip
import io
import json
import time

import pytest
from botocore.exceptions import ClientError
from lambda_code import private_server

unkai = private_server("dynamodb-s3")


@pytest.fixture(scope="module")
def ddb(unkai):
    return unkai.client("dynamodb")


@pytest.fixture(scope="module")
def s3(unkai):
    client = unkai.client("s3")
    client.create_bucket(Bucket="ddb-exports")
    return client


def error_of(exc: pytest.ExceptionInfo) -> tuple[str, str]:
    return exc.value.response["Error"]["Code"], exc.value.response["Error"]["Message"]


def make_table(ddb, pitr: bool = True) -> tuple[str, str]:
    name = f"exp-{time.time_ns()}"
    arn = ddb.create_table(TableName=name, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                           AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                           BillingMode="PAY_PER_REQUEST")["TableDescription"]["TableArn"]
    if pitr:
        ddb.update_continuous_backups(TableName=name, PointInTimeRecoverySpecification={
            "PointInTimeRecoveryEnabled": True})
    return name, arn


def body(s3, key: str) -> bytes:
    return s3.get_object(Bucket="ddb-exports", Key=key)["Body"].read()


def test_an_export_needs_point_in_time_recovery_and_an_existing_table(ddb, s3):
    name, arn = make_table(ddb, pitr=False)
    with pytest.raises(ClientError) as exc:
        ddb.export_table_to_point_in_time(TableArn=arn, S3Bucket="ddb-exports")
    assert error_of(exc) == ("PointInTimeRecoveryUnavailableException",
                             f"Point in time recovery is not enabled for table '{name}'")
    missing = arn.rsplit("/", 1)[0] + "/no-such-table"
    with pytest.raises(ClientError) as exc:
        ddb.export_table_to_point_in_time(TableArn=missing, S3Bucket="ddb-exports")
    assert error_of(exc) == ("TableNotFoundException", f"Table not found: {missing}")
    with pytest.raises(ClientError) as exc:
        ddb.describe_export(ExportArn=arn + "/export/01700000000000-abcdef12")
    assert exc.value.response["Error"]["Code"] == "ExportNotFoundException"
    with pytest.raises(ClientError) as exc:  # the wording and enum order are AWS's (ScyllaDB's AWS-run suite)
        ddb.export_table_to_point_in_time(TableArn=arn, S3Bucket="ddb-exports", ExportFormat="QWERTY")
    assert error_of(exc) == ("ValidationException", "1 validation error detected: Value 'QWERTY' at 'exportFormat' "
                             "failed to satisfy constraint: Member must satisfy enum value set: [ION, DYNAMODB_JSON]")
    with pytest.raises(ClientError) as exc:
        ddb.export_table_to_point_in_time(TableArn=arn, S3Bucket="-bad-")
    assert error_of(exc)[0] == "ValidationException" and "at 's3Bucket' failed to satisfy" in error_of(exc)[1]
    with pytest.raises(ClientError) as exc:
        ddb.list_exports(MaxResults=26)
    assert error_of(exc)[1] == ("1 validation error detected: Value '26' at 'maxResults' failed to satisfy "
                                "constraint: Member must have value less than or equal to 25")


def test_a_full_export_writes_the_table_as_of_export_time_in_awss_layout(unkai, ddb, s3):
    name, arn = make_table(ddb)
    for i in range(3):
        ddb.put_item(TableName=name, Item={"pk": {"S": f"k{i}"}, "n": {"N": str(i)}, "b": {"B": b"\x00\x01"}})
    unkai.advance(1)
    moment = unkai.advance(0)["epoch"]
    unkai.advance(1)
    ddb.put_item(TableName=name, Item={"pk": {"S": "late"}})  # after ExportTime: not exported
    started = ddb.export_table_to_point_in_time(TableArn=arn, S3Bucket="ddb-exports", S3Prefix="nightly",
                                                ExportTime=moment, ClientToken="tok-1")["ExportDescription"]
    assert started["ExportStatus"] == "IN_PROGRESS"
    # AWS leaves the default ExportType out and always answers a ClientToken (ScyllaDB's AWS-run suite)
    assert "ExportType" not in started and started["ExportFormat"] == "DYNAMODB_JSON"
    assert started["ClientToken"] == "tok-1"
    export_arn = started["ExportArn"]
    export_id = export_arn.rsplit("/", 1)[-1]
    assert export_arn.startswith(f"{arn}/export/") and len(export_id) == 23 and export_id[14] == "-"
    again = ddb.export_table_to_point_in_time(TableArn=arn, S3Bucket="ddb-exports", S3Prefix="nightly",
                                              ExportTime=moment, ClientToken="tok-1")["ExportDescription"]
    assert again["ExportArn"] == export_arn  # the same ClientToken is the same export
    unkai.drain()
    done = ddb.describe_export(ExportArn=export_arn)["ExportDescription"]
    assert done["ExportStatus"] == "COMPLETED" and done["ItemCount"] == 3 and done["BilledSizeBytes"] > 0
    base = f"nightly/AWSDynamoDB/{export_id}"
    assert done["ExportManifest"] == f"{base}/manifest-summary.json"
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket="ddb-exports", Prefix=base)["Contents"]}
    assert {f"{base}/_started", f"{base}/manifest-summary.json", f"{base}/manifest-summary.checksum",
            f"{base}/manifest-files.json", f"{base}/manifest-files.checksum"} <= keys
    summary = json.loads(body(s3, f"{base}/manifest-summary.json"))
    assert summary["exportArn"] == export_arn and summary["tableArn"] == arn
    assert summary["itemCount"] == 3 and summary["outputFormat"] == "DYNAMODB_JSON"
    assert summary["manifestFilesS3Key"] == f"{base}/manifest-files.json" and summary["s3Prefix"] == "nightly"
    assert summary["exportTime"].endswith("Z") and summary["version"] == "2020-06-30"
    (entry,) = [json.loads(line) for line in body(s3, f"{base}/manifest-files.json").splitlines()]
    assert entry["itemCount"] == 3 and entry["dataFileS3Key"].startswith(f"{base}/data/")
    assert entry["dataFileS3Key"].endswith(".json.gz")
    lines = [json.loads(line) for line in gzip.decompress(body(s3, entry["dataFileS3Key"])).splitlines()]
    assert sorted(line["Item"]["pk"]["S"] for line in lines) == ["k0", "k1", "k2"]
    assert lines[0]["Item"]["b"] == {"B": "AAE="}  # binary as base64, as DynamoDB JSON writes it
    ended = [e for e in unkai.feed(kind="dynamodb.export") if e["export"] == export_arn]
    assert [(e["status"], e["items"], e["table"]) for e in ended] == [("COMPLETED", 3, name)]
    listed = ddb.list_exports(TableArn=arn)["ExportSummaries"]
    assert listed == [{"ExportArn": export_arn, "ExportStatus": "COMPLETED"}]


def test_an_export_to_a_missing_bucket_fails_with_a_failure_code(unkai, ddb):
    _, arn = make_table(ddb)
    export_arn = ddb.export_table_to_point_in_time(TableArn=arn, S3Bucket="no-such-bucket-here")[
        "ExportDescription"]["ExportArn"]
    unkai.drain()
    failed = ddb.describe_export(ExportArn=export_arn)["ExportDescription"]
    assert failed["ExportStatus"] == "FAILED" and failed["FailureCode"] == "S3NoSuchBucket"
    assert "bucket does not exist" in failed["FailureMessage"]


def test_an_export_time_outside_the_recovery_window_is_invalid(unkai, ddb):
    _, arn = make_table(ddb)
    with pytest.raises(ClientError) as exc:
        ddb.export_table_to_point_in_time(TableArn=arn, S3Bucket="ddb-exports",
                                          ExportTime=unkai.advance(0)["epoch"] - 7 * 86400)
    assert error_of(exc) == ("InvalidExportTimeException", "Export Time is invalid")


def test_an_incremental_export_writes_each_changed_key_with_new_and_old_images(unkai, ddb, s3):
    name, arn = make_table(ddb)
    ddb.put_item(TableName=name, Item={"pk": {"S": "keep"}, "v": {"N": "1"}})
    ddb.put_item(TableName=name, Item={"pk": {"S": "gone"}, "v": {"N": "2"}})
    unkai.advance(1)
    start = unkai.advance(0)["epoch"]
    unkai.advance(1)
    ddb.put_item(TableName=name, Item={"pk": {"S": "keep"}, "v": {"N": "10"}})
    ddb.delete_item(TableName=name, Key={"pk": {"S": "gone"}})
    ddb.put_item(TableName=name, Item={"pk": {"S": "new"}, "v": {"N": "3"}})
    unkai.advance(20 * 60)
    end = unkai.advance(0)["epoch"]
    with pytest.raises(ClientError) as exc:
        ddb.export_table_to_point_in_time(TableArn=arn, S3Bucket="ddb-exports", ExportType="INCREMENTAL_EXPORT",
                                          IncrementalExportSpecification={"ExportFromTime": start,
                                                                          "ExportToTime": start + 60})
    assert exc.value.response["Error"]["Code"] == "InvalidExportTimeException"
    started = ddb.export_table_to_point_in_time(
        TableArn=arn, S3Bucket="ddb-exports", ExportType="INCREMENTAL_EXPORT",
        IncrementalExportSpecification={"ExportFromTime": start, "ExportToTime": end})["ExportDescription"]
    assert started["IncrementalExportSpecification"]["ExportViewType"] == "NEW_AND_OLD_IMAGES"
    unkai.drain()
    done = ddb.describe_export(ExportArn=started["ExportArn"])["ExportDescription"]
    assert done["ExportStatus"] == "COMPLETED" and done["ItemCount"] == 3
    files = json.loads(body(s3, done["ExportManifest"]))["manifestFilesS3Key"]
    data_key = json.loads(body(s3, files).splitlines()[0])["dataFileS3Key"]
    lines = {json.loads(line)["Key"]["pk"]["S"]: json.loads(line)
             for line in gzip.decompress(body(s3, data_key)).splitlines()}
    assert lines["keep"]["NewImage"]["v"] == {"N": "10"} and lines["keep"]["OldImage"]["v"] == {"N": "1"}
    assert "NewImage" not in lines["gone"] and lines["gone"]["OldImage"]["v"] == {"N": "2"}
    assert "OldImage" not in lines["new"] and lines["new"]["NewImage"]["v"] == {"N": "3"}
    assert int(lines["new"]["Metadata"]["WriteTimestampMicros"]["N"]) // 1_000_000 in range(int(start), int(end))


def test_an_import_from_an_export_creates_the_table_with_its_items(unkai, ddb, s3):
    name, arn = make_table(ddb)
    for i in range(5):
        ddb.put_item(TableName=name, Item={"pk": {"S": f"i{i}"}, "tags": {"SS": ["a", "b"]}})
    export_arn = ddb.export_table_to_point_in_time(TableArn=arn, S3Bucket="ddb-exports",
                                                   S3Prefix="for-import")["ExportDescription"]["ExportArn"]
    unkai.drain()
    data_prefix = f"for-import/AWSDynamoDB/{export_arn.rsplit('/', 1)[-1]}/data/"
    target = f"{name}-imported"
    started = ddb.import_table(
        S3BucketSource={"S3Bucket": "ddb-exports", "S3KeyPrefix": data_prefix}, InputFormat="DYNAMODB_JSON",
        InputCompressionType="GZIP", TableCreationParameters={
            "TableName": target, "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "BillingMode": "PAY_PER_REQUEST"})["ImportTableDescription"]
    assert started["ImportStatus"] == "IN_PROGRESS" and started["TableArn"].endswith(f":table/{target}")
    assert started["ImportArn"].startswith(f"{started['TableArn']}/import/")
    assert started["CloudWatchLogGroupArn"].endswith(":log-group:/aws-dynamodb/imports:*")
    assert ddb.describe_table(TableName=target)["Table"]["TableStatus"] in ("CREATING", "ACTIVE")  # ACTIVE once done
    with pytest.raises(ClientError) as exc:  # the table is there from the start, as on AWS
        ddb.import_table(S3BucketSource={"S3Bucket": "ddb-exports"}, InputFormat="DYNAMODB_JSON",
                         TableCreationParameters={"TableName": target,
                                                  "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
                                                  "AttributeDefinitions": [{"AttributeName": "pk",
                                                                            "AttributeType": "S"}],
                                                  "BillingMode": "PAY_PER_REQUEST"})
    assert error_of(exc) == ("ResourceInUseException", f"Table already exists: {target}")
    unkai.drain()
    done = ddb.describe_import(ImportArn=started["ImportArn"])["ImportTableDescription"]
    assert done["ImportStatus"] == "COMPLETED"
    assert (done["ProcessedItemCount"], done["ImportedItemCount"], done["ErrorCount"]) == (5, 5, 0)
    data_key = s3.list_objects_v2(Bucket="ddb-exports", Prefix=data_prefix)["Contents"][0]["Key"]
    assert done["ProcessedSizeBytes"] == len(gzip.decompress(body(s3, data_key)))  # uncompressed, as AWS counts
    assert done["EndTime"] >= done["StartTime"] and "EndTime" not in started
    assert ddb.describe_table(TableName=target)["Table"]["TableStatus"] == "ACTIVE"
    items = ddb.scan(TableName=target)["Items"]
    assert sorted(i["pk"]["S"] for i in items) == [f"i{i}" for i in range(5)]
    assert items[0]["tags"] == {"SS": ["a", "b"]}
    summaries = ddb.list_imports(TableArn=started["TableArn"])["ImportSummaryList"]
    assert [s["ImportArn"] for s in summaries] == [started["ImportArn"]]
    assert summaries[0]["ImportStatus"] == "COMPLETED"
    with pytest.raises(ClientError) as exc:
        ddb.describe_import(ImportArn=started["ImportArn"][:-8] + "00000000")
    assert exc.value.response["Error"]["Code"] == "ImportNotFoundException"
    with pytest.raises(ClientError) as exc:  # a table name under 3 characters: no import ARN at all
        ddb.describe_import(ImportArn=started["TableArn"].rsplit("/", 1)[0] + "/x/import/01658528578619-c4d4e311")
    assert error_of(exc)[0] == "ValidationException" and "Import ARN" in error_of(exc)[1]
    with pytest.raises(ClientError) as exc:
        ddb.import_table(S3BucketSource={"S3Bucket": "ddb-exports"}, InputFormat="DYNAMODB_JSON", ClientToken="a$b",
                         TableCreationParameters={"TableName": f"{name}-tok", "BillingMode": "PAY_PER_REQUEST",
                                                  "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
                                                  "AttributeDefinitions": [{"AttributeName": "pk",
                                                                            "AttributeType": "S"}]})
    assert error_of(exc)[0] == "ValidationException" and "clientToken" in error_of(exc)[1]


def test_a_csv_import_types_key_columns_and_logs_the_rows_it_cannot_import(unkai, ddb, s3):
    text = io.StringIO()
    writer = csv.writer(text, delimiter=";")
    writer.writerows([["id", "name", "score"], ["1", "ann", "10"], ["2", "bob", ""], ["x", "bad", "3"],
                      ["4", "never read: AWS abandons an object at its first bad line", ""]])
    s3.put_object(Bucket="ddb-exports", Key="csv/people.csv", Body=text.getvalue().encode())
    target = f"people-{time.time_ns()}"
    arn = ddb.import_table(
        S3BucketSource={"S3Bucket": "ddb-exports", "S3KeyPrefix": "csv/"}, InputFormat="CSV",
        InputFormatOptions={"Csv": {"Delimiter": ";"}}, TableCreationParameters={
            "TableName": target, "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "N"}],
            "BillingMode": "PAY_PER_REQUEST"})["ImportTableDescription"]["ImportArn"]
    unkai.drain()
    done = ddb.describe_import(ImportArn=arn)["ImportTableDescription"]
    # AWS: an import that skipped an item FAILED with ItemValidationError, the valid items kept
    assert (done["ImportStatus"], done["FailureCode"]) == ("FAILED", "ItemValidationError")
    assert (done["ProcessedItemCount"], done["ImportedItemCount"], done["ErrorCount"]) == (3, 2, 1)
    items = {i["id"]["N"]: i for i in ddb.scan(TableName=target)["Items"]}
    assert set(items) == {"1", "2"}
    assert items["1"] == {"id": {"N": "1"}, "name": {"S": "ann"}, "score": {"S": "10"}}
    assert "score" not in items["2"]
    events = unkai.client("logs").filter_log_events(logGroupName="/aws-dynamodb/imports")["events"]
    logged = [json.loads(e["message"]) for e in events if arn in e["message"]]
    assert len(logged) == 1 and logged[0]["itemS3Pointer"] == {"bucket": "ddb-exports", "key": "csv/people.csv",
                                                               "itemIndex": 2}


def test_a_csv_row_whose_binary_key_is_not_base64_fails_the_import_instead_of_wedging_it(unkai, ddb, s3):
    s3.put_object(Bucket="ddb-exports", Key="csv-bin/keys.csv", Body=b"id,name\naGk=,ok\nabc!,bad\n")
    target = f"bin-{time.time_ns()}"
    arn = ddb.import_table(
        S3BucketSource={"S3Bucket": "ddb-exports", "S3KeyPrefix": "csv-bin/"}, InputFormat="CSV",
        TableCreationParameters={"TableName": target, "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
                                 "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "B"}],
                                 "BillingMode": "PAY_PER_REQUEST"})["ImportTableDescription"]["ImportArn"]
    unkai.drain()
    done = ddb.describe_import(ImportArn=arn)["ImportTableDescription"]
    assert (done["ImportStatus"], done["FailureCode"]) == ("FAILED", "ItemValidationError")
    assert (done["ImportedItemCount"], done["ErrorCount"]) == (1, 1)
    assert ddb.describe_table(TableName=target)["Table"]["TableStatus"] == "ACTIVE"
    assert [i["id"]["B"] for i in ddb.scan(TableName=target)["Items"]] == [b"hi"]


def test_an_import_with_nothing_under_its_prefix_completes_with_an_empty_table(unkai, ddb, s3):
    target = f"empty-{time.time_ns()}"
    creation = {"TableName": target, "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
                "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
                "BillingMode": "PAY_PER_REQUEST"}
    arn = ddb.import_table(S3BucketSource={"S3Bucket": "ddb-exports", "S3KeyPrefix": "nothing-here/"},
                           InputFormat="DYNAMODB_JSON", TableCreationParameters=creation)[
        "ImportTableDescription"]["ImportArn"]
    unkai.drain()
    done = ddb.describe_import(ImportArn=arn)["ImportTableDescription"]
    assert done["ImportStatus"] == "COMPLETED" and "FailureCode" not in done  # AWS: an empty success
    assert "ProcessedSizeBytes" not in done and done["ProcessedItemCount"] == 0
    assert ddb.describe_table(TableName=target)["Table"]["TableStatus"] == "ACTIVE"
    missing = ddb.import_table(S3BucketSource={"S3Bucket": "no-such-bucket-here"}, InputFormat="DYNAMODB_JSON",
                               TableCreationParameters={**creation, "TableName": f"{target}-nb"})[
        "ImportTableDescription"]["ImportArn"]
    unkai.drain()
    failed = ddb.describe_import(ImportArn=missing)["ImportTableDescription"]
    assert (failed["ImportStatus"], failed["FailureCode"]) == ("FAILED", "S3NoSuchBucket")
    assert f"{target}-nb" not in ddb.list_tables()["TableNames"]  # AWS removes the table it had made
    ended = [e for e in unkai.feed(kind="dynamodb.import") if e["import"] == missing]
    assert [(e["status"], e["failure_code"]) for e in ended] == [("FAILED", "S3NoSuchBucket")]


def test_an_ion_export_imports_back_with_every_attribute_type(unkai, ddb, s3):
    name, arn = make_table(ddb)
    item = {"pk": {"S": "all"}, "n": {"N": "103"}, "f": {"N": "-1.5"}, "b": {"B": b"\x00\xff"},
            "ss": {"SS": ["a", "b"]}, "ns": {"NS": ["1", "2.5"]}, "bs": {"BS": [b"\x01"]}, "t": {"BOOL": True},
            "z": {"NULL": True}, "l": {"L": [{"S": "x"}, {"N": "1"}]}, "m": {"M": {"k": {"S": "v"}}}}
    ddb.put_item(TableName=name, Item=item)
    export_arn = ddb.export_table_to_point_in_time(TableArn=arn, S3Bucket="ddb-exports", S3Prefix="ion",
                                                   ExportFormat="ION")["ExportDescription"]["ExportArn"]
    unkai.drain()
    done = ddb.describe_export(ExportArn=export_arn)["ExportDescription"]
    assert done["ExportStatus"] == "COMPLETED" and done["ExportFormat"] == "ION"
    assert json.loads(body(s3, done["ExportManifest"]))["outputFormat"] == "ION"
    export_id = export_arn.rsplit("/", 1)[-1]
    (data_key,) = [o["Key"] for o in s3.list_objects_v2(Bucket="ddb-exports",
                                                        Prefix=f"ion/AWSDynamoDB/{export_id}/data/")["Contents"]]
    assert data_key.endswith(".ion.gz")
    text = gzip.decompress(body(s3, data_key)).decode()
    assert text.startswith("$ion_1_0 {Item:{") and "$dynamodb_SS::[" in text  # AWS's set annotations
    target = f"{name}-ion"
    import_arn = ddb.import_table(
        S3BucketSource={"S3Bucket": "ddb-exports", "S3KeyPrefix": f"ion/AWSDynamoDB/{export_id}/data/"},
        InputFormat="ION", InputCompressionType="GZIP", TableCreationParameters={
            "TableName": target, "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "BillingMode": "PAY_PER_REQUEST"})["ImportTableDescription"]["ImportArn"]
    unkai.drain()
    assert ddb.describe_import(ImportArn=import_arn)["ImportTableDescription"]["ImportedItemCount"] == 1
    assert ddb.get_item(TableName=target, Key={"pk": {"S": "all"}})["Item"] == item


def test_a_zstd_compressed_import_is_read(unkai, ddb, s3):
    import cramjam

    lines = "".join(json.dumps({"Item": {"pk": {"S": f"z{i}"}, "v": {"N": str(i)}}}) + "\n" for i in range(3))
    s3.put_object(Bucket="ddb-exports", Key="zstd/part.json.zst", Body=bytes(cramjam.zstd.compress(lines.encode())))
    target = f"zstd-{time.time_ns()}"
    arn = ddb.import_table(
        S3BucketSource={"S3Bucket": "ddb-exports", "S3KeyPrefix": "zstd/"}, InputFormat="DYNAMODB_JSON",
        InputCompressionType="ZSTD", TableCreationParameters={
            "TableName": target, "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "BillingMode": "PAY_PER_REQUEST"})["ImportTableDescription"]["ImportArn"]
    unkai.drain()
    done = ddb.describe_import(ImportArn=arn)["ImportTableDescription"]
    assert (done["ImportStatus"], done["ImportedItemCount"]) == ("COMPLETED", 3)
    assert sorted(i["pk"]["S"] for i in ddb.scan(TableName=target)["Items"]) == ["z0", "z1", "z2"]


def test_acknowledged_exports_and_imports_complete_after_kill_9(tmp_path):
    from unkai.testing import UnkaiServer

    server = UnkaiServer(tmp_path / "state").start()
    try:
        ddb, s3 = server.client("dynamodb"), server.client("s3")
        s3.create_bucket(Bucket="durable")
        s3.put_object(Bucket="durable", Key="in/items.json",
                      Body="".join(json.dumps({"Item": {"pk": {"S": f"i{i}"}}}) + "\n" for i in range(20)).encode())
        name, arn = make_table(ddb)
        for i in range(30):
            ddb.put_item(TableName=name, Item={"pk": {"S": f"k{i}"}})
        export_arn = ddb.export_table_to_point_in_time(TableArn=arn, S3Bucket="durable")["ExportDescription"][
            "ExportArn"]
        import_arn = ddb.import_table(
            S3BucketSource={"S3Bucket": "durable", "S3KeyPrefix": "in/"}, InputFormat="DYNAMODB_JSON",
            TableCreationParameters={"TableName": f"{name}-in", "BillingMode": "PAY_PER_REQUEST",
                                     "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
                                     "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}]})[
            "ImportTableDescription"]["ImportArn"]
        server.kill()  # the jobs may not have run: they were acknowledged, so they must complete
        server.start()
        server.drain()
        ddb = server.client("dynamodb")
        export = ddb.describe_export(ExportArn=export_arn)["ExportDescription"]
        assert (export["ExportStatus"], export["ItemCount"]) == ("COMPLETED", 30)
        imported = ddb.describe_import(ImportArn=import_arn)["ImportTableDescription"]
        assert (imported["ImportStatus"], imported["ImportedItemCount"]) == ("COMPLETED", 20)
        assert ddb.scan(TableName=f"{name}-in", Select="COUNT")["Count"] == 20
    finally:
        server.stop()
