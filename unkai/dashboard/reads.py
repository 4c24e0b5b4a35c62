"""What the dashboard shows, read through each service's own API operations
(``cloud.call``) and the contracts in docs/architecture.md, never through another
package's tables: a view shows exactly what the AWS CLI would, and a service's storage
can change without breaking the dashboard."""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

from unkai.protocol import ServiceError

if TYPE_CHECKING:
    from unkai.cloud import Cloud

log = logging.getLogger(__name__)

_SECRET = re.compile(r"secret|password|passwd|token|api[_-]?key|private|credential|auth", re.I)


def call(cloud: "Cloud", service: str, operation: str, params: dict | None = None,
         region: str | None = None) -> dict:
    """One in-process API call; a service error reads as an empty answer (a view shows
    what there is, it does not fail because one resource vanished meanwhile)."""
    try:
        return cloud.call(service, operation, params or {}, region)
    except ServiceError as exc:
        log.debug("%s:%s failed: %s", service, operation, exc)
        return {}


def paged(cloud: "Cloud", service: str, operation: str, key: str, params: dict | None = None,
          token: tuple[str, str] = ("NextToken", "NextToken"), region: str | None = None,
          limit: int = 20) -> list:
    """Every item of a paginated list operation (at most ``limit`` pages); ``token`` is the
    answer's continuation member and the request member it goes back in."""
    items: list = []
    params = dict(params or {})
    for _ in range(limit):
        page = call(cloud, service, operation, params, region)
        items.extend(page.get(key) or [])
        if not page.get(token[0]):
            break
        params[token[1]] = page[token[0]]
    return items


def masked(name: str, value: str) -> str:
    """An environment variable's value as the dashboard shows it: secret-looking names hidden."""
    if _SECRET.search(name) and value:
        return "••••••" + (value[-2:] if len(value) > 8 else "")
    return value


# -- stacks ------------------------------------------------------------------------------

def stacks(cloud: "Cloud", region: str) -> list[dict[str, Any]]:
    """Each deployed stack with its resources (ListStackResources) and outputs."""
    found = []
    for stack in call(cloud, "cloudformation", "DescribeStacks", {}, region).get("Stacks", []):
        resources = paged(cloud, "cloudformation", "ListStackResources", "StackResourceSummaries",
                          {"StackName": stack["StackName"]}, region=region)
        found.append({**stack, "Resources": resources})
    return found


# -- Lambda ------------------------------------------------------------------------------

def functions(cloud: "Cloud", region: str) -> list[dict]:
    return paged(cloud, "lambda", "ListFunctions", "Functions", token=("NextMarker", "Marker"), region=region)


def function(cloud: "Cloud", region: str, name: str) -> dict:
    return call(cloud, "lambda", "GetFunction", {"FunctionName": name}, region)


def mappings(cloud: "Cloud", region: str) -> list[dict]:
    return paged(cloud, "lambda", "ListEventSourceMappings", "EventSourceMappings", token=("NextMarker", "Marker"), region=region)


def log_events(cloud: "Cloud", region: str, group: str, limit: int = 200) -> list[dict]:
    """The newest ``limit`` events of a log group, oldest first."""
    events = call(cloud, "logs", "FilterLogEvents", {"logGroupName": group}, region).get("events", [])
    return events[-limit:]


# -- SQS and SNS -------------------------------------------------------------------------

QUEUE_ATTRS = ["QueueArn", "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
               "ApproximateNumberOfMessagesDelayed", "RedrivePolicy", "VisibilityTimeout", "FifoQueue"]


def queues(cloud: "Cloud", region: str) -> list[dict]:
    """Every queue: its URL, name and the attributes the queues view shows."""
    found = []
    for url in paged(cloud, "sqs", "ListQueues", "QueueUrls", {"MaxResults": 1000}, region=region):
        attrs = call(cloud, "sqs", "GetQueueAttributes", {"QueueUrl": url, "AttributeNames": ["All"]},
                     region).get("Attributes", {})
        found.append({"url": url, "name": url.rsplit("/", 1)[-1], "attributes": attrs})
    return found


def topics(cloud: "Cloud", region: str) -> list[dict]:
    found = []
    for topic in paged(cloud, "sns", "ListTopics", "Topics", region=region):
        arn = topic["TopicArn"]
        subs = paged(cloud, "sns", "ListSubscriptionsByTopic", "Subscriptions", {"TopicArn": arn}, region=region)
        found.append({"arn": arn, "name": arn.rsplit(":", 1)[-1], "subscriptions": subs})
    return found


# -- DynamoDB ----------------------------------------------------------------------------

def tables(cloud: "Cloud", region: str) -> list[str]:
    return paged(cloud, "dynamodb", "ListTables", "TableNames", token=("LastEvaluatedTableName", "ExclusiveStartTableName"), region=region)


def table(cloud: "Cloud", region: str, name: str) -> dict:
    return call(cloud, "dynamodb", "DescribeTable", {"TableName": name}, region).get("Table", {})


# -- S3 ----------------------------------------------------------------------------------

def buckets(cloud: "Cloud", region: str) -> list[dict]:
    return call(cloud, "s3", "ListBuckets", {}, region).get("Buckets", [])
