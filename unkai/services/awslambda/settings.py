"""Function settings Lambda keeps but unkai has nothing to apply them to: recursive loop
detection (Get/PutFunctionRecursionConfig), runtime management (Get/PutRuntimeManagementConfig)
and provisioned concurrency (Put/Get/Delete/ListProvisionedConcurrencyConfigs; every unkai
environment is warm already). They are stored and answered as AWS answers them, so clients and
the Terraform provider read back what they wrote."""

from __future__ import annotations

import json
from typing import Any

from unkai.protocol import ServiceError
from unkai.services import RequestContext
from unkai.services.awslambda import functions as fn

MIGRATION = """
CREATE TABLE lambda_settings (
    function_id INTEGER NOT NULL, kind TEXT NOT NULL, qualifier TEXT NOT NULL DEFAULT '', value TEXT NOT NULL,
    PRIMARY KEY (function_id, kind, qualifier)
);
"""


class SettingsOps:
    """Mixed into the Lambda service."""

    store: Any
    clock: Any

    def _function(self, ctx: RequestContext, text: str, qualifier: str | None = None) -> tuple[Any, tuple]: ...
    def resolve(self, account: str, region: str, text: str, qualifier: str | None = None) -> Any: ...

    def _setting(self, function_id: int, kind: str, qualifier: str = "") -> Any:
        row = self.store.one("SELECT value FROM lambda_settings WHERE function_id=? AND kind=? AND qualifier=?",
                             (function_id, kind, qualifier))
        return json.loads(row[0]) if row else None

    def _set_setting(self, function_id: int, kind: str, value: Any, qualifier: str = "") -> None:
        self.store.execute("INSERT OR REPLACE INTO lambda_settings(function_id, kind, qualifier, value) "
                           "VALUES(?,?,?,?)", (function_id, kind, qualifier, json.dumps(value)))

    def forget_settings(self, function_id: int) -> None:
        """DeleteFunction: the settings go with the function."""
        self.store.execute("DELETE FROM lambda_settings WHERE function_id=?", (function_id,))

    # -- recursive loop detection ------------------------------------------------------

    def get_function_recursion_config(self, ctx: RequestContext, params: dict) -> dict:
        _, row = self._function(ctx, params["FunctionName"])
        return {"RecursiveLoop": self._setting(row[0], "recursion") or "Terminate"}

    def put_function_recursion_config(self, ctx: RequestContext, params: dict) -> dict:
        _, row = self._function(ctx, params["FunctionName"])
        self._set_setting(row[0], "recursion", params["RecursiveLoop"])
        return {"RecursiveLoop": params["RecursiveLoop"]}

    # -- runtime management ------------------------------------------------------------

    def _qualified_arn(self, ctx: RequestContext, params: dict) -> tuple[int, str, str]:
        target = self.resolve(ctx.account, ctx.region, params["FunctionName"], params.get("Qualifier"))
        qualifier = params.get("Qualifier") or ""
        arn = fn.function_arn(target.region, target.account, target.name, qualifier or None)
        return target.function_id, qualifier, arn

    def get_runtime_management_config(self, ctx: RequestContext, params: dict) -> dict:
        fid, qualifier, arn = self._qualified_arn(ctx, params)
        stored = self._setting(fid, "runtime", qualifier) or {"UpdateRuntimeOn": "Auto"}
        return dict(stored, FunctionArn=arn)

    def put_runtime_management_config(self, ctx: RequestContext, params: dict) -> dict:
        fid, qualifier, arn = self._qualified_arn(ctx, params)
        mode = params["UpdateRuntimeOn"]
        if mode == "Manual" and not params.get("RuntimeVersionArn"):
            raise ServiceError("InvalidParameterValueException", "RuntimeVersionArn must be specified when "
                               "UpdateRuntimeOn is set to Manual.", Type="User")
        if mode != "Manual" and params.get("RuntimeVersionArn"):
            raise ServiceError("InvalidParameterValueException", "RuntimeVersionArn can only be specified when "
                               "UpdateRuntimeOn is set to Manual.", Type="User")
        stored = {"UpdateRuntimeOn": mode}
        if params.get("RuntimeVersionArn"):
            stored["RuntimeVersionArn"] = params["RuntimeVersionArn"]
        self._set_setting(fid, "runtime", stored, qualifier)
        return dict(stored, FunctionArn=arn)

    # -- provisioned concurrency -------------------------------------------------------

    def _provisioned_target(self, ctx: RequestContext, params: dict) -> tuple[int, str, str]:
        qualifier = params.get("Qualifier") or ""
        if qualifier == "$LATEST":
            raise ServiceError("InvalidParameterValueException", "Provisioned Concurrency Configs cannot be applied "
                               "to unpublished function versions.", Type="User")
        return self._qualified_arn(ctx, params)

    def put_provisioned_concurrency_config(self, ctx: RequestContext, params: dict) -> dict:
        fid, qualifier, _ = self._provisioned_target(ctx, params)
        count = params["ProvisionedConcurrentExecutions"]
        now = fn.timestamp(self.clock.now())
        self._set_setting(fid, "provisioned", {"count": count, "modified": now}, qualifier)
        return {"RequestedProvisionedConcurrentExecutions": count, "AllocatedProvisionedConcurrentExecutions": 0,
                "Status": "IN_PROGRESS", "LastModified": now}

    @staticmethod
    def _provisioned(value: dict) -> dict:
        # unkai's environments are warm at once: what was requested is allocated
        return {"RequestedProvisionedConcurrentExecutions": value["count"],
                "AvailableProvisionedConcurrentExecutions": value["count"],
                "AllocatedProvisionedConcurrentExecutions": value["count"], "Status": "READY",
                "LastModified": value["modified"]}

    def get_provisioned_concurrency_config(self, ctx: RequestContext, params: dict) -> dict:
        fid, qualifier, _ = self._provisioned_target(ctx, params)
        value = self._setting(fid, "provisioned", qualifier)
        if value is None:
            raise ServiceError("ProvisionedConcurrencyConfigNotFoundException", "No Provisioned Concurrency Config "
                               "found for this function", Type="User")
        return self._provisioned(value)

    def delete_provisioned_concurrency_config(self, ctx: RequestContext, params: dict) -> dict:
        fid, qualifier, _ = self._provisioned_target(ctx, params)
        self.store.execute("DELETE FROM lambda_settings WHERE function_id=? AND kind='provisioned' AND qualifier=?",
                           (fid, qualifier))
        return {}

    def list_provisioned_concurrency_configs(self, ctx: RequestContext, params: dict) -> dict:
        _, row = self._function(ctx, params["FunctionName"])
        config = json.loads(row[1])
        base = config["FunctionArn"]
        rows = self.store.all("SELECT qualifier, value FROM lambda_settings WHERE function_id=? AND "
                              "kind='provisioned' ORDER BY qualifier", (row[0],))
        return {"ProvisionedConcurrencyConfigs": [dict(self._provisioned(json.loads(v)), FunctionArn=f"{base}:{q}")
                                                  for q, v in rows]}
