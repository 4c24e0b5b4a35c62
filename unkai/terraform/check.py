"""``unkai validate DIR`` for a Terraform root module: what can be checked without the
cloud (as ``terraform validate`` checks without credentials): the files' syntax, every
module call's local source, the blocks and arguments each resource type accepts, and
which types unkai would skip."""

from __future__ import annotations

from pathlib import Path

from unkai.terraform import data as data_sources
from unkai.terraform.config import META_RESOURCE, Module, get_string, load_module
from unkai.terraform.hcl import Body, HclError
from unkai.terraform.mapping import TYPES


def validate(root: Path) -> list[str]:
    """Lines describing the configuration; raises HclError at the first problem."""
    seen: dict[Path, Module] = {}
    todo = [root.resolve()]
    while todo:
        directory = todo.pop()
        if directory in seen:
            continue
        module = seen[directory] = load_module(directory)
        for block in module.calls.values():
            source = get_string(block, "source") or ""
            if not source.startswith(("./", "../")):
                raise HclError("Module not installed", f'unkai runs modules from local paths; "{source}" would need '
                               "terraform init.", block.pos)
            target = (directory / source).resolve()
            if not target.is_dir():
                raise HclError("Unreadable module directory", f"Unable to evaluate directory symlink: lstat {target}: "
                               "no such file or directory", block.body.attributes["source"].pos)
            todo.append(target)
    resources, skipped = 0, []
    for module in seen.values():
        for res in module.resources.values():
            if res.mode == "data":
                schema = data_sources.SCHEMAS.get(res.type)
                if schema is None:
                    skipped.append(f"data.{res.type}.{res.name} ({res.block.pos.file}:{res.block.pos.line})")
                else:
                    _check(res.block.body, schema[0], schema[1])
                continue
            resources += 1
            entry = TYPES.get(res.type)
            if entry is None:
                skipped.append(f"{res.type}.{res.name} ({res.block.pos.file}:{res.block.pos.line})")
            else:
                _check(res.block.body, entry.args, entry.blocks)
    lines = [f"{root}: the configuration is valid: {resources} resource block(s) in {len(seen)} module(s)"]
    if skipped:
        lines.append(f"not supported by unkai (skipped by unkai up): {', '.join(skipped)}")
    return lines


def _check(body: Body, args: frozenset[str], blocks: dict, top: bool = True) -> None:
    for name, attr in body.attributes.items():
        if (top and name in META_RESOURCE) or args is None:
            continue
        if name not in args:
            raise HclError("Unsupported argument", f'An argument named "{name}" is not expected here.', attr.pos)
    for block in body.blocks:
        if top and block.type in ("lifecycle", "provisioner", "connection"):
            continue
        kind = block.labels[0] if block.type == "dynamic" and block.labels else block.type
        if blocks is not None and kind not in blocks:
            raise HclError("Unsupported block type", f'Blocks of type "{kind}" are not expected here.', block.pos)
        inner = blocks.get(kind) if blocks is not None else None
        if block.type == "dynamic":
            for content in block.body.blocks_of("content"):
                _check(content.body, inner, None, top=False)
        else:
            _check(block.body, inner, None, top=False)
