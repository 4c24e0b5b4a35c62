"""View 7, mail and webhooks: the local mailbox (``cloud.mailbox``; HTML mail shown in a
sandboxed frame, its links clickable, so SES verification links and Cognito codes are
used from here) and the webhook inbox (``cloud.inbox``) with bodies pretty-printed."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING
from urllib.parse import quote

from unkai.dashboard.html import e, link, page, pretty, table
from unkai.http import Request, Response

if TYPE_CHECKING:
    from unkai.dashboard.routes import Dashboard

# The mail's own page (/_unkai/mail/ID.html) also carries a sandbox CSP, so a mail opened
# on its own cannot run script in unkai's origin either. Links open in a new tab.
SANDBOX = "allow-popups allow-popups-to-escape-sandbox"


async def index(dash: "Dashboard", request: Request, m: object) -> Response:
    messages = dash.cloud.mailbox.list()[-200:][::-1]
    rows = [[link(f"/_unkai/ui/mail/{quote(msg['id'])}", msg.get("subject") or "(no subject)"),
             e(msg.get("from")), e(", ".join(msg.get("to") or [])), e(msg.get("sent_at"))] for msg in messages]
    body = table(["Subject", "From", "To", "Sent"], rows, caption="Mailbox", empty="No mail yet.")
    for box in dash.cloud.inbox.names():
        entries = dash.cloud.inbox.list(box["name"])[-20:][::-1]
        items = []
        for entry in entries:
            content = pretty(entry["json"]) if "json" in entry else entry.get("body") or entry.get("body_base64", "")
            items.append([e(entry["received_at"]), e(entry["method"]),
                          f"<code>{e(entry['path'] + ('?' + entry['query'] if entry['query'] else ''))}</code>",
                          f"<pre>{e(content[:4000])}</pre>"])
        body += (f'<section><h2>Webhook inbox {e(box["name"])} <small>({box["count"]} requests)</small></h2>'
                 + table(["Received", "Method", "Path", "Body"], items) + "</section>")
    if not dash.cloud.inbox.names():
        body += "<h2>Webhook inbox</h2><p class=\"empty\">No webhook calls yet (handlers post to /_unkai/inbox/NAME).</p>"
    return page("Mail and webhooks", "ui/mail", body, dash.live(view="mail"))


async def detail(dash: "Dashboard", request: Request, m: object) -> Response:
    msg = dash.cloud.mailbox.get(m["id"])  # type: ignore[index]
    if msg is None:
        return page("No such mail", "ui/mail", "<p>There is no such message.</p>")
    attachments = "".join(
        f'<li><a href="/_unkai/mail/{quote(msg["id"])}/attachments/{i}">{e(a.get("filename"))}</a></li>'
        for i, a in enumerate(msg.get("attachments") or []))
    body = f"""
<dl class="facts">
<dt>From</dt><dd>{e(msg.get("from"))}</dd>
<dt>To</dt><dd>{e(", ".join(msg.get("to") or []))}</dd>
<dt>Sent</dt><dd>{e(msg.get("sent_at"))}</dd>
<dt>Origin</dt><dd>{e(msg.get("origin"))}</dd>
</dl>
<iframe class="mail" title="The mail's content" sandbox="{SANDBOX}" src="/_unkai/mail/{quote(msg["id"])}.html"></iframe>
{f"<h2>Attachments</h2><ul>{attachments}</ul>" if attachments else ""}
<p><a href="/_unkai/mail/{quote(msg["id"])}.eml">Download the raw message (.eml)</a></p>
<details><summary>Headers</summary><pre>{e(json.dumps(msg.get("headers"), indent=1, ensure_ascii=False))}</pre></details>
"""
    return page(msg.get("subject") or "(no subject)", "ui/mail", body, dash.live(view="mail"))
