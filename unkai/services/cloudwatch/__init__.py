"""Amazon CloudWatch: metrics, metric math and alarms.

- ``service.py``: the operation handlers (PutMetricData, GetMetricData, alarms...).
- ``metrics.py``: the metric store (per-datum rows, statistics per period, retention).
- ``mathexpr.py`` / ``queries.py``: metric math and GetMetricData's query lists.
- ``alarms.py``: alarm rows, evaluation on unkai's clock, notifications and events.
- ``emitted.py``: metrics unkai's own services emit (feed events, the minute's sampled
  gauges) and the Embedded Metric Format read from function logs.
- ``resources.py``: ``AWS::CloudWatch::Alarm`` and ``AWS::CloudWatch::CompositeAlarm``.

Not served: dashboards, metric streams, Contributor Insights rules, anomaly detectors as
resources (anomaly-detection alarms are evaluated against a band learned from the
metric's history, docs/cloudwatch.md).
"""

from unkai.services.cloudwatch.service import CloudWatch

SERVICES = [CloudWatch]
