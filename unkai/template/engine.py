"""Deploying a template: plan it, install function requirements, then create,
update and delete resources through the services that own their types, all in one
store transaction, and record the stack for the CloudFormation API.

A resource that fails is reported (file, line, resource) and its dependents are
skipped; the rest of the stack is kept, as CloudFormation does with rollback
disabled. Applying the same template again changes nothing; an edited template is
diffed against what is deployed, so data in unchanged resources is kept.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sys
import traceback
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from unkai.protocol import ServiceError
from unkai.services import Provisioned, ResourceContext
from unkai.services.cloudformation.stacks import Stack, StackResource
from unkai.template.dynamic import resolver as dynamic_references
from unkai.template import loader, requirements
from unkai.template.accepted import Accepted
from unkai.template.custom import CustomResourceFailed, CustomResources, is_custom
from unkai.template.loader import Source, TemplateError
from unkai.template.plan import Plan, make_plan
from unkai.template.samconfig import default_stack_name, overrides as samconfig_overrides  # noqa: F401

if TYPE_CHECKING:
    from unkai.cloud import Cloud

log = logging.getLogger("unkai.template")
_STACK_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,127}$")


def say(message: str) -> None:
    """A line for the person running ``unkai up`` (stderr, so stdout stays the banner)."""
    print(message, file=sys.stderr, flush=True)


def providers(services: Any) -> dict[str, Any]:
    """Resource type -> the provider that creates it: the owning service, else unkai's accepted
    no-ops. The cloud's services load on first use: each type's provider loads its service
    when it is first asked to provision one (unkai/cloud.py)."""
    accepted = Accepted()
    found: dict[str, Any] = {t: accepted for t in accepted.resource_types}
    if hasattr(services, "resource_types"):
        lazy: dict[str, _Provider] = {}
        for resource_type, name in services.resource_types().items():
            found[resource_type] = lazy.setdefault(name, _Provider(services, name))
        return found
    for service in services.values():
        for resource_type in getattr(service, "resource_types", ()):
            found[resource_type] = service
    return found


class _Provider:
    """A service's resource provider, loading the service at its first use."""

    def __init__(self, services: Any, name: str) -> None:
        self._services = services
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._services[self._name], attr)


@dataclass
class Outcome:
    stack: Stack
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    unsupported: dict[str, list[str]] = field(default_factory=dict)
    install_errors: dict[str, str] = field(default_factory=dict)
    rolled_back: list[str] | None = None  # a failed update was undone: what it had changed

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.deleted)


