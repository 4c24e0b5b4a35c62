"""The dashboard's HTML: one layout, escaping everywhere, no template engine.

Pages are rendered on the server from what the services answer, so a page is whole at
its first paint and works without JavaScript; ``static/dashboard.js`` only adds live
updates (the event feed over Server-Sent Events) and the buttons' requests. Every value
that came from the cloud passes through ``e()``."""

from __future__ import annotations

import html
import json
import time
from typing import Any, Iterable

from unkai.http import Response

VIEWS = [  # (path under /_unkai/, label)
    ("", "Overview"),
    ("ui/flow", "Flow"),
    ("ui/functions", "Functions"),
    ("ui/queues", "Queues and topics"),
    ("ui/tables", "Tables"),
    ("ui/buckets", "Buckets"),
    ("ui/mail", "Mail and webhooks"),
    ("ui/apis", "APIs and sockets"),
    ("ui/metrics", "Metrics and alarms"),
]

# The pages load only their own script and style; a mail's HTML is shown in a sandboxed
# frame served from /_unkai/mail/ID.html (which carries its own sandbox CSP).
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "frame-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")


def e(value: Any) -> str:
    """Escaped text for HTML (attributes too)."""
    return html.escape("" if value is None else str(value), quote=True)


def when(epoch: Any) -> str:
    try:
        return time.strftime("%H:%M:%S", time.localtime(float(epoch)))
    except (TypeError, ValueError):
        return ""


def pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def table(headers: Iterable[str], rows: Iterable[Iterable[str]], caption: str = "", empty: str = "none") -> str:
    """A table; cells are HTML already (escape values with ``e``)."""
    rows = list(rows)
    head = "".join(f'<th scope="col">{e(h)}</th>' for h in headers)
    cap = f"<caption>{e(caption)}</caption>" if caption else ""
    if not rows:
        return f'<p class="empty">{e(empty)}</p>'
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def link(href: str, text: Any) -> str:
    return f'<a href="{e(href)}">{e(text)}</a>'


def page(title: str, view: str, body: str, live: dict | None = None) -> Response:
    """A whole page: navigation, the view's body, and what the script needs (``live``)."""
    current = ' aria-current="page"'
    nav = "".join(f'<li><a href="/_unkai/{path}"{current if path == view else ""}>{e(label)}</a></li>'
                  for path, label in VIEWS)
    data = e(json.dumps(live or {}))
    doc = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(title)} · unkai</title>
<link rel="stylesheet" href="/_unkai/ui/static/dashboard.css">
<script src="/_unkai/ui/static/dashboard.js" defer></script>
</head><body data-live="{data}">
<a class="skip" href="#main">Skip to content</a>
<header><a class="brand" href="/_unkai/">unkai</a>
<nav aria-label="Views"><ul>{nav}</ul></nav>
<p class="status" role="status" aria-live="polite" id="live-status">connecting…</p></header>
<main id="main" tabindex="-1"><h1>{e(title)}</h1>
{body}
</main>
<aside aria-labelledby="activity-title"><h2 id="activity-title">Activity</h2>
<ol id="activity" class="activity" aria-live="off"></ol></aside>
</body></html>"""
    return html_response(doc)


def html_response(doc: str, status: int = 200) -> Response:
    return Response(status, [("content-type", "text/html; charset=utf-8"), ("content-security-policy", CSP),
                             ("x-content-type-options", "nosniff"), ("referrer-policy", "no-referrer"),
                             ("cache-control", "no-store")], doc.encode())
