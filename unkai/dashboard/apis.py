"""View 8, APIs and sockets: REST APIs' resources and methods with their integrations,
HTTP and WebSocket APIs' routes, each stage's local URL, and a request runner (a form the
browser sends to the stage itself: stages are public pages)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from unkai.dashboard import reads
from unkai.dashboard.html import e, link, page, table, when

if TYPE_CHECKING:
    from unkai.dashboard.routes import Dashboard
    from unkai.http import Request, Response


def rest_routes(dash: "Dashboard", api_id: str) -> list[dict]:
    """Each method of a REST API with its integration's type and URI."""
    out = []
    for res in reads.paged(dash.cloud, "apigateway", "GetResources", "items", {"restApiId": api_id},
                           token=("position", "position"), region=dash.region):
        for method in sorted(res.get("resourceMethods") or {}):
            integ = reads.call(dash.cloud, "apigateway", "GetIntegration",
                               {"restApiId": api_id, "resourceId": res["id"], "httpMethod": method}, dash.region)
            out.append({"method": method, "path": res.get("path"), "type": integ.get("type", ""),
                        "uri": integ.get("uri", "")})
    return out


def http_routes(dash: "Dashboard", api_id: str) -> list[dict]:
    integrations = {i["IntegrationId"]: i for i in reads.paged(
        dash.cloud, "apigatewayv2", "GetIntegrations", "Items", {"ApiId": api_id}, region=dash.region)}
    out = []
    for route in reads.paged(dash.cloud, "apigatewayv2", "GetRoutes", "Items", {"ApiId": api_id}, region=dash.region):
        target = (route.get("Target") or "").removeprefix("integrations/")
        integ = integrations.get(target, {})
        out.append({"method": "", "path": route.get("RouteKey"), "type": integ.get("IntegrationType", ""),
                    "uri": integ.get("IntegrationUri", "")})
    return out


async def index(dash: "Dashboard", request: "Request", m: object) -> "Response":
    port = dash.cloud.config.port
    body = ""
    for api in reads.paged(dash.cloud, "apigateway", "GetRestApis", "items", token=("position", "position"),
                           region=dash.region):
        stages = reads.call(dash.cloud, "apigateway", "GetStages", {"restApiId": api["id"]}, dash.region).get("item", [])
        urls = [f"http://{api['id']}.execute-api.localhost:{port}/{s['stageName']}" for s in stages]
        rows = [[e(r["method"]), f"<code>{e(r['path'])}</code>", e(r["type"]), f"<code>{e(r['uri'])}</code>"]
                for r in rest_routes(dash, api["id"])]
        body += (f"<section><h2>REST API {e(api.get('name'))} <small>{e(api['id'])}</small></h2>"
                 + "".join(f"<p>Stage: {link(u, u)}</p>" for u in urls)
                 + table(["Method", "Path", "Integration", "URI"], rows) + _runner(urls) + "</section>")
    for api in reads.paged(dash.cloud, "apigatewayv2", "GetApis", "Items", region=dash.region):
        protocol = api.get("ProtocolType", "HTTP")
        rows = [[f"<code>{e(r['path'])}</code>", e(r["type"]), f"<code>{e(r['uri'])}</code>"]
                for r in http_routes(dash, api["ApiId"])]
        stages = reads.call(dash.cloud, "apigatewayv2", "GetStages", {"ApiId": api["ApiId"]}, dash.region)
        scheme = "ws" if protocol == "WEBSOCKET" else "http"
        urls = [f"{scheme}://{api['ApiId']}.execute-api.localhost:{port}/{s['StageName']}"
                for s in stages.get("Items", [])]
        body += (f"<section><h2>{e(protocol)} API {e(api.get('Name'))} <small>{e(api['ApiId'])}</small></h2>"
                 + "".join(f"<p>Stage: <code>{e(u)}</code></p>" for u in urls)
                 + table(["Route", "Integration", "URI"], rows)
                 + (_runner(urls) if protocol == "HTTP" else _connections(dash, api["ApiId"])) + "</section>")
    if not body:
        body = '<p class="empty">No APIs in this region.</p>'
    return page("APIs and sockets", "ui/apis", body, dash.live(view="apis"))


def _connections(dash: "Dashboard", api_id: str) -> str:
    conns = dash.cloud.service("apigatewaymanagementapi").open_connections(api_id)
    rows = [[f"<code>{e(c['ConnectionId'])}</code>", e(c["Stage"]), e(when(c["ConnectedAt"])),
             f'<form class="inline" data-action="post" data-url="/_unkai/ui/apis/{e(api_id)}/connections/'
             f'{e(c["ConnectionId"])}"><label>Message <input name="data" value="hello"></label>'
             f'<button type="submit">Send to connection</button></form>'] for c in conns]
    return ("<h3>Open connections</h3>" + table(["Connection id", "Stage", "Connected", ""], rows,
                                                   empty="No open connection.")
            + '<p id="action-result" role="status" aria-live="polite"></p>')


async def send_to_connection(dash: "Dashboard", request: "Request", m: object) -> "Response":
    """PostToConnection, as the API's backend would call it."""
    import json
    import uuid

    from unkai.http import BodyTooLarge, Response
    from unkai.protocol import ServiceError
    from unkai.services import RequestContext

    try:
        data = str(json.loads(await request.body(128 * 1024) or b"{}").get("data", ""))
    except (ValueError, BodyTooLarge, AttributeError):
        return Response.json({"message": "send a JSON object {\"data\": ...}"}, 400)
    service = dash.cloud.service("apigatewaymanagementapi")
    ctx = RequestContext(service=service.name, operation="PostToConnection", region=dash.region,
                         account=dash.cloud.config.account_id, request_id=str(uuid.uuid4()), request=request,
                         protocol="internal")
    try:
        await service.post_to_connection(ctx, {"ConnectionId": m["id"], "Data": data.encode()})  # type: ignore[index]
    except ServiceError as exc:
        return Response.json({"message": f"{exc.code}: the connection is gone" if exc.code == "GoneException"
                              else f"{exc.code}: {exc.message}"}, 410 if exc.code == "GoneException" else 400)
    return Response.json({"message": "Sent."})


def _runner(urls: list[str]) -> str:
    if not urls:
        return ""
    return (f'<form class="runner" data-action="request" data-base="{e(urls[0])}">'
            '<label>Method <select name="method"><option>GET</option><option>POST</option><option>PUT</option>'
            '<option>DELETE</option></select></label>'
            '<label>Path <input name="path" value="/"></label>'
            '<label>Body <textarea name="body" rows="2"></textarea></label>'
            '<button type="submit">Send the request</button></form><pre class="result" role="status"></pre>')
