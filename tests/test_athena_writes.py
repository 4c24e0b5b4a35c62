"""Athena statements that make and fill tables, through boto3: CREATE EXTERNAL TABLE (and
CREATE DATABASE, DROP TABLE) recorded in Glue as Glue's API would record them, CREATE TABLE
AS SELECT writing Parquet or gzip JSON lines into S3 with partitions, and INSERT INTO
adding files and partitions to an existing table; with Athena's failures for what cannot
be done."""

from __future__ import annotations

import gzip
import json
import time
import uuid

import pytest


@pytest.fixture(scope="module")
def lake(unkai):
    """A bucket with JSON lines in two partitions that no Glue table describes yet."""
    s3 = unkai.client("s3")
    bucket = f"writes-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    events = [{"device_id": "d1", "level": "INFO", "ts": 100, "detail": {"hub": "h1"}},
              {"device_id": "d1", "level": "ERROR", "ts": 200, "detail": {"hub": "h2"}},
              {"device_id": "d2", "level": "INFO", "ts": 300, "detail": {"hub": "h1"}}]
    s3.put_object(Bucket=bucket, Key="raw/dt=2024-01-01/a.json.gz",
                  Body=gzip.compress("\n".join(json.dumps(e) for e in events[:2]).encode() + b"\n"))
    s3.put_object(Bucket=bucket, Key="raw/dt=2024-01-02/b.json", Body=json.dumps(events[2]).encode() + b"\n")
    return bucket, f"w_{uuid.uuid4().hex[:6]}"


def run(unkai, bucket: str, db: str, query: str) -> dict:
    athena = unkai.client("athena")
    qid = athena.start_query_execution(QueryString=query, QueryExecutionContext={"Database": db},
                                       ResultConfiguration={"OutputLocation": f"s3://{bucket}/results/"})[
        "QueryExecutionId"]
    deadline = time.monotonic() + 60
    while True:
        ex = athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]
        if ex["Status"]["State"] not in ("QUEUED", "RUNNING") or time.monotonic() > deadline:
            return ex
        time.sleep(0.05)


def ok(unkai, bucket: str, db: str, query: str) -> dict:
    ex = run(unkai, bucket, db, query)
    assert ex["Status"]["State"] == "SUCCEEDED", ex["Status"].get("StateChangeReason")
    return ex


def rows(unkai, ex: dict) -> list[list]:
    out = unkai.client("athena").get_query_results(QueryExecutionId=ex["QueryExecutionId"])["ResultSet"]["Rows"]
    return [[d.get("VarCharValue") for d in r["Data"]] for r in out][1:]


def failure(unkai, bucket: str, db: str, query: str) -> str:
    ex = run(unkai, bucket, db, query)
    assert ex["Status"]["State"] == "FAILED"
    return ex["Status"]["StateChangeReason"]


def test_create_external_table_records_hive_ddl_in_glue_and_reads_it(unkai, lake):
    bucket, db = lake
    glue = unkai.client("glue")
    ok(unkai, bucket, "default", f"CREATE DATABASE IF NOT EXISTS {db} COMMENT 'written by DDL'")
    assert glue.get_database(Name=db)["Database"]["Description"] == "written by DDL"
    ddl = f"""
        CREATE EXTERNAL TABLE IF NOT EXISTS `{db}`.`events` (
          `device_id` string COMMENT 'which device',
          level string,
          ts bigint,
          detail struct<hub:string>
        )
        PARTITIONED BY (dt string)
        ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'
        WITH SERDEPROPERTIES ('ignore.malformed.json' = 'true')
        LOCATION 's3://{bucket}/raw/'
        TBLPROPERTIES ('classification' = 'json', 'has_encrypted_data' = 'false')"""
    ex = ok(unkai, bucket, db, ddl)
    assert ex["StatementType"] == "DDL" and ex["SubstatementType"] == "CREATE_TABLE"
    table = glue.get_table(DatabaseName=db, Name="events")["Table"]
    sd = table["StorageDescriptor"]
    assert [(c["Name"], c["Type"]) for c in sd["Columns"]] == [
        ("device_id", "string"), ("level", "string"), ("ts", "bigint"), ("detail", "struct<hub:string>")]
    assert sd["Columns"][0]["Comment"] == "which device"
    assert table["PartitionKeys"] == [{"Name": "dt", "Type": "string"}]
    assert sd["Location"] == f"s3://{bucket}/raw/"
    assert sd["SerdeInfo"] == {"SerializationLibrary": "org.openx.data.jsonserde.JsonSerDe",
                               "Parameters": {"ignore.malformed.json": "true"}}
    assert table["Parameters"]["classification"] == "json" and table["TableType"] == "EXTERNAL_TABLE"
    ok(unkai, bucket, db, ddl)  # IF NOT EXISTS: a second run changes nothing
    ok(unkai, bucket, db, "MSCK REPAIR TABLE events")
    got = rows(unkai, ok(unkai, bucket, db, "SELECT device_id, detail.hub, dt FROM events ORDER BY ts DESC"))
    assert got == [["d2", "h1", "2024-01-02"], ["d1", "h2", "2024-01-01"], ["d1", "h1", "2024-01-01"]]

    ok(unkai, bucket, db, f"CREATE EXTERNAL TABLE counts (name string, n int) ROW FORMAT DELIMITED FIELDS "
                          f"TERMINATED BY '\\t' STORED AS TEXTFILE LOCATION 's3://{bucket}/counts/'")
    counts = glue.get_table(DatabaseName=db, Name="counts")["Table"]["StorageDescriptor"]
    assert counts["SerdeInfo"]["Parameters"] == {"field.delim": "\t"}
    assert counts["InputFormat"] == "org.apache.hadoop.mapred.TextInputFormat"
    ok(unkai, bucket, db, "DROP TABLE counts")
    assert [t["Name"] for t in glue.get_tables(DatabaseName=db)["TableList"]] == ["events"]
    ok(unkai, bucket, db, "DROP TABLE IF EXISTS counts")


