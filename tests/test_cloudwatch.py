"""CloudWatch metrics through boto3 (JSON protocol) and the query protocol: PutMetricData,
GetMetricStatistics, GetMetricData with metric math, ListMetrics, and AWS's errors."""

from __future__ import annotations

import uuid

import botocore.session
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError


@pytest.fixture(scope="module")
def cw(unkai):
    return unkai.client("cloudwatch")


@pytest.fixture
def ns() -> str:
    return f"App/{uuid.uuid4().hex[:8]}"


def code(exc: pytest.ExceptionInfo) -> str:
    return exc.value.response["Error"]["Code"]



def test_put_then_statistics_per_period(unkai, cw, ns):
    base = int(unkai.advance(0)["epoch"]) // 60 * 60 - 600
    cw.put_metric_data(Namespace=ns, MetricData=[
        {"MetricName": "Latency", "Dimensions": [{"Name": "Api", "Value": "orders"}], "Timestamp": base + 5,
         "Value": 10, "Unit": "Milliseconds"},
        {"MetricName": "Latency", "Dimensions": [{"Name": "Api", "Value": "orders"}], "Timestamp": base + 20,
         "Values": [20, 30], "Counts": [1, 2], "Unit": "Milliseconds"},
        {"MetricName": "Latency", "Dimensions": [{"Name": "Api", "Value": "orders"}], "Timestamp": base + 70,
         "StatisticValues": {"SampleCount": 4, "Sum": 8, "Minimum": 1, "Maximum": 3}, "Unit": "Milliseconds"},
    ])
    out = cw.get_metric_statistics(Namespace=ns, MetricName="Latency", Dimensions=[{"Name": "Api", "Value": "orders"}],
                                   StartTime=base, EndTime=base + 120, Period=60,
                                   Statistics=["SampleCount", "Sum", "Average", "Minimum", "Maximum"],
                                   ExtendedStatistics=["p50"])
    points = sorted(out["Datapoints"], key=lambda p: p["Timestamp"])
    assert out["Label"] == "Latency"
    assert [p["SampleCount"] for p in points] == [4.0, 4.0]
    assert points[0]["Sum"] == 90.0 and points[0]["Minimum"] == 10.0 and points[0]["Maximum"] == 30.0
    assert points[0]["Average"] == 22.5 and points[0]["ExtendedStatistics"]["p50"] == 20.0
    assert points[0]["Unit"] == "Milliseconds"
    assert points[1]["Average"] == 2.0
    # another dimension set is another metric
    other = cw.get_metric_statistics(Namespace=ns, MetricName="Latency", StartTime=base, EndTime=base + 120,
                                     Period=60, Statistics=["Sum"])
    assert other["Datapoints"] == []


def test_get_metric_data_with_math_and_scan_order(unkai, cw, ns):
    base = int(unkai.advance(0)["epoch"]) // 60 * 60 - 600
    for i in range(3):
        cw.put_metric_data(Namespace=ns, MetricData=[
            {"MetricName": "Errors", "Timestamp": base + 60 * i, "Value": i},
            {"MetricName": "Requests", "Timestamp": base + 60 * i, "Value": 10},
        ])
    metric = lambda name: {"Metric": {"Namespace": ns, "MetricName": name}, "Period": 60, "Stat": "Sum"}  # noqa: E731
    out = cw.get_metric_data(StartTime=base, EndTime=base + 180, ScanBy="TimestampAscending", MetricDataQueries=[
        {"Id": "e", "MetricStat": metric("Errors"), "ReturnData": False},
        {"Id": "r", "MetricStat": metric("Requests"), "ReturnData": False},
        {"Id": "rate", "Expression": "100 * e / r", "Label": "Error rate"},
        {"Id": "total", "Expression": "SUM(METRICS())"},
        {"Id": "diff", "Expression": "DIFF(e)"},
    ])
    results = {r["Id"]: r for r in out["MetricDataResults"]}
    assert set(results) == {"rate", "total", "diff"}
    assert results["rate"]["Label"] == "Error rate"
    assert results["rate"]["Values"] == [0.0, 10.0, 20.0]
    assert results["total"]["Values"] == [10.0, 11.0, 12.0]
    assert results["diff"]["Values"] == [1.0, 1.0]
    assert all(r["StatusCode"] == "Complete" for r in results.values())
    desc = cw.get_metric_data(StartTime=base, EndTime=base + 180, MetricDataQueries=[
        {"Id": "e", "MetricStat": metric("Errors")}])
    stamps = desc["MetricDataResults"][0]["Timestamps"]
    assert stamps == sorted(stamps, reverse=True)
    # pagination by MaxDatapoints
    page = cw.get_metric_data(StartTime=base, EndTime=base + 180, MaxDatapoints=2, MetricDataQueries=[
        {"Id": "e", "MetricStat": metric("Errors")}])
    assert len(page["MetricDataResults"][0]["Values"]) == 2 and page["NextToken"]
    rest = cw.get_metric_data(StartTime=base, EndTime=base + 180, MaxDatapoints=2, NextToken=page["NextToken"],
                              MetricDataQueries=[{"Id": "e", "MetricStat": metric("Errors")}])
    assert rest["MetricDataResults"][0]["Values"] == [0.0] and "NextToken" not in rest


