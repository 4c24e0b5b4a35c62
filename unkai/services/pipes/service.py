"""EventBridge Pipes' operations (rest-json): Create/Describe/List/Update/Delete/Start/StopPipe
and tags. A change commits, then the runner's pollers are brought in line with the
table (``PipeMappings.refresh``), as Lambda's mappings are. Transitional states are what
the API answers (CREATING, UPDATING, STARTING, STOPPING, DELETING); DescribePipe shows the
settled one (RUNNING or STOPPED) since unkai settles at once."""

from __future__ import annotations

import json
import re
from typing import Any

from unkai.services import RequestContext, Service
from unkai.services.pipes import errors
from unkai.services.pipes.model import COLUMNS, MIGRATIONS, Pipe, source_kind
from unkai.services.pipes.runner import PipeMappings

NAME = re.compile(r"^[\.\-_A-Za-z0-9]{1,64}$")
SPEC_KEYS = ("Description", "Source", "SourceParameters", "Enrichment", "EnrichmentParameters", "Target",
             "TargetParameters", "RoleArn", "LogConfiguration", "KmsKeyIdentifier")
UPDATABLE = ("Description", "SourceParameters", "Enrichment", "EnrichmentParameters", "Target", "TargetParameters",
             "RoleArn", "LogConfiguration", "KmsKeyIdentifier")