class Deployer:
    """Deploys stacks into one running cloud."""

    def __init__(self, cloud: "Cloud") -> None:
        self.cloud = cloud
        self.stacks = cloud.service("cloudformation").stacks
        self._lock = asyncio.Lock()
        self._reported: set[str] = set()
        self.custom = CustomResources(cloud, self.local_url)

    # -- planning -----------------------------------------------------------------

    def ssm_lookup(self, region: str) -> Any:
        ssm = self.cloud.services.get("ssm")
        if ssm is None:
            return None
        return lambda name: ssm.parameter_value(self.cloud.config.account_id, region, name)

    def plan(self, source: Source, stack_name: str, region: str, overrides: dict[str, str],
             stack_id: str | None = None) -> Plan:
        account = self.cloud.config.account_id
        if not _STACK_NAME.match(stack_name):
            raise TemplateError(f"the stack name {stack_name!r} is not valid: it must start with a letter and contain "
                                "only letters, digits and hyphens (at most 128)", source.file)
        stack_id = stack_id or f"arn:aws:cloudformation:{region}:{account}:stack/{stack_name}/{uuid.uuid4()}"
        return make_plan(source, stack_name, stack_id, region, account, overrides, self.ssm_lookup(region))

    # -- deploying ----------------------------------------------------------------

    async def deploy(self, template: Path, stack_name: str, region: str, overrides: dict[str, str]) -> Outcome:
        async with self._lock:
            source = loader.load(template)
            existing = self.stacks.find(self.cloud.config.account_id, region, stack_name)
            plan = self.plan(source, stack_name, region, overrides, existing.stack_id if existing else None)
            install_errors = await self._install_requirements(plan)
            outcome = await self._apply(plan, existing, install_errors)
            self._report(plan, outcome)
            return outcome

    async def _install_requirements(self, plan: Plan) -> dict[str, str]:
        """Install each function's and layer's requirements; failures by logical id."""
        jobs: list[tuple[str, dict[str, Any], str | None]] = []
        for logical_id in plan.order:
            resource = plan.resources[logical_id]
            props = resource.get("Properties") or {}
            key = {"AWS::Lambda::Function": "Code", "AWS::Lambda::LayerVersion": "Content"}.get(resource["Type"])
            code = props.get(key) if key else None
            if isinstance(code, dict) and "LocalPath" in code:
                runtime = props.get("Runtime") if key == "Code" else _first(props.get("CompatibleRuntimes"))
                jobs.append((logical_id, code, runtime if isinstance(runtime, str) else None))
        errors: dict[str, str] = {}
        room = asyncio.Semaphore(2)
        cache = self.cloud.config.state_dir / "build" / plan.stack_name

        async def one(logical_id: str, code: dict[str, Any], runtime: str | None) -> None:
            async with room:
                local = Path(code["LocalPath"])
                if not local.is_dir() or not (local / "requirements.txt").is_file():
                    return
                result = await requirements.install(local, runtime, cache / logical_id,
                                                    lambda what: say(f"unkai: {logical_id}: {what} ..."))
            if result.error:
                errors[logical_id] = result.error
            elif result.path is not None:
                code["ExtraPaths"] = [str(result.path)]

        await asyncio.gather(*(one(*job) for job in jobs))
        return errors

    async def _apply(self, plan: Plan, existing: Stack | None, install_errors: dict[str, str]) -> Outcome:
        """Create, update and delete resources one by one, each committed with its stack
        record (custom resources call back into unkai, so nothing stays open across them)."""
        now = self.cloud.clock.now()
        account = plan.account
        stack = existing or Stack(plan.stack_id, account, plan.region, plan.stack_name, "CREATE_IN_PROGRESS", None,
                                  None, "", {}, [], [], now)
        first = existing is None
        old = self.stacks.resources(stack.stack_id) if existing else {}
        outcome = Outcome(stack, install_errors=dict(install_errors))
        by_type = providers(self.cloud.services)
        ctx = ResourceContext(region=plan.region, account=account, stack_name=plan.stack_name,
                              stack_id=plan.stack_id, base_dir=plan.source.base_dir, base_url=self.cloud.config.endpoint)
        made: dict[str, StackResource] = {}

        def lookup(logical_id: str) -> tuple[Any, dict[str, Any]] | None:
            res = made.get(logical_id)
            if res is None or not res.usable:
                return None
            return res.ref, res.attributes

        resolver = plan.resolver(lookup)
        resolver.dynamic = dynamic_references(self.cloud, account, plan.region)
        with self.cloud.store.transaction():
            self.stacks.save(stack)
        for seq, logical_id in enumerate(plan.order):
            resource = plan.resources[logical_id]
            kind = resource["Type"]
            path = ("Resources", logical_id)
            record = StackResource(logical_id, kind, None, None, depends=sorted(plan.depends[logical_id]),
                                   updated=now, seq=seq)
            made[logical_id] = record
            broken = sorted(d for d in plan.depends[logical_id] if not made[d].usable)
            if logical_id in install_errors:
                record.status, record.reason = "CREATE_FAILED", install_errors[logical_id]
                outcome.failed[logical_id] = install_errors[logical_id]
                self._carry_over(old.get(logical_id), record)
                continue
            if broken:
                record.status = "CREATE_FAILED"
                record.reason = f"not created because {', '.join(broken)} failed"
                outcome.failed[logical_id] = record.reason
                self._carry_over(old.get(logical_id), record)
                continue
            try:
                props = resolver.resolve(resource.get("Properties") or {}, path + ("Properties",))
            except TemplateError as exc:
                record.status, record.reason = "CREATE_FAILED", exc.message
                outcome.failed[logical_id] = str(exc)
                self._carry_over(old.get(logical_id), record)
                continue
            record.props = props
            previous = old.get(logical_id)
            if is_custom(kind):
                await self._custom(ctx, plan, record, previous, outcome)
                continue
            provider = by_type.get(kind)
            if provider is None:
                outcome.unsupported.setdefault(kind, []).append(logical_id)
                _placeholder(record, plan, kind)
                continue
            try:
                with self.cloud.store.transaction():
                    if previous is not None and previous.type == kind and previous.physical_id:
                        if _keep_unchanged(previous, record):
                            continue
                        got = provider.update_resource(ctx, kind, logical_id, previous.physical_id, previous.props,
                                                       props)
                        record.status = "UPDATE_COMPLETE"
                        outcome.updated.append(logical_id)
                    else:
                        if previous is not None and previous.physical_id:
                            self._delete(by_type, ctx, previous)
                        got = provider.create_resource(ctx, kind, logical_id, props)
                        record.status = "CREATE_COMPLETE"
                        outcome.created.append(logical_id)
                    _take(record, got)
                    self.stacks.save_resource(stack.stack_id, record)
            except Exception as exc:  # a provider's refusal, or its bug: this resource fails, the stack goes on
                message = exc.message if isinstance(exc, (ServiceError, TemplateError)) else f"{type(exc).__name__}: {exc}"
                if not isinstance(exc, (ServiceError, TemplateError, ValueError, KeyError, TypeError)):
                    log.error("creating %s (%s) failed:\n%s", logical_id, kind, traceback.format_exc())
                record.status = "UPDATE_FAILED" if previous is not None else "CREATE_FAILED"
                record.reason = message
                outcome.failed[logical_id] = str(plan.error(message, path))
                self._carry_over(previous, record)
                continue
        if existing is not None and outcome.failed:  # a failed update is rolled back, as CloudFormation does
            await self._roll_back(by_type, ctx, stack, made, old, outcome, now)
            return outcome
        # resources no longer in the template go, dependents first
        gone = [res for lid, res in old.items() if lid not in made]
        old_definitions = (existing.processed.get("Resources") or {}) if existing else {}
        for res in sorted(gone, key=lambda r: -r.seq):
            retain = (old_definitions.get(res.logical_id) or {}).get("DeletionPolicy") in ("Retain", "RetainExceptOnCreate")
            try:
                if res.physical_id and not retain and is_custom(res.type):
                    await self.custom.send(ctx, "Delete", res.type, res.logical_id, res.props or {}, res.physical_id)
                with self.cloud.store.transaction():
                    if res.physical_id and not retain and not is_custom(res.type):
                        self._delete(by_type, ctx, res)
            except Exception as exc:  # as above: reported, and the rest goes on
                say(f"unkai: could not delete {res.logical_id} ({res.type}): {type(exc).__name__}: {exc}")
            with self.cloud.store.transaction():
                self.stacks.forget_resource(stack.stack_id, res.logical_id)
            outcome.deleted.append(res.logical_id)
        with self.cloud.store.transaction():
            self._finish(plan, resolver, stack, made, outcome, existing, first, now)
        return outcome

    async def _custom(self, ctx: ResourceContext, plan: Plan, record: StackResource, previous: StackResource | None,
                      outcome: Outcome) -> None:
        """A custom resource: the stack's function answers Create, Update and Delete itself."""
        kind, logical_id, props = record.type, record.logical_id, record.props
        try:
            if previous is not None and previous.type == kind and previous.physical_id:
                if _keep_unchanged(previous, record):
                    return
                got = await self.custom.send(ctx, "Update", kind, logical_id, props, previous.physical_id,
                                             previous.props)
                if got.physical_id != previous.physical_id:  # replaced: the old one is deleted afterwards
                    await self.custom.send(ctx, "Delete", kind, logical_id, previous.props or {},
                                           previous.physical_id)
                record.status = "UPDATE_COMPLETE"
                outcome.updated.append(logical_id)
            else:
                got = await self.custom.send(ctx, "Create", kind, logical_id, props)
                record.status = "CREATE_COMPLETE"
                outcome.created.append(logical_id)
        except CustomResourceFailed as exc:
            record.status = "UPDATE_FAILED" if previous is not None else "CREATE_FAILED"
            record.reason = exc.message
            outcome.failed[logical_id] = str(plan.error(exc.message, ("Resources", logical_id)))
            self._carry_over(previous, record)
            return
        _take(record, got)
        with self.cloud.store.transaction():
            self.stacks.save_resource(ctx.stack_id, record)

    def _finish(self, plan: Plan, resolver: Any, stack: Stack, made: dict[str, StackResource], outcome: Outcome,
                existing: Stack | None, first: bool, now: float) -> None:
        for record in made.values():
            self.stacks.save_resource(stack.stack_id, record)
        stack.outputs = self._outputs(plan, resolver)
        stack.template = plan.source.text
        stack.processed = plan.template
        stack.description = plan.template.get("Description") if isinstance(plan.template.get("Description"), str) else None
        stack.parameters = [
            {"ParameterKey": k, "ParameterValue": "****" if _no_echo(plan, k) else v}
            | ({"ResolvedValue": _resolved(plan, k)} if _is_ssm(plan, k) else {})
            for k, v in plan.raw_parameters.items()
        ]
        failed = bool(outcome.failed)
        if first:
            stack.status = "CREATE_FAILED" if failed else "CREATE_COMPLETE"
        elif outcome.changed or failed or not existing.status.endswith("_COMPLETE"):
            stack.status = "UPDATE_FAILED" if failed else "UPDATE_COMPLETE"
            stack.updated = now
        # else: nothing to update, and CloudFormation leaves the stack as it was
        stack.reason = (f"The following resource(s) failed: [{', '.join(sorted(outcome.failed))}]" if failed
                        else None)
        self.stacks.save(stack)

    async def _roll_back(self, by_type: dict[str, Any], ctx: ResourceContext, stack: Stack,
                         made: dict[str, StackResource], old: dict[str, StackResource], outcome: Outcome,
                         now: float) -> None:
        """Undo a failed update: what it updated goes back to its old properties, what it created is
        deleted, nothing is removed, and the stack keeps its old template and outputs
        (``UPDATE_ROLLBACK_COMPLETE``). A rollback step that fails is reported and the rest goes on."""
        for logical_id in reversed(outcome.updated):
            record, previous = made[logical_id], old[logical_id]
            try:
                if is_custom(record.type):
                    got = await self.custom.send(ctx, "Update", record.type, logical_id, previous.props or {},
                                                 record.physical_id, record.props)
                    previous.physical_id = got.physical_id or previous.physical_id
                else:
                    with self.cloud.store.transaction():
                        got = by_type[record.type].update_resource(ctx, record.type, logical_id, record.physical_id,
                                                                   record.props, previous.props)
                        _take(previous, got)
            except Exception as exc:  # noqa: BLE001 - reported; the rest of the rollback goes on
                say(f"unkai: rolling back {logical_id} failed: {getattr(exc, 'message', None) or exc}")
        for logical_id in reversed(outcome.created):
            record = made[logical_id]
            try:
                if is_custom(record.type):
                    await self.custom.send(ctx, "Delete", record.type, logical_id, record.props or {},
                                           record.physical_id)
                with self.cloud.store.transaction():
                    if not is_custom(record.type):
                        self._delete(by_type, ctx, record)
                    previous = old.get(logical_id)
                    if previous is not None and previous.physical_id and not is_custom(previous.type) \
                            and previous.type in by_type:  # it had replaced one: that one comes back
                        _take(previous, by_type[previous.type].create_resource(ctx, previous.type, logical_id,
                                                                               previous.props))
            except Exception as exc:  # noqa: BLE001
                say(f"unkai: rolling back {logical_id} failed: {getattr(exc, 'message', None) or exc}")
        with self.cloud.store.transaction():
            for logical_id, record in made.items():
                previous = old.get(logical_id)
                if previous is None:
                    self.stacks.forget_resource(stack.stack_id, logical_id)
                    continue
                if logical_id in outcome.failed:
                    previous.status, previous.reason = record.status, record.reason
                elif logical_id in outcome.updated or logical_id in outcome.created:
                    previous.status, previous.reason = "UPDATE_COMPLETE", None
                self.stacks.save_resource(stack.stack_id, previous)
            stack.status = "UPDATE_ROLLBACK_COMPLETE"
            stack.reason = f"The following resource(s) failed to update: [{', '.join(sorted(outcome.failed))}]."
            stack.updated = now
            self.stacks.save(stack)
        outcome.rolled_back = sorted(set(outcome.updated) | set(outcome.created))
        outcome.created, outcome.updated = [], []

    @staticmethod
    def _carry_over(previous: StackResource | None, record: StackResource) -> None:
        """A failed update keeps the resource that was there (CloudFormation keeps the old one)."""
        if previous is not None and previous.physical_id and previous.type == record.type:
            record.physical_id, record.ref, record.attributes = previous.physical_id, previous.ref, previous.attributes
            record.props = previous.props

    def _delete(self, by_type: dict[str, Any], ctx: ResourceContext, res: StackResource) -> None:
        provider = by_type.get(res.type)
        if provider is None:
            return
        provider.delete_resource(ctx, res.type, res.physical_id, res.props)

    def _outputs(self, plan: Plan, resolver: Any) -> list[dict[str, Any]]:
        outputs = []
        for name, output in plan.outputs.items():
            path = ("Outputs", name)
            try:
                value = resolver.resolve(output["Value"], path + ("Value",))
            except TemplateError as exc:
                say(f"unkai: output {name} has no value: {exc}")
                continue
            if isinstance(value, list):
                value = ",".join(str(v) for v in value)
            entry: dict[str, Any] = {"OutputKey": name, "OutputValue": self.local_url(_text(value))}
            if isinstance(output.get("Description"), str):
                entry["Description"] = output["Description"]
            export = output.get("Export")
            if isinstance(export, dict) and "Name" in export:
                try:
                    entry["ExportName"] = _text(resolver.resolve(export["Name"], path + ("Export", "Name")))
                except TemplateError:
                    pass
            outputs.append(entry)
        return outputs

    def local_url(self, value: str) -> str:
        """An AWS URL (execute-api, S3 website...) as the local URL that serves it, when a service knows one."""
        if "://" not in value:
            return value
        for service in self.cloud.services.url_rewriters():
            rewrite = getattr(service, "local_url", None)
            local = rewrite(value) if rewrite is not None else None
            if local:
                return local
        return value

    def _report(self, plan: Plan, outcome: Outcome) -> None:
        for kind, ids in sorted(outcome.unsupported.items()):
            key = f"{plan.stack_name}:{kind}:{','.join(ids)}"
            if key in self._reported:
                continue
            self._reported.add(key)
            ids = sorted(ids, key=lambda lid: plan.resource_line(lid) or 0)
            where = ", ".join(f"{lid} (line {plan.resource_line(lid)})" if plan.resource_line(lid) else lid
                              for lid in ids)
            say(f"unkai: {plan.source.file}: {kind} is not supported by unkai yet; skipped {where}")
        for logical_id, message in outcome.failed.items():
            if logical_id in outcome.install_errors:
                line = plan.resource_line(logical_id)
                say(f"unkai: {plan.source.file}{':' + str(line) if line else ''}: Resources.{logical_id}: "
                    f"requirements not installed, function not created: {message}")
            else:
                say(f"unkai: {message}" if message.startswith(str(plan.source.file)) else
                    f"unkai: {plan.source.file}: Resources.{logical_id}: {message}")


