"""Open and click tracking and the list-management unsubscribe link: what SES adds to a
message's HTML and headers at send time, and what happens when a reader's mail client
fetches the pixel, follows a link or unsubscribes.

As on AWS ("Amazon SES event publishing", "Using subscription management"): when the
message's configuration set has an enabled event destination for Open or Click, SES
appends a 1x1 pixel to the HTML body and points every ``http(s)`` link at its own
tracking domain (``ses:no-track`` on an anchor leaves that link alone; ``ses:tags="k:v;..."``
adds link tags to its Click events); the tracking domain redirects to the original link.
A send with ``ListManagementOptions`` gets ``List-Unsubscribe`` and ``List-Unsubscribe-Post``
headers, and ``{{amazonSESUnsubscribeUrl}}`` in its body becomes the same link. Here the
tracking domain is unkai's own endpoint (``/_unkai/ses/open|click|unsubscribe/...``),
public routes, as AWS's are; each message's event payload is kept in ``ses_tracked`` so a
later open, click or unsubscribe reports the events with the message's ``mail`` object.
"""

from __future__ import annotations

import base64
import html as htmllib
import json
import re
from typing import TYPE_CHECKING, Any

from unkai.http import Request, Response
from unkai.services.ses.contacts import ContactList

if TYPE_CHECKING:
    from unkai.services.ses.service import SES

UNSUBSCRIBE_PLACEHOLDER = "{{amazonSESUnsubscribeUrl}}"
_ANCHOR = re.compile(r"<a\b([^>]*)>", re.IGNORECASE)
_HREF = re.compile(r"""\bhref\s*=\s*(["'])(https?://[^"']+)\1""", re.IGNORECASE)
_SES_ATTR = re.compile(r"""\s+ses:(?:no-track|tags)(?:\s*=\s*(["'])[^"']*\1)?""", re.IGNORECASE)
_TAGS = re.compile(r"""\bses:tags\s*=\s*(["'])([^"']*)\1""", re.IGNORECASE)
_NO_TRACK = re.compile(r"\bses:no-track\b", re.IGNORECASE)
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


def rewrite(html: str | None, text: str | None, open_url: str | None, click_base: str | None,
            unsubscribe: str | None) -> tuple[str | None, str | None, list[dict[str, Any]]]:
    """The HTML and text bodies as sent, and the tracked links (``{"link", "tags"}``, in
    the order of their ``{click_base}/{n}`` URLs); None for ``open_url``/``click_base``
    leaves opens/clicks untracked."""
    links: list[dict[str, Any]] = []
    if unsubscribe:
        text = text.replace(UNSUBSCRIBE_PLACEHOLDER, unsubscribe) if text is not None else None
        html = html.replace(UNSUBSCRIBE_PLACEHOLDER, htmllib.escape(unsubscribe)) if html is not None else None
    if html is None:
        return html, text, links

    def anchor(m: re.Match) -> str:
        attrs = m.group(1)
        href = _HREF.search(attrs)
        if not click_base or href is None or _NO_TRACK.search(attrs) or (unsubscribe and
                                                                         href.group(2) == htmllib.escape(unsubscribe)):
            return "<a" + _SES_ATTR.sub("", attrs) + ">"
        tags: dict[str, list[str]] = {}
        tag_attr = _TAGS.search(attrs)
        for pair in (tag_attr.group(2).split(";") if tag_attr else []):
            key, _, value = pair.partition(":")
            if key.strip():
                tags.setdefault(key.strip(), []).append(value.strip())
        links.append({"link": htmllib.unescape(href.group(2)), "tags": tags})
        url = f"{click_base}/{len(links) - 1}"
        attrs = attrs[:href.start(2)] + url + attrs[href.end(2):]
        return "<a" + _SES_ATTR.sub("", attrs) + ">"

    html = _ANCHOR.sub(anchor, html)
    if open_url:
        pixel = f'<img alt="" src="{open_url}" style="display: none; width: 1px; height: 1px;">'
        at = html.lower().rfind("</body>")
        html = html[:at] + pixel + html[at:] if at >= 0 else html + pixel
    return html, text, links