def test_list_metrics_filters_by_dimension(cw, ns):
    cw.put_metric_data(Namespace=ns, MetricData=[
        {"MetricName": "Hits", "Dimensions": [{"Name": "Page", "Value": "a"}], "Value": 1},
        {"MetricName": "Hits", "Dimensions": [{"Name": "Page", "Value": "b"}], "Value": 1},
        {"MetricName": "Misses", "Value": 1},
    ])
    found = cw.list_metrics(Namespace=ns)["Metrics"]
    assert len(found) == 3
    only = cw.list_metrics(Namespace=ns, Dimensions=[{"Name": "Page", "Value": "b"}])["Metrics"]
    assert only == [{"Namespace": ns, "MetricName": "Hits", "Dimensions": [{"Name": "Page", "Value": "b"}]}]
    assert len(cw.list_metrics(Namespace=ns, Dimensions=[{"Name": "Page"}])["Metrics"]) == 2


def test_bad_metric_data_gets_aws_errors(unkai, cw, ns):
    with pytest.raises(ClientError) as exc:
        cw.put_metric_data(Namespace="AWS/Lambda", MetricData=[{"MetricName": "x", "Value": 1}])
    assert code(exc) == "InvalidParameterValue"
    with pytest.raises(ClientError) as exc:
        cw.put_metric_data(Namespace=ns, MetricData=[{"MetricName": "x", "Value": 1,
                                                      "StatisticValues": {"SampleCount": 1, "Sum": 1, "Minimum": 1,
                                                                          "Maximum": 1}}])
    assert code(exc) == "InvalidParameterCombination"
    with pytest.raises(ClientError) as exc:
        cw.put_metric_data(Namespace=ns, MetricData=[{"MetricName": "x", "Values": [1, 2], "Counts": [1]}])
    assert code(exc) == "InvalidParameterValue"
    assert "must be of the same size" in exc.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as exc:
        cw.put_metric_data(Namespace=ns, MetricData=[{"MetricName": "x", "Value": 1}] * 1001)
    assert code(exc) == "InvalidParameterValue"
    with pytest.raises(ClientError) as exc:
        cw.put_metric_data(Namespace=ns, MetricData=[{"MetricName": "x", "Value": 1, "Dimensions": [
            {"Name": f"d{i}", "Value": "v"} for i in range(31)]}])
    assert code(exc) == "InvalidParameterValue"
    with pytest.raises(ClientError) as exc:  # the second datum names a dimension twice
        cw.put_metric_data(Namespace=ns, MetricData=[{"MetricName": "x", "Value": 1}, {"MetricName": "x", "Value": 1,
                           "Dimensions": [{"Name": "a", "Value": "1"}, {"Name": "a", "Value": "2"}]}])
    assert exc.value.response["Error"]["Message"] == ("No Metric may specify the same dimension name twice "
                                                      "(MetricData.member.2.Dimensions).")
    resp = httpx.post(unkai.endpoint, headers={  # an empty value (botocore refuses to send one)
        "x-amz-target": "GraniteServiceVersion20100801.PutMetricData", "content-type": "application/x-amz-json-1.0",
        "authorization": "AWS4-HMAC-SHA256 Credential=test/20261203/us-east-1/monitoring/aws4_request, "
                         "SignedHeaders=host, Signature=00"},
        content=f'{{"Namespace": "{ns}", "MetricData": [{{"MetricName": "x", "Value": 1, '
                '"Dimensions": [{"Name": "a", "Value": "1"}, {"Name": "b", "Value": ""}]}]}')
    assert resp.status_code == 400, resp.text
    assert resp.json()["message"] == "The parameter MetricData.member.1.Dimensions.member.2.Value is required."
    for huge in ('"Value": 1' + "0" * 400, '"Values": [1, -1' + "0" * 400 + "]"):  # past a float's range
        # (botocore cannot send it; another client can): AWS's error, not a 500
        resp = httpx.post(unkai.endpoint, headers={
            "x-amz-target": "GraniteServiceVersion20100801.PutMetricData", "content-type": "application/x-amz-json-1.0",
            "authorization": "AWS4-HMAC-SHA256 Credential=test/20261203/us-east-1/monitoring/aws4_request, "
                             "SignedHeaders=host, Signature=00"},
            content=f'{{"Namespace": "{ns}", "MetricData": [{{"MetricName": "x", {huge}}}]}}')
        assert resp.status_code == 400, resp.text
        assert resp.headers["x-amzn-query-error"] == "InvalidParameterValue;Sender"
    with pytest.raises(ClientError) as exc:
        cw.get_metric_statistics(Namespace=ns, MetricName="x", StartTime=0, EndTime=60, Period=45,
                                 Statistics=["Sum"])
    assert code(exc) == "InvalidParameterValue"
    with pytest.raises(ClientError) as exc:
        cw.get_metric_data(StartTime=0, EndTime=60, MetricDataQueries=[{"Id": "Bad", "Expression": "1"}])
    assert code(exc) == "InvalidParameterValue"