def test_ddl_that_cannot_be_done_fails_with_athenas_reasons(unkai, lake):
    bucket, db = lake
    ok(unkai, bucket, "default", f"CREATE DATABASE IF NOT EXISTS {db}")
    ok(unkai, bucket, db, f"CREATE EXTERNAL TABLE IF NOT EXISTS taken (a string) LOCATION 's3://{bucket}/t/'")
    assert "AlreadyExistsException" in failure(
        unkai, bucket, db, f"CREATE EXTERNAL TABLE taken (a string) LOCATION 's3://{bucket}/t/'")
    assert "ParseException" in failure(unkai, bucket, db, "CREATE EXTERNAL TABLE broken (a string,) LOCATION 'x'")
    assert failure(unkai, bucket, db, f"CREATE EXTERNAL TABLE o (a string) STORED AS ORC "
                                      f"LOCATION 's3://{bucket}/o/'").startswith("NOT_SUPPORTED")
    assert "Database does not exist" in failure(
        unkai, bucket, db, f"CREATE EXTERNAL TABLE nodb_{uuid.uuid4().hex[:4]}.t (a string) LOCATION 's3://b/'")
    assert "Table not found" in failure(unkai, bucket, db, "DROP TABLE never_made")
    assert "is not empty" in failure(unkai, bucket, "default", f"DROP DATABASE {db}")
    assert failure(unkai, bucket, db, "INSERT INTO never_made SELECT 1").startswith("TABLE_NOT_FOUND")
    assert failure(unkai, bucket, db, "INSERT INTO taken SELECT 1, 2").startswith("TYPE_MISMATCH")
    assert failure(unkai, bucket, db, "CREATE TABLE bad WITH (format = 'ORC') AS SELECT 1 AS a").startswith(
        "NOT_SUPPORTED")
    assert failure(unkai, bucket, db, "CREATE TABLE bad WITH (colour = 'red') AS SELECT 1 AS a").startswith(
        "INVALID_TABLE_PROPERTY")
    assert failure(unkai, bucket, db, "CREATE TABLE taken AS SELECT 1 AS a").startswith("TABLE_ALREADY_EXISTS")


