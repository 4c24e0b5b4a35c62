"""Glue Data Catalog and Athena through boto3: databases, tables and partitions; queries
run by DuckDB over JSON lines (gzip too), CSV and Parquet in S3, partitions registered or
projected, Athena's SQL functions, results via the API and as CSV in the output location,
and Athena's errors."""

from __future__ import annotations

import gzip
import io
import json
import time
import uuid

import pytest
from botocore.exceptions import ClientError


@pytest.fixture(scope="module")
def clients(unkai):
    return unkai.client("s3"), unkai.client("glue"), unkai.client("athena")


@pytest.fixture(scope="module")
def lake(clients):
    """A bucket of application logs in two daily partitions, and a database describing them."""
    s3, glue, _ = clients
    bucket = f"lake-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    rows = [
        {"level": "INFO", "device_id": "123456789", "log_event": "NodeRegisterFinished", "timestamp": 1527744700,
         "tags": ["a", "b"], "detail": {"hub": "h1"}},
        {"level": "ERROR", "device_id": "123456789", "log_event": "NodeRegisterFailed", "timestamp": 1527744800,
         "tags": [], "detail": {"hub": "h2"}},
        {"level": "INFO", "device_id": "999", "log_event": "Other", "timestamp": 1527744900, "tags": ["c"],
         "detail": {"hub": "h3"}},
    ]
    lines = [json.dumps(r) for r in rows]
    s3.put_object(Bucket=bucket, Key="app/dt=2018-05-31/part-0.gz", Body=gzip.compress(
        ("\n".join(lines[:2]) + "\n").encode()))
    s3.put_object(Bucket=bucket, Key="app/dt=2018-06-01/part-0.json", Body=(lines[2] + "\n").encode())
    s3.put_object(Bucket=bucket, Key="csv/data.csv", Body=b"name,count\nalpha,1\nbeta,2\n")
    db = f"logs_{uuid.uuid4().hex[:6]}"
    glue.create_database(DatabaseInput={"Name": db})
    json_serde = {"SerializationLibrary": "org.openx.data.jsonserde.JsonSerDe"}
    columns = [{"Name": "level", "Type": "string"}, {"Name": "device_id", "Type": "string"},
               {"Name": "log_event", "Type": "string"}, {"Name": "timestamp", "Type": "bigint"},
               {"Name": "tags", "Type": "array<string>"}, {"Name": "detail", "Type": "struct<hub:string>"}]
    glue.create_table(DatabaseName=db, TableInput={
        "Name": "application", "TableType": "EXTERNAL_TABLE", "PartitionKeys": [{"Name": "dt", "Type": "string"}],
        "StorageDescriptor": {"Columns": columns, "Location": f"s3://{bucket}/app/", "SerdeInfo": json_serde}})
    glue.batch_create_partition(DatabaseName=db, TableName="application", PartitionInputList=[
        {"Values": ["2018-05-31"]}])
    glue.create_table(DatabaseName=db, TableInput={
        "Name": "projected", "TableType": "EXTERNAL_TABLE", "PartitionKeys": [{"Name": "dt", "Type": "string"}],
        "Parameters": {"projection.enabled": "true", "projection.dt.type": "date",
                       "projection.dt.range": "2018-01-01,NOW", "projection.dt.format": "yyyy-MM-dd"},
        "StorageDescriptor": {"Columns": columns, "Location": f"s3://{bucket}/app/", "SerdeInfo": json_serde}})
    glue.create_table(DatabaseName=db, TableInput={
        "Name": "counts", "Parameters": {"skip.header.line.count": "1"},
        "StorageDescriptor": {"Columns": [{"Name": "name", "Type": "string"}, {"Name": "count", "Type": "int"}],
                              "Location": f"s3://{bucket}/csv/", "SerdeInfo": {
                                  "SerializationLibrary": "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe",
                                  "Parameters": {"field.delim": ","}}}})
    return bucket, db


def run(athena, bucket: str, db: str, query: str) -> dict:
    qid = athena.start_query_execution(QueryString=query, QueryExecutionContext={"Database": db},
                                       ResultConfiguration={"OutputLocation": f"s3://{bucket}/results/"})[
        "QueryExecutionId"]
    deadline = time.monotonic() + 60
    while True:
        ex = athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]
        if ex["Status"]["State"] not in ("QUEUED", "RUNNING") or time.monotonic() > deadline:
            return ex
        time.sleep(0.05)


def rows(athena, qid: str) -> list[list]:
    out = athena.get_query_results(QueryExecutionId=qid)["ResultSet"]["Rows"]
    return [[d.get("VarCharValue") for d in r["Data"]] for r in out]


