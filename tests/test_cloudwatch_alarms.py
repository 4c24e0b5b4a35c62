"""CloudWatch alarms evaluated on unkai's clock, their SNS notifications, composite alarms,
the AWS/Lambda metrics every invocation adds and the Embedded Metric Format."""

from __future__ import annotations

import json
import uuid

import pytest
from botocore.exceptions import ClientError

from tests.lambda_code import call, deploy, private_server
from unkai.testing import new_queue

unkai = private_server("cloudwatch-alarms")


@pytest.fixture(scope="module")
def cw(unkai):
    return unkai.client("cloudwatch")


@pytest.fixture(scope="module")
def inbox(unkai):
    """An SNS topic whose messages land in an SQS queue: (topic ARN, queue URL)."""
    sns, sqs = unkai.client("sns"), unkai.client("sqs")
    topic = sns.create_topic(Name="alarms")["TopicArn"]
    url, arn = new_queue(sqs, "alarm-inbox")
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "false"})
    return topic, url


def notifications(unkai, url: str) -> list[dict]:
    unkai.drain()
    sqs = unkai.client("sqs")
    out = []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            return out
        for m in got:
            out.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def fresh_minute(server) -> float:
    """Move unkai's clock to just after a minute boundary, so what a test puts next and the
    ``advance(60)`` after it see exactly one evaluation however slow the machine is."""
    now = server.advance(0)["epoch"]
    return server.advance(60 - now % 60 + 0.5)["epoch"]


def state(cw, name: str) -> str:
    found = cw.describe_alarms(AlarmNames=[name], AlarmTypes=["MetricAlarm", "CompositeAlarm"])
    return (found["MetricAlarms"] + found["CompositeAlarms"])[0]["StateValue"]


def test_threshold_alarm_goes_to_alarm_and_notifies_sns(unkai, cw, inbox):
    topic, url = inbox
    ns = f"Shop/{uuid.uuid4().hex[:6]}"
    cw.put_metric_alarm(AlarmName="orders-failing", Namespace=ns, MetricName="Failures", Statistic="Sum",
                        Period=60, EvaluationPeriods=1, Threshold=3, ComparisonOperator="GreaterThanOrEqualToThreshold",
                        AlarmActions=[topic], OKActions=[topic], AlarmDescription="too many failures")
    assert state(cw, "orders-failing") == "INSUFFICIENT_DATA"
    fresh_minute(unkai)
    cw.put_metric_data(Namespace=ns, MetricData=[{"MetricName": "Failures", "Value": 2},
                                                 {"MetricName": "Failures", "Value": 2}])
    unkai.advance(60)
    assert state(cw, "orders-failing") == "ALARM"
    messages = notifications(unkai, url)
    assert len(messages) == 1
    assert messages[0]["Subject"] == 'ALARM: "orders-failing" in US East (N. Virginia)'
    body = json.loads(messages[0]["Message"])
    assert body["AlarmName"] == "orders-failing" and body["NewStateValue"] == "ALARM"
    assert body["OldStateValue"] == "INSUFFICIENT_DATA" and body["AlarmDescription"] == "too many failures"
    assert body["Trigger"]["MetricName"] == "Failures" and body["Trigger"]["Statistic"] == "SUM"
    assert body["NewStateReason"].startswith("Threshold Crossed: 1 out of the last 1 datapoints [4.0")
    # no data in the next minute: missing data makes it INSUFFICIENT_DATA (no action configured for that)
    unkai.advance(60)
    assert state(cw, "orders-failing") == "INSUFFICIENT_DATA"
    history = cw.describe_alarm_history(AlarmName="orders-failing", HistoryItemType="StateUpdate")
    summaries = [h["HistorySummary"] for h in history["AlarmHistoryItems"]]
    assert summaries == ["Alarm updated from ALARM to INSUFFICIENT_DATA",
                         "Alarm updated from INSUFFICIENT_DATA to ALARM"]


