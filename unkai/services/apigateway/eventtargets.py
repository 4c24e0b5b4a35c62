"""API Gateway as a target of EventBridge rules (and anything else ``unkai/targets.py``
delivers): a REST API's or an HTTP API's stage and route, named by an ``execute-api`` ARN,
``arn:aws:execute-api:REGION:ACCOUNT:API_ID/STAGE/METHOD/PATH`` (``$default`` for an HTTP API's
default stage, as in the ARNs of its routes; CDK's ``events_targets.ApiGatewayV2`` targets it so).

As AWS does (docs.aws.amazon.com/eventbridge/latest/userguide/eb-api-gateway-target.html), the
event (after the target's InputTransformer) is the request body, each ``*`` of the ARN's path
takes the next of ``HttpParameters.PathParameterValues``, and the header and query string
parameters are added. The call is a durable job (``apigateway.event``) written in the event's
transaction and served in-process by the data plane, so it runs the stage's integration, mapping
templates and authorizers exactly as a client's request would. 429 and 5xx answers are retried
within the target's RetryPolicy on unkai's clock; a final failure goes to the target's DLQ."""

from __future__ import annotations

import logging
import urllib.parse
from typing import Any

from unkai import targets
from unkai.http import Headers, Request
from unkai.jobs import Retry

log = logging.getLogger(__name__)

BACKOFF = (1, 2, 4, 8, 16, 32, 60)  # seconds between attempts, on unkai's clock
MAX_AGE = 24 * 3600  # EventBridge's default MaximumEventAgeInSeconds
USER_AGENT = "Amazon/EventBridge/ApiGatewayTarget"


def parse_arn(arn: str, path_values: list[str]) -> tuple[str, str, str, str, str] | None:
    """(region, api id, stage, method, path) of an execute-api ARN, ``*``s filled in order."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[2] != "execute-api":
        return None
    segments = parts[5].split("/")
    if len(segments) < 3:
        return None
    api_id, stage, method = segments[0], segments[1], segments[2].upper()
    values = iter(path_values)
    path = [next(values, "") if s == "*" else s for s in segments[3:]]
    return parts[3], api_id, stage, "POST" if method in ("*", "ANY") else method, "/" + "/".join(path)


class EventTargets:
    """Mixed into the API Gateway (REST) service."""

    cloud: Any
    clock: Any
    dataplane: Any

    def start_event_targets(self) -> None:
        self.cloud.jobs.register("apigateway.event", self.run_event)

    def deliver_event(self, target: dict[str, Any], payload: str, event_id: str, rule_arn: str) -> None:
        """The contract ``unkai/targets.py`` calls for an ``execute-api`` target: queue the call
        (in the caller's transaction, so an accepted event is never lost)."""
        self.cloud.jobs.enqueue("apigateway.event", {"target": target, "body": payload, "event": event_id,
                                                     "rule": rule_arn, "t0": self.clock.now()})

    async def run_event(self, job: dict[str, Any], attempt: int) -> None:
        target = job["target"]
        http = target.get("HttpParameters") or {}
        parsed = parse_arn(target.get("Arn") or "", http.get("PathParameterValues") or [])
        if parsed is None or self.dataplane is None:
            return self._event_failed(job, "NO_RESOURCE", f"Invalid API Gateway target {target.get('Arn')}.")
        region, api_id, stage, method, path = parsed
        query = urllib.parse.urlencode(http.get("QueryStringParameters") or {})
        headers = {"host": f"{api_id}.execute-api.{region}.amazonaws.com",
                   "content-type": "application/json; charset=utf-8", "user-agent": USER_AGENT}
        headers.update({k.lower(): str(v) for k, v in (http.get("HeaderParameters") or {}).items()})
        body = job["body"].encode()
        headers["content-length"] = str(len(body))
        # an HTTP API's $default stage serves at the root: its path carries no stage name
        raw_path = path if stage == "$default" else f"/{stage}{path}"
        request = Request(method, raw_path, query, Headers.from_dict(headers), body=body)
        response = await self.dataplane.serve(request, api_id, raw_path)
        status = response.status
        if 200 <= status < 300:
            return None
        policy = target.get("RetryPolicy") or {}
        delay = BACKOFF[min(attempt, len(BACKOFF) - 1)]
        if (status == 429 or status >= 500) and attempt < policy.get("MaximumRetryAttempts", 185) and \
                self.clock.now() + delay - job["t0"] <= policy.get("MaximumEventAgeInSeconds", MAX_AGE):
            raise Retry(delay, f"API Gateway answered {status}")
        return self._event_failed(job, "SDK_CLIENT_ERROR", f"Unable to invoke API Gateway endpoint: The request "
                                                           f"failed because the endpoint responded with status "
                                                           f"code {status}.")

    def _event_failed(self, job: dict[str, Any], code: str, message: str) -> None:
        with self.cloud.store.transaction():
            targets.dead_letter(self.cloud, job["target"], job["body"], "events", job["rule"], code, message)