def test_glue_catalog_round_trip_and_errors(clients, lake):
    _, glue, _ = clients
    bucket, db = lake
    table = glue.get_table(DatabaseName=db.upper(), Name="APPLICATION")["Table"]
    assert table["Name"] == "application" and table["DatabaseName"] == db
    assert table["PartitionKeys"] == [{"Name": "dt", "Type": "string"}]
    part = glue.get_partition(DatabaseName=db, TableName="application", PartitionValues=["2018-05-31"])["Partition"]
    assert part["StorageDescriptor"]["Location"] == f"s3://{bucket}/app/dt=2018-05-31/"
    again = glue.batch_create_partition(DatabaseName=db, TableName="application",
                                        PartitionInputList=[{"Values": ["2018-05-31"]}])
    assert again["Errors"][0]["ErrorDetail"]["ErrorCode"] == "AlreadyExistsException"
    assert [t["Name"] for t in glue.get_tables(DatabaseName=db, Expression="app*")["TableList"]] == ["application"]
    with pytest.raises(ClientError) as exc:
        glue.get_table(DatabaseName=db, Name="nope")
    assert exc.value.response["Error"]["Code"] == "EntityNotFoundException"
    with pytest.raises(ClientError) as exc:
        glue.create_database(DatabaseInput={"Name": db})
    assert exc.value.response["Error"]["Code"] == "AlreadyExistsException"


def test_the_talks_query_answers_the_devices_logs_newest_first(clients, lake):
    s3, _, athena = clients
    bucket, db = lake
    ex = run(athena, bucket, db, "SELECT level, log_event, timestamp, date_format(from_unixtime(timestamp), "
                                 "'%Y-%m-%d %H:%i:%s') AS ts FROM application WHERE device_id='123456789' AND "
                                 "timestamp>=1527744698 ORDER BY timestamp DESC")
    assert ex["Status"]["State"] == "SUCCEEDED", ex["Status"]
    assert ex["StatementType"] == "DML" and ex["Statistics"]["DataScannedInBytes"] > 0
    assert rows(athena, ex["QueryExecutionId"]) == [
        ["level", "log_event", "timestamp", "ts"],
        ["ERROR", "NodeRegisterFailed", "1527744800", "2018-05-31 05:33:20"],
        ["INFO", "NodeRegisterFinished", "1527744700", "2018-05-31 05:31:40"]]
    meta = athena.get_query_results(QueryExecutionId=ex["QueryExecutionId"])["ResultSet"]["ResultSetMetadata"]
    assert [(c["Name"], c["Type"]) for c in meta["ColumnInfo"]] == [
        ("level", "varchar"), ("log_event", "varchar"), ("timestamp", "bigint"), ("ts", "varchar")]
    csv = s3.get_object(Bucket=bucket, Key=f"results/{ex['QueryExecutionId']}.csv")["Body"].read().decode()
    assert csv.splitlines()[:2] == ['"level","log_event","timestamp","ts"',
                                   '"ERROR","NodeRegisterFailed","1527744800","2018-05-31 05:33:20"']
    assert ex["ResultConfiguration"]["OutputLocation"] == f"s3://{bucket}/results/{ex['QueryExecutionId']}.csv"


def test_projection_csv_unnest_and_trino_functions(clients, lake):
    _, _, athena = clients
    bucket, db = lake
    ex = run(athena, bucket, db, "SELECT dt, count(*) AS n, approx_distinct(device_id) AS d FROM projected "
                                 "GROUP BY dt ORDER BY dt")
    assert rows(athena, ex["QueryExecutionId"])[1:] == [["2018-05-31", "2", "1"], ["2018-06-01", "1", "1"]]
    ex = run(athena, bucket, db, "SELECT sum(count) AS total, max(name) AS last FROM counts")
    assert rows(athena, ex["QueryExecutionId"])[1:] == [["3", "beta"]]
    ex = run(athena, bucket, db, "SELECT log_event, tag, detail.hub, cardinality(tags) AS n, "
                                 "regexp_like(log_event, 'Fin') AS fin FROM projected CROSS JOIN UNNEST(tags) AS "
                                 "t(tag) WHERE json_extract_scalar('{\"a\": \"b\"}', '$.a') = 'b' ORDER BY tag")
    assert ex["Status"]["State"] == "SUCCEEDED", ex["Status"]
    assert rows(athena, ex["QueryExecutionId"])[1:] == [
        ["NodeRegisterFinished", "a", "h1", "2", "true"], ["NodeRegisterFinished", "b", "h1", "2", "true"],
        ["Other", "c", "h3", "1", "false"]]