def _keep_unchanged(previous: StackResource, record: StackResource) -> bool:
    """An unchanged, healthy resource is left alone: the record takes over its state."""
    if not (previous.ok and previous.props == record.props):
        return False
    record.physical_id, record.ref = previous.physical_id, previous.ref
    record.attributes, record.status, record.updated = previous.attributes, previous.status, previous.updated
    return True


def _take(record: StackResource, got: Provisioned) -> None:
    record.physical_id = got.physical_id
    record.ref = got.ref if got.ref is not None else got.physical_id
    record.attributes = dict(got.attributes)


def _placeholder(record: StackResource, plan: Plan, kind: str) -> None:
    """An unsupported resource: nothing exists, but references to it resolve to plausible stand-ins."""
    service = kind.split("::")[1].lower() if kind.count("::") == 2 else "unknown"
    name = f"{plan.stack_name}-{record.logical_id}"
    record.physical_id, record.ref = None, name  # nothing exists: a later provider creates it afresh
    arn = f"arn:aws:{service}:{plan.region}:{plan.account}:{name}"
    record.attributes = _AnyAttribute(arn)
    record.status = "CREATE_COMPLETE"
    record.reason = "unkai does not support this resource type: nothing was created"


class _AnyAttribute(dict):
    """Fn::GetAtt on an unsupported resource gives its stand-in ARN for Arn and any other attribute."""

    def __init__(self, arn: str) -> None:
        super().__init__(Arn=arn)

    def __contains__(self, key: object) -> bool:
        return True

    def __missing__(self, key: str) -> str:
        return self["Arn"]


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, list) and value else None


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def _declared(plan: Plan, name: str) -> dict[str, Any]:
    spec = (plan.source.data.get("Parameters") or {}).get(name)
    return spec if isinstance(spec, dict) else {}


def _no_echo(plan: Plan, name: str) -> bool:
    return str(_declared(plan, name).get("NoEcho", "")).lower() == "true"


def _is_ssm(plan: Plan, name: str) -> bool:
    return str(_declared(plan, name).get("Type", "")).startswith("AWS::SSM::Parameter::Value<")


def _resolved(plan: Plan, name: str) -> str:
    value = plan.parameters[name]
    return ",".join(value) if isinstance(value, list) else str(value)
