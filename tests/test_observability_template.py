"""The observability resource types deployed from one template, as CloudFormation would:
AWS::CloudWatch::Alarm and ::CompositeAlarm, AWS::Logs::MetricFilter feeding the alarm,
AWS::Glue::Database/Table/Partition read by Athena, AWS::Athena::WorkGroup/NamedQuery;
their Ref and GetAtt values; and what was acknowledged surviving a kill -9."""

from __future__ import annotations

import json
import textwrap
import time

from unkai.testing import UnkaiServer

from test_templates import outputs, write

TEMPLATE = textwrap.dedent("""\
    Resources:
      Alerts:
        Type: AWS::SNS::Topic
      Orders:
        Type: AWS::Logs::LogGroup
        Properties:
          LogGroupName: /app/orders
      ErrorLines:
        Type: AWS::Logs::MetricFilter
        Properties:
          LogGroupName: !Ref Orders
          FilterName: error-lines
          FilterPattern: '{ $.level = "ERROR" }'
          MetricTransformations:
            - MetricNamespace: Orders
              MetricName: ErrorLines
              MetricValue: '1'
              DefaultValue: 0
      Errors:
        Type: AWS::CloudWatch::Alarm
        Properties:
          AlarmDescription: an error line was logged
          Namespace: Orders
          MetricName: ErrorLines
          Statistic: Sum
          Period: 60
          EvaluationPeriods: 1
          Threshold: 1
          ComparisonOperator: GreaterThanOrEqualToThreshold
          TreatMissingData: notBreaching
          AlarmActions: [!Ref Alerts]
      Anything:
        Type: AWS::CloudWatch::CompositeAlarm
        Properties:
          AlarmName: orders-anything
          AlarmRule: !Sub 'ALARM("${Errors}")'
      Lake:
        Type: AWS::Glue::Database
        Properties:
          CatalogId: !Ref AWS::AccountId
          DatabaseInput: {Name: lake}
      Lines:
        Type: AWS::Glue::Table
        Properties:
          CatalogId: !Ref AWS::AccountId
          DatabaseName: !Ref Lake
          TableInput:
            Name: lines
            TableType: EXTERNAL_TABLE
            PartitionKeys: [{Name: dt, Type: string}]
            StorageDescriptor:
              Location: s3://obs-lake/lines/
              Columns: [{Name: level, Type: string}, {Name: n, Type: int}]
              SerdeInfo: {SerializationLibrary: org.openx.data.jsonserde.JsonSerDe}
      Day:
        Type: AWS::Glue::Partition
        Properties:
          CatalogId: !Ref AWS::AccountId
          DatabaseName: !Ref Lake
          TableName: !Ref Lines
          PartitionInput:
            Values: ['2024-01-01']
            StorageDescriptor:
              Location: s3://obs-lake/lines/dt=2024-01-01/
              Columns: [{Name: level, Type: string}, {Name: n, Type: int}]
              SerdeInfo: {SerializationLibrary: org.openx.data.jsonserde.JsonSerDe}
      Analysts:
        Type: AWS::Athena::WorkGroup
        Properties:
          Name: analysts
          WorkGroupConfiguration:
            ResultConfiguration: {OutputLocation: s3://obs-lake/results/}
      Count:
        Type: AWS::Athena::NamedQuery
        Properties:
          Database: !Ref Lake
          WorkGroup: !Ref Analysts
          Name: count-errors
          QueryString: SELECT count(*) FROM lines WHERE level = 'ERROR'
    Outputs:
      AlarmName: {Value: !Ref Errors}
      AlarmArn: {Value: !GetAtt Errors.Arn}
      Composite: {Value: !Ref Anything}
      CompositeArn: {Value: !GetAtt Anything.Arn}
      Filter: {Value: !Ref ErrorLines}
      Database: {Value: !Ref Lake}
      Table: {Value: !Ref Lines}
      WorkGroup: {Value: !Ref Analysts}
      NamedQuery: {Value: !Ref Count}
    """)