def test_query_protocol_clients_are_served(unkai, ns):
    session = botocore.session.get_session()
    session.set_credentials("test", "test")
    loader = session.get_component("data_loader")
    model = loader.load_service_model("cloudwatch", "service-2")
    model["metadata"]["protocols"] = ["query"]
    model["metadata"]["protocol"] = "query"
    original = loader.load_service_model
    # an older SDK: the same API, spoken as query
    loader.load_service_model = lambda name, type_name, *a, **k: (
        model if type_name == "service-2" else original(name, type_name, *a, **k))
    client = session.create_client("cloudwatch", region_name="us-east-1", endpoint_url=unkai.url(""),
                                   config=Config(retries={"max_attempts": 1}))
    client.put_metric_data(Namespace=ns, MetricData=[{"MetricName": "Q", "Value": 3}])
    assert client.list_metrics(Namespace=ns)["Metrics"][0]["MetricName"] == "Q"
    with pytest.raises(ClientError) as exc:
        client.put_metric_data(Namespace="AWS/X", MetricData=[{"MetricName": "Q", "Value": 3}])
    assert code(exc) == "InvalidParameterValue"


def test_high_resolution_data_and_its_three_hour_tier(cw, ns, unkai):
    now = int(unkai.get("/_unkai/clock")["epoch"])  # tiers age on unkai's clock, which other tests move ahead
    base = now // 60 * 60 - 300
    cw.put_metric_data(Namespace=ns, MetricData=[
        {"MetricName": "Fast", "Timestamp": base + 1, "Value": 1, "StorageResolution": 1},
        {"MetricName": "Fast", "Timestamp": base + 2, "Value": 2, "StorageResolution": 1},
        {"MetricName": "Fast", "Timestamp": base + 11, "Value": 4, "StorageResolution": 1},
        {"MetricName": "Fast", "Timestamp": now - 4 * 3600, "Value": 8, "StorageResolution": 1},
    ])

    def sums(start: int, end: int, period: int) -> list[tuple[int, float]]:
        points = cw.get_metric_statistics(Namespace=ns, MetricName="Fast", StartTime=start, EndTime=end,
                                          Period=period, Statistics=["Sum"])["Datapoints"]
        return sorted((int(p["Timestamp"].timestamp()), p["Sum"]) for p in points)

    assert sums(base, base + 60, 1) == [(base + 1, 1.0), (base + 2, 2.0), (base + 11, 4.0)]
    assert sums(base, base + 60, 10) == [(base, 3.0), (base + 10, 4.0)]
    old = now - 4 * 3600
    # older than three hours: only readable at a period of a minute or more, as AWS's tiers
    assert sums(old - 30, old + 30, 10) == []
    assert [s for _, s in sums(old - old % 60, old - old % 60 + 60, 60)] == [8.0]
    with pytest.raises(ClientError) as exc:
        cw.put_metric_data(Namespace=ns, MetricData=[{"MetricName": "Fast", "Value": 1, "StorageResolution": 5}])
    assert code(exc) == "InvalidParameterValue"