def test_m_out_of_n_and_treat_missing_as_breaching(unkai, cw):
    ns = f"Shop/{uuid.uuid4().hex[:6]}"
    cw.put_metric_alarm(AlarmName="two-of-three", Namespace=ns, MetricName="Lag", Statistic="Maximum", Period=60,
                        EvaluationPeriods=3, DatapointsToAlarm=2, Threshold=10,
                        ComparisonOperator="GreaterThanThreshold", TreatMissingData="breaching")
    fresh_minute(unkai)
    cw.put_metric_data(Namespace=ns, MetricData=[{"MetricName": "Lag", "Value": 1}])
    unkai.advance(60)
    # one OK point and two missing ones, which count as breaching
    assert state(cw, "two-of-three") == "ALARM"
    cw.put_metric_alarm(AlarmName="two-of-three", Namespace=ns, MetricName="Lag", Statistic="Maximum", Period=60,
                        EvaluationPeriods=3, DatapointsToAlarm=2, Threshold=10,
                        ComparisonOperator="GreaterThanThreshold", TreatMissingData="notBreaching")
    unkai.advance(60)
    assert state(cw, "two-of-three") == "OK"


def test_set_alarm_state_composite_alarm_and_actions_disabled(unkai, cw, inbox):
    topic, url = inbox
    notifications(unkai, url)
    for name in ("child-a", "child-b"):
        cw.put_metric_alarm(AlarmName=name, Namespace="Shop/x", MetricName=name, Statistic="Sum", Period=60,
                            EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanThreshold",
                            TreatMissingData="ignore")
    cw.put_composite_alarm(AlarmName="both", AlarmRule='ALARM("child-a") AND ALARM(child-b)', AlarmActions=[topic])
    cw.set_alarm_state(AlarmName="child-a", StateValue="ALARM", StateReason="testing")
    assert state(cw, "both") == "OK"
    cw.set_alarm_state(AlarmName="child-b", StateValue="ALARM", StateReason="testing")
    assert state(cw, "both") == "ALARM"
    body = json.loads(notifications(unkai, url)[0]["Message"])
    assert body["AlarmName"] == "both" and body["NewStateValue"] == "ALARM"
    children = cw.describe_alarms(ChildrenOfAlarmName="both")["MetricAlarms"]
    assert sorted(a["AlarmName"] for a in children) == ["child-a", "child-b"]
    cw.disable_alarm_actions(AlarmNames=["both"])
    assert cw.describe_alarms(AlarmNames=["both"], AlarmTypes=["CompositeAlarm"])["CompositeAlarms"][0][
        "ActionsEnabled"] is False
    cw.set_alarm_state(AlarmName="child-b", StateValue="OK", StateReason="testing")
    assert state(cw, "both") == "OK"
    assert notifications(unkai, url) == []
    cw.enable_alarm_actions(AlarmNames=["both"])  # actions run again from the next state change
    cw.set_alarm_state(AlarmName="child-b", StateValue="ALARM", StateReason="testing")
    assert state(cw, "both") == "ALARM"
    (again,) = notifications(unkai, url)
    assert json.loads(again["Message"])["NewStateValue"] == "ALARM"
    with pytest.raises(ClientError) as exc:
        cw.delete_alarms(AlarmNames=["child-a"])
    assert exc.value.response["Error"]["Code"] == "InvalidParameterValue"
    cw.delete_alarms(AlarmNames=["both", "child-a", "child-b"])
    assert cw.describe_alarms(AlarmNamePrefix="child")["MetricAlarms"] == []


def test_bad_alarm_definitions_get_aws_errors(cw):
    def err(**kwargs) -> str:
        with pytest.raises(ClientError) as exc:
            cw.put_metric_alarm(AlarmName="bad", **kwargs)
        return exc.value.response["Error"]["Code"]

    base = dict(Namespace="N", MetricName="M", Statistic="Sum", Period=60, EvaluationPeriods=1, Threshold=1,
                ComparisonOperator="GreaterThanThreshold")
    assert err(**dict(base, Period=45)) == "InvalidParameterValue"
    assert err(**dict(base, ComparisonOperator="Bigger")) == "InvalidParameterValue"
    assert err(**dict(base, DatapointsToAlarm=2)) == "InvalidParameterValue"
    assert err(**dict(base, AlarmActions=["not-an-arn"])) == "InvalidParameterValue"
    assert err(**dict(base, Metrics=[{"Id": "m1", "Expression": "1"}])) == "InvalidParameterCombination"
    with pytest.raises(ClientError) as exc:
        cw.put_composite_alarm(AlarmName="c", AlarmRule='ALARM("nobody")')
    assert exc.value.response["Error"]["Code"] == "InvalidParameterValue"
    with pytest.raises(ClientError) as exc:
        cw.set_alarm_state(AlarmName="nobody", StateValue="OK", StateReason="x")
    assert exc.value.response["Error"]["Code"] == "ResourceNotFound"