def query(server, sql: str) -> list[list]:
    athena = server.client("athena")
    qid = athena.start_query_execution(QueryString=sql, WorkGroup="analysts",
                                       QueryExecutionContext={"Database": "lake"})["QueryExecutionId"]
    deadline = time.monotonic() + 60
    while athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]["Status"]["State"] in (
            "QUEUED", "RUNNING") and time.monotonic() < deadline:
        time.sleep(0.05)
    rows = athena.get_query_results(QueryExecutionId=qid)["ResultSet"]["Rows"]
    return [[d.get("VarCharValue") for d in r["Data"]] for r in rows][1:]


def test_observability_resources_deploy_work_together_and_survive_kill_9(tmp_path):
    template = write(tmp_path, TEMPLATE)
    server = UnkaiServer(tmp_path / "state", str(template)).start(timeout=120)
    try:
        out = outputs(server)
        cw, logs, glue, athena = (server.client(s) for s in ("cloudwatch", "logs", "glue", "athena"))
        assert out["AlarmName"].startswith("app-Errors-")
        assert out["AlarmArn"] == f"arn:aws:cloudwatch:us-east-1:000000000000:alarm:{out['AlarmName']}"
        assert out["Composite"] == "orders-anything" and out["CompositeArn"].endswith(":alarm:orders-anything")
        assert out["Database"] == "lake" and out["Table"] == "lines" and out["WorkGroup"] == "analysts"
        (described,) = logs.describe_metric_filters(logGroupName="/app/orders")["metricFilters"]
        assert described["filterName"] == out["Filter"] == "error-lines"
        assert glue.get_partition(DatabaseName="lake", TableName="lines",
                                  PartitionValues=["2024-01-01"])["Partition"]["Values"] == ["2024-01-01"]
        named = athena.get_named_query(NamedQueryId=out["NamedQuery"])["NamedQuery"]
        assert named["Name"] == "count-errors" and named["WorkGroup"] == "analysts"

        s3 = server.client("s3")
        s3.create_bucket(Bucket="obs-lake")
        s3.put_object(Bucket="obs-lake", Key="lines/dt=2024-01-01/a.json",
                      Body=b'{"level": "ERROR", "n": 1}\n{"level": "INFO", "n": 2}\n')
        assert query(server, named["QueryString"]) == [["1"]]

        now = server.advance(0)["epoch"]
        now = server.advance(60 - now % 60 + 0.5)["epoch"]  # just after a minute boundary: one evaluation below
        logs.create_log_stream(logGroupName="/app/orders", logStreamName="web")
        logs.put_log_events(logGroupName="/app/orders", logStreamName="web", logEvents=[
            {"timestamp": int(now * 1000), "message": json.dumps({"level": "ERROR", "msg": "card declined"})}])
        server.advance(60)
        alarms = cw.describe_alarms(AlarmNames=[out["AlarmName"], "orders-anything"],
                                    AlarmTypes=["MetricAlarm", "CompositeAlarm"])
        assert [a["StateValue"] for a in alarms["MetricAlarms"] + alarms["CompositeAlarms"]] == ["ALARM", "ALARM"]
    finally:
        server.kill()  # kill -9: no flush, no clean shutdown
        server.stop()

    again = UnkaiServer(tmp_path / "state", str(template)).start(timeout=120)
    try:
        cw = again.client("cloudwatch")
        alarm = cw.describe_alarms(AlarmNames=[out["AlarmName"]])["MetricAlarms"][0]
        assert alarm["StateValue"] == "ALARM" and alarm["AlarmDescription"] == "an error line was logged"
        points = cw.get_metric_statistics(Namespace="Orders", MetricName="ErrorLines", StartTime=now - 600,
                                          EndTime=now + 600, Period=1200, Statistics=["Sum"])["Datapoints"]
        assert points[0]["Sum"] == 1.0
        history = cw.describe_alarm_history(AlarmName=out["AlarmName"], HistoryItemType="StateUpdate")
        assert history["AlarmHistoryItems"][0]["HistorySummary"].endswith(" to ALARM")
        assert again.client("athena").get_work_group(WorkGroup="analysts")["WorkGroup"]["Name"] == "analysts"
        assert query(again, "SELECT level FROM lines ORDER BY n") == [["ERROR"], ["INFO"]]
    finally:
        again.stop()
