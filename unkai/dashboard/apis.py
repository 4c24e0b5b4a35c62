"""View 8, APIs and sockets: REST APIs' resources and methods with their integrations,
HTTP and WebSocket APIs' routes, each stage's local URL, and a request runner (a form the
browser sends to the stage itself: stages are public pages)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from unkai.dashboard import reads
from unkai.dashboard.html import e, link, page, table

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
                 + (_runner(urls) if protocol == "HTTP" else "") + "</section>")
    if not body:
        body = '<p class="empty">No APIs in this region.</p>'
    return page("APIs and sockets", "ui/apis", body, dash.live(view="apis"))


def _runner(urls: list[str]) -> str:
    if not urls:
        return ""
    return (f'<form class="runner" data-action="request" data-base="{e(urls[0])}">'
            '<label>Method <select name="method"><option>GET</option><option>POST</option><option>PUT</option>'
            '<option>DELETE</option></select></label>'
            '<label>Path <input name="path" value="/"></label>'
            '<label>Body <textarea name="body" rows="2"></textarea></label>'
            '<button type="submit">Send the request</button></form><pre class="result" role="status"></pre>')
