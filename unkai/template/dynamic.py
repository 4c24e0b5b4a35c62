"""CloudFormation's dynamic references, resolved when a resource is created:
``{{resolve:ssm:name[:version]}}``, ``{{resolve:ssm-secure:name[:version]}}`` and
``{{resolve:secretsmanager:secret-id[:SecretString[:json-key[:version-stage[:version-id]]]]}}``
(https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/dynamic-references.html).
The values are read through Parameter Store's ``parameter_value`` and Secrets Manager's
``secret_value`` contracts."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

_REFERENCE = re.compile(r"\{\{resolve:(ssm|ssm-secure|secretsmanager):([^}]*)\}\}")


def resolver(cloud: Any, account: str, region: str) -> Callable[[str], str]:
    """A function replacing every dynamic reference in a string (ValueError when one cannot be
    resolved, with CloudFormation's message)."""

    def one(m: re.Match) -> str:
        kind, rest = m.group(1), m.group(2)
        if kind in ("ssm", "ssm-secure"):
            ssm = cloud.services.get("ssm")
            value = ssm.parameter_value(account, region, rest) if ssm is not None else None
            if value is None:
                raise ValueError(f"Parameters: [{rest.split(':')[0]}] cannot be found.")
            return value
        parts = rest.split(":")
        if rest.startswith("arn:"):
            secret_id, parts = ":".join(parts[:7]), parts[7:]
        else:
            secret_id, parts = parts[0], parts[1:]
        parts += [""] * (4 - len(parts))
        field, key, stage, version = parts[:4]
        if field not in ("", "SecretString"):
            raise ValueError(f"Invalid dynamic reference: only SecretString is supported, not {field}.")
        sm = cloud.services.get("secretsmanager")
        found = sm.secret_value(account, region, secret_id, stage or None, version or None) if sm else None
        if found is None:
            raise ValueError("Secrets Manager can't find the specified secret.")
        text = found.get("SecretString")
        if text is None:
            raise ValueError("Dynamic references to binary secrets are not supported.")
        if key:
            try:
                doc = json.loads(text)
            except ValueError:
                raise ValueError(f"Secret {secret_id} is not JSON: its key {key} cannot be read.") from None
            if not isinstance(doc, dict) or key not in doc:
                raise ValueError(f"Could not find SecretString key {key} in secret {secret_id}.")
            value = doc[key]
            return value if isinstance(value, str) else json.dumps(value)
        return text

    return lambda text: _REFERENCE.sub(one, text)
