"""CloudWatch Logs resource policies (PutResourcePolicy, DescribeResourcePolicies,
DeleteResourcePolicy) and log groups' data protection policies (Put/Get/Delete
DataProtectionPolicy): stored and answered as AWS answers them, not enforced or applied (unkai
lets every local service write logs, and masks nothing)."""

from __future__ import annotations

import json
from typing import Any

from unkai.protocol import ServiceError
from unkai.services import RequestContext

MIGRATION = """
CREATE TABLE logs_policies (
    account TEXT NOT NULL, region TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL,
    document TEXT NOT NULL, updated INTEGER NOT NULL,
    PRIMARY KEY (account, region, kind, name)
);
"""

MAX_RESOURCE_POLICIES = 10  # AWS's quota per account and region


def _invalid(message: str) -> ServiceError:
    return ServiceError("InvalidParameterException", message)


def _check_document(text: str) -> None:
    try:
        json.loads(text)
    except ValueError:
        raise _invalid("Policy document is not valid JSON") from None


class PolicyOps:
    """Mixed into the Logs service."""

    store: Any
    clock: Any

    def _group(self, ctx: RequestContext, params: dict, required: bool = True) -> tuple: ...

    def _now_ms(self) -> int:
        return int(self.clock.now() * 1000)

    # -- resource policies -------------------------------------------------------------

    def put_resource_policy(self, ctx: RequestContext, params: dict) -> dict:
        name, document = params.get("policyName"), params.get("policyDocument")
        if not name or not document:
            raise _invalid("policyName and policyDocument are required.")
        _check_document(document)
        exists = self.store.one("SELECT 1 FROM logs_policies WHERE account=? AND region=? AND kind='resource' AND "
                                "name=?", (ctx.account, ctx.region, name))
        count = self.store.one("SELECT COUNT(*) FROM logs_policies WHERE account=? AND region=? AND "
                               "kind='resource'", (ctx.account, ctx.region))[0]
        if not exists and count >= MAX_RESOURCE_POLICIES:
            raise ServiceError("LimitExceededException", "Resource limit exceeded.")
        now = self._now_ms()
        self.store.execute("INSERT OR REPLACE INTO logs_policies(account, region, kind, name, document, updated) "
                           "VALUES(?,?,'resource',?,?,?)", (ctx.account, ctx.region, name, document, now))
        return {"resourcePolicy": {"policyName": name, "policyDocument": document, "lastUpdatedTime": now}}

    def describe_resource_policies(self, ctx: RequestContext, params: dict) -> dict:
        rows = self.store.all("SELECT name, document, updated FROM logs_policies WHERE account=? AND region=? AND "
                              "kind='resource' ORDER BY name", (ctx.account, ctx.region))
        return {"resourcePolicies": [{"policyName": n, "policyDocument": d, "lastUpdatedTime": u}
                                     for n, d, u in rows]}

    def delete_resource_policy(self, ctx: RequestContext, params: dict) -> dict:
        name = params.get("policyName") or ""
        cur = self.store.execute("DELETE FROM logs_policies WHERE account=? AND region=? AND kind='resource' AND "
                                 "name=?", (ctx.account, ctx.region, name))
        if cur.rowcount == 0:
            raise ServiceError("ResourceNotFoundException", f"Policy with name [{name}] does not exist")
        return {}

    # -- data protection policies ------------------------------------------------------

    def put_data_protection_policy(self, ctx: RequestContext, params: dict) -> dict:
        row = self._group(ctx, params)
        _check_document(params["policyDocument"])
        now = self._now_ms()
        self.store.execute("INSERT OR REPLACE INTO logs_policies(account, region, kind, name, document, updated) "
                           "VALUES(?,?,'data-protection',?,?,?)",
                           (ctx.account, ctx.region, row[1], params["policyDocument"], now))
        return {"logGroupIdentifier": params["logGroupIdentifier"], "policyDocument": params["policyDocument"],
                "lastUpdatedTime": now}

    def get_data_protection_policy(self, ctx: RequestContext, params: dict) -> dict:
        row = self._group(ctx, params)
        found = self.store.one("SELECT document, updated FROM logs_policies WHERE account=? AND region=? AND "
                               "kind='data-protection' AND name=?", (ctx.account, ctx.region, row[1]))
        out: dict[str, Any] = {"logGroupIdentifier": params["logGroupIdentifier"]}
        if found:
            out.update(policyDocument=found[0], lastUpdatedTime=found[1])
        return out

    def delete_data_protection_policy(self, ctx: RequestContext, params: dict) -> dict:
        row = self._group(ctx, params)
        cur = self.store.execute("DELETE FROM logs_policies WHERE account=? AND region=? AND kind='data-protection' "
                                 "AND name=?", (ctx.account, ctx.region, row[1]))
        if cur.rowcount == 0:
            raise ServiceError("ResourceNotFoundException", "The specified data protection policy does not exist.")
        return {}
