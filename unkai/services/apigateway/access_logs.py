"""Access logs: one line per request (or WebSocket connect, message and disconnect) in
the stage's configured format, ``$context`` variables filled in, appended to the
destination log group in unkai's CloudWatch Logs store."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

log = logging.getLogger("unkai.apigateway")

_VAR = re.compile(r"\$(?:context|stageVariables)\.[A-Za-z0-9_.-]*[A-Za-z0-9_-]|\$context\.[A-Za-z0-9_]+")


def render(fmt: str, context: dict[str, Any], stage_variables: dict[str, str] | None = None) -> str:
    """The format with each ``$context.x.y`` replaced by its value ('-' when unset)."""

    def value(m: re.Match) -> str:
        name = m.group(0)
        root: Any = stage_variables or {} if name.startswith("$stageVariables.") else context
        for part in name.split(".")[1:]:
            root = root.get(part) if isinstance(root, dict) else None
            if root is None:
                return "-"
        if isinstance(root, (dict, list)):
            return json.dumps(root)
        if isinstance(root, bool):
            return "true" if root else "false"
        return str(root)

    return _VAR.sub(value, fmt)


def group_name(destination_arn: str) -> str | None:
    """arn:aws:logs:region:account:log-group:NAME[:*] -> NAME."""
    parts = destination_arn.split(":")
    if len(parts) >= 7 and parts[2] == "logs" and parts[5] == "log-group":
        return parts[6]
    return None


def write(cloud: Any, account: str, region: str, settings: dict | None, context: dict[str, Any],
          stage_variables: dict[str, str] | None, api_id: str, stage: str) -> None:
    """Append the access-log line for one request when the stage logs access."""
    if not settings:
        return
    fmt = settings.get("format") or settings.get("Format")
    arn = settings.get("destinationArn") or settings.get("DestinationArn")
    group = group_name(arn or "")
    logs = cloud.services.get("logs")
    if not fmt or not group or logs is None or not hasattr(logs, "append"):
        return
    line = render(fmt, context, stage_variables)
    try:
        logs.append(account, arn.split(":")[3] or region, group, f"{api_id}_{stage}",
                    [(int(cloud.clock.now() * 1000), line)])
    except Exception:  # an access log must never fail the request
        log.exception("cannot write the access log of %s/%s", api_id, stage)
