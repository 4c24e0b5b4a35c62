"""View 1, the overview: the deployed stacks (resources with status and physical ids,
outputs with links), health, unkai's clock with an advance button, and the failures the
feed saw in the last minutes."""

from __future__ import annotations

import re
from collections import Counter
from typing import TYPE_CHECKING

from unkai import __version__
from unkai.dashboard import reads
from unkai.dashboard.html import e, link, page, table, when
from unkai.feed import is_failure
from unkai.http import Request, Response
from unkai.protocol.values import iso8601

if TYPE_CHECKING:
    from unkai.dashboard.routes import Dashboard


def resource_href(rtype: str, physical: str) -> str | None:
    """The dashboard page of a stack resource, when there is one."""
    if not physical:
        return None
    if rtype == "AWS::Lambda::Function":
        return f"/_unkai/ui/functions/{physical}"
    if rtype == "AWS::SQS::Queue":
        return f"/_unkai/ui/queues/{physical.rsplit('/', 1)[-1]}"
    if rtype == "AWS::SNS::Topic":
        return "/_unkai/ui/queues#topic-" + physical.rsplit(":", 1)[-1]
    if rtype == "AWS::DynamoDB::Table":
        return f"/_unkai/ui/tables/{physical}"
    if rtype == "AWS::S3::Bucket":
        return f"/_unkai/ui/buckets/{physical}"
    if rtype.startswith(("AWS::ApiGateway::RestApi", "AWS::ApiGatewayV2::Api")):
        return "/_unkai/ui/apis"
    if rtype == "AWS::CloudWatch::Alarm":
        return "/_unkai/ui/metrics"
    return None


def error_counts(dash: "Dashboard", minutes: int) -> Counter:
    since = dash.cloud.clock.now() - minutes * 60
    return Counter(ev["kind"] for ev in dash.cloud.feed.since(0, limit=dash.cloud.feed.events.maxlen or 10_000)
                   if ev["time"] >= since and is_failure(ev))


def _stack_section(stack: dict) -> str:
    name = stack["StackName"]
    rows = []
    for r in sorted(stack["Resources"], key=lambda r: (r.get("ResourceType", ""), r["LogicalResourceId"])):
        physical = r.get("PhysicalResourceId") or ""
        href = resource_href(r.get("ResourceType", ""), physical)
        status = r.get("ResourceStatus", "")
        bad = "FAILED" in status
        rows.append([e(r["LogicalResourceId"]), e(r.get("ResourceType")),
                     f'<span class="badge{" bad" if bad else ""}">{e(status)}</span>',
                     link(href, physical) if href else f"<code>{e(physical)}</code>"])
    outputs = []
    for o in stack.get("Outputs") or []:
        value = o.get("OutputValue", "")
        shown = link(value, value) if re.match(r"^https?://", value) else f"<code>{e(value)}</code>"
        outputs.append([e(o["OutputKey"]), shown, e(o.get("Description", ""))])
    return (f'<section aria-labelledby="stack-{e(name)}"><h2 id="stack-{e(name)}">Stack {e(name)} '
            f'<span class="badge">{e(stack.get("StackStatus"))}</span></h2>'
            f'<p>{len(stack["Resources"])} resources · <a href="/_unkai/ui/flow?stack={e(name)}">see its flow</a></p>'
            + table(["Output", "Value", "Description"], outputs, caption="Outputs", empty="no outputs")
            + table(["Logical id", "Type", "Status", "Physical id"], rows, caption="Resources") + "</section>")


async def overview(dash: "Dashboard", request: Request, m: object) -> Response:
    cloud = dash.cloud
    stacks = reads.stacks(cloud, dash.region)
    clock = cloud.clock
    pending = cloud.pending()
    recent, hour = error_counts(dash, 5), error_counts(dash, 60)
    kinds = sorted(set(hour))
    errors = table(["Kind", "Last 5 minutes", "Last hour"], [[e(k), e(recent.get(k, 0)), e(hour[k])] for k in kinds],
                   caption="Failures seen by the event feed", empty="No failures in the last hour.")
    body = f"""
<section aria-labelledby="health"><h2 id="health">Health</h2>
<dl class="facts">
<dt>Version</dt><dd>{e(__version__)}</dd>
<dt>Endpoint</dt><dd><code>{e(cloud.config.endpoint)}</code> (region {e(dash.region)}, account {e(cloud.config.account_id)})</dd>
<dt>Services</dt><dd>{len(cloud.services)}</dd>
<dt>Pending work</dt><dd id="pending">{e(", ".join(f"{k}: {v}" for k, v in sorted(pending.items())) or "none")}</dd>
<dt>Failures, last 5 minutes</dt><dd><span id="error-count" class="{'bad' if recent else ''}">{sum(recent.values())}</span></dd>
</dl></section>
<section aria-labelledby="clock-title"><h2 id="clock-title">Clock</h2>
<p>unkai's clock reads <time id="clock-now" datetime="{e(iso8601(clock.now()))}">{e(iso8601(clock.now()))}</time>
(<span id="clock-offset">{clock.offset:g}</span> s ahead of the wall clock).</p>
<form id="advance" class="inline" data-action="advance">
<label for="advance-seconds">Advance by (seconds)</label>
<input id="advance-seconds" name="seconds" type="number" min="0" step="any" value="60" required>
<button type="submit">Advance the clock</button></form>
</section>
{errors}
{"".join(_stack_section(s) for s in stacks) or '<p class="empty">No stack deployed in this region. Start one with <code>unkai up TEMPLATE</code> or <code>sam deploy</code>.</p>'}
"""
    return page("Overview", "", body, dash.live())


__all__ = ["overview", "resource_href", "when"]
