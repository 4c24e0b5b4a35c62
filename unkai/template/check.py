"""``unkai validate``: every check ``unkai up`` makes before creating anything."""

from __future__ import annotations

from pathlib import Path

from unkai.config import ACCOUNT_ID
from unkai.services import discover
from unkai.template import loader
from unkai.template.accepted import Accepted
from unkai.template.engine import default_stack_name, samconfig_overrides
from unkai.template.plan import make_plan


def supported_types() -> set[str]:
    types = set(Accepted.resource_types)
    for cls in discover().values():
        types.update(cls.resource_types)
    return types


def validate(template: Path, region: str, overrides: dict[str, str], stack_name: str | None = None) -> list[str]:
    """What the template would deploy, as lines to print; raises TemplateError."""
    source = loader.load(template)
    name = stack_name or default_stack_name(template)
    stack_id = f"arn:aws:cloudformation:{region}:{ACCOUNT_ID}:stack/{name}/validation"
    overrides = {**samconfig_overrides(template), **overrides}
    plan = make_plan(source, name, stack_id, region, ACCOUNT_ID, overrides, ssm=None)
    supported = supported_types()
    lines = [f"{source.file} is a valid template: stack {name} in {region}, {len(plan.order)} resources"]
    width = max((len(lid) for lid in plan.order), default=0)
    for logical_id in plan.order:
        kind = plan.resources[logical_id]["Type"]
        line = plan.resource_line(logical_id)
        where = f"line {line}" if line else ""
        note = "" if kind in supported else "not supported by unkai: will be skipped"
        lines.append(f"  {logical_id:<{width}}  {kind:<40} {where:<9} {note}".rstrip())
    return lines