def register(ses: "SES") -> None:
    """The public routes a reader's mail client reaches."""

    def tracked(mid: str) -> dict[str, Any] | None:
        row = ses.store.one("SELECT payload FROM ses_tracked WHERE message_id=?", (mid,))
        return json.loads(row[0]) if row else None

    def who(request: Request) -> dict[str, str]:
        return {"ipAddress": request.client, "userAgent": request.headers.get("user-agent") or "",
                "timestamp": _iso(ses.clock.now())}

    async def opened(request: Request, m: re.Match) -> Response:
        with ses.store.transaction():
            kept = tracked(m.group(1))
            if kept is not None:
                ses.feedback.event(kept["feedback"], "OPEN", {"open": who(request)})
        return Response(200, [("content-type", "image/gif"), ("cache-control", "no-cache")], PIXEL)

    async def clicked(request: Request, m: re.Match) -> Response:
        with ses.store.transaction():
            kept = tracked(m.group(1))
            links = kept["links"] if kept else []
            n = int(m.group(2))
            if n >= len(links):
                return _page("Link not found", "This link is not valid.", 404)
            ses.feedback.event(kept["feedback"], "CLICK", {"click": dict(
                who(request), link=links[n]["link"], linkTags=links[n]["tags"])})
        return Response(302, [("location", links[n]["link"])], b"")

    async def unsubscribe(request: Request, m: re.Match) -> Response:
        kept = tracked(m.group(1))
        if kept is None or not kept.get("list"):
            return _page("Unsubscribe", "This unsubscribe link is not valid.", 404)
        options, email = kept["list"], kept["recipient"]
        topic = options.get("TopicName")
        what = f"the topic {topic}" if topic else f"all mail from the list {options['ContactListName']}"
        if request.method != "POST":
            # a GET only shows the choice: link scanners must not unsubscribe anyone
            return _page("Unsubscribe", f"Unsubscribe {htmllib.escape(email)} from {htmllib.escape(what)}?"
                         "<form method='post' action='?via=link'><button type='submit' name='List-Unsubscribe' value='One-Click'>"
                         "Unsubscribe</button></form>")
        await request.body(limit=4096)
        with ses.store.transaction():
            p = kept["feedback"]
            account, region = p["account"], p["region"]
            contact_list = ses._contacts.get_list(account, region, options["ContactListName"])
            if contact_list is None:
                return _page("Unsubscribe", "This list no longer exists.", 404)
            before = ses._contacts.get(account, region, contact_list.name, email)
            old = _preferences(before, contact_list)
            prefs = [{"TopicName": k, "SubscriptionStatus": v} for k, v in (before.preferences if before else {})
                     .items() if k != topic]
            if topic:
                prefs.append({"TopicName": topic, "SubscriptionStatus": "OPT_OUT"})
            after = ses._contacts.put(account, region, contact_list, email, prefs,
                                      True if not topic else None, None, ses.clock.now(), create=before is None)
            ses.feedback.event(p, "SUBSCRIPTION", {"subscription": {
                "contactList": contact_list.name, "timestamp": _iso(ses.clock.now()),
                # the page's own form says so; a mail client's one-click POST (RFC 8058) comes bare
                "source": "UnsubscribeLink" if request.query_dict().get("via") == "link" else "UnsubscribeHeader",
                "newTopicPreferences": _preferences(after, contact_list), "oldTopicPreferences": old}})
        return _page("Unsubscribed", f"{htmllib.escape(email)} is unsubscribed from {htmllib.escape(what)}.")

    route = ses.cloud.gateway.internal.route
    route("GET", r"/_unkai/ses/open/([\w-]+)", opened, access="public")
    route("GET", r"/_unkai/ses/click/([\w-]+)/(\d{1,6})", clicked, access="public")
    route("*", r"/_unkai/ses/unsubscribe/([\w-]+)", unsubscribe, access="public")


def _preferences(contact: Any, contact_list: ContactList) -> dict[str, Any]:
    """A Subscription event's ``newTopicPreferences`` / ``oldTopicPreferences``."""
    explicit = contact.preferences if contact else {}
    return {"unsubscribeAll": bool(contact and contact.unsubscribe_all),
            "topicSubscriptionStatus": [{"topicName": k, "subscriptionStatus": _camel(v)}
                                        for k, v in explicit.items()],
            "topicDefaultSubscriptionStatus": [{"topicName": t["TopicName"],
                                                "subscriptionStatus": _camel(t["DefaultSubscriptionStatus"])}
                                               for t in contact_list.topics]}


def _camel(status: str) -> str:
    return {"OPT_IN": "OptIn", "OPT_OUT": "OptOut"}.get(status, status)


def _iso(t: float) -> str:
    from unkai.services.ses.sending import _iso as iso

    return iso(t)


def _page(title: str, body: str, status: int = 200) -> Response:
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{htmllib.escape(title)}</title></head>"
            f"<body><h1>{htmllib.escape(title)}</h1><p>{body}</p></body></html>")
    return Response(status, [("content-type", "text/html; charset=utf-8")], page.encode())
