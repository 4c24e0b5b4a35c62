"""``unkai up DIR`` for a Terraform root module: plan (printed), apply, and re-apply when a
``.tf`` or ``.tfvars`` file of the root module or of a module it calls changes.

The watching, the banner and the reset snapshot after a re-apply are the template
runner's (``unkai/template/runner.py``); this class only swaps what is applied.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from unkai.services import ResourceContext
from unkai.template.engine import providers, say
from unkai.template.loader import TemplateError
from unkai.template.runner import StackRunner
from unkai.terraform.config import Module
from unkai.terraform.hcl import UNKNOWN, HclError
from unkai.terraform.mapping import direct_providers
from unkai.terraform.run import Result, Run, State

if TYPE_CHECKING:
    from unkai.cloud import Cloud

SYMBOL = {"create": "+", "update": "~", "replace": "-/+", "delete": "-"}


@dataclass
class _Status:
    status: str
    name: str


@dataclass
class Applied:
    """What one apply did, shaped as the template runner's Outcome is read."""

    result: Result
    stack: _Status
    rolled_back: None = None
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)

    @property
    def failed(self) -> dict[str, str]:
        return self.result.failed

    @property
    def unsupported(self) -> dict[str, list[str]]:
        return self.result.unsupported

    @property
    def changed(self) -> bool:
        return self.result.changed


def to_template_error(exc: HclError) -> TemplateError:
    message = f"Error: {exc.summary}" + (f": {exc.detail}" if exc.detail else "")
    if exc.pos is None:
        return TemplateError(message)
    return TemplateError(message, exc.pos.file, f"{exc.pos.line}:{exc.pos.column}")  # type: ignore[arg-type]


class Terraform:
    """Plans and applies one root module into a running cloud."""

    def __init__(self, cloud: "Cloud", root: Path, region: str, var_files: list[Path] | None = None,
                 cli_vars: dict[str, str] | None = None) -> None:
        self.cloud, self.root, self.region = cloud, root.resolve(), region
        self.var_files, self.cli_vars = list(var_files or []), dict(cli_vars or {})
        self.state = State(cloud.store, str(self.root))
        self.name = re.sub(r"[^A-Za-z0-9-]+", "-", self.root.name).strip("-") or "terraform"
        if not self.name[0].isalpha():
            self.name = "tf-" + self.name
        self._lock = asyncio.Lock()
        self._reported: set[str] = set()
        self.modules: dict[Path, Module] = {}
        self._files: set[Path] = set()

    def context(self) -> ResourceContext:
        account = self.cloud.config.account_id
        return ResourceContext(region=self.region, account=account, stack_name=self.name,
                               stack_id=f"terraform:{self.root}", base_dir=self.root,
                               base_url=self.cloud.config.endpoint)

    def run(self, mode: str) -> Result:
        """One plan or apply (raises HclError for a configuration error)."""
        run = Run(self.cloud, self.root, self.state, self.context(),
                  {**providers(self.cloud.services), **direct_providers(self.cloud)}, mode,
                  self.var_files, self.cli_vars, self.modules)
        return run.go()

    async def apply(self) -> Result:
        async with self._lock:
            self.modules = {}  # files are read afresh for each apply (the plan's parse is reused by its apply)
            started = time.perf_counter()
            try:
                plan = self.run("plan")
            finally:  # a broken edit is still watched, so fixing it re-applies
                self._files.update(p for m in self.modules.values() for p in m.files)
            self.report_plan(plan)
            self._files.update(plan.sources)
            if not plan.changes:
                return plan
            self._files.update(plan.sources)
            result = self.run("apply")
            self.report_apply(result)
            say(f"unkai: terraform {self.name}: planned and applied in "
                f"{(time.perf_counter() - started) * 1000:.0f} ms")
            return result

    def report_plan(self, plan: Result) -> None:
        for note in plan.notes:
            self._once(f"unkai: {note}")
        for kind, where in sorted(plan.unsupported.items()):
            self._once(f"unkai: {kind} is not supported by unkai yet; skipped {', '.join(where)}")
        if not plan.changes:
            say(f"unkai: terraform {self.name}: No changes. Your infrastructure matches the configuration.")
            return
        say(f"unkai: terraform {self.name}: plan")
        for change in plan.changes:
            why = f"  ({'; '.join(change.reasons)})" if change.reasons and change.action != "create" else ""
            say(f"  {SYMBOL[change.action]:>3} {change.address} will be "
                f"{ {'create': 'created', 'update': 'updated in-place', 'replace': 'replaced', 'delete': 'destroyed'}[change.action]}{why}")
        counts = {a: sum(1 for c in plan.changes if c.action == a) for a in SYMBOL}
        say(f"  Plan: {counts['create'] + counts['replace']} to add, {counts['update']} to change, "
            f"{counts['delete'] + counts['replace']} to destroy.")

    def report_apply(self, result: Result) -> None:
        for address, message in result.failed.items():
            say(f"unkai: Error: {message}")
        say(f"unkai: Apply {'failed' if result.failed else 'complete'}! Resources: "
            f"{len(result.created) + len(result.replaced)} added, {len(result.updated)} changed, "
            f"{len(result.deleted) + len(result.replaced)} destroyed.")

    def _once(self, line: str) -> None:
        if line not in self._reported:
            self._reported.add(line)
            say(line)

    def output_lines(self) -> list[str]:
        outputs = self.state.outputs()
        if not outputs:
            return []
        from unkai.localurls import browser_form

        width = max(len(k) for k in outputs)
        lines = []
        for key, output in sorted(outputs.items()):
            if not isinstance(output, dict):
                continue
            value = "<sensitive>" if output.get("sensitive") else self._local(output.get("value"))
            lines.append(f"{key:<{width}}  {value}")
            browser = browser_form(value, self.region)
            if browser:  # the value works for any client; this AWS-shaped one in browsers
                lines.append(f"{'':<{width}}  {browser}   (in a browser)")
        return lines

    def _local(self, value: Any) -> str:
        text = value if isinstance(value, str) else json.dumps(value)
        if "://" in text:
            for service in self.cloud.services.url_rewriters():
                rewrite = getattr(service, "local_url", None)
                local = rewrite(text) if rewrite is not None else None
                if local:
                    return local
        return text

    def watched(self) -> set[Path]:
        paths: set[Path] = set(self._files) | {p.resolve() for p in self.root.glob("*.tf")}
        paths.add(self.root / "terraform.tfvars")
        for module in self.modules.values():
            paths.update(module.files)
            paths.add(module.dir / "terraform.tfvars")
        paths.update(Path(p).resolve() for p in self.var_files)
        return paths


