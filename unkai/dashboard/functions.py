"""View 3, functions: configuration, recent invocations (from the feed), the log group
(live: the page long-polls ``/_unkai/logs``), "invoke with this event" with AWS's sample
events (``unkai/samples.py``), environment variables with secret-looking values masked."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from unkai import samples
from unkai.dashboard import reads
from unkai.dashboard.html import e, link, page, pretty, table, when
from unkai.http import BodyTooLarge, Request, Response
from unkai.protocol import ServiceError

if TYPE_CHECKING:
    from unkai.dashboard.routes import Dashboard

MAX_EVENT = 256 * 1024  # an async invoke's limit; a sync one takes more, a hand-typed test event does not


def invocations(dash: "Dashboard", name: str | None = None, limit: int = 50) -> list[dict]:
    feed = dash.cloud.feed
    found = [ev for ev in feed.since(0, ("lambda.invoke",), limit=feed.events.maxlen or 10_000)
             if name is None or ev.get("function") == name]
    return found[-limit:][::-1]


def invocation_rows(events: list[dict], with_function: bool = False) -> list[list[str]]:
    rows = []
    for ev in events:
        status = ev.get("status", "")
        cells = [e(when(ev.get("time")))]
        if with_function:
            cells.append(link(f"/_unkai/ui/functions/{ev.get('function')}", ev.get("function")))
        cells += [f'<span class="badge{" bad" if status != "ok" else ""}">{e(status)}</span>',
                  e(ev.get("duration_ms", "")), e(ev.get("max_memory_mb", "")),
                  "cold" if ev.get("cold") else "warm", e(ev.get("trigger", "")),
                  e(ev.get("error_type", "") + (": " + ev["error_message"] if ev.get("error_message") else "")),
                  link(f"/_unkai/ui/trace/{ev['trace']}", "trace") if ev.get("trace") else ""]
        rows.append(cells)
    return rows


INVOCATION_HEADERS = ["Time", "Status", "Duration (ms)", "Max memory (MB)", "Start", "Trigger", "Error", "Trace"]


async def index(dash: "Dashboard", request: Request, m: object) -> Response:
    fns = reads.functions(dash.cloud, dash.region)
    rows = [[link(f"/_unkai/ui/functions/{f['FunctionName']}", f["FunctionName"]), e(f.get("Runtime")),
             e(f.get("Handler")), e(f.get("MemorySize")), e(f.get("Timeout"))] for f in fns]
    body = table(["Function", "Runtime", "Handler", "Memory (MB)", "Timeout (s)"], rows,
                 caption="Functions", empty="No functions in this region.")
    recent = invocation_rows(invocations(dash, limit=30), with_function=True)
    body += "<h2>Recent invocations</h2>" + table(
        ["Time", "Function"] + INVOCATION_HEADERS[1:], recent, empty="No invocation yet.")
    return page("Functions", "ui/functions", body, dash.live(view="functions"))


def _sample_options() -> str:
    opts = ['<option value="">{} (empty event)</option>']
    for service, events in samples.SAMPLES.items():
        for event in events:
            opts.append(f'<option value="{e(service)}/{e(event)}">{e(service)} {e(event)}</option>')
    return "".join(opts)


def _samples_json(region: str) -> str:
    out = {}
    for service, events in samples.SAMPLES.items():
        for event in events:
            out[f"{service}/{event}"] = samples.generate(service, event, region=region)
    return json.dumps(out)


async def detail(dash: "Dashboard", request: Request, m: object) -> Response:
    name = m["name"]  # type: ignore[index]
    found = reads.function(dash.cloud, dash.region, name)
    config = found.get("Configuration")
    if not config:
        return page("No such function", "ui/functions", f"<p>There is no function {e(name)} in {e(dash.region)}.</p>")
    facts = "".join(f"<dt>{e(k)}</dt><dd><code>{e(config.get(k))}</code></dd>" for k in (
        "FunctionArn", "Runtime", "Handler", "MemorySize", "Timeout", "Role", "State", "LastModified",
        "Architectures", "PackageType") if config.get(k) is not None)
    env = (config.get("Environment") or {}).get("Variables") or {}
    env_rows = [[f"<code>{e(k)}</code>", f"<code>{e(reads.masked(k, v))}</code>"] for k, v in sorted(env.items())]
    group = (config.get("LoggingConfig") or {}).get("LogGroup") or f"/aws/lambda/{config['FunctionName']}"
    logs = reads.log_events(dash.cloud, dash.region, group)
    log_html = "".join(_log_line(ev) for ev in logs)
    body = f"""
<dl class="facts">{facts}</dl>
<h2>Environment variables</h2>
{table(["Name", "Value"], env_rows, empty="No environment variables.")}
<h2>Recent invocations</h2>
<div id="invocations">{table(INVOCATION_HEADERS, invocation_rows(invocations(dash, config["FunctionName"])),
                                empty="No invocation yet.")}</div>
<h2 id="invoke-title">Invoke with an event</h2>
<form id="invoke" data-action="invoke" data-url="/_unkai/ui/functions/{e(name)}/invoke" aria-labelledby="invoke-title">
<label for="sample">Sample event</label>
<select id="sample" name="sample">{_sample_options()}</select>
<label for="event">Event (JSON)</label>
<textarea id="event" name="event" rows="8" spellcheck="false">{{}}</textarea>
<button type="submit">Invoke</button>
<button type="button" id="save-event">Save this event</button>
</form>
<pre id="invoke-result" role="status" aria-live="polite" class="result"></pre>
<div id="samples" hidden data-samples="{e(_samples_json(dash.region))}"></div>
<h2>Log <small>{e(group)}</small></h2>
<ol id="log" class="log" aria-label="Log events" data-group="{e(group)}">{log_html}</ol>
"""
    return page(f"Function {config['FunctionName']}", "ui/functions", body,
                dash.live(view="function", function=config["FunctionName"], group=group,
                          region=dash.region))


def _log_line(ev: dict) -> str:
    message = ev.get("message", "")
    level = "error" if any(w in message for w in ("ERROR", "Traceback", "[ERROR]")) else \
        "warn" if "WARN" in message else ""
    text = e(message.rstrip("\n"))
    if "\n" in message.strip() or "Traceback" in message:
        first, _, rest = message.strip().partition("\n")
        text = f"<details><summary>{e(first)}</summary><pre>{e(rest)}</pre></details>"
    return f'<li class="{level}"><time>{e(when((ev.get("timestamp") or 0) / 1000))}</time> {text}</li>'


async def invoke(dash: "Dashboard", request: Request, m: object) -> Response:
    name = m["name"]  # type: ignore[index]
    try:
        payload = await request.body(MAX_EVENT)
    except BodyTooLarge:
        return Response.json({"message": f"the event is larger than {MAX_EVENT} bytes"}, 413)
    try:
        json.loads(payload or b"{}")
    except ValueError as exc:
        return Response.json({"message": f"the event is not JSON: {exc}"}, 400)
    try:
        result = await dash.cloud.service("lambda").invoke(name, payload or b"{}", region=dash.region,
                                                            log_type="Tail")
    except ServiceError as exc:
        return Response.json({"message": f"{exc.code}: {exc.message}"}, 400)
    import base64

    text = result.payload.decode("utf-8", "replace")
    try:
        shown = pretty(json.loads(text))
    except ValueError:
        shown = text
    return Response.json({"status": result.status_code, "error": result.function_error, "payload": shown,
                          "request_id": result.request_id,
                          "log": base64.b64decode(result.log_result).decode("utf-8", "replace")
                          if result.log_result else ""})
