"""View 2, the flow: the stack drawn as a graph, and the trace of one request.

Nodes are the stack's resources (or, with no stack, every function, queue, topic, table
and bucket). Edges come from the services' own configuration, read through their APIs:
event source mappings (queue or stream -> function), SNS subscriptions (topic -> queue,
function, webhook, mail), redrive policies (queue -> DLQ), API integrations (API ->
function), EventBridge rule targets, S3 notifications, and a function's environment
variables that name another resource (function -> topic, table, queue, API, webhook),
which is how a handler finds what it writes to. The graph is laid out in columns by
longest path from the sources and drawn as an SVG on the server; the page's script
lights edges up as the feed reports activity (red for failures).

A trace is every feed event stamped with one X-Ray trace root (unkai/feed.py ``TRACE``):
the API request, the invocation it caused, the SNS publish that invocation made, each
queue's delivery and each consumer's invocation."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from unkai.dashboard import reads
from unkai.dashboard.html import e, link, page, table, when
from unkai.dashboard.overview import resource_href
from unkai.feed import is_failure
from unkai.http import Request, Response

if TYPE_CHECKING:
    from unkai.dashboard.routes import Dashboard

KINDS = {  # CloudFormation type -> node kind
    "AWS::Lambda::Function": "function", "AWS::SQS::Queue": "queue", "AWS::SNS::Topic": "topic",
    "AWS::DynamoDB::Table": "table", "AWS::S3::Bucket": "bucket", "AWS::ApiGateway::RestApi": "api",
    "AWS::ApiGatewayV2::Api": "api", "AWS::Events::Rule": "rule", "AWS::Kinesis::Stream": "stream",
    "AWS::KinesisFirehose::DeliveryStream": "firehose", "AWS::Scheduler::Schedule": "rule",
    "AWS::Cognito::UserPool": "userpool",
}
W, H, GAP_X, GAP_Y, PAD = 180, 46, 56, 18, 12


@dataclass
class Node:
    id: str
    kind: str
    label: str
    detail: str = ""
    href: str | None = None
    names: set[str] = field(default_factory=set)


@dataclass
class Edge:
    source: str
    target: str
    kind: str
    label: str = ""


class Graph:
    def __init__(self) -> None:
        self.nodes: dict[str, Node] = {}
        self.edges: list[Edge] = []
        self._alias: dict[str, str] = {}

    def add(self, node: Node) -> Node:
        if node.id not in self.nodes:
            self.nodes[node.id] = node
        for name in node.names | {node.label}:
            if name:
                self._alias.setdefault(name, node.id)
        return self.nodes[node.id]

    def alias(self, node_id: str, *names: str) -> None:
        for name in names:
            if name:
                self.nodes[node_id].names.add(name)
                self._alias.setdefault(name, node_id)

    def find(self, ref: str) -> str | None:
        """The node a reference (ARN, URL, name, invocation URI) points at."""
        if not ref:
            return None
        m = re.search(r"functions/(arn:[^/]+)/invocations", ref)
        if m:
            ref = m.group(1)
        if ref in self._alias:
            return self._alias[ref]
        if ref.startswith("arn:aws:lambda:"):
            base = ":".join(ref.split(":")[:7])  # without a version or alias
            if base in self._alias:
                return self._alias[base]
        for name, node_id in self._alias.items():  # a stream ARN is its table's ARN + /stream/...
            if name.startswith("arn:") and ref.startswith(name + "/"):
                return node_id
        return None

    def external(self, kind: str, label: str, detail: str = "") -> str:
        node_id = f"{kind}:{label}"
        self.add(Node(node_id, kind, label, detail, names={label}))
        return node_id

    def connect(self, source: str | None, target: str | None, kind: str, label: str = "") -> None:
        if source and target and source != target and not any(
                x.source == source and x.target == target and x.kind == kind for x in self.edges):
            self.edges.append(Edge(source, target, kind, label))


def build(dash: "Dashboard", stack_name: str | None = None) -> Graph:
    cloud, region, account = dash.cloud, dash.region, dash.cloud.config.account_id
    g = Graph()
    stacks = reads.stacks(cloud, region)
    if stack_name:
        stacks = [s for s in stacks if s["StackName"] == stack_name]
    for stack in stacks:
        for r in stack["Resources"]:
            kind = KINDS.get(r.get("ResourceType", ""))
            physical = r.get("PhysicalResourceId") or ""
            if kind is None or not physical:
                continue
            g.add(Node(r["LogicalResourceId"], kind, r["LogicalResourceId"], physical,
                       resource_href(r["ResourceType"], physical), names={physical}))
    if not stacks:  # resources made through the APIs: every one of them
        for f in reads.functions(cloud, region):
            g.add(Node(f["FunctionName"], "function", f["FunctionName"], "",
                       f"/_unkai/ui/functions/{f['FunctionName']}", {f["FunctionArn"]}))
        for t in reads.topics(cloud, region):
            g.add(Node(t["arn"], "topic", t["name"], "", None, {t["arn"]}))
        for name in reads.tables(cloud, region):
            g.add(Node(f"table:{name}", "table", name, "", f"/_unkai/ui/tables/{name}", {name}))
    queues = reads.queues(cloud, region)
    functions = {f["FunctionName"]: f for f in reads.functions(cloud, region)}
    for q in queues:
        node = g.find(q["url"]) or g.find(q["name"])
        if node is None and not stacks:
            node = g.add(Node(q["url"], "queue", q["name"], "", f"/_unkai/ui/queues/{q['name']}")).id
        if node:
            g.alias(node, q["url"], q["name"], q["attributes"].get("QueueArn", ""))
    for node in list(g.nodes.values()):
        if node.kind == "function":
            f = functions.get(node.detail or node.label)
            if f:
                g.alias(node.id, f["FunctionArn"], f["FunctionName"])
        elif node.kind == "table":
            name = node.detail or node.label
            g.alias(node.id, f"arn:aws:dynamodb:{region}:{account}:table/{name}")
        elif node.kind == "bucket":
            g.alias(node.id, f"arn:aws:s3:::{node.detail}")
        elif node.kind == "rule":
            g.alias(node.id, f"arn:aws:events:{region}:{account}:rule/{node.detail}")
        elif node.kind == "stream":
            g.alias(node.id, f"arn:aws:kinesis:{region}:{account}:stream/{node.detail}")
        elif node.kind == "topic":
            g.alias(node.id, node.detail.rsplit(":", 1)[-1])
    _mappings(dash, g)
    _subscriptions(dash, g)
    for q in queues:
        dlq = _dlq(q["attributes"])
        g.connect(g.find(q["url"]), g.find(dlq), "dlq", "dead letters")
    _apis(dash, g)
    _rules_and_buckets(dash, g)
    _environment(g, functions)
    _policies(dash, g, functions)
    if stacks:  # what the configuration reaches outside the stack stays; lone outsiders go
        linked = {x.source for x in g.edges} | {x.target for x in g.edges}
        g.nodes = {k: v for k, v in g.nodes.items() if k in linked or ":" not in k or v.kind in KINDS.values()}
    return g


def _dlq(attrs: dict) -> str:
    try:
        return json.loads(attrs.get("RedrivePolicy") or "{}").get("deadLetterTargetArn", "")
    except ValueError:
        return ""


def _mappings(dash: "Dashboard", g: Graph) -> None:
    for m in reads.mappings(dash.cloud, dash.region):
        source = m.get("EventSourceArn", "")
        g.connect(g.find(source), g.find(m.get("FunctionArn", "")), "trigger",
                  "stream" if "/stream/" in source or ":kinesis:" in source else "poll")


def _subscriptions(dash: "Dashboard", g: Graph) -> None:
    for topic in reads.topics(dash.cloud, dash.region):
        src = g.find(topic["arn"])
        if src is None:
            continue
        for s in topic["subscriptions"]:
            protocol, endpoint = s.get("Protocol", ""), s.get("Endpoint", "")
            target = g.find(endpoint)
            if target is None and protocol in ("http", "https"):
                target = g.external("webhook", _webhook_label(endpoint), endpoint)
            elif target is None and protocol in ("email", "email-json"):
                target = g.external("mail", endpoint)
            g.connect(src, target, "subscription", protocol)


def _webhook_label(url: str) -> str:
    m = re.search(r"/_unkai/inbox/([^/?#]+)", url)
    return f"inbox {m.group(1)}" if m else re.sub(r"^https?://", "", url).split("/", 1)[0]


def _apis(dash: "Dashboard", g: Graph) -> None:
    from unkai.dashboard.apis import http_routes, rest_routes

    for node in list(g.nodes.values()):
        if node.kind != "api":
            continue
        api_id = node.detail or node.label
        routes = rest_routes(dash, api_id) or http_routes(dash, api_id)
        for r in routes:
            g.connect(node.id, g.find(r["uri"]), "integration", f"{r['method']} {r['path']}".strip())


def _rules_and_buckets(dash: "Dashboard", g: Graph) -> None:
    for node in list(g.nodes.values()):
        if node.kind == "rule" and node.detail:
            name = node.detail.rsplit("/", 1)[-1].split("|")[-1]
            for t in reads.call(dash.cloud, "events", "ListTargetsByRule", {"Rule": name}, dash.region).get(
                    "Targets", []):
                g.connect(node.id, g.find(t.get("Arn", "")), "target", "rule")
        elif node.kind == "bucket" and node.detail:
            conf = reads.call(dash.cloud, "s3", "GetBucketNotificationConfiguration", {"Bucket": node.detail},
                              dash.region)
            for key, arn_key in (("LambdaFunctionConfigurations", "LambdaFunctionArn"),
                                 ("QueueConfigurations", "QueueArn"), ("TopicConfigurations", "TopicArn")):
                for c in conf.get(key) or []:
                    g.connect(node.id, g.find(c.get(arn_key, "")), "notification", "s3 event")


def _environment(g: Graph, functions: dict[str, dict]) -> None:
    """A function -> what its environment names (the tables, topics, queues, APIs it writes to)."""
    api_ids = {(n.detail or n.label): n.id for n in g.nodes.values() if n.kind == "api"}
    for node in list(g.nodes.values()):
        if node.kind != "function":
            continue
        f = functions.get(node.detail or node.label) or {}
        for key, value in ((f.get("Environment") or {}).get("Variables") or {}).items():
            target = g.find(value) if len(value) >= 3 else None
            if target is None and "/_unkai/inbox/" in value:
                target = g.external("webhook", _webhook_label(value), value)
            if target is None:
                target = next((nid for api_id, nid in api_ids.items() if f"{api_id}.execute-api" in value), None)
            if target is not None and g.nodes[target].kind not in ("function",):
                g.connect(node.id, target, "writes", key)


WRITES = ("sns:publish", "sqs:sendmessage", "dynamodb:putitem", "dynamodb:batchwriteitem", "dynamodb:updateitem",
          "s3:putobject", "execute-api:manageconnections", "events:putevents", "kinesis:putrecord",
          "firehose:putrecord", "lambda:invokefunction", "states:startexecution", "ses:sendemail")


def _policies(dash: "Dashboard", g: Graph, functions: dict[str, dict]) -> None:
    """A function -> what its role's inline policies let it write to (the template's SAM
    policy templates: ``SNSPublishMessagePolicy``, ``DynamoDBCrudPolicy``...)."""
    from urllib.parse import unquote

    for node in list(g.nodes.values()):
        f = functions.get(node.detail or node.label) if node.kind == "function" else None
        role = (f or {}).get("Role", "").rsplit("/", 1)[-1]
        if not role:
            continue
        for name in reads.call(dash.cloud, "iam", "ListRolePolicies", {"RoleName": role}).get("PolicyNames", []):
            doc = reads.call(dash.cloud, "iam", "GetRolePolicy", {"RoleName": role, "PolicyName": name}).get(
                "PolicyDocument") or "{}"
            try:
                doc = json.loads(unquote(doc)) if isinstance(doc, str) else doc
            except ValueError:
                continue
            statements = doc.get("Statement") or []
            for st in statements if isinstance(statements, list) else [statements]:
                actions = st.get("Action") or []
                actions = [actions] if isinstance(actions, str) else actions
                wanted = [a for a in actions if a.lower() in WRITES or a.lower().endswith((":*", ":put*"))]
                if st.get("Effect") != "Allow" or not wanted:
                    continue
                resources = st.get("Resource") or []
                for res in [resources] if isinstance(resources, str) else resources:
                    if not isinstance(res, str) or res == "*":
                        continue
                    target = g.find(res) or g.find(res.removesuffix("/*").removesuffix("/index/*"))
                    if target is None and res.startswith("arn:aws:execute-api:"):
                        api_id = res.split(":")[5].split("/")[0] if len(res.split(":")) > 5 else ""
                        target = g.find(api_id)
                    if target is not None and target != node.id and g.nodes[target].kind != "function":
                        g.connect(node.id, target, "writes", wanted[0])


# -- drawing -----------------------------------------------------------------------------

def layout(g: Graph) -> dict[str, tuple[float, float]]:
    """Columns by longest path from a source (DLQ edges do not push), rows in order."""
    rank = {n: 0 for n in g.nodes}
    flow_edges = [x for x in g.edges if x.kind != "dlq"]
    for _ in range(len(g.nodes)):
        changed = False
        for x in flow_edges:
            if rank[x.target] < rank[x.source] + 1 and rank[x.source] + 1 < len(g.nodes):
                rank[x.target] = rank[x.source] + 1
                changed = True
        if not changed:
            break
    for x in g.edges:
        if x.kind == "dlq":
            rank[x.target] = max(rank[x.target], rank[x.source] + 1)
    columns: dict[int, list[str]] = {}
    for node_id in g.nodes:
        columns.setdefault(rank[node_id], []).append(node_id)
    pos = {}
    for col, ids in sorted(columns.items()):
        for row, node_id in enumerate(sorted(ids, key=lambda i: (g.nodes[i].kind == "queue" and
                                                                  "dead" in g.nodes[i].label.lower(), i))):
            pos[node_id] = (PAD + col * (W + GAP_X), PAD + row * (H + GAP_Y))
    return pos


def svg(g: Graph, traced: set[str] | None = None) -> str:
    if not g.nodes:
        return '<p class="empty">Nothing to draw: no resources in this region.</p>'
    pos = layout(g)
    width = max(x for x, _ in pos.values()) + W + PAD
    height = max(y for _, y in pos.values()) + H + PAD
    parts = [f'<svg id="flow" class="flow" viewBox="0 0 {width:.0f} {height:.0f}" width="{width:.0f}" '
             f'height="{height:.0f}" role="group" aria-label="Flow graph: {len(g.nodes)} resources, '
             f'{len(g.edges)} connections">',
             '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
             'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z"/></marker></defs>']
    for i, x in enumerate(g.edges):
        (x1, y1), (x2, y2) = pos[x.source], pos[x.target]
        sx, sy, tx, ty = x1 + W, y1 + H / 2, x2, y2 + H / 2
        if x2 <= x1:  # backwards or same column: leave from the bottom
            sx, sy, tx, ty = x1 + W / 2, y1 + H, x2 + W / 2, y2
        mid = (sx + tx) / 2
        d = f"M {sx:.0f} {sy:.0f} C {mid:.0f} {sy:.0f}, {mid:.0f} {ty:.0f}, {tx:.0f} {ty:.0f}"
        cls = f"edge {x.kind}" + (" traced" if traced and x.source in traced and x.target in traced else "")
        parts.append(f'<path id="edge-{i}" class="{cls}" data-from="{e(x.source)}" data-to="{e(x.target)}" '
                     f'd="{d}" marker-end="url(#arrow)"><title>{e(x.source)} → {e(x.target)}: '
                     f'{e(x.label)}</title></path>')
    for node_id, node in g.nodes.items():
        x, y = pos[node_id]
        names = " ".join(sorted({node.label, node.detail, *node.names} - {""}))
        cls = f"node {node.kind}" + (" traced" if traced and node_id in traced else "")
        label = node.label if len(node.label) <= 24 else node.label[:23] + "…"
        inner = (f'<rect x="{x:.0f}" y="{y:.0f}" width="{W}" height="{H}" rx="6"/>'
                 f'<text x="{x + 10:.0f}" y="{y + 19:.0f}" class="label">{e(label)}</text>'
                 f'<text x="{x + 10:.0f}" y="{y + 36:.0f}" class="kind">{e(node.kind)}</text>')
        title = f"<title>{e(node.kind)} {e(node.label)} {e(node.detail)}</title>"
        if node.href:
            parts.append(f'<a href="{e(node.href)}" class="{cls}" data-id="{e(node_id)}" data-names="{e(names)}" '
                         f'aria-label="{e(node.kind)} {e(node.label)}">{title}{inner}</a>')
        else:
            parts.append(f'<g class="{cls}" data-id="{e(node_id)}" data-names="{e(names)}" role="img" '
                         f'aria-label="{e(node.kind)} {e(node.label)}">{title}{inner}</g>')
    parts.append("</svg>")
    return "".join(parts)


def recent_traces(dash: "Dashboard", limit: int = 15) -> list[dict]:
    """The newest traces the feed holds: the first event of each, with how many it has."""
    seen: dict[str, dict] = {}
    feed = dash.cloud.feed
    for ev in feed.since(0, limit=feed.events.maxlen or 10_000):
        t = ev.get("trace")
        if not t:
            continue
        entry = seen.setdefault(t, {"trace": t, "first": ev, "count": 0, "failed": 0})
        entry["count"] += 1
        entry["failed"] += is_failure(ev)
    return sorted(seen.values(), key=lambda x: -x["first"]["id"])[:limit]


def describe(ev: dict) -> str:
    kind = ev.get("kind", "")
    if kind == "apigateway.request":
        return f"{ev.get('method')} {ev.get('path')} → {ev.get('status')} ({ev.get('latency_ms')} ms)"
    if kind == "lambda.invoke":
        return (f"{ev.get('function')} {ev.get('status')} in {ev.get('duration_ms')} ms"
                f"{' (cold)' if ev.get('cold') else ''}" + (f", by {ev['trigger']}" if ev.get("trigger") else "")
                + (f": {ev.get('error_type')} {ev.get('error_message', '')}" if ev.get("error_type") else ""))
    rest = {k: v for k, v in ev.items() if k not in ("id", "time", "kind", "trace", "stack")}
    return ", ".join(f"{k}={v}" for k, v in rest.items())


def _traces_table(dash: "Dashboard") -> str:
    rows = [[link(f"/_unkai/ui/trace/{t['trace']}", t["trace"]), e(when(t["first"]["time"])),
             e(describe(t["first"])), e(t["count"]),
             f'<span class="{"bad" if t["failed"] else ""}">{t["failed"]}</span>']
            for t in recent_traces(dash)]
    return table(["Trace", "Started", "First event", "Events", "Failures"], rows, caption="Recent traces",
                 empty="No traced request yet: call an API or invoke a function.")


async def view(dash: "Dashboard", request: Request, m: object) -> Response:
    stack = request.query_dict().get("stack")
    g = build(dash, stack)
    legend = ('<ul class="legend" aria-label="Legend"><li><span class="swatch active"></span>activity</li>'
              '<li><span class="swatch failed"></span>failure</li><li><span class="swatch dlq"></span>dead letters'
              '</li></ul>')
    body = (f'<div class="flowbox">{svg(g)}</div>{legend}<div id="traces">{_traces_table(dash)}</div>')
    return page("Flow", "ui/flow", body, dash.live(view="flow"))


async def graph_json(dash: "Dashboard", request: Request, m: object) -> Response:
    g = build(dash, request.query_dict().get("stack"))
    return Response.json({"nodes": [{"id": n.id, "kind": n.kind, "label": n.label, "physical": n.detail,
                                     "href": n.href} for n in g.nodes.values()],
                          "edges": [{"from": x.source, "to": x.target, "kind": x.kind, "label": x.label}
                                    for x in g.edges]})


async def trace(dash: "Dashboard", request: Request, m: object) -> Response:
    root = m["trace"]  # type: ignore[index]
    feed = dash.cloud.feed
    events = [ev for ev in feed.since(0, limit=feed.events.maxlen or 10_000) if ev.get("trace") == root]
    g = build(dash)
    touched: set[str] = set()
    for ev in events:
        trigger = str(ev.get("trigger") or "").split(" ")[-1]  # "sqs QUEUE", "dynamodb stream TABLE"
        for ref in (ev.get("arn"), ev.get("function"), ev.get("api_id"), ev.get("queue"), ev.get("dlq"), trigger):
            node = g.find(str(ref)) if ref else None
            if node:
                touched.add(node)
    # what lies between two touched resources was passed through too (the topic between the
    # publisher and the queues it fans out to)
    for x in g.edges:
        if x.target in touched and x.source not in touched and \
                any(y.target == x.source and y.source in touched for y in g.edges):
            touched.add(x.source)
    start = events[0]["time"] if events else 0
    rows = [[e(f"+{(ev['time'] - start) * 1000:.0f} ms"), e(ev["kind"]),
             f'<span class="{"bad" if is_failure(ev) else ""}">{e(describe(ev))}</span>',
             f"<code>{e(ev.get('request_id', ''))}</code>"] for ev in events]
    body = (f"<p>Trace <code>{e(root)}</code>: {len(events)} events across {len(touched)} resources.</p>"
            + table(["When", "Kind", "What", "Request id"], rows, caption="Events in this trace",
                    empty="The feed holds no event of this trace (it keeps the newest events only).")
            + f'<div class="flowbox">{svg(g, touched)}</div>')
    return page("Trace", "ui/flow", body, dash.live(view="trace", trace=root))