class TerraformRunner(StackRunner):
    """The template runner, applying a Terraform root module instead of a stack."""

    def __init__(self, cloud: "Cloud", root: Path, region: str, var_files: list[Path] | None = None,
                 cli_vars: dict[str, str] | None = None) -> None:
        self.cloud = cloud
        self.template = Path(root).resolve()
        self.terraform = Terraform(cloud, self.template, region, var_files, cli_vars)
        self.stack_name = self.terraform.name
        self.region = region
        self.overrides = {}
        self.outcome = None
        self.applying = 0
        self._watch = None
        self._stop = asyncio.Event()
        self._stamps = {}

    async def _deploy(self) -> Applied:  # type: ignore[override]
        self.applying += 1
        try:
            try:
                result = await self.terraform.apply()
            except HclError as exc:
                raise to_template_error(exc) from None
            status = "FAILED" if result.failed else "APPLIED"
            applied = Applied(result, _Status(status, self.stack_name),
                              created=result.created + result.replaced, updated=result.updated,
                              deleted=result.deleted + result.replaced)
            return applied
        finally:
            self.applying -= 1

    def _watched(self) -> set[Path]:
        return self.terraform.watched()

    def output_lines(self) -> list[str]:
        return self.terraform.output_lines()

    def banner(self) -> list[str]:
        if self.outcome is None:
            return []
        count = len(self.terraform.state.rows())
        lines = [f"terraform  {self.stack_name} ({self.outcome.stack.status}, {count} resources) from {self.template}"]
        if self.outcome.failed:
            lines.append(f"           failed: {', '.join(sorted(self.outcome.failed))} (see above)")
        if self.outcome.unsupported:
            skipped = sorted(w.split(" ")[0] for ws in self.outcome.unsupported.values() for w in ws)
            lines.append(f"           skipped (unsupported): {', '.join(skipped)}")
        outputs = self.output_lines()
        if outputs:
            lines.append("outputs")
            lines.extend("  " + line for line in outputs)
        return lines


__all__ = ["Terraform", "TerraformRunner", "UNKNOWN"]