def test_lambda_publishes_its_metrics_and_emf_lines_become_metrics(unkai, cw):
    lam = unkai.client("lambda")
    name = deploy(lam, """
        import json
        def handler(event, context):
            print(json.dumps({"_aws": {"Timestamp": event["ts"], "CloudWatchMetrics": [{
                "Namespace": "Orders", "Dimensions": [["service"]],
                "Metrics": [{"Name": "OrderTotal", "Unit": "Count"}]}]},
                "service": "checkout", "OrderTotal": event["total"]}))
            if event.get("fail"):
                raise ValueError("boom")
            return "ok"
    """)
    now = unkai.advance(0)["epoch"]
    ts = int(now * 1000)
    call(lam, name, {"ts": ts, "total": 5})
    call(lam, name, {"ts": ts, "total": 7, "fail": True})
    unkai.drain()
    start, end = int(now) - 120, int(now) + 120
    dims = [{"Name": "FunctionName", "Value": name}]
    out = cw.get_metric_statistics(Namespace="AWS/Lambda", MetricName="Invocations", Dimensions=dims,
                                   StartTime=start, EndTime=end, Period=240,
                                   Statistics=["Sum"])
    assert sum(p["Sum"] for p in out["Datapoints"]) == 2.0
    errors = cw.get_metric_statistics(Namespace="AWS/Lambda", MetricName="Errors", Dimensions=dims,
                                      StartTime=start, EndTime=end, Period=240, Statistics=["Sum", "SampleCount"])
    assert sum(p["Sum"] for p in errors["Datapoints"]) == 1.0
    duration = cw.get_metric_statistics(Namespace="AWS/Lambda", MetricName="Duration", Dimensions=dims,
                                        StartTime=start, EndTime=end, Period=240, Statistics=["Maximum"])
    assert duration["Datapoints"] and duration["Datapoints"][0]["Unit"] == "Milliseconds"
    # each invocation's duration is kept, so percentiles read the values themselves (an average of
    # the two, as a statistic set alone would give, is neither the smallest nor the largest)
    both = cw.get_metric_statistics(Namespace="AWS/Lambda", MetricName="Duration", Dimensions=dims,
                                    StartTime=start, EndTime=end, Period=240, Statistics=["Minimum", "Maximum"],
                                    ExtendedStatistics=["p1", "p100"])["Datapoints"]
    assert len(both) == 1
    assert both[0]["ExtendedStatistics"] == {"p1": both[0]["Minimum"], "p100": both[0]["Maximum"]}
    emf = cw.get_metric_statistics(Namespace="Orders", MetricName="OrderTotal",
                                   Dimensions=[{"Name": "service", "Value": "checkout"}],
                                   StartTime=start, EndTime=end, Period=240, Statistics=["Sum", "SampleCount"])
    assert sum(p["Sum"] for p in emf["Datapoints"]) == 12.0
    assert {"Namespace": "AWS/Lambda", "MetricName": "Errors", "Dimensions": dims} in \
        cw.list_metrics(Namespace="AWS/Lambda")["Metrics"]


def band_alarm(cw, name: str, ns: str, metric: str, operator: str = "LessThanLowerOrGreaterThanUpperThreshold"):
    cw.put_metric_alarm(
        AlarmName=name, ComparisonOperator=operator, EvaluationPeriods=1, ThresholdMetricId="ad1",
        Metrics=[{"Id": "m1", "ReturnData": True, "MetricStat": {
                     "Metric": {"Namespace": ns, "MetricName": metric}, "Period": 60, "Stat": "Average"}},
                 {"Id": "ad1", "Expression": "ANOMALY_DETECTION_BAND(m1, 2)", "Label": "expected",
                  "ReturnData": True}])


