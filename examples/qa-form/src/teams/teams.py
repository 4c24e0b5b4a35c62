"""A small client for Microsoft Teams incoming webhooks (MessageCard format)."""

import json
import os
import urllib.request


class Teams:
    def __init__(self, webhook_url=None, timeout=10):
        self.webhook_url = webhook_url or os.environ["TEAMS_WEBHOOK_URL"]
        self.timeout = timeout

    def send_message(self, title, text):
        card = {
            "@type": "MessageCard",
            "@context": "https://schema.org/extensions",
            "summary": title,
            "title": title,
            "text": text,
        }
        request = urllib.request.Request(
            self.webhook_url,
            data=json.dumps(card, ensure_ascii=False).encode("utf-8"),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            return response.read().decode("utf-8", "replace")