def test_extended_statistics_percentiles_trimmed_means_and_iqm(unkai, cw, ns):
    base = int(unkai.advance(0)["epoch"]) // 60 * 60 - 120
    cw.put_metric_data(Namespace=ns, MetricData=[
        {"MetricName": "Ms", "Timestamp": base, "Values": [float(v) for v in range(1, 101)]}])
    out = cw.get_metric_statistics(Namespace=ns, MetricName="Ms", StartTime=base, EndTime=base + 60, Period=60,
                                   ExtendedStatistics=["p50", "p99", "tm90", "IQM"])
    stats = out["Datapoints"][0]["ExtendedStatistics"]
    assert stats == {"p50": 50.0, "p99": 99.0, "tm90": 45.5, "IQM": 50.5}


def test_metric_math_functions_over_gaps_and_series(unkai, cw, ns):
    base = int(unkai.advance(0)["epoch"]) // 60 * 60 - 600
    for i, value in enumerate((1.0, None, 5.0)):
        data = [{"MetricName": "Steps", "Timestamp": base + 60 * i, "Value": float(i)}]
        if value is not None:
            data.append({"MetricName": "Gappy", "Timestamp": base + 60 * i, "Value": value})
        cw.put_metric_data(Namespace=ns, MetricData=data)
    stat = lambda name: {"Metric": {"Namespace": ns, "MetricName": name}, "Period": 60, "Stat": "Sum"}  # noqa: E731
    expressions = {
        "zero": "FILL(g, 0)", "repeat": "FILL(g, REPEAT)", "linear": "FILL(g, LINEAR)",
        "running": "RUNNING_SUM(s)", "rate": "RATE(s)", "cond": "IF(s > 0, s, -1)", "dist": "ABS(s - 2)",
        "peak": "MAX(s)", "spread": "STDDEV(s)", "per": "PERIOD(s)", "mean": "AVG([s, g])",
    }
    out = cw.get_metric_data(StartTime=base, EndTime=base + 180, ScanBy="TimestampAscending", MetricDataQueries=[
        {"Id": "s", "MetricStat": stat("Steps"), "ReturnData": False},
        {"Id": "g", "MetricStat": stat("Gappy"), "ReturnData": False},
        *({"Id": k, "Expression": v} for k, v in expressions.items()),
        {"Id": "broken", "Expression": "s # 2"}])  # a bad expression fails its own query, not the request
    got = {r["Id"]: r["Values"] for r in out["MetricDataResults"]}
    status = {r["Id"]: r["StatusCode"] for r in out["MetricDataResults"]}
    assert status.pop("broken") == "InternalError" and set(status.values()) == {"Complete"}
    assert got["zero"] == [1.0, 0.0, 5.0] and got["repeat"] == [1.0, 1.0, 5.0] and got["linear"] == [1.0, 3.0, 5.0]
    assert got["running"] == [0.0, 1.0, 3.0] and got["rate"] == [1 / 60, 1 / 60]
    assert got["cond"] == [-1.0, 1.0, 2.0] and got["dist"] == [2.0, 1.0, 0.0]
    assert set(got["peak"]) == {2.0} and set(got["per"]) == {60.0}
    assert abs(got["spread"][0] - (2 / 3) ** 0.5) < 1e-9
    assert got["mean"][0] == 0.5 and got["mean"][2] == 3.5  # point by point across the two series


def test_botocore_gzips_a_large_put_metric_data_and_it_is_stored(unkai, ns):
    """PutMetricData has botocore's requestcompression trait: a body over 10 KB goes out gzip."""
    client = unkai.client("cloudwatch")
    encodings: list[str] = []
    client.meta.events.register("before-send.cloudwatch.PutMetricData",
                                lambda request, **_: encodings.append(request.headers.get("Content-Encoding")))
    data = [{"MetricName": "Big", "Dimensions": [{"Name": "Shard", "Value": f"shard-{i:04d}"}], "Value": float(i)}
            for i in range(400)]
    client.put_metric_data(Namespace=ns, MetricData=data)
    assert [e.decode() if isinstance(e, bytes) else e for e in encodings] == ["gzip"]
    assert len(client.list_metrics(Namespace=ns, MetricName="Big")["Metrics"]) == 400
    now = int(unkai.get("/_unkai/clock")["epoch"])
    points = client.get_metric_statistics(Namespace=ns, MetricName="Big", Dimensions=[
        {"Name": "Shard", "Value": "shard-0007"}], StartTime=now - 600, EndTime=now + 600, Period=1200,
        Statistics=["Sum"])["Datapoints"]
    assert [p["Sum"] for p in points] == [7.0]