def test_anomaly_detection_alarm_compares_with_a_band_learned_from_history(unkai, cw):
    ns = f"Api/{uuid.uuid4().hex[:6]}"
    now = fresh_minute(unkai)
    minute = now - now % 60
    history = [9, 10, 11, 10, 9, 11, 10, 10, 9, 11]  # mean 10, standard deviation 0.77
    cw.put_metric_data(Namespace=ns, MetricData=[
        {"MetricName": "Latency", "Value": v, "Timestamp": minute - 60 * (k + 1)} for k, v in enumerate(history)])
    band_alarm(cw, "latency-anomaly", ns, "Latency")
    band_alarm(cw, "latency-high", ns, "Latency", "GreaterThanUpperThreshold")
    band_alarm(cw, "untrained", ns, "Fresh")  # no history: the model has nothing to learn from
    cw.put_metric_data(Namespace=ns, MetricData=[{"MetricName": "Latency", "Value": 10.5, "Timestamp": now},
                                                 {"MetricName": "Fresh", "Value": 1, "Timestamp": now}])
    unkai.advance(60)
    assert state(cw, "latency-anomaly") == "OK" and state(cw, "latency-high") == "OK"
    assert state(cw, "untrained") == "INSUFFICIENT_DATA"

    now = fresh_minute(unkai)
    cw.put_metric_data(Namespace=ns, MetricData=[{"MetricName": "Latency", "Value": 3, "Timestamp": now}])
    unkai.advance(60)
    alarm = cw.describe_alarms(AlarmNames=["latency-anomaly"])["MetricAlarms"][0]
    assert alarm["StateValue"] == "ALARM"
    assert alarm["StateReason"].startswith("Thresholds Crossed: 1 out of the last 1 datapoints [3.0")
    data = json.loads(alarm["StateReasonData"])
    (low,), (high,) = data["recentLowerThresholds"], data["recentUpperThresholds"]
    assert 8 < low < 9 and 11 < high < 12  # 10 +/- 2 standard deviations of the history
    assert alarm["ThresholdMetricId"] == "ad1"
    assert state(cw, "latency-high") == "OK"  # a drop is not above the upper band

    with pytest.raises(ClientError) as exc:
        cw.put_metric_alarm(AlarmName="bad-band", ComparisonOperator="GreaterThanUpperThreshold",
                            EvaluationPeriods=1, ThresholdMetricId="m1", Metrics=[
                                {"Id": "m1", "MetricStat": {"Metric": {"Namespace": ns, "MetricName": "Latency"},
                                                            "Period": 60, "Stat": "Average"}}])
    assert exc.value.response["Error"]["Code"] == "InvalidParameterValue"


def test_every_comparison_operator_and_extended_statistic_alarms(unkai, cw):
    ns = f"Ops/{uuid.uuid4().hex[:6]}"
    simple = dict(Namespace=ns, MetricName="V", Statistic="Average", Period=60, EvaluationPeriods=1, Threshold=5)
    expected = {"GreaterThanOrEqualToThreshold": "ALARM", "GreaterThanThreshold": "OK",
                "LessThanThreshold": "OK", "LessThanOrEqualToThreshold": "ALARM"}
    for op in expected:
        cw.put_metric_alarm(AlarmName=f"{ns}-{op}", ComparisonOperator=op, **simple)
    pct = dict(Namespace=ns, MetricName="D", Period=60, EvaluationPeriods=1, Threshold=9,
               ComparisonOperator="GreaterThanOrEqualToThreshold")
    cw.put_metric_alarm(AlarmName=f"{ns}-p90", ExtendedStatistic="p90", **pct)
    cw.put_metric_alarm(AlarmName=f"{ns}-p50", ExtendedStatistic="p50", **pct)
    fresh_minute(unkai)
    cw.put_metric_data(Namespace=ns, MetricData=[{"MetricName": "V", "Value": 5},
                                                 {"MetricName": "D", "Values": [float(v) for v in range(1, 11)]}])
    unkai.advance(60)
    assert {op: state(cw, f"{ns}-{op}") for op in expected} == expected
    assert state(cw, f"{ns}-p90") == "ALARM" and state(cw, f"{ns}-p50") == "OK"
    described = cw.describe_alarms(AlarmNames=[f"{ns}-p90"])["MetricAlarms"][0]
    assert described["ExtendedStatistic"] == "p90" and "Statistic" not in described


