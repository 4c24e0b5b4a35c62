"""EventBridge's rows: event buses, rules and their targets, tags, archives and their
events, replays, connections and API destinations, and the helpers every operation
module shares (bus names from names or ARNs, ARNs, paging).

The default bus has no row: it always exists, as on AWS, so a fresh account can put
rules on it. A custom bus is a row in ``events_buses``; its policy (PutPermission)
is stored as the JSON document DescribeEventBus returns. Tags live in one table keyed
by ARN, so TagResource works the same on a rule, a bus, a connection or an archive."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

from unkai.paging import paged

MIGRATIONS = [
    """
    CREATE TABLE events_rules (
        id INTEGER PRIMARY KEY,
        account TEXT NOT NULL,
        region TEXT NOT NULL,
        bus TEXT NOT NULL,
        name TEXT NOT NULL,
        schedule TEXT,
        pattern TEXT,
        state TEXT NOT NULL,
        description TEXT,
        role_arn TEXT,
        managed_by TEXT,
        created REAL NOT NULL,
        tags TEXT NOT NULL DEFAULT '{}',
        UNIQUE(account, region, bus, name)
    );
    CREATE TABLE events_targets (
        rule_id INTEGER NOT NULL REFERENCES events_rules(id) ON DELETE CASCADE,
        target_id TEXT NOT NULL,
        target TEXT NOT NULL,
        seq INTEGER NOT NULL,
        PRIMARY KEY (rule_id, target_id)
    );
    """,
    """
    CREATE TABLE events_buses (
        account TEXT NOT NULL,
        region TEXT NOT NULL,
        name TEXT NOT NULL,
        config TEXT NOT NULL,
        policy TEXT,
        created REAL NOT NULL,
        modified REAL NOT NULL,
        PRIMARY KEY (account, region, name)
    );
    CREATE TABLE events_tags (
        arn TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (arn, key)
    );
    INSERT INTO events_tags(arn, key, value)
        SELECT 'arn:aws:events:' || r.region || ':' || r.account || ':rule/' ||
               CASE WHEN r.bus = 'default' THEN '' ELSE r.bus || '/' END || r.name, t.key, t.value
        FROM events_rules r, json_each(r.tags) t;
    CREATE TABLE events_archives (
        id INTEGER PRIMARY KEY,
        account TEXT NOT NULL,
        region TEXT NOT NULL,
        name TEXT NOT NULL,
        source_arn TEXT NOT NULL,
        config TEXT NOT NULL,
        created REAL NOT NULL,
        UNIQUE(account, region, name)
    );
    CREATE TABLE events_archived (
        id INTEGER PRIMARY KEY,
        archive_id INTEGER NOT NULL REFERENCES events_archives(id) ON DELETE CASCADE,
        at REAL NOT NULL,
        event TEXT NOT NULL
    );
    CREATE INDEX events_archived_at ON events_archived(archive_id, at, id);
    CREATE TABLE events_replays (
        account TEXT NOT NULL,
        region TEXT NOT NULL,
        name TEXT NOT NULL,
        spec TEXT NOT NULL,
        state TEXT NOT NULL,
        reason TEXT,
        started REAL NOT NULL,
        ended REAL,
        last_replayed REAL,
        cursor INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (account, region, name)
    );
    CREATE TABLE events_connections (
        account TEXT NOT NULL,
        region TEXT NOT NULL,
        name TEXT NOT NULL,
        arn TEXT NOT NULL UNIQUE,
        config TEXT NOT NULL,
        state TEXT NOT NULL,
        created REAL NOT NULL,
        modified REAL NOT NULL,
        authorized REAL,
        PRIMARY KEY (account, region, name)
    );
    CREATE TABLE events_destinations (
        account TEXT NOT NULL,
        region TEXT NOT NULL,
        name TEXT NOT NULL,
        arn TEXT NOT NULL UNIQUE,
        config TEXT NOT NULL,
        created REAL NOT NULL,
        modified REAL NOT NULL,
        PRIMARY KEY (account, region, name)
    );
    """,
    # PutEvents keeps each bus's parsed rules and targets in memory while this number is
    # unchanged. Every write to rules or targets sets a new random one (never a counter: a
    # rolled-back write must not leave a number a later write could reach again).
    """
    CREATE TABLE events_generation (id INTEGER PRIMARY KEY CHECK (id = 0), n INTEGER NOT NULL);
    INSERT INTO events_generation(id, n) VALUES (0, 0);
    CREATE TRIGGER events_rules_ins AFTER INSERT ON events_rules
        BEGIN UPDATE events_generation SET n = random(); END;
    CREATE TRIGGER events_rules_upd AFTER UPDATE ON events_rules
        BEGIN UPDATE events_generation SET n = random(); END;
    CREATE TRIGGER events_rules_del AFTER DELETE ON events_rules
        BEGIN UPDATE events_generation SET n = random(); END;
    CREATE TRIGGER events_targets_ins AFTER INSERT ON events_targets
        BEGIN UPDATE events_generation SET n = random(); END;
    CREATE TRIGGER events_targets_upd AFTER UPDATE ON events_targets
        BEGIN UPDATE events_generation SET n = random(); END;
    CREATE TRIGGER events_targets_del AFTER DELETE ON events_targets
        BEGIN UPDATE events_generation SET n = random(); END;
    """,
]

DEFAULT_BUS = "default"
MAX_TARGETS = 5
ARCHIVE_MANAGER = "prod.vhs.events.aws.internal"  # ManagedBy of an archive's rule, as AWS lists it


@dataclass
class Rule:
    id: int
    account: str
    region: str
    bus: str
    name: str
    schedule: str | None
    pattern: str | None
    state: str
    description: str | None
    role_arn: str | None
    managed_by: str | None
    created: float

    @cached_property  # a Rule is a row as read, never changed in place
    def arn(self) -> str:
        return rule_arn(self.region, self.account, self.bus, self.name)


RULE_COLUMNS = "id, account, region, bus, name, schedule, pattern, state, description, role_arn, managed_by, created"


def rule_arn(region: str, account: str, bus: str, name: str) -> str:
    path = name if bus == DEFAULT_BUS else f"{bus}/{name}"
    return f"arn:aws:events:{region}:{account}:rule/{path}"


def bus_arn(region: str, account: str, bus: str) -> str:
    return f"arn:aws:events:{region}:{account}:event-bus/{bus}"


def bus_name(value: str | None) -> str:
    """A bus's name from a name or an ARN (operations accept either); the default bus when none."""
    value = value or DEFAULT_BUS
    return value.rsplit("/", 1)[-1] if value.startswith("arn:") else value


def like(prefix: str | None) -> str:
    escaped = (prefix or "").replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


def page(key: str, items: list, params: dict) -> dict[str, Any]:
    return paged(key, items, params.get("NextToken"), params.get("Limit"))
