"""The stack ``unkai up TEMPLATE`` runs: deployed before the server reports ready,
redeployed when the template (or a function's requirements.txt) changes, and
described in the startup banner."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from unkai.template import loader
from unkai.template.engine import Deployer, Outcome, default_stack_name, samconfig_overrides, say
from unkai.template.loader import TemplateError

if TYPE_CHECKING:
    from unkai.cloud import Cloud

log = logging.getLogger("unkai.template")


class StackRunner:
    def __init__(self, cloud: "Cloud", template: Path, stack_name: str | None, region: str,
                 overrides: dict[str, str]) -> None:
        self.cloud = cloud
        self.template = loader.find_template(Path(template)).resolve()
        self.stack_name = stack_name or default_stack_name(self.template)
        self.region = region
        self.overrides = {**samconfig_overrides(self.template), **overrides}  # the command line wins
        self.deployer = Deployer(cloud)
        self.outcome: Outcome | None = None
        self.applying = 0
        self._watch: asyncio.Task | None = None
        self._stop = asyncio.Event()
        self._stamps: dict[Path, tuple[int, int] | None] = {}

    async def start(self) -> None:
        """Deploy; a template error stops ``unkai up`` (raised)."""
        self._stamps = _stamp(self._watched())
        self.outcome = await self._deploy()
        self._watch = asyncio.create_task(self._watch_files(), name="unkai-template-watch")
        self.cloud.add_pending_probe(lambda: {"template.apply": self.applying})

    async def stop(self) -> None:
        self._stop.set()
        if self._watch is not None:
            self._watch.cancel()
            try:
                await self._watch
            except (asyncio.CancelledError, Exception):
                pass

    async def _deploy(self) -> Outcome:
        self.applying += 1
        try:
            return await self.deployer.deploy(self.template, self.stack_name, self.region, self.overrides)
        finally:
            self.applying -= 1

    def _watched(self) -> set[Path]:
        paths = {self.template}
        stack = self.outcome.stack if self.outcome else None
        if stack is not None:
            for res in self.deployer.stacks.resources(stack.stack_id).values():
                code = res.props.get("Code") or res.props.get("Content")
                if isinstance(code, dict) and "LocalPath" in code:
                    paths.add(Path(code["LocalPath"]) / "requirements.txt")
        return paths

    async def _watch_files(self) -> None:
        from watchfiles import awatch

        while not self._stop.is_set():
            watched = self._watched()
            dirs = sorted({str(p.parent) for p in watched if p.parent.is_dir()})
            now = _stamp(watched)
            # an edit saved while the last apply ran came before this watch began: apply it now
            edited_meanwhile = any(p in now and now[p] != stamp for p, stamp in self._stamps.items())
            self._stamps = now
            try:
                if not edited_meanwhile:
                    async for changes in awatch(*dirs, stop_event=self._stop, debounce=200, step=20,
                                                recursive=False, rust_timeout=1000):
                        if any(Path(path) in watched for _, path in changes):
                            break
                    else:
                        return
            except (OSError, RuntimeError) as exc:
                say(f"unkai: cannot watch {self.template} for changes: {exc}")
                return
            self.applying += 1
            self._stamps = _stamp(watched)
            try:
                say(f"unkai: {self.template.name} changed; applying it to stack {self.stack_name}")
                self.outcome = await self._deploy()
                outcome = self.outcome
                if outcome.rolled_back is not None:
                    say(f"unkai: the edit was not applied: stack {self.stack_name} is as it was "
                        f"({outcome.stack.status}; failed: {', '.join(sorted(outcome.failed))})")
                    continue
                if not outcome.changed and not outcome.failed:
                    say(f"unkai: stack {self.stack_name}: no changes")
                    continue
                self.cloud.resetter.take()  # a reset now returns to the re-applied stack
                say(f"unkai: stack {self.stack_name} {outcome.stack.status}: {len(outcome.created)} created, "
                    f"{len(outcome.updated)} updated, {len(outcome.deleted)} deleted")
                for line in self.output_lines():
                    say("  " + line)
            except TemplateError as exc:
                say(f"unkai: the edited template was not applied (the stack is unchanged): {exc}")
            except Exception:  # a bug must not end the watch
                log.exception("re-applying %s failed", self.template)
            finally:
                self.applying -= 1

    def output_lines(self) -> list[str]:
        stack = self.outcome.stack if self.outcome else None
        if stack is None or not stack.outputs:
            return []
        from unkai.localurls import browser_form

        width = max(len(o["OutputKey"]) for o in stack.outputs)
        lines = []
        for o in stack.outputs:
            lines.append(f"{o['OutputKey']:<{width}}  {o['OutputValue']}")
            other = browser_form(o["OutputValue"], self.cloud.config.region)
            if other:  # the value works for any client; this AWS-shaped one in browsers
                lines.append(f"{'':<{width}}  {other}   (in a browser)")
        return lines

    def banner(self) -> list[str]:
        if self.outcome is None:
            return []
        stack = self.outcome.stack
        count = len(self.deployer.stacks.resources(stack.stack_id))
        lines = [f"stack      {stack.name} ({stack.status}, {count} resources) from {self.template}"]
        if self.outcome.failed:
            lines.append(f"           failed: {', '.join(sorted(self.outcome.failed))} (see above)")
        if self.outcome.unsupported:
            skipped = sorted(lid for ids in self.outcome.unsupported.values() for lid in ids)
            lines.append(f"           skipped (unsupported): {', '.join(skipped)}")
        outputs = self.output_lines()
        if outputs:
            lines.append("outputs")
            lines.extend("  " + line for line in outputs)
        return lines


def _stamp(paths: set[Path]) -> dict[Path, tuple[int, int] | None]:
    """Each file's (mtime, size), None when missing: what tells an edit made between two watches."""
    out: dict[Path, tuple[int, int] | None] = {}
    for path in paths:
        try:
            st = path.stat()
            out[path] = (st.st_mtime_ns, st.st_size)
        except OSError:
            out[path] = None
    return out