def test_utility_statements_and_paging(clients, lake):
    _, _, athena = clients
    bucket, db = lake
    ex = run(athena, bucket, db, "SHOW TABLES")
    assert rows(athena, ex["QueryExecutionId"]) == [["application"], ["counts"], ["projected"]]
    ex = run(athena, bucket, db, f"MSCK REPAIR TABLE {db}.application")
    assert ex["Status"]["State"] == "SUCCEEDED"
    ex = run(athena, bucket, db, "SELECT dt FROM application ORDER BY timestamp")
    assert rows(athena, ex["QueryExecutionId"])[1:] == [["2018-05-31"], ["2018-05-31"], ["2018-06-01"]]
    page = athena.get_query_results(QueryExecutionId=ex["QueryExecutionId"], MaxResults=2)
    assert len(page["ResultSet"]["Rows"]) == 2
    rest = athena.get_query_results(QueryExecutionId=ex["QueryExecutionId"], NextToken=page["NextToken"])
    assert len(rest["ResultSet"]["Rows"]) == 2 and "NextToken" not in rest
    assert ex["QueryExecutionId"] in athena.list_query_executions()["QueryExecutionIds"]


def test_bad_queries_fail_as_athena_fails_them(clients, lake):
    _, _, athena = clients
    bucket, db = lake
    ex = run(athena, bucket, db, "SELECT * FROM nowhere")
    assert ex["Status"]["State"] == "FAILED"
    assert ex["Status"]["StateChangeReason"].startswith("TABLE_NOT_FOUND")
    ex = run(athena, bucket, db, "SELEC 1")
    assert ex["Status"]["State"] == "FAILED" and ex["Status"]["StateChangeReason"].startswith("SYNTAX_ERROR")
    ex = run(athena, bucket, db, "SELECT nope FROM counts")
    assert ex["Status"]["StateChangeReason"].startswith("COLUMN_NOT_FOUND")
    with pytest.raises(ClientError) as exc:
        athena.get_query_results(QueryExecutionId=ex["QueryExecutionId"])
    assert exc.value.response["Error"]["Code"] == "InvalidRequestException"
    with pytest.raises(ClientError) as exc:
        athena.start_query_execution(QueryString="SELECT 1")
    assert exc.value.response["Error"]["Code"] == "InvalidRequestException"
    assert "No output location provided" in exc.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as exc:
        athena.get_query_execution(QueryExecutionId=str(uuid.uuid4()))
    assert exc.value.response["Error"]["Code"] == "InvalidRequestException"


def test_workgroup_output_location_and_named_queries(clients, lake):
    _, _, athena = clients
    bucket, db = lake
    athena.create_work_group(Name="analysts", Configuration={
        "ResultConfiguration": {"OutputLocation": f"s3://{bucket}/wg/"}})
    qid = athena.start_query_execution(QueryString="SELECT 1 AS one", WorkGroup="analysts")["QueryExecutionId"]
    deadline = time.monotonic() + 30
    while athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]["Status"]["State"] in (
            "QUEUED", "RUNNING") and time.monotonic() < deadline:
        time.sleep(0.05)
    ex = athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]
    assert ex["ResultConfiguration"]["OutputLocation"] == f"s3://{bucket}/wg/{qid}.csv"
    assert rows(athena, qid) == [["one"], ["1"]]
    nid = athena.create_named_query(Name="errors", Database=db, QueryString="SELECT 1")["NamedQueryId"]
    assert athena.get_named_query(NamedQueryId=nid)["NamedQuery"]["Name"] == "errors"
    assert nid in athena.list_named_queries()["NamedQueryIds"]
    assert {w["Name"] for w in athena.list_work_groups()["WorkGroups"]} >= {"primary", "analysts"}


def test_a_long_query_does_not_block_others_and_stop_cancels_it(clients, lake):
    _, _, athena = clients
    bucket, db = lake
    endless = ("SELECT count(*) FROM UNNEST(sequence(1, 5000)) AS a(x) CROSS JOIN UNNEST(sequence(1, 5000)) AS b(y) "
               "CROSS JOIN UNNEST(sequence(1, 5000)) AS c(z) WHERE x + y + z = 7")
    qid = athena.start_query_execution(QueryString=endless, QueryExecutionContext={"Database": db},
                                       ResultConfiguration={"OutputLocation": f"s3://{bucket}/results/"})[
        "QueryExecutionId"]
    deadline = time.monotonic() + 30
    while athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]["Status"]["State"] == "QUEUED" \
            and time.monotonic() < deadline:
        time.sleep(0.05)
    assert athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]["Status"]["State"] == "RUNNING"
    with pytest.raises(ClientError) as exc:
        athena.get_query_results(QueryExecutionId=qid)
    assert exc.value.response["Error"]["Code"] == "InvalidRequestException"
    quick = run(athena, bucket, db, "SELECT sequence(1, 3) AS s")  # the server keeps answering meanwhile
    assert rows(athena, quick["QueryExecutionId"]) == [["s"], ["[1, 2, 3]"]]
    athena.stop_query_execution(QueryExecutionId=qid)
    while athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]["Status"]["State"] == "RUNNING" \
            and time.monotonic() < deadline:
        time.sleep(0.05)
    status = athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]["Status"]
    assert status["State"] == "CANCELLED" and "CompletionDateTime" in status