def test_metric_math_alarm_and_alarms_for_a_metric(unkai, cw):
    ns = f"Ops/{uuid.uuid4().hex[:6]}"
    stat = lambda name: {"Metric": {"Namespace": ns, "MetricName": name}, "Period": 60, "Stat": "Sum"}  # noqa: E731
    cw.put_metric_alarm(AlarmName=f"{ns}-rate", EvaluationPeriods=1, Threshold=10,
                        ComparisonOperator="GreaterThanThreshold", Metrics=[
                            {"Id": "e", "MetricStat": stat("Errors"), "ReturnData": False},
                            {"Id": "r", "MetricStat": stat("Requests"), "ReturnData": False},
                            {"Id": "rate", "Expression": "100 * e / r", "Label": "error rate"}])
    cw.put_metric_alarm(AlarmName=f"{ns}-errors", Namespace=ns, MetricName="Errors", Statistic="Sum", Period=60,
                        EvaluationPeriods=1, Threshold=100, ComparisonOperator="GreaterThanThreshold")
    fresh_minute(unkai)
    cw.put_metric_data(Namespace=ns, MetricData=[{"MetricName": "Errors", "Value": 3},
                                                 {"MetricName": "Requests", "Value": 10}])
    unkai.advance(60)
    alarm = cw.describe_alarms(AlarmNames=[f"{ns}-rate"])["MetricAlarms"][0]
    assert alarm["StateValue"] == "ALARM" and "[30.0" in alarm["StateReason"]  # 3 errors in 10 requests: 30%
    assert state(cw, f"{ns}-errors") == "OK"
    found = cw.describe_alarms_for_metric(Namespace=ns, MetricName="Errors", Statistic="Sum")["MetricAlarms"]
    assert [a["AlarmName"] for a in found] == [f"{ns}-errors"]
    assert cw.describe_alarms_for_metric(Namespace=ns, MetricName="Errors", Statistic="Average")["MetricAlarms"] == []


def test_alarm_actions_invoke_lambda_with_the_alarm_event_and_eventbridge_gets_the_state_change(unkai, cw):
    lam, events, sqs = unkai.client("lambda"), unkai.client("events"), unkai.client("sqs")
    name = deploy(lam, """
        import json
        def handler(event, context):
            print("ALARM-EVENT " + json.dumps(event))
    """)
    arn = lam.get_function(FunctionName=name)["Configuration"]["FunctionArn"]
    url, queue = new_queue(sqs)
    rule = f"alarms-{uuid.uuid4().hex[:6]}"
    alarm_name = f"lambda-action-{uuid.uuid4().hex[:6]}"
    events.put_rule(Name=rule, EventPattern=json.dumps({"source": ["aws.cloudwatch"],
                                                        "detail-type": ["CloudWatch Alarm State Change"],
                                                        "detail": {"alarmName": [alarm_name]}}))
    events.put_targets(Rule=rule, Targets=[{"Id": "q", "Arn": queue}])
    cw.put_metric_alarm(AlarmName=alarm_name, Namespace="Ops/lambda", MetricName="X", Statistic="Sum", Period=60,
                        EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanThreshold",
                        AlarmActions=[arn])
    cw.set_alarm_state(AlarmName=alarm_name, StateValue="ALARM", StateReason="by hand")
    unkai.drain(timeout=60)  # a cold start on a busy machine
    logs = unkai.client("logs")
    found = logs.filter_log_events(logGroupName=f"/aws/lambda/{name}", filterPattern="ALARM-EVENT")["events"]
    event = json.loads(found[0]["message"].split(" ", 1)[1])
    assert event["source"] == "aws.cloudwatch" and event["alarmArn"].endswith(f":alarm:{alarm_name}")
    assert event["alarmData"]["state"]["value"] == "ALARM" and event["alarmData"]["state"]["reason"] == "by hand"
    assert event["alarmData"]["previousState"]["value"] == "INSUFFICIENT_DATA"
    (message,) = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    bridged = json.loads(message["Body"])
    assert bridged["detail-type"] == "CloudWatch Alarm State Change" and bridged["source"] == "aws.cloudwatch"
    assert bridged["detail"]["state"]["value"] == "ALARM" and bridged["resources"][0].endswith(alarm_name)
