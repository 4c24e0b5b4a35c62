"""AWS's own metrics that need unkai's clock to move (and how long data are kept): the gauges AWS samples once a minute
(SQS queue depths and the age of the oldest message, SES's reputation bounce rate), SES's
sending counts, and Lambda's IteratorAge for a stream mapping that starts behind. The
module has its own server, since it moves the clock."""

from __future__ import annotations

import uuid

import pytest
from lambda_code import deploy, private_server

from tests.metrics_support import day_stats
from tests.ses_support import verify

unkai = private_server("sampled-metrics")


@pytest.fixture(scope="module")
def cw(unkai):
    return unkai.client("cloudwatch")


def stats(unkai, cw, namespace: str, name: str, dims: dict[str, str], region: str | None = None) -> dict:
    """Sum, Minimum, Maximum and SampleCount over the last day of unkai's clock (0s when none)."""
    return day_stats(unkai.client("cloudwatch", region) if region else cw, namespace, name, dims,
                     unkai.advance(0)["epoch"])


def test_sqs_queue_depth_and_oldest_message_age_are_sampled_each_minute_and_can_alarm(unkai, cw):
    sqs = unkai.client("sqs")
    now = unkai.advance(0)["epoch"]
    unkai.advance(60 - now % 60 + 0.5)  # just after a minute boundary: the advance(60) below passes one
    name = f"q-{uuid.uuid4().hex[:8]}"
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    for body in ("one", "two", "three"):
        sqs.send_message(QueueUrl=url, MessageBody=body)
    sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=900)
    assert len(sqs.receive_message(QueueUrl=url, VisibilityTimeout=3600)["Messages"]) == 1
    q = {"QueueName": name}
    cw.put_metric_alarm(AlarmName=f"{name}-stale", Namespace="AWS/SQS", MetricName="ApproximateAgeOfOldestMessage",
                        Dimensions=[{"Name": "QueueName", "Value": name}], Statistic="Maximum", Period=60,
                        EvaluationPeriods=1, Threshold=300, ComparisonOperator="GreaterThanThreshold")

    unkai.advance(60)  # exactly one minute boundary passes: one sample of each gauge
    visible = stats(unkai, cw, "AWS/SQS", "ApproximateNumberOfMessagesVisible", q)
    assert (visible["SampleCount"], visible["Maximum"], visible["Unit"]) == (1.0, 2.0, "Count")
    assert stats(unkai, cw, "AWS/SQS", "ApproximateNumberOfMessagesNotVisible", q)["Maximum"] == 1.0
    assert stats(unkai, cw, "AWS/SQS", "ApproximateNumberOfMessagesDelayed", q)["Maximum"] == 1.0
    age = stats(unkai, cw, "AWS/SQS", "ApproximateAgeOfOldestMessage", q)
    assert age["Unit"] == "Seconds" and 0 <= age["Maximum"] <= 60
    assert cw.describe_alarms(AlarmNames=[f"{name}-stale"])["MetricAlarms"][0]["StateValue"] == "OK"

    unkai.advance(600)  # nobody consumes: the oldest message ages past the alarm's 5 minutes
    assert stats(unkai, cw, "AWS/SQS", "ApproximateAgeOfOldestMessage", q)["Maximum"] >= 600
    assert cw.describe_alarms(AlarmNames=[f"{name}-stale"])["MetricAlarms"][0]["StateValue"] == "ALARM"

    for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=3600).get("Messages", []):
        sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    unkai.advance(60)
    now = unkai.advance(0)["epoch"]
    latest = cw.get_metric_statistics(Namespace="AWS/SQS", MetricName="ApproximateNumberOfMessagesVisible",
                                      Dimensions=[{"Name": "QueueName", "Value": name}], StartTime=now - 120,
                                      EndTime=now, Period=60, Statistics=["Maximum"])["Datapoints"]
    assert max(latest, key=lambda p: p["Timestamp"])["Maximum"] == 0.0


def test_ses_counts_sends_and_samples_the_reputation_bounce_rate(unkai):
    region = "eu-west-3"
    ses, v2 = unkai.client("ses", region), unkai.client("sesv2", region)
    verify(unkai, ses, "shop@example.com")
    verify(unkai, ses, "buyer@example.com")
    verify(unkai, ses, "gone@example.com")
    v2.put_suppressed_destination(EmailAddress="gone@example.com", Reason="BOUNCE")
    message = {"Subject": {"Data": "hi"}, "Body": {"Text": {"Data": "hello"}}}
    for to in ("buyer@example.com", "gone@example.com", "success@simulator.amazonses.com",
               "bounce@simulator.amazonses.com", "complaint@simulator.amazonses.com"):
        unkai.advance(1.1)  # the sandbox sends one message a second
        ses.send_email(Source="shop@example.com", Destination={"ToAddresses": [to]}, Message=message)
    unkai.drain()
    cw = unkai.client("cloudwatch", region)
    assert stats(unkai, cw, "AWS/SES", "Send", {})["Sum"] == 5.0
    # delivered: buyer, the simulator's success and complaint addresses (a complaint is delivered first)
    assert stats(unkai, cw, "AWS/SES", "Delivery", {})["Sum"] == 3.0
    assert stats(unkai, cw, "AWS/SES", "Bounce", {})["Sum"] == 2.0  # the suppressed address and the simulator's
    assert stats(unkai, cw, "AWS/SES", "Complaint", {})["Sum"] == 1.0

    unkai.advance(60)
    # the simulator does not count toward reputation: 1 bounce in 2 real delivery attempts
    rate = stats(unkai, cw, "AWS/SES", "Reputation.BounceRate", {})
    assert rate["Maximum"] == 0.5 and rate["SampleCount"] >= 1
    assert stats(unkai, cw, "AWS/SES", "Reputation.ComplaintRate", {})["Maximum"] == 0.0
    listed = {m["MetricName"] for m in cw.list_metrics(Namespace="AWS/SES")["Metrics"]}
    assert {"Send", "Delivery", "Bounce", "Complaint", "Reputation.BounceRate"} <= listed


