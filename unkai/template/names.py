"""CloudFormation's generated names, for resources whose template gives none.

CloudFormation names such a resource ``{stack}-{LogicalId}-{13 random characters}``,
cutting the stack and logical id to fit the resource type's own length limit; every
service's template provider uses this one function so names look alike everywhere.
"""

from __future__ import annotations

import secrets
import string


def physical_name(stack: str, logical_id: str, max_len: int, suffix: str = "") -> str:
    """CloudFormation's generated names: stack-LogicalId-RANDOM13, cut to fit."""
    rand = "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(13))
    room = max_len - len(suffix) - len(rand) - 2
    base = f"{stack}-{logical_id}"[:room]
    return f"{base}-{rand}{suffix}"