def test_ctas_writes_partitioned_parquet_registers_it_and_insert_into_adds_to_it(unkai, lake):
    bucket, db = lake
    s3, glue = unkai.client("s3"), unkai.client("glue")
    ok(unkai, bucket, "default", f"CREATE DATABASE IF NOT EXISTS {db}")
    ok(unkai, bucket, db, f"CREATE EXTERNAL TABLE IF NOT EXISTS events (device_id string, level string, ts bigint, "
                          f"detail struct<hub:string>) PARTITIONED BY (dt string) ROW FORMAT SERDE "
                          f"'org.openx.data.jsonserde.JsonSerDe' LOCATION 's3://{bucket}/raw/'")
    ok(unkai, bucket, db, "MSCK REPAIR TABLE events")
    ex = ok(unkai, bucket, db, f"""
        CREATE TABLE by_level WITH (format = 'PARQUET', external_location = 's3://{bucket}/curated/by_level/',
                                    partitioned_by = ARRAY['level'])
        AS SELECT device_id, ts, from_unixtime(ts) AS seen_at, detail.hub AS hub, level FROM events""")
    assert ex["StatementType"] == "DDL" and ex["SubstatementType"] == "CREATE_TABLE_AS_SELECT"
    result = unkai.client("athena").get_query_results(QueryExecutionId=ex["QueryExecutionId"])
    assert result["UpdateCount"] == 3
    table = glue.get_table(DatabaseName=db, Name="by_level")["Table"]
    assert [(c["Name"], c["Type"]) for c in table["StorageDescriptor"]["Columns"]] == [
        ("device_id", "string"), ("ts", "bigint"), ("seen_at", "timestamp"), ("hub", "string")]
    assert table["PartitionKeys"] == [{"Name": "level", "Type": "string"}]
    assert "parquet" in table["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"].lower()
    parts = glue.get_partitions(DatabaseName=db, TableName="by_level")["Partitions"]
    assert sorted(p["Values"][0] for p in parts) == ["ERROR", "INFO"]
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="curated/by_level/")["Contents"]]
    assert {k.split("/")[2] for k in keys} == {"level=ERROR", "level=INFO"}
    head = s3.get_object(Bucket=bucket, Key=keys[0])["Body"].read(4)
    assert head == b"PAR1"
    got = rows(unkai, ok(unkai, bucket, db, "SELECT level, count(*), max(seen_at) FROM by_level GROUP BY level "
                                            "ORDER BY level"))
    assert got == [["ERROR", "1", "1970-01-01 00:03:20.000"], ["INFO", "2", "1970-01-01 00:05:00.000"]]

    ex = ok(unkai, bucket, db, "INSERT INTO by_level SELECT 'd3', 400, from_unixtime(400), 'h9', 'WARN'")
    assert ex["StatementType"] == "DML" and ex["SubstatementType"] == "INSERT"
    assert unkai.client("athena").get_query_results(QueryExecutionId=ex["QueryExecutionId"])["UpdateCount"] == 1
    ok(unkai, bucket, db, "INSERT INTO by_level (level, device_id, ts) VALUES ('INFO', 'd4', 500)")
    parts = glue.get_partitions(DatabaseName=db, TableName="by_level")["Partitions"]
    assert sorted(p["Values"][0] for p in parts) == ["ERROR", "INFO", "WARN"]
    got = rows(unkai, ok(unkai, bucket, db, "SELECT device_id, hub, level FROM by_level ORDER BY ts"))
    assert got == [["d1", "h1", "INFO"], ["d1", "h2", "ERROR"], ["d2", "h1", "INFO"], ["d3", "h9", "WARN"],
                   ["d4", None, "INFO"]]


def test_ctas_defaults_to_the_output_location_and_writes_gzip_json_lines(unkai, lake):
    bucket, db = lake
    s3, glue = unkai.client("s3"), unkai.client("glue")
    ok(unkai, bucket, "default", f"CREATE DATABASE IF NOT EXISTS {db}")
    ex = ok(unkai, bucket, db, "CREATE TABLE answers WITH (format = 'JSON') AS "
                               "SELECT * FROM (VALUES (1, 'one'), (2, 'two')) AS t(n, word)")
    location = glue.get_table(DatabaseName=db, Name="answers")["Table"]["StorageDescriptor"]["Location"]
    assert location == f"s3://{bucket}/results/tables/{ex['QueryExecutionId']}/"
    (obj,) = s3.list_objects_v2(Bucket=bucket, Prefix=f"results/tables/{ex['QueryExecutionId']}/")["Contents"]
    assert obj["Key"].endswith(".gz")
    lines = gzip.decompress(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()).decode().splitlines()
    assert [json.loads(line) for line in lines] == [{"n": 1, "word": "one"}, {"n": 2, "word": "two"}]
    ok(unkai, bucket, db, "INSERT INTO answers VALUES (3, 'three')")
    assert rows(unkai, ok(unkai, bucket, db, "SELECT sum(n), count(*) FROM answers")) == [["6", "3"]]

    ok(unkai, bucket, db, f"CREATE TABLE shape_only WITH (external_location = 's3://{bucket}/empty/') AS "
                          "SELECT 1 AS a WITH NO DATA")
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix="empty/")
    reason = failure(unkai, bucket, db, f"CREATE TABLE clash WITH (external_location = 's3://{bucket}/raw/') AS "
                                        "SELECT 1 AS a")
    assert reason.startswith("HIVE_PATH_ALREADY_EXISTS")