def test_iterator_age_tells_how_far_behind_a_stream_mapping_reads(unkai, cw):
    kin, lam = unkai.client("kinesis"), unkai.client("lambda")
    stream = f"s-{uuid.uuid4().hex[:8]}"
    kin.create_stream(StreamName=stream, ShardCount=1)
    arn = kin.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]["StreamARN"]
    kin.put_record(StreamName=stream, Data=b"old news", PartitionKey="k")
    unkai.advance(300)  # the record waits five minutes before anyone reads the stream
    name = deploy(lam, "def handler(event, context):\n    return len(event['Records'])\n")
    lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=name, StartingPosition="TRIM_HORIZON",
                                    BatchSize=10)
    fn = {"FunctionName": name}
    for _ in range(20):
        unkai.drain()
        if stats(unkai, cw, "AWS/Lambda", "IteratorAge", fn)["SampleCount"]:
            break
        unkai.advance(1)
    age = stats(unkai, cw, "AWS/Lambda", "IteratorAge", fn)
    assert age["Unit"] == "Milliseconds" and age["Maximum"] >= 300_000
    assert stats(unkai, cw, "AWS/Lambda", "IteratorAge", {})["Maximum"] >= 300_000


def test_list_metrics_recently_active_leaves_out_metrics_quiet_for_three_hours(unkai, cw):
    ns = f"Quiet/{uuid.uuid4().hex[:6]}"
    cw.put_metric_data(Namespace=ns, MetricData=[{"MetricName": "Old", "Value": 1}])
    unkai.advance(4 * 3600)
    cw.put_metric_data(Namespace=ns, MetricData=[{"MetricName": "New", "Value": 1}])
    assert {m["MetricName"] for m in cw.list_metrics(Namespace=ns)["Metrics"]} == {"Old", "New"}
    recent = cw.list_metrics(Namespace=ns, RecentlyActive="PT3H")["Metrics"]
    assert [m["MetricName"] for m in recent] == ["New"]


def test_data_are_read_back_by_awss_retention_tiers(unkai, cw):
    now = unkai.advance(0)["epoch"]
    ns = f"Retention/{uuid.uuid4().hex[:8]}"
    cw.put_metric_data(Namespace=ns, MetricData=[{"MetricName": "Kept", "Value": 5, "Timestamp": now}])

    def sums(period: int) -> list[float]:
        return [p["Sum"] for p in cw.get_metric_statistics(
            Namespace=ns, MetricName="Kept", StartTime=now - 3600, EndTime=now + 3600, Period=period,
            Statistics=["Sum"])["Datapoints"]]

    assert sums(60) == sums(300) == sums(3600) == [5.0]
    unkai.advance(16 * 86400)  # one-minute periods read 15 days back; five-minute ones 63 days
    assert (sums(60), sums(300), sums(3600)) == ([], [5.0], [5.0])
    unkai.advance(48 * 86400)
    assert (sums(300), sums(3600)) == ([], [5.0])
    unkai.advance(390 * 86400)  # 454 days: one-hour periods read 455 days back
    assert sums(3600) == [5.0]
    unkai.advance(2 * 86400)  # and then the data are gone
    assert sums(3600) == []


def test_lambdas_tallied_metrics_reach_the_store_each_minute_without_a_read(unkai):
    """Invocations are counted in memory; the minute's tick writes them whether or not anyone reads
    metrics, so memory stays bounded and a kill -9 loses at most a minute of them."""
    import sqlite3

    from lambda_code import deploy

    lam = unkai.client("lambda")
    name = deploy(lam, "def handler(event, context):\n    return 1\n")
    for _ in range(3):
        lam.invoke(FunctionName=name, Payload=b"{}")

    def stored() -> float:
        with sqlite3.connect(unkai.state_dir / "unkai.db") as db:  # the state file, as the server left it
            row = db.execute("SELECT SUM(d.count) FROM cloudwatch_data d JOIN cloudwatch_metrics m "
                             "ON m.id = d.metric_id WHERE m.namespace='AWS/Lambda' AND m.name='Invocations' "
                             "AND m.dims LIKE ?",
                             (f"%{name}%",)).fetchone()
        return row[0] or 0

    unkai.advance(61)
    assert stored() == 3
