"""The Lambda API: functions, versions and aliases, concurrency, permissions, event
invoke configs, layers, event source mappings, function URLs, and Invoke.

``invoke(function, payload, *, region, ...)`` is the in-process contract other
services (API Gateway, the event-source pollers, asynchronous invocation) call.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import logging
import os
import re
import uuid
from dataclasses import dataclass
from collections.abc import AsyncIterator
from typing import Any

from unkai.feed import TRACE, TRIGGER, new_trace, triggered_by
from unkai.protocol import ServiceError
from unkai.runtime import EnvironmentSpec, Runtime
from unkai.services import RequestContext, Service
from unkai.services.awslambda import functions as fn
from unkai.services.awslambda.asynchronous import AsyncInvocations
from unkai.services.awslambda.debugging import Debugging
from unkai.services.awslambda.durable import MIGRATION as DURABLE_MIGRATION
from unkai.services.awslambda.durable import MIGRATION_ASYNC as DURABLE_ASYNC_MIGRATION
from unkai.services.awslambda.durable import MIGRATION_PAUSE as DURABLE_PAUSE_MIGRATION
from unkai.services.awslambda.durable import DurableExecutions
from unkai.services.awslambda.functions import DEFER_RECORDS, invalid, not_found, parse_name
from unkai.services.awslambda.settings import MIGRATION as SETTINGS_MIGRATION
from unkai.services.awslambda.settings import SettingsOps

log = logging.getLogger(__name__)

MIGRATIONS = [
    """
    CREATE TABLE lambda_functions (
        id INTEGER PRIMARY KEY,
        account TEXT NOT NULL, region TEXT NOT NULL, name TEXT NOT NULL,
        config TEXT NOT NULL, code TEXT NOT NULL, tags TEXT NOT NULL DEFAULT '{}',
        reserved INTEGER, policy TEXT, next_version INTEGER NOT NULL DEFAULT 1,
        created REAL NOT NULL,
        UNIQUE(account, region, name)
    );
    CREATE TABLE lambda_versions (
        function_id INTEGER NOT NULL REFERENCES lambda_functions(id) ON DELETE CASCADE,
        version TEXT NOT NULL, config TEXT NOT NULL, code TEXT NOT NULL,
        PRIMARY KEY(function_id, version)
    );
    CREATE TABLE lambda_aliases (
        function_id INTEGER NOT NULL REFERENCES lambda_functions(id) ON DELETE CASCADE,
        name TEXT NOT NULL, config TEXT NOT NULL,
        PRIMARY KEY(function_id, name)
    );
    CREATE TABLE lambda_event_invoke (
        function_id INTEGER NOT NULL REFERENCES lambda_functions(id) ON DELETE CASCADE,
        qualifier TEXT NOT NULL, config TEXT NOT NULL,
        PRIMARY KEY(function_id, qualifier)
    );
    CREATE TABLE lambda_urls (
        function_id INTEGER NOT NULL REFERENCES lambda_functions(id) ON DELETE CASCADE,
        qualifier TEXT NOT NULL, url_id TEXT NOT NULL UNIQUE, config TEXT NOT NULL,
        PRIMARY KEY(function_id, qualifier)
    );
    CREATE TABLE lambda_layers (
        account TEXT NOT NULL, region TEXT NOT NULL, name TEXT NOT NULL, version INTEGER NOT NULL,
        config TEXT NOT NULL, code TEXT NOT NULL, policy TEXT,
        PRIMARY KEY(account, region, name, version)
    );
    CREATE TABLE lambda_async (
        id INTEGER PRIMARY KEY,
        account TEXT NOT NULL, region TEXT NOT NULL, function TEXT NOT NULL, qualifier TEXT,
        payload TEXT NOT NULL, request_id TEXT NOT NULL, source TEXT,
        attempts INTEGER NOT NULL DEFAULT 0, due REAL NOT NULL, created REAL NOT NULL
    );
    CREATE INDEX lambda_async_due ON lambda_async(due);
    CREATE TABLE lambda_mappings (
        uuid TEXT PRIMARY KEY,
        account TEXT NOT NULL, region TEXT NOT NULL, function_arn TEXT NOT NULL, source_arn TEXT NOT NULL,
        config TEXT NOT NULL, state TEXT NOT NULL DEFAULT '{}'
    );
    """,
    # tags of event source mappings (ListTags/TagResource on their ARNs; the Terraform provider reads them)
    """
    CREATE TABLE lambda_mapping_tags (uuid TEXT PRIMARY KEY, tags TEXT NOT NULL);
    """,
    DURABLE_MIGRATION,  # durable executions, their operations and history (durable.py)
    DURABLE_PAUSE_MIGRATION,  # their pause details and timeout deadline
    # the tenant of an asynchronous invocation of a tenant-isolated function (TenancyConfig)
    """
    ALTER TABLE lambda_async ADD COLUMN tenant TEXT;
    """,
    DURABLE_ASYNC_MIGRATION,  # whether an asynchronous invocation started durable executions (dead-letter queue)
    SETTINGS_MIGRATION,  # recursion, runtime management and provisioned concurrency settings (settings.py)
]


# botocore's pattern for GetLayerVersionByArn's Arn
_LAYER_VERSION_ARN = re.compile(r"((arn:(aws[a-zA-Z-]*)?:lambda:(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:"
                                r"\d{12}:layer:[a-zA-Z0-9-_]+:[0-9]+)|(arn:[a-zA-Z0-9-]+:lambda:::awslayer:[a-zA-Z0-9-_]+))")



def _client_context(params: dict) -> Any:
    """Invoke's ClientContext: base64 of a JSON object, as the Invoke APIs take it."""
    if not params.get("ClientContext"):
        return None
    try:
        return json.loads(base64.b64decode(params["ClientContext"]))
    except ValueError:
        raise invalid("Client context must be a valid Base64-encoded JSON object.") from None

@dataclass
class Target:
    """A resolved function version: what runs, and what an invocation reports."""

    function_id: int
    account: str
    region: str
    name: str
    version: str  # "$LATEST" or a number
    qualifier: str | None  # as invoked (alias, version, or None)
    config: dict
    code: dict
    reserved: int | None
    spec: EnvironmentSpec | None = None  # built on first use; targets are forgotten on any change

    @property
    def arn(self) -> str:
        return fn.function_arn(self.region, self.account, self.name)

    @property
    def invoked_arn(self) -> str:
        return fn.function_arn(self.region, self.account, self.name, self.qualifier)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.account, self.region, self.name)


@dataclass
class InvokeResult:
    status_code: int
    payload: bytes
    function_error: str | None = None
    log_result: str | None = None
    executed_version: str | None = None
    request_id: str = ""
    error_type: str | None = None
    durable_execution_arn: str | None = None  # the execution an invoke of a durable function started


@dataclass
class Streamed:
    """An invocation whose function streams its response (Lambda's ``stream`` contract): the chunks as
    the function writes them, and the invocation itself, which ends with its InvokeResult."""

    content_type: str
    chunks: AsyncIterator[bytes]
    invocation: "asyncio.Future[InvokeResult]"