def test_whole_minutes_and_partial_minutes_read_the_same_statistics(unkai, cw, ns):
    """Reads of the basic statistics sum a per-minute rollup for whole minutes and the data
    points themselves at a range's partial ends; a percentile read takes every point. Both
    must give the same statistics, whatever the period, end or unit filter."""
    base = int(unkai.advance(0)["epoch"]) // 600 * 600 - 1200
    dims = [{"Name": "Api", "Value": "orders"}]
    data = [(10, 1, "Count"), (50, 2, "Count"), (61, 4, "Count"), (119, 8, "Seconds"), (121, 32, "Count"),
            (130, 16, "Count")]
    cw.put_metric_data(Namespace=ns, MetricData=[
        {"MetricName": "Hits", "Dimensions": dims, "Timestamp": base + t, "Value": v, "Unit": u} for t, v, u in data])
    basic = ["SampleCount", "Sum", "Minimum", "Maximum", "Average"]

    def read(period: int, end: int, unit: str | None = None, extended: bool = False) -> list[dict]:
        kw = {"Unit": unit} if unit else {}
        if extended:
            kw["ExtendedStatistics"] = ["p100"]
        points = cw.get_metric_statistics(Namespace=ns, MetricName="Hits", Dimensions=dims, StartTime=base,
                                          EndTime=base + end, Period=period, Statistics=basic, **kw)["Datapoints"]
        return [{k: p[k] for k in ["Timestamp", "Unit", *basic]} for p in sorted(points, key=lambda p: p["Timestamp"])]

    by_minute = read(60, 125)
    assert [(p["SampleCount"], p["Sum"], p["Minimum"], p["Maximum"], p["Unit"]) for p in by_minute] == [
        (2.0, 3.0, 1.0, 2.0, "Count"), (2.0, 12.0, 4.0, 8.0, "Seconds"), (1.0, 32.0, 32.0, 32.0, "Count")]
    two_minutes = read(120, 125)
    assert [(p["SampleCount"], p["Sum"], p["Unit"]) for p in two_minutes] == [(4.0, 15.0, "Seconds"),
                                                                               (1.0, 32.0, "Count")]
    counts = read(120, 180, unit="Count")
    assert [(p["SampleCount"], p["Sum"], p["Maximum"]) for p in counts] == [(3.0, 7.0, 4.0), (2.0, 48.0, 32.0)]
    for period, end, unit in ((60, 125, None), (120, 125, None), (120, 180, "Count"), (60, 59, None),
                              (300, 200, None)):
        assert read(period, end, unit) == read(period, end, unit, extended=True), (period, end, unit)
    # GetMetricData reads the same way
    out = cw.get_metric_data(StartTime=base, EndTime=base + 125, ScanBy="TimestampAscending", MetricDataQueries=[
        {"Id": "s", "MetricStat": {"Metric": {"Namespace": ns, "MetricName": "Hits", "Dimensions": dims},
                                   "Period": 60, "Stat": "Sum"}}])["MetricDataResults"][0]
    assert out["Values"] == [3.0, 12.0, 32.0]


