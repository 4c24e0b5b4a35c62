"""The IoT model: the registry (things, thing types, thing groups), certificates, policies
and their attachments, topic rules, device shadows and retained messages.

Every row is keyed by account and region. Documents that AWS hands back as given (a
thing's attributes, a rule's payload, a shadow's state and metadata) are kept as JSON
text, so what a client wrote is what it reads back. Tables are shared by both API front
ends (``iot`` and ``iot-data``), which is why they all live here.
"""

from __future__ import annotations

import json
from typing import Any

MIGRATIONS = [
    """
    CREATE TABLE iot_things (
        account TEXT NOT NULL, region TEXT NOT NULL, name TEXT NOT NULL, id TEXT NOT NULL, arn TEXT NOT NULL,
        type_name TEXT, attributes TEXT NOT NULL DEFAULT '{}', version INTEGER NOT NULL DEFAULT 1,
        created REAL NOT NULL, PRIMARY KEY (account, region, name)
    );
    CREATE TABLE iot_thing_types (
        account TEXT NOT NULL, region TEXT NOT NULL, name TEXT NOT NULL, id TEXT NOT NULL, arn TEXT NOT NULL,
        properties TEXT NOT NULL DEFAULT '{}', deprecated INTEGER NOT NULL DEFAULT 0, deprecation_date REAL,
        created REAL NOT NULL, PRIMARY KEY (account, region, name)
    );
    CREATE TABLE iot_thing_groups (
        account TEXT NOT NULL, region TEXT NOT NULL, name TEXT NOT NULL, id TEXT NOT NULL, arn TEXT NOT NULL,
        parent TEXT, properties TEXT NOT NULL DEFAULT '{}', version INTEGER NOT NULL DEFAULT 1,
        created REAL NOT NULL, PRIMARY KEY (account, region, name)
    );
    CREATE TABLE iot_group_members (
        account TEXT NOT NULL, region TEXT NOT NULL, group_name TEXT NOT NULL, thing_name TEXT NOT NULL,
        PRIMARY KEY (account, region, group_name, thing_name)
    );
    CREATE TABLE iot_certificates (
        account TEXT NOT NULL, region TEXT NOT NULL, id TEXT NOT NULL, arn TEXT NOT NULL, pem TEXT NOT NULL,
        status TEXT NOT NULL, ca_id TEXT, mode TEXT NOT NULL DEFAULT 'DEFAULT', created REAL NOT NULL,
        updated REAL NOT NULL, not_before REAL, not_after REAL, PRIMARY KEY (account, region, id)
    );
    CREATE TABLE iot_ca_certificates (
        account TEXT NOT NULL, region TEXT NOT NULL, id TEXT NOT NULL, arn TEXT NOT NULL, pem TEXT NOT NULL,
        status TEXT NOT NULL, auto_registration TEXT NOT NULL DEFAULT 'DISABLE', config TEXT NOT NULL DEFAULT '{}',
        mode TEXT NOT NULL DEFAULT 'DEFAULT', created REAL NOT NULL, updated REAL NOT NULL,
        not_before REAL, not_after REAL, PRIMARY KEY (account, region, id)
    );
    CREATE TABLE iot_policies (
        account TEXT NOT NULL, region TEXT NOT NULL, name TEXT NOT NULL, arn TEXT NOT NULL,
        default_version TEXT NOT NULL, next_version INTEGER NOT NULL DEFAULT 2, created REAL NOT NULL,
        updated REAL NOT NULL, PRIMARY KEY (account, region, name)
    );
    CREATE TABLE iot_policy_versions (
        account TEXT NOT NULL, region TEXT NOT NULL, policy TEXT NOT NULL, version TEXT NOT NULL,
        document TEXT NOT NULL, created REAL NOT NULL, PRIMARY KEY (account, region, policy, version)
    );
    CREATE TABLE iot_policy_targets (
        account TEXT NOT NULL, region TEXT NOT NULL, policy TEXT NOT NULL, target TEXT NOT NULL,
        PRIMARY KEY (account, region, policy, target)
    );
    CREATE TABLE iot_thing_principals (
        account TEXT NOT NULL, region TEXT NOT NULL, thing TEXT NOT NULL, principal TEXT NOT NULL,
        PRIMARY KEY (account, region, thing, principal)
    );
    CREATE TABLE iot_rules (
        account TEXT NOT NULL, region TEXT NOT NULL, name TEXT NOT NULL, arn TEXT NOT NULL,
        payload TEXT NOT NULL, created REAL NOT NULL, PRIMARY KEY (account, region, name)
    );
    CREATE TABLE iot_tags (
        arn TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (arn, key)
    );
    CREATE TABLE iot_shadows (
        account TEXT NOT NULL, region TEXT NOT NULL, thing TEXT NOT NULL, name TEXT NOT NULL,
        state TEXT NOT NULL, metadata TEXT NOT NULL, version INTEGER NOT NULL, updated REAL NOT NULL,
        PRIMARY KEY (account, region, thing, name)
    );
    CREATE TABLE iot_retained (
        account TEXT NOT NULL, region TEXT NOT NULL, topic TEXT NOT NULL, payload BLOB NOT NULL,
        qos INTEGER NOT NULL, updated REAL NOT NULL, PRIMARY KEY (account, region, topic)
    );
    """,
    """
    CREATE TABLE iot_jobs (
        account TEXT NOT NULL, region TEXT NOT NULL, job_id TEXT NOT NULL, arn TEXT NOT NULL,
        document TEXT NOT NULL, description TEXT NOT NULL DEFAULT '', targets TEXT NOT NULL,
        selection TEXT NOT NULL, status TEXT NOT NULL, comment TEXT, reason_code TEXT,
        created REAL NOT NULL, updated REAL NOT NULL, completed REAL, PRIMARY KEY (account, region, job_id)
    );
    CREATE TABLE iot_job_executions (
        account TEXT NOT NULL, region TEXT NOT NULL, job_id TEXT NOT NULL, thing TEXT NOT NULL,
        status TEXT NOT NULL, execution_number INTEGER NOT NULL, version INTEGER NOT NULL DEFAULT 1,
        details TEXT NOT NULL DEFAULT '{}', queued REAL NOT NULL, started REAL, updated REAL NOT NULL,
        PRIMARY KEY (account, region, job_id, thing)
    );
    """,
    # fleet indexing and dynamic thing groups (indexing.py); connectivity from presence events
    """
    ALTER TABLE iot_thing_groups ADD COLUMN query TEXT;
    ALTER TABLE iot_thing_groups ADD COLUMN query_version TEXT;
    CREATE TABLE iot_indexing (
        account TEXT NOT NULL, region TEXT NOT NULL, config TEXT NOT NULL, PRIMARY KEY (account, region)
    );
    CREATE TABLE iot_connectivity (
        account TEXT NOT NULL, region TEXT NOT NULL, client_id TEXT NOT NULL, connected INTEGER NOT NULL,
        timestamp REAL NOT NULL, reason TEXT, PRIMARY KEY (account, region, client_id)
    );
""",
    # MQTT 5: a retained message keeps its properties (properties.Properties.to_json) and expires
    """
    ALTER TABLE iot_retained ADD COLUMN properties TEXT;
    ALTER TABLE iot_retained ADD COLUMN expires REAL;
""",
    # custom authorizers (authorizers.py)
    """
    CREATE TABLE iot_authorizers (
        account TEXT NOT NULL, region TEXT NOT NULL, name TEXT NOT NULL, arn TEXT NOT NULL,
        function_arn TEXT NOT NULL, token_key_name TEXT, public_keys TEXT NOT NULL, status TEXT NOT NULL,
        signing_disabled INTEGER NOT NULL, caching INTEGER NOT NULL, created REAL NOT NULL, updated REAL NOT NULL,
        PRIMARY KEY (account, region, name)
    );
    CREATE TABLE iot_default_authorizer (
        account TEXT NOT NULL, region TEXT NOT NULL, name TEXT NOT NULL, PRIMARY KEY (account, region)
    );
""",
]


def loads(text: str | None, default: Any = None) -> Any:
    return json.loads(text) if text else ({} if default is None else default)


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def arn(region: str, account: str, kind: str, name: str) -> str:
    return f"arn:aws:iot:{region}:{account}:{kind}/{name}"


def page(key: str, items: list, params: dict, default: int = 25) -> dict[str, Any]:
    """One page of ``items`` under ``key`` with IoT's ``nextToken`` (an opaque offset)."""
    token = params.get("nextToken") or params.get("marker")
    size = int(params.get("maxResults") or params.get("pageSize") or default)
    start = int(token) if str(token or "").isdigit() else 0
    out: dict[str, Any] = {key: items[start:start + size]}
    if start + size < len(items):
        out["nextToken"] = str(start + size)
    return out