class Lambda(SettingsOps, Service):
    name = "lambda"
    serves_routes = True  # function URLs
    migrations = MIGRATIONS
    resource_types = ("AWS::Lambda::Function", "AWS::Lambda::Version", "AWS::Lambda::Alias",
                      "AWS::Lambda::Permission", "AWS::Lambda::EventSourceMapping", "AWS::Lambda::LayerVersion",
                      "AWS::Lambda::Url", "AWS::Lambda::EventInvokeConfig", "AWS::Lambda::LayerVersionPermission")

    def __init__(self, cloud: Any) -> None:
        super().__init__(cloud)
        self.runtime = Runtime(cloud.config.state_dir, self._write_logs, self.clock.now_ms)
        self.debugging = Debugging(cloud.config.debug, cloud.config.debug_port, cloud.config.debug_wait,
                                   cloud.config.state_dir)
        self._targets: dict[tuple, Target] = {}
        self.inflight: dict[tuple[str, str, str], int] = {}
        self.reserved_keys: set[tuple[str, str, str]] = set()  # functions last seen with reserved concurrency
        self.slot_freed: dict[tuple[str, str, str], asyncio.Event] = {}
        self.asynchronous = AsyncInvocations(self)
        self.durable = DurableExecutions(self)
        self.mappings: Any = None
        self._background: set[asyncio.Task] = set()
        # log lines and invocation events not yet in the store (see flush_records)
        self._records: list[Any] = []
        self._flush_handle: asyncio.Handle | None = None

    def handler(self, operation: str) -> Any:
        if operation == "Invoke":
            return self.invoke_api
        if "DurableExecution" in operation:  # the durable functions API lives in durable.py
            return getattr(self.durable, re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower(), None)
        return super().handler(operation)

    async def start(self) -> None:
        from unkai.pollers import Mappings

        self.cloud.jobs.register("lambda.invoke", self.asynchronous.from_job)
        self.asynchronous.start()
        self.durable.start()
        self.mappings = Mappings(self.cloud, self)
        self.mappings.start()
        from unkai.services.awslambda.urls import mount_function_urls

        mount_function_urls(self)
        runtimes = {json.loads(c).get("Runtime") for (c,) in self.store.all("SELECT config FROM lambda_functions")}
        for runtime in sorted(r for r in runtimes if r and r.startswith("python")):
            self._warm(runtime)

    def _warm(self, runtime: str) -> None:
        """Start the runtime's fork server in the background, as Lambda prepares a new function."""
        if runtime.startswith("python"):
            task = asyncio.get_running_loop().create_task(self.runtime.warm(runtime))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def stop(self) -> None:
        if self.mappings is not None:
            await self.mappings.stop()
        await self.asynchronous.stop()
        self.runtime.close()
        self.flush_records()

    async def pausing(self) -> None:
        if self.mappings is not None:
            await self.mappings.stop()
        await self.asynchronous.stop()
        self.flush_records()

    async def resetting(self) -> None:
        self._targets.clear()  # warm environments stay: code changes are noticed per invoke
        self.asynchronous.start()
        if self.mappings is not None:
            self.mappings.start()

    def pending(self) -> dict[str, int]:
        found = {"invocations": self.runtime.busy}
        found.update(self.asynchronous.pending())
        found.update(self.durable.pending())
        if self.mappings is not None:
            found.update(self.mappings.pending())
        return found

    # -- lookups ---------------------------------------------------------------------------

    def _changed(self) -> None:
        """A function changed: forget resolved targets; queued events may run now."""
        self._targets.clear()
        self.store.after_commit(self.asynchronous.wake)

    def _row(self, account: str, region: str, name: str) -> tuple | None:
        return self.store.one("SELECT id, config, code, reserved, policy, tags, next_version FROM lambda_functions "
                              "WHERE account=? AND region=? AND name=?", (account, region, name))

    def _function(self, ctx: RequestContext, text: str, qualifier: str | None = None) -> tuple[fn.Name, tuple]:
        name = parse_name(text, qualifier)
        account, region = name.account or ctx.account, name.region or ctx.region
        row = self._row(account, region, name.name)
        if row is None:
            raise not_found(fn.function_arn(region, account, name.name, name.qualifier))
        return name, row

    def resolve(self, account: str, region: str, text: str, qualifier: str | None = None) -> Target:
        """The function version ``text`` (name or ARN, maybe qualified) names."""
        cache_key = (account, region, text, qualifier)
        target = self._targets.get(cache_key)
        if target is not None:
            return target
        name = parse_name(text, qualifier)
        account, region = name.account or account, name.region or region
        row = self._row(account, region, name.name)
        if row is None:
            raise not_found(fn.function_arn(region, account, name.name, name.qualifier))
        fid, config, code, reserved = row[0], row[1], row[2], row[3]
        version = "$LATEST"
        q = name.qualifier
        if q and q != "$LATEST":
            if q.isdigit():
                version = q
            else:
                alias = self.store.one("SELECT config FROM lambda_aliases WHERE function_id=? AND name=?", (fid, q))
                if alias is None:
                    raise not_found(fn.function_arn(region, account, name.name, q))
                version = json.loads(alias[0])["FunctionVersion"]
            if version != "$LATEST":
                ver = self.store.one("SELECT config, code FROM lambda_versions WHERE function_id=? AND version=?",
                                     (fid, version))
                if ver is None:
                    raise not_found(fn.function_arn(region, account, name.name, q))
                config, code = ver
        target = Target(fid, account, region, name.name, version, q, json.loads(config), json.loads(code), reserved)
        self._targets[cache_key] = target
        return target

    # -- functions ------------------------------------------------------------------------

    def _code(self, params: dict, runtime: str | None) -> dict:
        code = params.get("Code") or {}
        if code.get("LocalPath"):
            return fn.local_code(code, self.config.state_dir)
        if code.get("ZipFile") is not None:
            data = code["ZipFile"]
            if isinstance(data, str):
                return fn.inline_code(self.config.state_dir, data, runtime)
            return fn.zip_code(self.config.state_dir, data)
        if code.get("S3Bucket") and code.get("S3Key"):
            return fn.zip_code(self.config.state_dir, self._s3_object(code["S3Bucket"], code["S3Key"],
                                                                      code.get("S3ObjectVersion")))
        if code.get("ImageUri"):
            from unkai.services.awslambda import images

            return images.image_code(self.config.state_dir, code["ImageUri"], code.get("LocalImageDirs") or [])
        raise invalid("Please provide a source for function code.")

    def _s3_object(self, bucket: str, key: str, version: str | None) -> bytes:
        s3 = self.cloud.services.get("s3")
        if s3 is None:
            raise invalid("Error occurred while GetObject. S3 Error Code: NoSuchBucket. S3 Error Message: The "
                          "specified bucket does not exist")
        try:
            return s3.object_bytes(bucket, key, version)
        except ServiceError as exc:
            raise invalid(f"Error occurred while GetObject. S3 Error Code: {exc.code}. S3 Error Message: "
                          f"{exc.message}") from None

    def create_function(self, ctx: RequestContext, params: dict) -> dict:
        name = parse_name(params["FunctionName"])
        if name.qualifier:
            raise ServiceError(
                "ValidationException", "1 validation error detected: Value at 'functionName' failed to satisfy "
                "constraint: qualified function names are not allowed here")
        account, region = ctx.account, name.region or ctx.region
        fn.check_config(params, creating=True)
        self._check_dlq(params)
        if self._row(account, region, name.name) is not None:
            raise ServiceError("ResourceConflictException", f"Function already exist: {name.name}", Type="User")
        code = self._code(params, params.get("Runtime"))
        now = self.clock.now()
        config = fn.build_config(region, account, name.name, params, code, now)
        self._resolve_layers(ctx, config)
        fid = self.store.execute(
            "INSERT INTO lambda_functions(account, region, name, config, code, tags, created) VALUES(?,?,?,?,?,?,?)",
            (account, region, name.name, json.dumps(config), json.dumps(code), json.dumps(params.get("Tags") or {}),
             now)).lastrowid
        self._changed()
        self.store.after_commit(lambda: self._warm(config.get("Runtime") or ""))
        if params.get("Publish"):
            return self._publish(fid, account, region, name.name, params.get("Description"))
        return fn.as_created(config)

    def _check_dlq(self, params: dict) -> None:
        target = (params.get("DeadLetterConfig") or {}).get("TargetArn")
        if target and not (":sqs:" in target or ":sns:" in target):
            raise invalid(f"The provided target arn {target} is invalid. Dead letter target must be an SQS queue "
                          "or an SNS topic.")

    def _resolve_layers(self, ctx: RequestContext, config: dict) -> None:
        for layer in config.get("Layers") or []:
            row = self._layer_row(layer["Arn"])
            if row is None:
                raise invalid(f"Layer version {layer['Arn']} does not exist.")
            layer["CodeSize"] = json.loads(row[1]).get("size", 0)

    def _layer_row(self, arn: str) -> tuple | None:
        parts = arn.split(":")
        if len(parts) != 8 or parts[5] != "layer" or not parts[7].isdigit():
            return None
        return self.store.one("SELECT config, code FROM lambda_layers WHERE account=? AND region=? AND name=? AND "
                              "version=?", (parts[4], parts[3], parts[6], int(parts[7])))

    def check_unimplemented(self, ctx: RequestContext, operation: str, params: dict) -> None:
        """An operation unkai does not serve still answers "Function not found" first, as AWS does."""
        if params.get("FunctionName"):
            self.resolve(ctx.account, ctx.region, params["FunctionName"], params.get("Qualifier"))

    def get_function(self, ctx: RequestContext, params: dict) -> dict:
        target = self.resolve(ctx.account, ctx.region, params["FunctionName"], params.get("Qualifier"))
        row = self._row(target.account, target.region, target.name)
        result: dict[str, Any] = {
            "Configuration": self._config_out(target),
            "Code": {"RepositoryType": "S3", "Location": f"{ctx.base_url}/_unkai/lambda/code/{target.name}"},
        }
        image = target.code.get("image")
        if image:
            repo = image["uri"].split("@", 1)[0].rsplit(":", 1)[0] if "/" in image["uri"] else image["uri"]
            result["Code"] = {"RepositoryType": "ECR", "ImageUri": image["uri"],
                              "ResolvedImageUri": f"{repo}@{image['digest']}"}
        tags = json.loads(row[5])
        if tags:
            result["Tags"] = tags
        if row[3] is not None:
            result["Concurrency"] = {"ReservedConcurrentExecutions": row[3]}
        return result

    def _config_out(self, target: Target) -> dict:
        config = dict(target.config)
        if target.version != "$LATEST":
            config["FunctionArn"] = fn.function_arn(target.region, target.account, target.name, target.version)
        return config

    def get_function_configuration(self, ctx: RequestContext, params: dict) -> dict:
        target = self.resolve(ctx.account, ctx.region, params["FunctionName"], params.get("Qualifier"))
        return self._config_out(target)

    def list_functions(self, ctx: RequestContext, params: dict) -> dict:
        limit = params.get("MaxItems") or 50
        marker = params.get("Marker") or ""
        rows = self.store.all("SELECT name, config FROM lambda_functions WHERE account=? AND region=? AND name > ? "
                              "ORDER BY name LIMIT ?", (ctx.account, ctx.region, marker, limit + 1))
        out = [json.loads(config) for _, config in rows[:limit]]
        result: dict[str, Any] = {"Functions": out}
        if len(rows) > limit:
            result["NextMarker"] = rows[limit - 1][0]
        return result

    def update_function_code(self, ctx: RequestContext, params: dict) -> dict:
        name, row = self._function(ctx, params["FunctionName"])
        config = json.loads(row[1])
        self._check_revision(config, params)
        code = self._code({"Code": {k: params[k] for k in ("ZipFile", "S3Bucket", "S3Key", "S3ObjectVersion",
                                                           "ImageUri", "LocalPath", "ExtraPaths", "LocalImageDirs")
                                    if k in params}},
                          config.get("Runtime"))
        config = fn.build_config(config["FunctionArn"].split(":")[3], config["FunctionArn"].split(":")[4], name.name,
                                 {}, code, self.clock.now(), old=config)
        self.store.execute("UPDATE lambda_functions SET config=?, code=? WHERE id=?",
                           (json.dumps(config), json.dumps(code), row[0]))
        self._recycle(config["FunctionArn"])
        if params.get("Publish"):
            arn = config["FunctionArn"].split(":")
            return self._publish(row[0], arn[4], arn[3], name.name, None)
        return fn.as_updating(config)

    def _check_revision(self, config: dict, params: dict) -> None:
        if params.get("RevisionId") and params["RevisionId"] != config.get("RevisionId"):
            raise ServiceError("PreconditionFailedException", "The Revision Id provided does not match the latest "
                               "Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id",
                               Type="User")

    def _recycle(self, arn: str) -> None:
        self._changed()
        self.store.after_commit(lambda: self.runtime.recycle(arn))

    def update_function_configuration(self, ctx: RequestContext, params: dict) -> dict:
        name, row = self._function(ctx, params["FunctionName"])
        config = json.loads(row[1])
        self._check_revision(config, params)
        fn.check_config(params, creating=False)
        self._check_dlq(params)
        if (params.get("DurableConfig") or {}) and not config.get("DurableConfig"):
            # AWS: "You can only enable durable execution when creating a function."
            raise invalid("Durable execution can only be enabled when the function is created; it cannot be "
                          "enabled on an existing function.")
        arn = config["FunctionArn"].split(":")
        config = fn.build_config(arn[3], arn[4], name.name, params, json.loads(row[2]), self.clock.now(), old=config)
        self._resolve_layers(ctx, config)
        self.store.execute("UPDATE lambda_functions SET config=? WHERE id=?", (json.dumps(config), row[0]))
        self._recycle(config["FunctionArn"])
        return fn.as_updating(config)

    def delete_function(self, ctx: RequestContext, params: dict) -> dict:
        name, row = self._function(ctx, params["FunctionName"], params.get("Qualifier"))
        arn = json.loads(row[1])["FunctionArn"]
        if name.qualifier and name.qualifier != "$LATEST":
            if not name.qualifier.isdigit():
                raise ServiceError(
                    "InvalidParameterValueException", f"Deleting an alias is not supported by DeleteFunction: "
                    f"{name.qualifier}")
            self.store.execute("DELETE FROM lambda_versions WHERE function_id=? AND version=?", (row[0], name.qualifier))
        elif name.qualifier == "$LATEST":
            raise invalid("$LATEST version cannot be deleted without deleting the function.")
        else:
            self.store.execute("DELETE FROM lambda_functions WHERE id=?", (row[0],))
            self.forget_settings(row[0])
            self.store.execute("DELETE FROM lambda_mappings WHERE function_arn=? OR function_arn LIKE ?",
                               (arn, arn + ":%"))
            self.store.execute("DELETE FROM lambda_mapping_tags WHERE uuid NOT IN (SELECT uuid FROM lambda_mappings)")
            if self.mappings is not None:
                self.store.after_commit(self.mappings.refresh)
        self._recycle(arn)
        return {}

    # -- versions and aliases ----------------------------------------------------------------

    def _publish(self, fid: int, account: str, region: str, name: str, description: str | None) -> dict:
        row = self.store.one("SELECT config, code, next_version FROM lambda_functions WHERE id=?", (fid,))
        config, code, number = json.loads(row[0]), row[1], row[2]
        last = self.store.one("SELECT version, config FROM lambda_versions WHERE function_id=? ORDER BY "
                              "CAST(version AS INTEGER) DESC LIMIT 1", (fid,))
        if last is not None:
            prev = json.loads(last[1])
            same = all(prev.get(k) == config.get(k) for k in ("CodeSha256", "Environment", "Handler", "Runtime",
                                                             "MemorySize", "Timeout", "Layers"))
            if same and config.get("CodeSha256") == prev.get("CodeSha256"):
                return prev
        version = str(number)
        config.update(Version=version, FunctionArn=fn.function_arn(region, account, name, version),
                      RevisionId=str(uuid.uuid4()))
        if description is not None:
            config["Description"] = description
        self.store.execute("INSERT INTO lambda_versions(function_id, version, config, code) VALUES(?,?,?,?)",
                           (fid, version, json.dumps(config), code))
        self.store.execute("UPDATE lambda_functions SET next_version=next_version+1 WHERE id=?", (fid,))
        self._changed()
        return config

    def publish_version(self, ctx: RequestContext, params: dict) -> dict:
        name, row = self._function(ctx, params["FunctionName"])
        config = json.loads(row[1])
        if params.get("CodeSha256") and params["CodeSha256"] != config["CodeSha256"]:
            raise invalid(f"CodeSHA256 ({params['CodeSha256']}) is different from current CodeSHA256 in $LATEST "
                          f"({config['CodeSha256']}). Please try again with the CodeSHA256 in $LATEST.")
        self._check_revision(config, params)
        arn = config["FunctionArn"].split(":")
        return self._publish(row[0], arn[4], arn[3], name.name, params.get("Description"))

    def list_versions_by_function(self, ctx: RequestContext, params: dict) -> dict:
        name, row = self._function(ctx, params["FunctionName"])
        versions = [json.loads(row[1])]
        versions += [json.loads(c) for (c,) in self.store.all(
            "SELECT config FROM lambda_versions WHERE function_id=? ORDER BY CAST(version AS INTEGER)", (row[0],))]
        return {"Versions": versions}

    def _alias_out(self, name: fn.Name, row: tuple, config: dict) -> dict:
        arn = json.loads(row[1])["FunctionArn"]
        return dict(config, AliasArn=f"{arn}:{config['Name']}")

    def _check_version(self, fid: int, version: str, arn: str) -> None:
        if version != "$LATEST" and not self.store.one(
                "SELECT 1 FROM lambda_versions WHERE function_id=? AND version=?", (fid, version)):
            raise not_found(f"{arn}:{version}")

    def create_alias(self, ctx: RequestContext, params: dict) -> dict:
        name, row = self._function(ctx, params["FunctionName"])
        alias = params["Name"]
        arn = json.loads(row[1])["FunctionArn"]
        self._check_version(row[0], params["FunctionVersion"], arn)
        if self.store.one("SELECT 1 FROM lambda_aliases WHERE function_id=? AND name=?", (row[0], alias)):
            raise ServiceError("ResourceConflictException", f"Alias already exists: {arn}:{alias}", Type="User")
        config = {"Name": alias, "FunctionVersion": params["FunctionVersion"],
                  "Description": params.get("Description") or "", "RevisionId": str(uuid.uuid4())}
        if params.get("RoutingConfig"):
            config["RoutingConfig"] = params["RoutingConfig"]
        self.store.execute("INSERT INTO lambda_aliases(function_id, name, config) VALUES(?,?,?)",
                           (row[0], alias, json.dumps(config)))
        self._changed()
        return self._alias_out(name, row, config)

    def _alias(self, ctx: RequestContext, params: dict) -> tuple[fn.Name, tuple, dict]:
        name, row = self._function(ctx, params["FunctionName"])
        found = self.store.one("SELECT config FROM lambda_aliases WHERE function_id=? AND name=?",
                               (row[0], params["Name"]))
        if found is None:
            raise not_found(json.loads(row[1])["FunctionArn"] + ":" + params["Name"], "Alias")
        return name, row, json.loads(found[0])

    def get_alias(self, ctx: RequestContext, params: dict) -> dict:
        name, row, config = self._alias(ctx, params)
        return self._alias_out(name, row, config)

    def update_alias(self, ctx: RequestContext, params: dict) -> dict:
        name, row, config = self._alias(ctx, params)
        if params.get("RevisionId") and params["RevisionId"] != config["RevisionId"]:
            raise ServiceError("PreconditionFailedException", "The Revision Id provided does not match the latest "
                               "Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id",
                               Type="User")
        if params.get("FunctionVersion"):
            self._check_version(row[0], params["FunctionVersion"], json.loads(row[1])["FunctionArn"])
            config["FunctionVersion"] = params["FunctionVersion"]
        if "Description" in params:
            config["Description"] = params["Description"]
        if "RoutingConfig" in params:
            config["RoutingConfig"] = params["RoutingConfig"]
        config["RevisionId"] = str(uuid.uuid4())
        self.store.execute("UPDATE lambda_aliases SET config=? WHERE function_id=? AND name=?",
                           (json.dumps(config), row[0], params["Name"]))
        self._changed()
        return self._alias_out(name, row, config)

    def delete_alias(self, ctx: RequestContext, params: dict) -> dict:
        name, row = self._function(ctx, params["FunctionName"])
        self.store.execute("DELETE FROM lambda_aliases WHERE function_id=? AND name=?", (row[0], params["Name"]))
        self._changed()
        return {}

    def list_aliases(self, ctx: RequestContext, params: dict) -> dict:
        name, row = self._function(ctx, params["FunctionName"])
        out = []
        for (config,) in self.store.all("SELECT config FROM lambda_aliases WHERE function_id=? ORDER BY name",
                                        (row[0],)):
            config = json.loads(config)
            if params.get("FunctionVersion") and config["FunctionVersion"] != params["FunctionVersion"]:
                continue
            out.append(self._alias_out(name, row, config))
        return {"Aliases": out}

    # -- concurrency ----------------------------------------------------------------------

    def put_function_concurrency(self, ctx: RequestContext, params: dict) -> dict:
        name, row = self._function(ctx, params["FunctionName"])
        value = params["ReservedConcurrentExecutions"]
        if value < 0 or value > 1000:
            raise invalid("Specified ReservedConcurrentExecutions for function decreases account's "
                          "UnreservedConcurrentExecution below its minimum value of [100].")
        self.store.execute("UPDATE lambda_functions SET reserved=? WHERE id=?", (value, row[0]))
        self._changed()
        return {"ReservedConcurrentExecutions": value}

    def get_function_concurrency(self, ctx: RequestContext, params: dict) -> dict:
        name, row = self._function(ctx, params["FunctionName"])
        return {} if row[3] is None else {"ReservedConcurrentExecutions": row[3]}

    def delete_function_concurrency(self, ctx: RequestContext, params: dict) -> dict:
        name, row = self._function(ctx, params["FunctionName"])
        self.store.execute("UPDATE lambda_functions SET reserved=NULL WHERE id=?", (row[0],))
        self._changed()
        self.store.after_commit(lambda: self._slot_freed((ctx.account, name.region or ctx.region, name.name)))
        return {}

    def get_function_code_signing_config(self, ctx: RequestContext, params: dict) -> dict:
        # unkai keeps no code signing configs: AWS answers an empty ARN for a function without one
        # (the Terraform provider reads this on every refresh of aws_lambda_function)
        name, _ = self._function(ctx, params["FunctionName"])
        return {"CodeSigningConfigArn": "", "FunctionName": name.name}

    def delete_function_code_signing_config(self, ctx: RequestContext, params: dict) -> dict:
        self._function(ctx, params["FunctionName"])
        return {}

    def put_function_code_signing_config(self, ctx: RequestContext, params: dict) -> dict:
        self._function(ctx, params["FunctionName"])
        arn = params.get("CodeSigningConfigArn") or ""
        raise ServiceError("CodeSigningConfigNotFoundException",
                           f"Code signing config {arn} not found.", status=404)

    def get_account_settings(self, ctx: RequestContext, params: dict) -> dict:
        count, size = self.store.one("SELECT COUNT(*), 0 FROM lambda_functions WHERE account=? AND region=?",
                                     (ctx.account, ctx.region))
        reserved = self.store.one("SELECT coalesce(sum(reserved), 0) FROM lambda_functions WHERE account=? AND "
                                  "region=?", (ctx.account, ctx.region))[0]
        return {"AccountLimit": {"TotalCodeSize": 80530636800, "CodeSizeUnzipped": 262144000,
                                 "CodeSizeZipped": 52428800, "ConcurrentExecutions": 1000,
                                 "UnreservedConcurrentExecutions": 1000 - reserved},
                "AccountUsage": {"TotalCodeSize": size, "FunctionCount": count}}

    # -- tags ----------------------------------------------------------------------------

    def _by_arn(self, ctx: RequestContext, arn: str) -> tuple:
        return self._function(ctx, arn)[1]

    def _mapping_tags(self, ctx: RequestContext, arn: str) -> tuple[str, dict] | None:
        """(uuid, tags) when ``arn`` names an event source mapping, else None."""
        if ":event-source-mapping:" not in arn:
            return None
        uid = arn.rsplit(":", 1)[1]
        self.mappings.get(ctx, uid)  # ResourceNotFoundException when there is none
        row = self.store.one("SELECT tags FROM lambda_mapping_tags WHERE uuid=?", (uid,))
        return uid, json.loads(row[0]) if row else {}

    def _save_mapping_tags(self, uid: str, tags: dict) -> None:
        self.store.execute("INSERT INTO lambda_mapping_tags(uuid, tags) VALUES(?,?) "
                           "ON CONFLICT(uuid) DO UPDATE SET tags=excluded.tags", (uid, json.dumps(tags)))

    def tag_resource(self, ctx: RequestContext, params: dict) -> dict:
        mapping = self._mapping_tags(ctx, params["Resource"])
        if mapping is not None:
            self._save_mapping_tags(mapping[0], dict(mapping[1], **params["Tags"]))
            return {}
        row = self._by_arn(ctx, params["Resource"])
        tags = dict(json.loads(row[5]), **params["Tags"])
        self.store.execute("UPDATE lambda_functions SET tags=? WHERE id=?", (json.dumps(tags), row[0]))
        return {}

    def untag_resource(self, ctx: RequestContext, params: dict) -> dict:
        mapping = self._mapping_tags(ctx, params["Resource"])
        if mapping is not None:
            self._save_mapping_tags(mapping[0], {k: v for k, v in mapping[1].items() if k not in params["TagKeys"]})
            return {}
        row = self._by_arn(ctx, params["Resource"])
        tags = {k: v for k, v in json.loads(row[5]).items() if k not in params["TagKeys"]}
        self.store.execute("UPDATE lambda_functions SET tags=? WHERE id=?", (json.dumps(tags), row[0]))
        return {}

    def list_tags(self, ctx: RequestContext, params: dict) -> dict:
        mapping = self._mapping_tags(ctx, params["Resource"])
        if mapping is not None:
            return {"Tags": mapping[1]}
        return {"Tags": json.loads(self._by_arn(ctx, params["Resource"])[5])}

    # -- permissions ----------------------------------------------------------------------

    def add_permission(self, ctx: RequestContext, params: dict) -> dict:
        name, row = self._function(ctx, params["FunctionName"], params.get("Qualifier"))
        policy = json.loads(row[4]) if row[4] else {"Version": "2012-10-17", "Id": "default", "Statement": []}
        sid = params["StatementId"]
        resource = _policy_resource(row, name)
        if any(s["Sid"] == sid for s in policy["Statement"] if s["Resource"] == resource):
            raise ServiceError("ResourceConflictException", f"The statement id ({sid}) provided already exists. "
                               "Please provide a new statement id, or remove the existing statement.", Type="User")
        principal = params["Principal"]
        statement: dict[str, Any] = {
            "Sid": sid, "Effect": "Allow",
            "Principal": {"Service": principal} if principal.endswith(".amazonaws.com") else
            ("*" if principal == "*" else {"AWS": principal if principal.startswith("arn:") else
                                           f"arn:aws:iam::{principal}:root"}),
            "Action": params["Action"], "Resource": resource,
        }
        condition: dict[str, Any] = {}
        if params.get("SourceArn"):
            condition["ArnLike"] = {"AWS:SourceArn": params["SourceArn"]}
        if params.get("SourceAccount"):
            condition["StringEquals"] = {"AWS:SourceAccount": params["SourceAccount"]}
        if params.get("FunctionUrlAuthType"):
            condition.setdefault("StringEquals", {})["lambda:FunctionUrlAuthType"] = params["FunctionUrlAuthType"]
        if params.get("PrincipalOrgID"):
            condition.setdefault("StringEquals", {})["aws:PrincipalOrgID"] = params["PrincipalOrgID"]
        if params.get("EventSourceToken"):
            condition.setdefault("StringEquals", {})["lambda:EventSourceToken"] = params["EventSourceToken"]
        if params.get("InvokedViaFunctionUrl"):
            condition["Bool"] = {"lambda:InvokedViaFunctionUrl": "true"}
        if condition:
            statement["Condition"] = condition
        policy["Statement"].append(statement)
        self.store.execute("UPDATE lambda_functions SET policy=? WHERE id=?", (json.dumps(policy), row[0]))
        return {"Statement": json.dumps(statement)}

    def remove_permission(self, ctx: RequestContext, params: dict) -> dict:
        name, row = self._function(ctx, params["FunctionName"], params.get("Qualifier"))
        policy = json.loads(row[4]) if row[4] else {"Statement": []}
        resource = _policy_resource(row, name)
        mine = [s for s in policy["Statement"] if s["Resource"] == resource]
        kept = [s for s in policy["Statement"] if s["Resource"] != resource or s["Sid"] != params["StatementId"]]
        if len(kept) == len(policy["Statement"]):
            raise ServiceError("ResourceNotFoundException", "No policy is associated with the given resource."
                               if not mine else
                               f"Statement {params['StatementId']} is not found in resource policy.", Type="User")
        policy["Statement"] = kept
        self.store.execute("UPDATE lambda_functions SET policy=? WHERE id=?",
                           (json.dumps(policy) if kept else None, row[0]))
        return {}

    def get_policy(self, ctx: RequestContext, params: dict) -> dict:
        name, row = self._function(ctx, params["FunctionName"], params.get("Qualifier"))
        # each version and alias has its own policy (one row keeps them all, told apart by Resource)
        resource = _policy_resource(row, name)
        policy = json.loads(row[4]) if row[4] else {"Statement": []}
        policy["Statement"] = [s for s in policy["Statement"] if s["Resource"] == resource]
        if not policy["Statement"]:
            raise ServiceError("ResourceNotFoundException", "The resource you requested does not exist.", Type="User")
        return {"Policy": json.dumps(policy), "RevisionId": json.loads(row[1])["RevisionId"]}

    # -- event invoke configs ----------------------------------------------------------------

    def _event_config_key(self, ctx: RequestContext, params: dict) -> tuple[tuple, str, str]:
        name, row = self._function(ctx, params["FunctionName"], params.get("Qualifier"))
        qualifier = name.qualifier or "$LATEST"
        arn = json.loads(row[1])["FunctionArn"]
        return row, qualifier, arn if qualifier == "$LATEST" else f"{arn}:{qualifier}"

    def _check_event_config(self, params: dict) -> None:
        retries = params.get("MaximumRetryAttempts")
        if retries is not None and not 0 <= retries <= 2:
            raise ServiceError("ValidationException", f"1 validation error detected: Value '{retries}' at "
                               "'maximumRetryAttempts' failed to satisfy constraint: Member must have value less "
                               "than or equal to 2")
        age = params.get("MaximumEventAgeInSeconds")
        if age is not None and not 60 <= age <= 21600:
            raise ServiceError("ValidationException", f"1 validation error detected: Value '{age}' at "
                               "'maximumEventAgeInSeconds' failed to satisfy constraint: Member must have value "
                               + ("less than or equal to 21600" if age > 21600 else "greater than or equal to 60"))
        for key in ("OnSuccess", "OnFailure"):
            dest = ((params.get("DestinationConfig") or {}).get(key) or {}).get("Destination")
            if dest and not any(f":{s}:" in dest for s in ("sqs", "sns", "lambda", "events")):
                raise invalid(f"The provided destination config DestinationConfig(onSuccess=..., onFailure=...) is "
                              f"invalid: {dest} is not a supported destination.")

    def put_function_event_invoke_config(self, ctx: RequestContext, params: dict, merge: bool = False) -> dict:
        row, qualifier, arn = self._event_config_key(ctx, params)
        self._check_event_config(params)
        config: dict[str, Any] = {}
        if merge:
            found = self.store.one("SELECT config FROM lambda_event_invoke WHERE function_id=? AND qualifier=?",
                                   (row[0], qualifier))
            if found is None:
                raise ServiceError("ResourceNotFoundException", f"The function {arn} doesn't have an "
                                   "EventInvokeConfig", Type="User")
            config = json.loads(found[0])
        for key in ("MaximumRetryAttempts", "MaximumEventAgeInSeconds", "DestinationConfig"):
            if key in params:
                config[key] = params[key]
        dest = config.get("DestinationConfig") or {}
        config["DestinationConfig"] = {"OnSuccess": dest.get("OnSuccess") or {}, "OnFailure": dest.get("OnFailure") or {}}
        config["FunctionArn"] = arn
        config["LastModified"] = self.clock.now()
        self.store.execute("INSERT INTO lambda_event_invoke(function_id, qualifier, config) VALUES(?,?,?) ON CONFLICT("
                           "function_id, qualifier) DO UPDATE SET config=excluded.config",
                           (row[0], qualifier, json.dumps(config)))
        return config

    def update_function_event_invoke_config(self, ctx: RequestContext, params: dict) -> dict:
        return self.put_function_event_invoke_config(ctx, params, merge=True)

    def get_function_event_invoke_config(self, ctx: RequestContext, params: dict) -> dict:
        row, qualifier, arn = self._event_config_key(ctx, params)
        found = self.store.one("SELECT config FROM lambda_event_invoke WHERE function_id=? AND qualifier=?",
                               (row[0], qualifier))
        if found is None:
            raise ServiceError("ResourceNotFoundException", f"The function {arn} doesn't have an EventInvokeConfig",
                               Type="User")
        return json.loads(found[0])

    def delete_function_event_invoke_config(self, ctx: RequestContext, params: dict) -> dict:
        row, qualifier, arn = self._event_config_key(ctx, params)
        self.get_function_event_invoke_config(ctx, params)
        self.store.execute("DELETE FROM lambda_event_invoke WHERE function_id=? AND qualifier=?", (row[0], qualifier))
        return {}

    def list_function_event_invoke_configs(self, ctx: RequestContext, params: dict) -> dict:
        name, row = self._function(ctx, params["FunctionName"])
        return {"FunctionEventInvokeConfigs": [json.loads(c) for (c,) in self.store.all(
            "SELECT config FROM lambda_event_invoke WHERE function_id=? ORDER BY qualifier", (row[0],))]}

    def event_invoke_config(self, target: Target) -> dict:
        """The asynchronous-invocation settings that apply to an invoked version."""
        for qualifier in (target.qualifier or "$LATEST",):
            found = self.store.one("SELECT config FROM lambda_event_invoke WHERE function_id=? AND qualifier=?",
                                   (target.function_id, qualifier))
            if found:
                return json.loads(found[0])
        return {}

    # -- layers ---------------------------------------------------------------------------

    def publish_layer_version(self, ctx: RequestContext, params: dict) -> dict:
        name = params["LayerName"]
        if name.startswith("arn:"):
            name = name.split(":")[6]
        content = params.get("Content") or {}
        if content.get("LocalPath"):
            code = fn.local_code(content, self.config.state_dir)
        else:
            code = self._code({"Code": content}, None)
        row = self.store.one("SELECT max(version) FROM lambda_layers WHERE account=? AND region=? AND name=?",
                             (ctx.account, ctx.region, name))
        version = (row[0] or 0) + 1
        layer_arn = f"arn:aws:lambda:{ctx.region}:{ctx.account}:layer:{name}"
        config = {
            "Content": {"Location": f"{ctx.base_url}/_unkai/lambda/layers/{name}/{version}",
                        "CodeSha256": code["sha"], "CodeSize": code["size"]},
            "LayerArn": layer_arn, "LayerVersionArn": f"{layer_arn}:{version}",
            "Description": params.get("Description") or "", "CreatedDate": fn.timestamp(self.clock.now()),
            "Version": version,
        }
        for key in ("CompatibleRuntimes", "LicenseInfo", "CompatibleArchitectures"):
            if params.get(key):
                config[key] = params[key]
        self.store.execute("INSERT INTO lambda_layers(account, region, name, version, config, code) VALUES(?,?,?,?,?,?)",
                           (ctx.account, ctx.region, name, version, json.dumps(config), json.dumps(code)))
        return config

    def _layer(self, ctx: RequestContext, params: dict) -> tuple:
        name = params["LayerName"].split(":")[6] if params["LayerName"].startswith("arn:") else params["LayerName"]
        row = self.store.one("SELECT config, code, policy FROM lambda_layers WHERE account=? AND region=? AND name=? "
                             "AND version=?", (ctx.account, ctx.region, name, params["VersionNumber"]))
        if row is None:
            raise ServiceError("ResourceNotFoundException", "The resource you requested does not exist.", Type="User")
        return name, row

    def get_layer_version(self, ctx: RequestContext, params: dict) -> dict:
        return json.loads(self._layer(ctx, params)[1][0])

    def get_layer_version_by_arn(self, ctx: RequestContext, params: dict) -> dict:
        arn = params["Arn"]
        if not _LAYER_VERSION_ARN.fullmatch(arn):
            from unkai.services.awslambda.errors import validation

            raise validation(arn, "arn", _LAYER_VERSION_ARN.pattern)
        parts = arn.split(":")
        if parts[5] == "awslayer":  # AWS's own layers: none here
            raise ServiceError("ResourceNotFoundException", "The resource you requested does not exist.", Type="User")
        return self.get_layer_version(ctx, {"LayerName": parts[6], "VersionNumber": int(parts[7])})

    def delete_layer_version(self, ctx: RequestContext, params: dict) -> dict:
        name = params["LayerName"].split(":")[6] if params["LayerName"].startswith("arn:") else params["LayerName"]
        self.store.execute("DELETE FROM lambda_layers WHERE account=? AND region=? AND name=? AND version=?",
                           (ctx.account, ctx.region, name, params["VersionNumber"]))
        return {}

    def list_layer_versions(self, ctx: RequestContext, params: dict) -> dict:
        name = params["LayerName"].split(":")[6] if params["LayerName"].startswith("arn:") else params["LayerName"]
        rows = self.store.all("SELECT config FROM lambda_layers WHERE account=? AND region=? AND name=? ORDER BY "
                              "version DESC", (ctx.account, ctx.region, name))
        out = []
        for (config,) in rows:
            config = json.loads(config)
            config.pop("Content", None)
            out.append(config)
        return {"LayerVersions": out}

    def list_layers(self, ctx: RequestContext, params: dict) -> dict:
        rows = self.store.all("SELECT name, config FROM lambda_layers l WHERE account=? AND region=? AND version=("
                              "SELECT max(version) FROM lambda_layers WHERE account=l.account AND region=l.region AND "
                              "name=l.name) ORDER BY name", (ctx.account, ctx.region))
        out = []
        for name, config in rows:
            config = json.loads(config)
            config.pop("Content", None)
            out.append({"LayerName": name, "LayerArn": config["LayerArn"], "LatestMatchingVersion": config})
        return {"Layers": out}

    def add_layer_version_permission(self, ctx: RequestContext, params: dict) -> dict:
        name, row = self._layer(ctx, params)
        statement = {"Sid": params["StatementId"], "Effect": "Allow", "Principal": params["Principal"],
                     "Action": params["Action"], "Resource": json.loads(row[0])["LayerVersionArn"]}
        policy = json.loads(row[2]) if row[2] else {"Version": "2012-10-17", "Id": "default", "Statement": []}
        policy["Statement"].append(statement)
        self.store.execute("UPDATE lambda_layers SET policy=? WHERE account=? AND region=? AND name=? AND version=?",
                           (json.dumps(policy), ctx.account, ctx.region, name, params["VersionNumber"]))
        return {"Statement": json.dumps(statement), "RevisionId": str(uuid.uuid4())}

    def layer_paths(self, config: dict) -> list[str]:
        paths = []
        for layer in config.get("Layers") or []:
            row = self._layer_row(layer["Arn"])
            if row is not None:
                paths.append(json.loads(row[1])["path"])
        return paths

    def layer_extra_paths(self, config: dict) -> list[str]:
        """What a local layer's ``sam build`` would put under /opt/python: a layer directory without a
        ``python/`` folder (SAM ``BuildMethod: python3.x``) and its installed requirements."""
        paths: list[str] = []
        for layer in config.get("Layers") or []:
            row = self._layer_row(layer["Arn"])
            code = json.loads(row[1]) if row is not None else {}
            if code.get("kind") == "local":
                if not os.path.isdir(os.path.join(code["path"], "python")):
                    paths.append(code["path"])
                paths.extend(code.get("extra") or [])
        return paths

    # -- event source mappings (pollers live in unkai.pollers) ------------------------------------

    def create_event_source_mapping(self, ctx: RequestContext, params: dict) -> dict:
        result = self.mappings.create(ctx, params)
        if params.get("Tags"):
            self._save_mapping_tags(result["UUID"], params["Tags"])
        return result

    def get_event_source_mapping(self, ctx: RequestContext, params: dict) -> dict:
        return self.mappings.get(ctx, params["UUID"])

    def update_event_source_mapping(self, ctx: RequestContext, params: dict) -> dict:
        return self.mappings.update(ctx, params)

    def delete_event_source_mapping(self, ctx: RequestContext, params: dict) -> dict:
        self.store.execute("DELETE FROM lambda_mapping_tags WHERE uuid=?", (params["UUID"],))
        return self.mappings.delete(ctx, params["UUID"])

    def list_event_source_mappings(self, ctx: RequestContext, params: dict) -> dict:
        return self.mappings.list(ctx, params)

    # -- function URLs --------------------------------------------------------------------

    def create_function_url_config(self, ctx: RequestContext, params: dict) -> dict:
        from unkai.services.awslambda import urls

        return urls.create(self, ctx, params)

    def get_function_url_config(self, ctx: RequestContext, params: dict) -> dict:
        from unkai.services.awslambda import urls

        return urls.get(self, ctx, params)

    def update_function_url_config(self, ctx: RequestContext, params: dict) -> dict:
        from unkai.services.awslambda import urls

        return urls.update(self, ctx, params)

    def delete_function_url_config(self, ctx: RequestContext, params: dict) -> dict:
        from unkai.services.awslambda import urls

        return urls.delete(self, ctx, params)

    def list_function_url_configs(self, ctx: RequestContext, params: dict) -> dict:
        from unkai.services.awslambda import urls

        return urls.list_configs(self, ctx, params)

    # -- invoking -------------------------------------------------------------------------

    def spec_for(self, target: Target) -> EnvironmentSpec:
        config, code = target.config, target.code
        layer_paths = self.layer_paths(config)
        runtime = config.get("Runtime") or "python3.12"
        handler, task_root, image_env, image_extra = config.get("Handler") or "", code["path"], {}, []
        if code.get("kind") == "image":  # a container image's Python handler, as its entrypoint runs it
            from unkai.services.awslambda import images

            image = images.function_settings(code, (config.get("ImageConfigResponse") or {}).get("ImageConfig"))
            handler, runtime, task_root = image["handler"], image["runtime"], image["task_root"]
            image_env, image_extra = image["env"], image["extra"]
        return EnvironmentSpec(
            function_name=target.name, function_arn=target.arn, version=target.version,
            handler=handler, runtime=runtime,
            memory_mb=config.get("MemorySize") or 128, timeout=float(config.get("Timeout") or 3),
            ephemeral_mb=int((config.get("EphemeralStorage") or {}).get("Size") or 512),
            env={**image_env, **((config.get("Environment") or {}).get("Variables") or {}),
                 # the execution role's session, as AWS gives workers (renewed: a new spec, new workers)
                 **self.cloud.service("sts").function_credentials(target.account, config.get("Role") or "",
                                                                  target.name)},
            task_root=task_root,
            extra_paths=[*(code.get("extra") or []), *image_extra, *self.layer_extra_paths(config)],
            layer_paths=layer_paths,
            bootstrap=fn.bootstrap_path(code["path"], layer_paths) if runtime.startswith("provided") else "",
            extensions=fn.extension_paths(layer_paths),
            log_format=(config.get("LoggingConfig") or {}).get("LogFormat") or "Text",
            app_log_level=(config.get("LoggingConfig") or {}).get("ApplicationLogLevel") or "",
            log_group=(config.get("LoggingConfig") or {}).get("LogGroup", f"/aws/lambda/{target.name}"),
            region=target.region, account=target.account, endpoint=self.config.endpoint, code_sha=code["sha"],
            **self._debug_settings(target.name),
        )

    def _debug_settings(self, function_name: str) -> dict[str, Any]:
        """``--debug``: the spec fields that put this function's workers under debugpy (none if not named)."""
        port = self.debugging.port_for(function_name) if self.debugging else 0
        if not port:
            return {}
        return {"debug_port": port, "debug_wait": self.debugging.wait, "debug_path": self.debugging.path()}

    def banner(self) -> list[str]:
        if not self.debugging:
            return []
        names = [n for (n,) in self.store.all("SELECT name FROM lambda_functions")]
        return self.debugging.banner(names)

    def _write_logs(self, spec: EnvironmentSpec, stream: str, events: list[tuple[int, str]]) -> None:
        """An environment's log lines: written with the next ``flush_records``, in the transaction
        that ends the invocation (or, for output between invocations, at the loop's next turn)."""
        self._records.append(("logs", (spec.account, spec.region, spec.log_group, stream), events))
        self._flush_soon()

    def _flush_soon(self) -> None:
        if self._flush_handle is None:
            try:
                self._flush_handle = asyncio.get_running_loop().call_soon(self.flush_records)
            except RuntimeError:  # no loop (closing down): write now
                self.flush_records()

    def flush_records(self) -> None:
        """Write the log lines and ``lambda.invoke`` events gathered since the last call, in the
        caller's transaction (an event source poller's, right after its invocation) or one of
        their own: one commit for several invocations' records instead of one or two each.
        Lines of one stream are appended together, in the order they came."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        if not self._records:
            return
        records, self._records = self._records, []
        streams: dict[tuple, list] = {}
        events = []
        for kind, key, value in records:
            if kind == "logs":
                streams.setdefault(key, []).extend(value)
            else:
                events.append(value)
        with self.store.transaction():
            if streams:
                logs = self.cloud.service("logs")
                for (account, region, group, stream), lines in streams.items():
                    logs.append(account, region, group, stream, lines)
            for publish in events:  # each invocation's event after its log lines
                publish()

    def _slot_freed(self, key: tuple[str, str, str]) -> None:
        event = self.slot_freed.get(key)
        if event is not None:
            event.set()
        if self.asynchronous.waiting:
            self.asynchronous.wake()

    def has_slot(self, target: Target) -> bool:
        return target.reserved is None or self.inflight.get(target.key, 0) < target.reserved

    async def wait_for_slot(self, target: Target) -> None:
        while not self.has_slot(target):
            event = self.slot_freed.setdefault(target.key, asyncio.Event())
            event.clear()
            await event.wait()

    async def invoke(self, function: str, payload: bytes, *, region: str, invocation_type: str = "RequestResponse",
                     qualifier: str | None = None, client_context: Any = None, log_type: str = "None",
                     account: str | None = None, wait_for_slot: bool = False,
                     request_id: str | None = None, durable_execution_name: str | None = None,
                     tenant_id: str | None = None, stream: Any = None) -> InvokeResult:
        """Invoke a function as the Invoke API does (the contract other services use).
        ``request_id`` is the invocation's ``context.aws_request_id`` (the Invoke API passes its own
        x-amzn-RequestId, as AWS does). Raises ServiceError for what AWS answers with an error
        (not found, throttled, too large). ``tenant_id`` is the caller's tenant (a function with
        TenancyConfig needs one); ``stream(kind, value)`` sees a streamed response as it comes."""
        account = account or self.config.account_id
        target = self.resolve(account, region, function, qualifier)
        _check_tenant(target, tenant_id)
        if target.config.get("DurableConfig") and invocation_type in ("Event", "RequestResponse"):
            limit = fn.ASYNC_PAYLOAD_LIMIT if invocation_type == "Event" else fn.SYNC_PAYLOAD_LIMIT
            if len(payload) > limit:
                raise ServiceError("RequestEntityTooLargeException", f"Request must be smaller than {limit} bytes "
                                   "for the InvokeFunction operation", status=413, Type="User")
            _check_json(payload)
            return await self.durable.invoke(target, payload, invocation_type, durable_execution_name,
                                             request_id or str(uuid.uuid4()))
        if invocation_type == "Event":
            if len(payload) > fn.ASYNC_PAYLOAD_LIMIT:
                raise ServiceError("RequestEntityTooLargeException", f"Request must be smaller than "
                                   f"{fn.ASYNC_PAYLOAD_LIMIT} bytes for the InvokeFunction operation", status=413,
                                   Type="User")
            _check_json(payload)
            request_id = request_id or str(uuid.uuid4())
            with self.store.transaction():
                self.asynchronous.enqueue(target, payload.decode("utf-8"), request_id, "invoke", tenant_id)
            return InvokeResult(202, b"", request_id=request_id)
        if invocation_type == "DryRun":
            return InvokeResult(204, b"")
        if invocation_type != "RequestResponse":
            raise invalid(f"1 validation error detected: Value '{invocation_type}' at 'invocationType' failed to "
                          "satisfy constraint: Member must satisfy enum value set: [Event, RequestResponse, DryRun]")
        if len(payload) > fn.SYNC_PAYLOAD_LIMIT:
            raise ServiceError("RequestEntityTooLargeException", f"Request must be smaller than "
                               f"{fn.SYNC_PAYLOAD_LIMIT} bytes for the InvokeFunction operation", status=413,
                               Type="User")
        if target.config.get("KMSKeyArn") and (target.config.get("Environment") or {}).get("Variables"):
            self._environment_key_usable(target.config["KMSKeyArn"])
        if not self.has_slot(target):
            if not wait_for_slot:
                self.cloud.feed.publish("lambda.invoke", function=target.config.get("FunctionName"), arn=target.arn,
                                        version=target.version, status="throttled", trigger=TRIGGER.get() or None)
                raise ServiceError("TooManyRequestsException", "Rate Exceeded.", status=429, Type="User",
                                   Reason="ReservedFunctionConcurrentInvocationLimitExceeded")
            await self.wait_for_slot(target)
        return await self.run(target, payload, client_context, log_type, request_id, tenant_id, stream)

    def _environment_key_usable(self, key_arn: str) -> None:
        """A function whose environment variables are encrypted with a customer managed KMS key
        runs only while Lambda can decrypt them: AWS's KMS*Exception (502) otherwise."""
        kms = self.cloud.services.get("kms")
        with self.store.transaction():
            key = kms.find_key(self.config.account_id, self.config.region, key_arn) if kms is not None else None
        if key is None:
            raise ServiceError("KMSNotFoundException", "Lambda couldn't decrypt the environment variables because the "
                               "KMS key was not found. Check the function's KMS key settings.", status=502, Type="User")
        if key.state == "Disabled":
            raise ServiceError("KMSDisabledException", "Lambda couldn't decrypt the environment variables because the "
                               "KMS key used is disabled. Check the Lambda function's KMS key settings.", status=502,
                               Type="User")
        if key.state == "PendingDeletion":
            raise ServiceError("KMSInvalidStateException", "Lambda couldn't decrypt the environment variables because "
                               "the state of the KMS key used is not valid for Decrypt. Check the function's KMS key "
                               "settings.", status=502, Type="User")

    async def run(self, target: Target, payload: bytes, client_context: Any = None, log_type: str = "None",
                  request_id: str | None = None, tenant_id: str | None = None, stream: Any = None,
                  durable: bool = False) -> InvokeResult:
        """Run one invocation in an execution environment (the caller checked concurrency),
        in the request's trace or a new one: the function's SDK calls carry it
        (``_X_AMZN_TRACE_ID``), and its feed event shows it. An event for a durable function
        (asynchronous invocations) starts its execution instead; ``durable`` marks the
        execution's own invocations, whose payload is the durable envelope."""
        if not durable and target.config.get("DurableConfig"):
            return await self.durable.invoke(target, payload, "Event", None, request_id or str(uuid.uuid4()))
        traced = TRACE.set(TRACE.get() or new_trace(self.clock.now()))
        try:
            return await self._run(target, payload, client_context, log_type, request_id, tenant_id, stream)
        finally:
            TRACE.reset(traced)

    async def _run(self, target: Target, payload: bytes, client_context: Any, log_type: str,
                   request_id: str | None, tenant_id: str | None = None, stream: Any = None) -> InvokeResult:
        request_id = request_id or str(uuid.uuid4())
        if not (target.config.get("Runtime") or ("python" if target.code.get("kind") == "image" else "")
                ).startswith(("python", "provided")):
            return _function_error(request_id, target, "Runtime.InvalidRuntime",
                                   f"unkai runs Python functions; {target.config.get('Runtime')} is not supported.")
        key = target.key
        self.inflight[key] = self.inflight.get(key, 0) + 1
        self._concurrency_metric(target)
        try:
            if target.spec is None or self.cloud.service("sts").stale(target.spec.env):
                target.spec = self.spec_for(target)
            # a tenant's environments are its own, never shared with another tenant (TenancyConfig)
            pool = f"{target.arn}:{target.version}" + (f"#tenant:{tenant_id}" if tenant_id else "")
            outcome = await self.runtime.invoke(
                pool, target.spec, request_id, payload, target.invoked_arn,
                client_context, limit=1 if target.spec.debug_port else target.reserved or None,
                tenant_id=tenant_id, stream=stream)
        finally:
            self.inflight[key] -= 1
            self._slot_freed(key)
        if outcome.invalid_request is not None:
            raise ServiceError("InvalidRequestContentException", "Could not parse request body into json: Could not "
                               f"parse payload into json: {outcome.invalid_request}", Type="User")
        if len(outcome.payload) > fn.SYNC_PAYLOAD_LIMIT and not outcome.failed and not outcome.streamed:
            outcome.payload = json.dumps({
                "errorMessage": f"Response payload size ({len(outcome.payload)} bytes) exceeded maximum allowed "
                f"payload size ({fn.SYNC_PAYLOAD_LIMIT} bytes).", "errorType": "Function.ResponseSizeTooLarge"}).encode()
            outcome.error_type = "Function.ResponseSizeTooLarge"
        result = InvokeResult(200, outcome.payload, "Unhandled" if outcome.failed else None,
                              executed_version=target.version, request_id=request_id, error_type=outcome.error_type)
        published = functools.partial(
            self.cloud.feed.publish,
            "lambda.invoke", function=target.config.get("FunctionName"), arn=target.arn, version=target.version,
            request_id=request_id, status="error" if outcome.failed else "ok", error_type=outcome.error_type,
            duration_ms=round(outcome.duration_ms, 2), cold=outcome.init_ms is not None,
            max_memory_mb=outcome.max_memory_mb, trigger=TRIGGER.get() or None,
            **(_error_fields(outcome.payload) if outcome.failed else {}))
        if TRACE.get():  # the event keeps the invocation's trace wherever it is published from
            published.keywords.setdefault("trace", TRACE.get())
        self._records.append(("event", None, published))
        if DEFER_RECORDS.get():
            self._flush_soon()  # the caller's next transaction writes them; at the loop's next turn at the latest
        else:
            # the log lines are stored before the caller has the answer, in one commit with the
            # metrics CloudWatch records from the event
            self.flush_records()
        if log_type == "Tail":
            result.log_result = base64.b64encode(outcome.log_text.encode()[-4096:]).decode()
        return result

    def _concurrency_metric(self, target: Target) -> None:
        """AWS/Lambda ConcurrentExecutions (read as its Maximum) for the function and across
        the account's functions, and UnreservedConcurrentExecutions (those of functions without
        reserved concurrency), counted as each invocation starts (CloudWatch's ``count``)."""
        cw = self.cloud.services.get("cloudwatch")
        if cw is None:
            return
        account, region, _ = key = target.key
        if target.reserved is None:
            self.reserved_keys.discard(key)
        else:
            self.reserved_keys.add(key)
        here = [(k, n) for k, n in self.inflight.items() if k[0] == account and k[1] == region]
        cw.count(account, region, "AWS/Lambda", "ConcurrentExecutions", [{"Name": "FunctionName", "Value": key[2]}],
                 float(self.inflight[key]))
        cw.count(account, region, "AWS/Lambda", "ConcurrentExecutions", None, float(sum(n for _, n in here)))
        cw.count(account, region, "AWS/Lambda", "UnreservedConcurrentExecutions", None,
                 float(sum(n for k, n in here if k not in self.reserved_keys)))

    async def invoke_api(self, ctx: RequestContext, params: dict) -> dict:
        payload = params.get("Payload") or b""
        if not TRIGGER.get():
            triggered_by("Invoke API")
        client_context = _client_context(params)
        if params.get("InvocationType") == "RequestResponse" or not params.get("InvocationType"):
            _check_json(payload)
        result = await self.invoke(params["FunctionName"], payload, region=ctx.region, account=ctx.account,
                                   invocation_type=params.get("InvocationType") or "RequestResponse",
                                   qualifier=params.get("Qualifier"), client_context=client_context,
                                   log_type=params.get("LogType") or "None", request_id=ctx.request_id or None,
                                   durable_execution_name=params.get("DurableExecutionName"),
                                   tenant_id=params.get("TenantId"))
        out: dict[str, Any] = {"StatusCode": result.status_code}
        if result.durable_execution_arn:
            out["DurableExecutionArn"] = result.durable_execution_arn
        if result.status_code == 200:
            out["Payload"] = result.payload
            out["ExecutedVersion"] = result.executed_version
        if result.function_error:
            out["FunctionError"] = result.function_error
        if result.log_result is not None:
            out["LogResult"] = result.log_result
        return out

    async def invoke_streaming(self, name: str, payload: bytes, timeout: float | None = None,
                               **invoke: Any) -> "InvokeResult | Streamed":
        """``invoke`` for the callers that pass a streamed response on (InvokeWithResponseStream,
        RESPONSE_STREAM function URLs, API Gateway's streaming integrations): the whole InvokeResult
        when the function answered without streaming (raising what ``invoke`` raises), else Streamed
        once it starts. asyncio.TimeoutError when nothing came within ``timeout`` seconds."""
        events: asyncio.Queue = asyncio.Queue()
        task = asyncio.ensure_future(self.invoke(name, payload, stream=lambda kind, value: events.put_nowait(
            (kind, value)), **invoke))
        first = asyncio.ensure_future(events.get())
        done, _ = await asyncio.wait({task, first}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if not done:
            first.cancel()
            task.cancel()
            raise asyncio.TimeoutError()
        if not first.done():
            first.cancel()
            return task.result()

        async def chunks() -> AsyncIterator[bytes]:
            while True:
                item = asyncio.ensure_future(events.get())
                await asyncio.wait({item, task}, return_when=asyncio.FIRST_COMPLETED)
                if not item.done():
                    item.cancel()
                    break
                kind, value = item.result()
                if kind == "chunk" and value:
                    yield value
            while not events.empty():
                kind, value = events.get_nowait()
                if kind == "chunk" and value:
                    yield value

        return Streamed(first.result()[1], chunks(), task)

    async def invoke_with_response_stream(self, ctx: RequestContext, params: dict) -> Any:
        """InvokeWithResponseStream: the response as an event stream of ``PayloadChunk`` events and a
        closing ``InvokeComplete``, sent as the function streams it (a custom runtime's streaming
        response mode). A function that answers at once (Python's runtime, which does not stream)
        gives one chunk, as AWS does for a buffered response."""
        from unkai.http import Response
        from unkai.protocol import eventstream

        if not TRIGGER.get():
            triggered_by("Invoke API")
        invocation_type = params.get("InvocationType") or "RequestResponse"
        if invocation_type not in ("RequestResponse", "DryRun"):
            raise invalid(f"1 validation error detected: Value '{invocation_type}' at 'invocationType' failed to "
                          "satisfy constraint: Member must satisfy enum value set: [RequestResponse, DryRun]")
        payload = params.get("Payload") or b""
        _check_json(payload)
        client_context = _client_context(params)
        got = await self.invoke_streaming(  # raises the ServiceError AWS answers with (not found, throttled...)
            params["FunctionName"], payload, region=ctx.region, account=ctx.account, invocation_type=invocation_type,
            qualifier=params.get("Qualifier"), client_context=client_context,
            log_type=params.get("LogType") or "None", request_id=ctx.request_id or None,
            tenant_id=params.get("TenantId"))
        if isinstance(got, InvokeResult) and got.status_code == 204:
            return Response(204, [("x-amzn-requestid", ctx.request_id)])
        headers = [("content-type", eventstream.CONTENT_TYPE), ("x-amzn-requestid", ctx.request_id)]
        target = self.resolve(ctx.account, ctx.region, params["FunctionName"], params.get("Qualifier"))
        headers.append(("x-amz-executed-version", target.version))

        def complete(result: InvokeResult) -> bytes:
            done: dict[str, Any] = {}
            if result.function_error:
                try:
                    error = json.loads(result.payload)
                except ValueError:
                    error = {}
                done["ErrorCode"] = str(error.get("errorType") or result.error_type or "Unhandled")
                done["ErrorDetails"] = str(error.get("errorMessage") or "")
            if result.log_result is not None:
                done["LogResult"] = result.log_result
            return eventstream.event("InvokeComplete", json.dumps(done).encode())

        async def body():  # type: ignore[no-untyped-def]
            if isinstance(got, Streamed):  # pass each chunk on as it comes
                async for chunk in got.chunks:
                    yield eventstream.event("PayloadChunk", chunk, "application/octet-stream")
                try:
                    result = await got.invocation
                except ServiceError as exc:
                    yield eventstream.event("InvokeComplete", json.dumps({"ErrorCode": exc.code,
                                                                          "ErrorDetails": exc.message}).encode())
                    return
                yield complete(result)
                return
            result = got
            if not result.function_error and result.payload:
                yield eventstream.event("PayloadChunk", result.payload, "application/octet-stream")
            yield complete(result)

        return Response(200, headers, body())

    async def invoke_async(self, ctx: RequestContext, params: dict) -> dict:
        await self.invoke(params["FunctionName"], params.get("InvokeArgs") or b"", region=ctx.region,
                          account=ctx.account, invocation_type="Event", request_id=ctx.request_id or None)
        return {"Status": 202}

    # -- template resources ---------------------------------------------------------------

    def create_resource(self, ctx, resource_type, logical_id, props):  # type: ignore[no-untyped-def]
        from unkai.services.awslambda import resources

        return resources.create(self, ctx, resource_type, logical_id, props)

    def delete_resource(self, ctx, resource_type, physical_id, props):  # type: ignore[no-untyped-def]
        from unkai.services.awslambda import resources

        resources.delete(self, ctx, resource_type, physical_id, props)


def _check_json(payload: bytes) -> None:
    if not payload.strip():
        return
    try:
        json.loads(payload)
    except ValueError as exc:
        raise ServiceError("InvalidRequestContentException", "Could not parse request body into json: Could not "
                           f"parse payload into json: {exc}", Type="User") from None


def _check_tenant(target: Target, tenant_id: str | None) -> None:
    """A tenant-isolated function needs a TenantId on every invoke; any other function refuses one
    (AWS's messages)."""
    isolated = (target.config.get("TenancyConfig") or {}).get("TenantIsolationMode") == "PER_TENANT"
    if isolated and not tenant_id:
        raise invalid("The invoked function is enabled with tenancy configuration. Add a valid tenant ID in your "
                      "request and try again.")
    if tenant_id and not isolated:
        raise invalid("The invoked function is not enabled with tenancy configuration. Remove the tenant ID from "
                      "your request and try again.")


def _policy_resource(row: tuple, name: fn.Name) -> str:
    """The Resource of a permission's statement: the function's ARN, qualified when the call was."""
    arn = json.loads(row[1])["FunctionArn"]
    return f"{arn}:{name.qualifier}" if name.qualifier else arn


def _function_error(request_id: str, target: Target, error_type: str, message: str) -> InvokeResult:
    body = json.dumps({"errorType": error_type, "errorMessage": message}).encode()
    return InvokeResult(200, body, "Unhandled", executed_version=target.version, request_id=request_id,
                        error_type=error_type)


def _error_fields(payload: bytes) -> dict[str, Any]:
    """What the terminal shows of a failed invocation: the message and where it was raised
    (the innermost frame of the handler's stack trace, as ``file:line``)."""
    try:
        error = json.loads(payload)
    except ValueError:
        return {}
    if not isinstance(error, dict):
        return {}
    stack = [str(line) for line in error.get("stackTrace") or []]
    where = None
    for line in reversed(stack):
        m = re.search(r'File "([^"]+)", line (\d+)', line)
        if m:
            where = f"{re.sub(r'^.*/lambda/code/[0-9a-f]+/', '', m[1])}:{m[2]}"  # relative to the code
            break
    return {"error_message": str(error.get("errorMessage") or "")[:2000], "location": where,
            "stack": stack[-20:] or None}