class Pipes(Service):
    name = "pipes"
    migrations = MIGRATIONS
    resource_types = ("AWS::Pipes::Pipe",)

    def __init__(self, cloud: Any) -> None:
        super().__init__(cloud)
        self.runner: PipeMappings | None = None

    async def start(self) -> None:
        self.runner = PipeMappings(self)
        self.runner.start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.stop()

    async def pausing(self) -> None:
        await self.stop()

    async def resetting(self) -> None:
        if self.runner is not None:
            self.runner.start()

    def pending(self) -> dict[str, int]:
        return self.runner.pending() if self.runner is not None else {}

    def _refresh(self) -> None:
        if self.runner is not None:
            self.store.after_commit(self.runner.refresh)

    # -- the model ----------------------------------------------------------------------

    def _pipe(self, ctx: RequestContext, name: str) -> Pipe:
        row = self.store.one(f"SELECT {COLUMNS} FROM pipes_pipes WHERE account=? AND region=? AND name=?",
                             (ctx.account, ctx.region, name))
        if row is None:
            raise errors.not_found(name)
        return Pipe.from_row(row)

    def pipe_by_arn(self, arn: str) -> Pipe | None:
        parts = arn.split(":")
        if len(parts) < 6 or not parts[5].startswith("pipe/"):
            return None
        row = self.store.one(f"SELECT {COLUMNS} FROM pipes_pipes WHERE account=? AND region=? AND name=?",
                             (parts[4], parts[3], parts[5][5:]))
        return Pipe.from_row(row) if row else None

    def _check(self, spec: dict[str, Any]) -> None:
        kind = source_kind(spec.get("Source") or "")
        if kind == "unknown":
            raise errors.validation(f"Source {spec.get('Source')} is not supported. unkai's pipes read SQS queues, "
                                    "DynamoDB streams and Kinesis streams.")
        params = spec.get("SourceParameters") or {}
        if kind != "sqs":
            key = "KinesisStreamParameters" if kind == "kinesis" else "DynamoDBStreamParameters"
            if not (params.get(key) or {}).get("StartingPosition"):
                raise errors.validation(f"[{key}] must be set when source is a "
                                        f"{'Kinesis stream' if kind == 'kinesis' else 'DynamoDB stream'}.")
        from unkai import patterns

        for item in (params.get("FilterCriteria") or {}).get("Filters") or []:
            try:
                patterns.parse(item.get("Pattern") or "")
            except patterns.InvalidPattern:
                raise errors.validation("Invalid filter pattern definition.") from None
        if not (spec.get("Target") or "").startswith("arn:"):
            raise errors.validation(f"Target {spec.get('Target')} is not a valid ARN.")

    def _answer(self, pipe: Pipe, state: str, desired: str | None = None) -> dict[str, Any]:
        return {"Arn": pipe.arn, "Name": pipe.name, "DesiredState": desired or pipe.desired, "CurrentState": state,
                "CreationTime": pipe.created, "LastModifiedTime": pipe.modified}

    # -- the API --------------------------------------------------------------------------

    def create_pipe(self, ctx: RequestContext, params: dict) -> dict:
        name = params["Name"]
        if not NAME.match(name):
            raise errors.validation(f"1 validation error detected: Value '{name}' at 'name' failed to satisfy "
                                    "constraint: Member must satisfy regular expression pattern: [\\.\\-_A-Za-z0-9]+")
        spec = {k: params[k] for k in SPEC_KEYS if params.get(k) is not None}
        self._check(spec)
        if self.store.one("SELECT 1 FROM pipes_pipes WHERE account=? AND region=? AND name=?",
                          (ctx.account, ctx.region, name)):
            raise errors.conflict(name)
        desired = params.get("DesiredState") or "RUNNING"
        now = self.clock.now()
        state: dict[str, Any] = {}
        kind = source_kind(spec["Source"])
        if kind != "sqs":
            from unkai.pollers.streams import initial_state
            from unkai.protocol import ServiceError

            probe = Pipe(ctx.account, ctx.region, name, spec, desired, now, now, {})
            from unkai.services.pipes.runner import poller_config

            try:
                state = initial_state(self.cloud, kind, poller_config(probe))
            except ServiceError:
                raise errors.validation(f"Source {spec['Source']} does not exist.") from None
        self.store.execute("INSERT INTO pipes_pipes(account, region, name, spec, desired, created, modified, state, "
                           "tags) VALUES(?,?,?,?,?,?,?,?,?)",
                           (ctx.account, ctx.region, name, json.dumps(spec), desired, now, now, json.dumps(state),
                            json.dumps(params.get("Tags") or {})))
        self._refresh()
        return self._answer(self._pipe(ctx, name), "CREATING")

    def describe_pipe(self, ctx: RequestContext, params: dict) -> dict:
        pipe = self._pipe(ctx, params["Name"])
        out: dict[str, Any] = {"Arn": pipe.arn, "Name": pipe.name, "DesiredState": pipe.desired,
                               "CurrentState": pipe.desired, **pipe.spec, "Tags": pipe.tags,
                               "CreationTime": pipe.created, "LastModifiedTime": pipe.modified}
        return out

    def list_pipes(self, ctx: RequestContext, params: dict) -> dict:
        from unkai.paging import paged

        rows = self.store.all(f"SELECT {COLUMNS} FROM pipes_pipes WHERE account=? AND region=? ORDER BY name",
                              (ctx.account, ctx.region))
        out = []
        for row in rows:
            pipe = Pipe.from_row(row)
            if not pipe.name.startswith(params.get("NamePrefix") or ""):
                continue
            if params.get("DesiredState") not in (None, pipe.desired):
                continue
            if params.get("CurrentState") not in (None, pipe.desired):
                continue
            if not pipe.source.startswith(params.get("SourcePrefix") or ""):
                continue
            if not pipe.spec["Target"].startswith(params.get("TargetPrefix") or ""):
                continue
            item = {"Name": pipe.name, "Arn": pipe.arn, "DesiredState": pipe.desired, "CurrentState": pipe.desired,
                    "CreationTime": pipe.created, "LastModifiedTime": pipe.modified, "Source": pipe.source,
                    "Target": pipe.spec["Target"]}
            if pipe.spec.get("Enrichment"):
                item["Enrichment"] = pipe.spec["Enrichment"]
            out.append(item)
        return paged("Pipes", out, params.get("NextToken"), params.get("Limit"))

    def update_pipe(self, ctx: RequestContext, params: dict) -> dict:
        pipe = self._pipe(ctx, params["Name"])
        spec = dict(pipe.spec)
        for key in UPDATABLE:
            if key in params:
                if key == "SourceParameters":  # UpdatePipeSourceParameters: merged by source type
                    merged = dict(spec.get(key) or {})
                    for sub, value in (params[key] or {}).items():
                        merged[sub] = dict(merged.get(sub) or {}, **value) if isinstance(value, dict) else value
                    spec[key] = merged
                else:
                    spec[key] = params[key]
        self._check(spec)
        desired = params.get("DesiredState") or pipe.desired
        self.store.execute("UPDATE pipes_pipes SET spec=?, desired=?, modified=? WHERE account=? AND region=? "
                           "AND name=?", (json.dumps(spec), desired, self.clock.now(), ctx.account, ctx.region,
                                          pipe.name))
        self._refresh()
        return self._answer(self._pipe(ctx, pipe.name), "UPDATING")

    def _set_desired(self, ctx: RequestContext, name: str, desired: str, state: str) -> dict:
        pipe = self._pipe(ctx, name)
        self.store.execute("UPDATE pipes_pipes SET desired=?, modified=? WHERE account=? AND region=? AND name=?",
                           (desired, self.clock.now(), ctx.account, ctx.region, name))
        self._refresh()
        return self._answer(self._pipe(ctx, pipe.name), state)

    def start_pipe(self, ctx: RequestContext, params: dict) -> dict:
        return self._set_desired(ctx, params["Name"], "RUNNING", "STARTING")

    def stop_pipe(self, ctx: RequestContext, params: dict) -> dict:
        return self._set_desired(ctx, params["Name"], "STOPPED", "STOPPING")

    def delete_pipe(self, ctx: RequestContext, params: dict) -> dict:
        pipe = self._pipe(ctx, params["Name"])
        self.store.execute("DELETE FROM pipes_pipes WHERE account=? AND region=? AND name=?",
                           (ctx.account, ctx.region, pipe.name))
        self._refresh()
        return self._answer(pipe, "DELETING", "DELETED")

    # -- tags ---------------------------------------------------------------------------------

    def _tagged(self, arn: str) -> Pipe:
        pipe = self.pipe_by_arn(arn)
        if pipe is None:
            raise errors.resource_not_found(arn)
        return pipe

    def _save_tags(self, pipe: Pipe) -> None:
        self.store.execute("UPDATE pipes_pipes SET tags=? WHERE account=? AND region=? AND name=?",
                           (json.dumps(pipe.tags), pipe.account, pipe.region, pipe.name))

    def tag_resource(self, ctx: RequestContext, params: dict) -> dict:
        pipe = self._tagged(params["resourceArn"])
        pipe.tags.update(params.get("tags") or {})
        self._save_tags(pipe)
        return {}

    def untag_resource(self, ctx: RequestContext, params: dict) -> dict:
        pipe = self._tagged(params["resourceArn"])
        for key in params.get("tagKeys") or []:
            pipe.tags.pop(key, None)
        self._save_tags(pipe)
        return {}

    def list_tags_for_resource(self, ctx: RequestContext, params: dict) -> dict:
        return {"tags": self._tagged(params["resourceArn"]).tags}
