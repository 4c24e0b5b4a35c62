"""Reading AWS's own metrics back in tests: one day of unkai's clock folded into one set of statistics."""

from __future__ import annotations


def day_stats(cw, namespace: str, name: str, dims: dict[str, str], now: float) -> dict:
    """Sum, Minimum, Maximum and SampleCount over the last day of unkai's clock (0s when none).

    GetMetricStatistics aligns its periods to multiples of the period, so a day-long window
    can come back as two datapoints, depending on the time of day; they are folded here."""
    points = cw.get_metric_statistics(
        Namespace=namespace, MetricName=name, Dimensions=[{"Name": k, "Value": v} for k, v in dims.items()],
        StartTime=now - 86400, EndTime=now + 60, Period=86400 + 3600,
        Statistics=["Sum", "Minimum", "Maximum", "SampleCount"])["Datapoints"]
    if not points:
        return {"Sum": 0.0, "Minimum": 0.0, "Maximum": 0.0, "SampleCount": 0.0, "Unit": ""}
    return {"Sum": sum(p["Sum"] for p in points), "Minimum": min(p["Minimum"] for p in points),
            "Maximum": max(p["Maximum"] for p in points), "SampleCount": sum(p["SampleCount"] for p in points),
            "Unit": points[0]["Unit"]}