def test_get_metric_data_reads_each_basic_statistic_as_get_metric_statistics_does(unkai, cw, ns):
    """GetMetricData's basic statistics are merged per period in SQL (units merged, no bucket
    per period); GetMetricStatistics still merges them bucket by bucket. For every statistic,
    period (high-resolution, a minute, several), end cutting a minute, and unit filter, the
    two must agree point for point."""
    base = int(unkai.advance(0)["epoch"]) // 600 * 600 - 1200
    dims = [{"Name": "Api", "Value": "stats"}]
    data = [{"Timestamp": base + 10, "Value": 1.0, "Unit": "Count"},
            {"Timestamp": base + 50, "Value": 6.0, "Unit": "Count"},
            {"Timestamp": base + 61, "Value": 4.0, "Unit": "Count"},
            {"Timestamp": base + 62, "Value": 9.0, "Unit": "Seconds"},  # a second unit in the same minute
            {"Timestamp": base + 119, "StatisticValues": {"SampleCount": 4, "Sum": 10, "Minimum": 0.5, "Maximum": 5},
             "Unit": "Count"},
            {"Timestamp": base + 121, "Value": 32.0, "Unit": "Count", "StorageResolution": 1},
            {"Timestamp": base + 125, "Value": 2.0, "Unit": "Count", "StorageResolution": 1},
            {"Timestamp": base + 330, "Values": [3.0, 7.0], "Counts": [2, 1], "Unit": "Count"}]
    cw.put_metric_data(Namespace=ns, MetricData=[{"MetricName": "Mixed", "Dimensions": dims, **d} for d in data])
    stats = ["SampleCount", "Sum", "Minimum", "Maximum", "Average"]
    cases = [(10, 0, 130, None), (60, 0, 400, None), (60, 30, 122, None), (60, 0, 400, "Count"),
             (120, 0, 400, None), (120, 0, 180, "Seconds"), (300, 0, 400, None), (300, 61, 359, "Count"),
             (60, 121, 126, None)]
    for period, start, end, unit in cases:
        kw = {"Unit": unit} if unit else {}
        points = sorted(cw.get_metric_statistics(Namespace=ns, MetricName="Mixed", Dimensions=dims,
                                                 StartTime=base + start, EndTime=base + end, Period=period,
                                                 Statistics=stats, **kw)["Datapoints"], key=lambda p: p["Timestamp"])
        assert points, (period, start, end, unit)
        out = cw.get_metric_data(StartTime=base + start, EndTime=base + end, ScanBy="TimestampAscending",
                                 MetricDataQueries=[
                                     {"Id": stat.lower(), "MetricStat": {
                                         "Metric": {"Namespace": ns, "MetricName": "Mixed", "Dimensions": dims},
                                         "Period": period, "Stat": stat, **kw}} for stat in stats])
        for stat, result in zip(stats, out["MetricDataResults"]):
            assert [t.timestamp() for t in result["Timestamps"]] == [p["Timestamp"].timestamp() for p in points]
            assert result["Values"] == [p[stat] for p in points], (stat, period, start, end, unit)

    # a partial minute at the end is not read while it lies after the metric's newest point;
    # a point put there afterwards is read at once
    def late_sum() -> list[float]:
        return cw.get_metric_data(StartTime=base, EndTime=base + 125, MetricDataQueries=[
            {"Id": "s", "MetricStat": {"Metric": {"Namespace": ns, "MetricName": "Late", "Dimensions": dims},
                                       "Period": 60, "Stat": "Sum"}}])["MetricDataResults"][0]["Values"]

    cw.put_metric_data(Namespace=ns, MetricData=[{"MetricName": "Late", "Dimensions": dims, "Timestamp": base + 5,
                                                  "Value": 1.0}])
    assert late_sum() == [1.0]
    cw.put_metric_data(Namespace=ns, MetricData=[{"MetricName": "Late", "Dimensions": dims, "Timestamp": base + 122,
                                                  "Value": 2.0}])
    assert late_sum() == [2.0, 1.0]


def test_data_stored_before_the_rollup_existed_are_rolled_up_by_its_migration(tmp_path):
    """A state directory written by an unkai without the per-minute rollup (or with its
    first, trigger-kept form): the migrations fold the stored points in, and a read folds
    the points added since, once, so reads over whole minutes see every point."""
    from unkai.services.cloudwatch.metrics import ROLLUP_MIGRATIONS, MetricStore
    from unkai.services.cloudwatch.service import CloudWatch
    from unkai.store import Store

    steps = CloudWatch.migrations
    older = steps[:steps.index(ROLLUP_MIGRATIONS[0])]  # later steps (cloudwatch_incoming) follow the rollup's
    store = Store(tmp_path / "state.db")
    store.migrate("cloudwatch", older)
    mid = store.db.execute("INSERT INTO cloudwatch_metrics(account, region, namespace, name, dims, last_put) "
                           "VALUES('1', 'r', 'N', 'M', '[]', 0)").lastrowid
    insert = ("INSERT INTO cloudwatch_data(metric_id, ts, unit, resolution, count, sum, min, max) "
              "VALUES(?,?,?,60,?,?,?,?)")
    store.db.executemany(insert, [(mid, 600 + t, u, 1, v, v, v) for t, v, u in
                                  ((1, 5, "Count"), (59, 7, "Seconds"), (60, 1, "Count"))])
    store.migrate("cloudwatch", steps[:len(older) + 1])  # the trigger-kept rollup
    store.db.execute(insert, (mid, 661, "Count", 1, 3, 3, 3))
    store.migrate("cloudwatch", steps)
    minutes = "SELECT minute, unit, count, sum, min, max FROM cloudwatch_minutes ORDER BY minute, unit"
    assert store.db.execute(minutes).fetchall() == [
        (600.0, "Count", 1.0, 5.0, 5.0, 5.0), (600.0, "Seconds", 1.0, 7.0, 7.0, 7.0),
        (660.0, "Count", 2.0, 4.0, 1.0, 3.0)]
    store.db.execute(insert, (mid, 665, "Count", 2, 6, 2, 4))  # no trigger now: folded by the next read
    metrics = MetricStore(store, None)  # type: ignore[arg-type]
    buckets = metrics.buckets(mid, 600, 720, 60, None, now=700, distribution=False)
    assert [(b.ts, b.count, b.sum, b.min, b.max) for b in buckets.values()] == [
        (600.0, 2.0, 12.0, 5.0, 7.0), (660.0, 4.0, 10.0, 1.0, 4.0)]
    metrics.buckets(mid, 600, 720, 60, None, now=700, distribution=False)  # a second read folds nothing again
    assert store.db.execute(minutes).fetchall()[-1] == (660.0, "Count", 4.0, 10.0, 1.0, 4.0)
    store.close()


def test_acknowledged_puts_survive_kill_9_and_are_read_after_the_restart(tmp_path):
    """A put is answered once its datum is committed (to cloudwatch_incoming, which reads move
    into the data); after kill -9, the restarted server's first reads see every acknowledged
    datum, over whole minutes, a partial minute and percentiles, and ListMetrics lists them."""
    from unkai.testing import UnkaiServer

    server = UnkaiServer(tmp_path / "state").start()
    try:
        cw = server.client("cloudwatch")
        base = int(server.post("/_unkai/clock/advance?seconds=0")["epoch"]) // 60 * 60 - 600
        dims = [{"Name": "Api", "Value": "orders"}]
        cw.put_metric_data(Namespace="App/Kill", MetricData=[
            {"MetricName": "Latency", "Dimensions": dims, "Timestamp": base + 5, "Value": 10, "Unit": "Milliseconds"},
            {"MetricName": "Latency", "Dimensions": dims, "Timestamp": base + 70, "Values": [20, 30],
             "Counts": [1, 3], "Unit": "Milliseconds"}])
        cw.put_metric_data(Namespace="App/Kill", MetricData=[{"MetricName": "Other", "Timestamp": base + 5,
                                                               "Value": 2}])
        server.kill()
        server.start()
        cw = server.client("cloudwatch")
        whole = cw.get_metric_statistics(Namespace="App/Kill", MetricName="Latency", Dimensions=dims,
                                         StartTime=base, EndTime=base + 120, Period=60,
                                         Statistics=["SampleCount", "Sum"], ExtendedStatistics=["p50"])
        points = sorted(whole["Datapoints"], key=lambda p: p["Timestamp"])
        assert [(p["SampleCount"], p["Sum"], p["ExtendedStatistics"]["p50"]) for p in points] == [
            (1.0, 10.0, 10.0), (4.0, 110.0, 30.0)]
        assert points[1]["Unit"] == "Milliseconds"
        got = cw.get_metric_data(StartTime=base, EndTime=base + 100, MetricDataQueries=[  # the 2nd minute is partial
            {"Id": "o", "MetricStat": {"Metric": {"Namespace": "App/Kill", "MetricName": "Other"}, "Period": 60,
                                       "Stat": "Sum"}},
            {"Id": "l", "MetricStat": {"Metric": {"Namespace": "App/Kill", "MetricName": "Latency",
                                                  "Dimensions": dims}, "Period": 60, "Stat": "Sum"}}])
        by_id = {r["Id"]: r["Values"] for r in got["MetricDataResults"]}
        assert by_id == {"o": [2.0], "l": [110.0, 10.0]}
        listed = cw.list_metrics(Namespace="App/Kill")["Metrics"]
        assert sorted(m["MetricName"] for m in listed) == ["Latency", "Other"]
    finally:
        server.kill()
