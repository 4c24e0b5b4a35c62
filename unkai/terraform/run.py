"""Planning and applying a Terraform root module against the running cloud.

Evaluation is demand-driven: walking the configuration asks for each resource, and a
resource asks for whatever its expressions reference (and its ``depends_on``) first, so
dependencies are created before their dependents without a separate graph, and a cycle
shows up as a resource asked for while it is being worked out. The same walk runs twice:
``plan`` decides create/update/replace/delete from the stored state (attributes of what
does not exist yet are unknown), then ``apply`` does it through the CloudFormation
providers named in ``mapping.TYPES``. Every resource's state row is written in the same
store transaction as its provider's work, so a failed apply keeps what it created and
the next one carries on from there, as Terraform does.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from unkai.protocol import ServiceError
from unkai.services import Provisioned, ResourceContext
from unkai.terraform import data as data_sources
from unkai.terraform import functions
from unkai.terraform.config import (META_RESOURCE, Module, Resource, finish_variable, get_string, load_module,
                                    parse_value, root_inputs, variable_type)
from unkai.terraform.hcl import (UNKNOWN, Block, Body, Expr, GetAttr, HclError, Index, Pos, Template, TfSet, Tuple,
                                 Variable, _Builder, _merge, _nest, to_bool, to_number, to_string)
from unkai.terraform.mapping import TYPES, TfType, logical_id

if TYPE_CHECKING:
    from unkai.cloud import Cloud

log = logging.getLogger(__name__)

MIGRATIONS = [
    """CREATE TABLE terraform_resources (
        root TEXT NOT NULL, address TEXT NOT NULL, type TEXT NOT NULL, cfn_type TEXT NOT NULL,
        physical_id TEXT, props TEXT NOT NULL, config TEXT NOT NULL, attributes TEXT NOT NULL,
        seq INTEGER NOT NULL, PRIMARY KEY (root, address))""",
    "CREATE TABLE terraform_roots (root TEXT PRIMARY KEY, outputs TEXT NOT NULL, serial INTEGER NOT NULL)",
]


@dataclass
class Row:
    address: str
    type: str
    cfn_type: str
    physical_id: str | None
    props: dict
    config: dict
    attributes: dict
    seq: int


class State:
    """One root module's state in unkai's store (keyed by the module's directory)."""

    def __init__(self, store: Any, root: str) -> None:
        self.store, self.root = store, root
        store.migrate("terraform", MIGRATIONS)

    def rows(self) -> dict[str, Row]:
        out = {}
        for r in self.store.all("SELECT address, type, cfn_type, physical_id, props, config, attributes, seq "
                                "FROM terraform_resources WHERE root=?", (self.root,)):
            out[r[0]] = Row(r[0], r[1], r[2], r[3], json.loads(r[4]), json.loads(r[5]), json.loads(r[6]), r[7])
        return out

    def save(self, row: Row) -> None:
        self.store.execute(
            "INSERT OR REPLACE INTO terraform_resources VALUES (?,?,?,?,?,?,?,?,?)",
            (self.root, row.address, row.type, row.cfn_type, row.physical_id, json.dumps(row.props),
             json.dumps(row.config), json.dumps(row.attributes), row.seq))

    def forget(self, address: str) -> None:
        self.store.execute("DELETE FROM terraform_resources WHERE root=? AND address=?", (self.root, address))

    def outputs(self) -> dict[str, Any]:
        row = self.store.one("SELECT outputs FROM terraform_roots WHERE root=?", (self.root,))
        return json.loads(row[0]) if row else {}

    def save_outputs(self, outputs: dict[str, Any]) -> None:
        self.store.execute("INSERT INTO terraform_roots VALUES (?,?,1) ON CONFLICT(root) DO UPDATE SET "
                           "outputs=excluded.outputs, serial=serial+1", (self.root, json.dumps(outputs)))


@dataclass
class Change:
    address: str
    action: str  # create, update, replace, delete
    pos: Pos | None
    reasons: list[str] = field(default_factory=list)


class Failed(Exception):
    """A resource failed to apply: its dependents cannot be worked out either."""

    def __init__(self, address: str, message: str) -> None:
        super().__init__(message)
        self.address, self.message = address, message


@dataclass
class Result:
    changes: list[Change] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    unsupported: dict[str, list[str]] = field(default_factory=dict)  # type -> ["address (file:line)"]
    outputs: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    sources: set[Path] = field(default_factory=set)  # files archive_file packages
    sensitive: set[str] = field(default_factory=set)  # outputs marked sensitive: shown as <sensitive>

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.replaced or self.deleted)


# -- values of resources ---------------------------------------------------------------------------


class ResourceObject(dict):
    """A resource instance's attributes; an argument the schema has but the config left unset is null."""

    def __init__(self, values: dict, entry: TfType | None, address: str) -> None:
        super().__init__(values)
        self.entry, self.address = entry, address

    def tf_attr(self, name: str, pos: Pos) -> Any:
        if name in self:
            return self[name]
        if self.entry is not None and (name in self.entry.args or name in self.entry.blocks):
            return [] if name in self.entry.blocks else None
        if self.entry is None:  # unsupported type or data source: a stand-in
            return self.get("id")
        raise HclError("Unsupported attribute", f'This object has no argument, nested block, or exported attribute '
                       f'named "{name}".', pos)


class _Namespace:
    def __init__(self, inst: "Instance", kind: str, label: str = "") -> None:
        self.inst, self.kind, self.label = inst, kind, label

    def tf_attr(self, name: str, pos: Pos) -> Any:
        inst = self.inst
        where = inst.where
        if self.kind == "var":
            if name not in inst.module.variables:
                raise HclError("Reference to undeclared input variable", f'An input variable with the name "{name}" '
                               f'has not been declared. This variable can be declared with a variable "{name}" {{}} '
                               "block.", pos)
            return inst.variable(name)
        if self.kind == "local":
            if name not in inst.module.locals:
                raise HclError("Reference to undeclared local value", f'A local value with the name "{name}" has not '
                               "been declared.", pos)
            return inst.local(name)
        if self.kind == "module":
            if name not in inst.module.calls:
                raise HclError("Reference to undeclared module", f'No module call named "{name}" is declared in '
                               f"{where}.", pos)
            return inst.call(name)
        if self.kind == "data":
            return _Namespace(inst, "data_type", name)
        if self.kind == "data_type":
            key = f"data.{self.label}.{name}"
            if key not in inst.module.resources:
                raise HclError("Reference to undeclared resource", f'A data resource "{self.label}" "{name}" has not '
                               f"been declared in {where}.", pos)
            return inst.resource(key)
        key = f"{self.kind}.{name}"
        if key not in inst.module.resources:
            raise HclError("Reference to undeclared resource", f'A managed resource "{self.kind}" "{name}" has not '
                           f"been declared in {where}.", pos)
        return inst.resource(key)


class ModuleObject:
    def __init__(self, inst: "Instance") -> None:
        self.inst = inst

    def tf_attr(self, name: str, pos: Pos) -> Any:
        if name not in self.inst.module.outputs:
            raise HclError("Unsupported attribute", f'This object does not have an attribute named "{name}".', pos)
        return self.inst.output(name)


class Scope:
    def __init__(self, inst: "Instance", names: dict[str, Any] | None = None) -> None:
        self.inst, self.names = inst, names or {}

    def child(self, names: dict[str, Any]) -> "Scope":
        return Scope(self.inst, {**self.names, **names})

    def root(self, name: str, pos: Pos) -> Any:
        if name in self.names:
            return self.names[name]
        inst = self.inst
        if name in ("var", "local", "module", "data"):
            return _Namespace(inst, name)
        if name == "path":
            rel = os.path.relpath(inst.module.dir, inst.run.root_dir)
            return {"module": rel, "root": ".", "cwd": str(inst.run.root_dir)}
        if name == "terraform":
            return {"workspace": "default"}
        if name in ("count", "each"):
            raise HclError(f'Reference to "{name}" in non-{"counted" if name == "count" else "for_each"} context',
                           f'The "{name}" object can be used only in "module", "resource", and "data" blocks, and '
                           f'only when the "{"count" if name == "count" else "for_each"}" argument is set.', pos)
        if name == "self":
            raise HclError("Invalid \"self\" reference", 'The "self" object is not available in this context.', pos)
        if "_" in name:
            return _Namespace(inst, name)
        raise HclError("Invalid reference", "A reference to a resource type must be followed by at least one "
                       "attribute access, specifying the resource name.", pos)

    def call(self, name: str, args: list, pos: Pos, arg_pos: list[Pos]) -> Any:
        run = self.inst.run
        fn = run.functions.get(name)
        if fn is None:
            raise HclError("Call to unknown function", f'There is no function named "{name}".', pos)
        low, high = functions.ARITY.get(name, (0, None))
        if len(args) < low or (high is not None and len(args) > high):
            raise HclError("Not enough function arguments" if len(args) < low else "Too many function arguments",
                           f'Function "{name}" expects {low if len(args) < low else high} argument(s). Missing value '
                           f"for parameter {len(args) + 1}." if len(args) < low else
                           f'Function "{name}" expects only {high} argument(s).', pos)
        if functions.any_unknown(args) and name not in ("length",):
            return UNKNOWN
        try:
            return fn(args)
        except functions.ArgumentError as exc:
            detail = exc.message if exc.message.startswith("Invalid value") else \
                f"Invalid value for parameter {exc.index + 1}: {exc.message}"
            raise HclError("Invalid function argument", detail, arg_pos[exc.index] if exc.index < len(arg_pos)
                           else pos) from None
        except HclError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure inside a function is its call's error
            raise HclError("Error in function call", f'Call to function "{name}" failed: {exc}.', pos) from None


# -- module instances ------------------------------------------------------------------------------


class Instance:
    """One instance of a module (the root, or a ``module`` block's) and what it has worked out."""

    def __init__(self, run: "Run", module: Module, prefix: str, inputs: dict[str, tuple[Any, Any]],
                 parent: "Instance | None") -> None:
        self.run, self.module, self.prefix, self.inputs, self.parent = run, module, prefix, inputs, parent
        self.values: dict[str, Any] = {}
        self.busy: set[str] = set()

    @property
    def where(self) -> str:
        return "the root module" if not self.prefix else self.prefix.rstrip(".")

    def _memo(self, key: str, pos: Pos | None, compute: Any) -> Any:
        if key in self.values:
            return self.values[key]
        if key in self.busy:
            raise HclError("Cycle", f"{self.prefix}{key} depends on itself (through the references shown).", pos)
        self.busy.add(key)
        try:
            value = compute()
        finally:
            self.busy.discard(key)
        self.values[key] = value
        return value

    # variables, locals, outputs

    def variable(self, name: str) -> Any:
        block = self.module.variables[name]

        def compute() -> Any:
            given = name in self.inputs
            value, pos = None, block.pos
            if given:
                raw, where = self.inputs[name]
                if isinstance(where, Scope):  # a module call's argument
                    value, pos = raw.evaluate(where), raw.pos
                elif where:  # a string from -var or TF_VAR_
                    value = parse_value(raw, variable_type(block))
                else:
                    value = raw
            return finish_variable(name, block, value, given, pos, lambda expr, v: expr.evaluate(
                Scope(self, {"var": {**{n: None for n in self.module.variables}, name: v}})))
        return self._memo("var." + name, block.pos, compute)

    def local(self, name: str) -> Any:
        attr = self.module.locals[name]
        return self._memo("local." + name, attr.pos, lambda: attr.expr.evaluate(Scope(self)))

    def output(self, name: str) -> Any:
        block = self.module.outputs[name]

        def compute() -> Any:
            for dep in _depends_on(block.body):
                dep.evaluate(Scope(self))
            value = block.body.attributes.get("value")
            if value is None:
                raise HclError("Missing required argument", 'The argument "value" is required, but no definition '
                               "was found.", block.pos)
            return value.expr.evaluate(Scope(self))
        return self._memo("output." + name, block.pos, compute)

    # module calls

    def call(self, name: str) -> Any:
        block = self.module.calls[name]
        return self._memo("module." + name, block.pos, lambda: self._call(name, block))

    def _call(self, name: str, block: Block) -> Any:
        source = get_string(block, "source")
        if source is None:
            raise HclError("Missing required argument", 'The argument "source" is required, but no definition was '
                           "found.", block.pos)
        if not source.startswith(("./", "../")):
            raise HclError("Module not installed", f'unkai runs modules from local paths ("./..." or "../..."); '
                           f'"{source}" would need terraform init.', block.body.attributes["source"].pos)
        module = self.run.load(self.module.dir / source, block.body.attributes["source"].pos)
        args = {n: a for n, a in block.body.attributes.items()
                if n not in ("source", "version", "count", "for_each", "providers", "depends_on")}
        for n, a in args.items():
            if n not in module.variables:
                raise HclError("Unsupported argument", f'An argument named "{n}" is not expected here.', a.pos)
        for n, var in module.variables.items():
            if n not in args and "default" not in var.body.attributes:
                raise HclError("Missing required argument", f'The argument "{n}" is required, but no definition was '
                               "found.", block.pos)
        for dep in _depends_on(block.body):
            dep.evaluate(Scope(self))
        base = f"{self.prefix}module.{name}"

        def make(suffix: str, names: dict) -> ModuleObject:
            scope = Scope(self, names)
            child = Instance(self.run, module, f"{base}{suffix}.", {n: (a.expr, scope) for n, a in args.items()}, self)
            self.run.instances.append(child)
            return ModuleObject(child)

        return _expand(block.body, Scope(self), make)

    # resources

    def resource(self, key: str) -> Any:
        res = self.module.resources[key]
        return self._memo(key, res.block.pos, lambda: self._resource(res))

    def _resource(self, res: Resource) -> Any:
        for dep in _depends_on(res.block.body):
            dep.evaluate(Scope(self))
        base = self.prefix + res.key
        return _expand(res.block.body, Scope(self), lambda suffix, names: self._instance(res, base + suffix, names))

    def _instance(self, res: Resource, address: str, names: dict) -> Any:
        run = self.run
        scope = Scope(self, names)
        body = res.block.body
        if res.mode == "data":
            schema = data_sources.SCHEMAS.get(res.type)
            if schema is None:
                run.unsupported(res, address)
                return ResourceObject({"id": address}, None, address)
            cfg = run.evaluate_body(body, scope, schema[0], schema[1])
            if functions.any_unknown(cfg):
                return _Pending(cfg)
            if res.type == "archive_file":  # an edit of the packaged code re-applies, as a .tf edit does
                run.result.sources.update(data_sources.archive_sources(cfg, run.root_dir))
            return ResourceObject(data_sources.read(res.type, cfg, run.root_dir, run.ctx.region, run.ctx.account,
                                                    res.block.pos, run.cloud) | cfg, None, address)
        entry = TYPES.get(res.type)
        if entry is None:
            cfg = run.evaluate_body(body, scope, None, None)
            run.unsupported(res, address)
            return _Placeholder(address, res.type, run.ctx)
        cfg = run.evaluate_body(body, scope, entry.args, entry.blocks)
        return run.managed(self, res, address, entry, cfg, scope)

    def visit(self) -> None:
        """Work out every variable (each is validated, used or not), resource and module call of this instance."""
        for name in self.module.variables:
            self.run.guard(lambda: self.variable(name))
        for key in self.module.resources:
            self.run.configured.add(self.prefix + self.module.resources[key].key)
            self.run.guard(lambda: self.resource(key))
        for name in self.module.calls:
            self.run.guard(lambda: self.call(name))


class _Pending(dict):
    """A resource that does not exist yet (plan): its computed attributes are unknown."""

    def tf_attr(self, name: str, pos: Pos) -> Any:
        return self.get(name, UNKNOWN)


class _Placeholder(dict):
    """An unsupported resource: nothing exists; every attribute is a stand-in string."""

    def __init__(self, address: str, kind: str, ctx: ResourceContext) -> None:
        name = address.rsplit(".", 1)[-1]
        service = kind.split("_")[1] if kind.count("_") >= 1 else "unknown"
        super().__init__(id=name, arn=f"arn:aws:{service}:{ctx.region}:{ctx.account}:{name}")

    def tf_attr(self, name: str, pos: Pos) -> Any:
        return self.get(name, self["arn"] if "arn" in name else self["id"])


def _depends_on(body: Body) -> list[Expr]:
    attr = body.attributes.get("depends_on")
    if attr is None:
        return []
    if not isinstance(attr.expr, Tuple):
        raise HclError("Invalid depends_on", "depends_on must be a list of references.", attr.pos)
    for item in attr.expr.items:
        if not isinstance(item, (GetAttr, Index, Variable)):
            raise HclError("Invalid reference", "A single static variable reference is required: only attribute "
                           "access and indexing with constant keys.", item.pos)
    return list(attr.expr.items)


def _expand(body: Body, scope: Scope, make: Any) -> Any:
    """``count`` / ``for_each`` / neither: a list, a map, or the single instance."""
    count, for_each = body.attributes.get("count"), body.attributes.get("for_each")
    if count is not None and for_each is not None:
        raise HclError("Invalid combination of \"count\" and \"for_each\"", 'The "count" and "for_each" '
                       "meta-arguments are mutually-exclusive, only one should be used.", for_each.pos)
    if count is not None:
        n = count.expr.evaluate(scope)
        if n is UNKNOWN:
            raise HclError("Invalid count argument", 'The "count" value depends on resource attributes that cannot '
                           "be determined until apply, so Terraform cannot predict how many instances will be "
                           "created.", count.pos)
        n = to_number(n, count.pos)
        if not isinstance(n, int) or n < 0:
            raise HclError("Invalid count argument", 'The given "count" argument value is unsuitable: must be a whole '
                           "number greater than or equal to zero.", count.pos)
        return [make(f"[{i}]", {"count": {"index": i}}) for i in range(n)]
    if for_each is not None:
        value = for_each.expr.evaluate(scope)
        if value is UNKNOWN or functions.any_unknown(value if isinstance(value, list) else list(
                (value or {}).keys()) if isinstance(value, dict) else value):
            raise HclError("Invalid for_each argument", 'The "for_each" map includes keys or set values derived from '
                           "resource attributes that cannot be determined until apply.", for_each.pos)
        if isinstance(value, dict):
            items = list(value.items())
        elif isinstance(value, TfSet) and all(isinstance(v, str) for v in value):
            items = [(v, v) for v in value]
        else:
            raise HclError("Invalid for_each argument", 'The given "for_each" argument value is unsuitable: the '
                           '"for_each" argument must be a map, or set of strings, and you have provided a value of '
                           f"type {'tuple' if isinstance(value, list) else type(value).__name__}.", for_each.pos)
        return {k: make(f'["{k}"]', {"each": {"key": k, "value": v}}) for k, v in items}
    return make("", {})


# -- a run -----------------------------------------------------------------------------------------


class Run:
    """One plan or apply of a root module."""

    def __init__(self, cloud: "Cloud", root_dir: Path, state: State, ctx: ResourceContext, providers: dict[str, Any],
                 mode: str, var_files: list[Path], cli_vars: dict[str, str], modules: dict[Path, Module]) -> None:
        self.cloud, self.root_dir, self.state, self.ctx, self.providers = cloud, root_dir, state, ctx, providers
        self.mode = mode
        self.modules = modules  # directory -> parsed module, shared by plan and apply
        self.prior = state.rows()
        self.result = Result()
        self.visited: set[str] = set()
        self.configured: set[str] = set()
        self.changed: set[str] = set()
        self.seq = max((r.seq for r in self.prior.values()), default=0)
        self.instances: list[Instance] = []
        self.functions = functions.table(root_dir, lambda: cloud.clock.iso() if hasattr(cloud.clock, "iso") else
                                         _now(cloud), self._render)
        root = self.load(root_dir, None)
        self.result.notes.extend(root.notes)
        inputs = root_inputs(root, var_files, cli_vars)
        self.root = Instance(self, root, "", {n: (v, raw) for n, (v, raw) in inputs.items()}, None)
        self.instances.append(self.root)
        for block in root.providers:  # the default aws provider's region is where the resources go
            region = block.body.attributes.get("region")
            if block.labels == ["aws"] and "alias" not in block.body.attributes and region is not None:
                value = region.expr.evaluate(Scope(self.root))
                if isinstance(value, str) and value:
                    self.ctx = dataclasses.replace(ctx, region=value)

    def load(self, directory: Path, pos: Pos | None) -> Module:
        directory = Path(os.path.normpath(directory))
        if directory not in self.modules:
            if not directory.is_dir():
                raise HclError("Unreadable module directory", f"Unable to evaluate directory symlink: lstat "
                               f"{directory}: no such file or directory", pos)
            self.modules[directory] = load_module(directory)
        return self.modules[directory]

    def _render(self, text: str, file: str, names: dict) -> Any:
        builder = _Builder(file)
        pos = Pos(file, 1, 1)
        template = Template(_nest(_merge(builder.raw_template(text, Pos(file, 0, 1))), pos), pos)
        return template.evaluate(_TemplateScope(self.root, names)) if len(template.parts) != 1 or isinstance(
            template.parts[0], str) else to_string(template.evaluate(_TemplateScope(self.root, names)), pos)

    def guard(self, work: Any) -> None:
        try:
            work()
        except Failed:
            pass  # reported where it failed; dependents are skipped

    def go(self) -> Result:
        """Walk every module instance, then the root's outputs, then delete what the configuration dropped."""
        done = 0
        while done < len(self.instances):
            self.instances[done].visit()
            done += 1
        for name, block in self.root.module.outputs.items():
            try:
                value = self.root.output(name)
                self.result.outputs[name] = value
                sensitive = block.body.attributes.get("sensitive")
                if sensitive is not None and sensitive.expr.evaluate(Scope(self.root)) is True:
                    self.result.sensitive.add(name)
            except Failed:
                pass
        self._orphans()
        if self.mode == "apply":
            with self.cloud.store.transaction():
                self.state.save_outputs({k: {"value": v, "sensitive": k in self.result.sensitive}
                                         for k, v in self.result.outputs.items() if v is not UNKNOWN})
        return self.result

    def _orphans(self) -> None:
        gone = [r for a, r in self.prior.items() if a not in self.visited and
                (not self.result.failed or _base(a) not in self.configured)]
        for row in sorted(gone, key=lambda r: -r.seq):
            self.result.changes.append(Change(row.address, "delete", None))
            if self.mode != "apply":
                continue
            try:
                with self.cloud.store.transaction():
                    provider = self.providers.get(row.cfn_type)
                    if provider is not None and row.physical_id:
                        provider.delete_resource(self.ctx, row.cfn_type, row.physical_id, row.props)
                    self.state.forget(row.address)
                self.result.deleted.append(row.address)
            except Exception as exc:  # noqa: BLE001 - reported; the rest goes on
                self.result.failed[row.address] = f"deleting {row.address}: {_message(exc)}"

    def unsupported(self, res: Resource, address: str) -> None:
        where = f"{address} ({res.block.pos.file}:{res.block.pos.line})"
        self.result.unsupported.setdefault(res.type, [])
        if where not in self.result.unsupported[res.type]:
            self.result.unsupported[res.type].append(where)

    def evaluate_body(self, body: Body, scope: Scope, args: frozenset[str] | None,
                      blocks: dict[str, Any] | None, top: bool = True) -> dict:
        out: dict[str, Any] = {}
        for name, attr in body.attributes.items():
            if top and name in META_RESOURCE:
                continue
            if args is not None and name not in args:
                raise HclError("Unsupported argument", f'An argument named "{name}" is not expected here.', attr.pos)
            out[name] = attr.expr.evaluate(scope)
        for block in body.blocks:
            if top and block.type in ("lifecycle", "provisioner", "connection"):
                continue
            if block.type == "dynamic":
                name = block.labels[0] if block.labels else ""
                if blocks is not None and name not in blocks:
                    raise HclError("Unsupported block type", f'Blocks of type "{name}" are not expected here.',
                                   block.pos)
                sub = blocks.get(name) if blocks is not None else None
                for_each = block.body.attributes.get("for_each")
                contents = block.body.blocks_of("content")
                if for_each is None or len(contents) != 1:
                    raise HclError("Invalid dynamic block", 'A dynamic block needs a "for_each" argument and one '
                                   '"content" block.', block.pos)
                iterator = block.body.attributes.get("iterator")
                it = iterator.expr.name if iterator is not None and isinstance(iterator.expr, Variable) else name
                coll = for_each.expr.evaluate(scope)
                if coll is UNKNOWN:
                    out[name] = UNKNOWN
                    continue
                pairs = coll.items() if isinstance(coll, dict) else [(v, v) for v in coll] if isinstance(
                    coll, TfSet) else enumerate(coll or [])
                out.setdefault(name, [])
                for k, v in pairs:
                    out[name].append(self.evaluate_body(contents[0].body, scope.child({it: {"key": k, "value": v}}),
                                                        sub, None, top=False))
                continue
            if blocks is not None and block.type not in blocks:
                raise HclError("Unsupported block type", f'Blocks of type "{block.type}" are not expected here.',
                               block.pos)
            sub = blocks.get(block.type) if blocks is not None else None
            out.setdefault(block.type, []).append(self.evaluate_body(block.body, scope, sub, None, top=False))
        return out

    # -- managed resources --

    def managed(self, inst: Instance, res: Resource, address: str, entry: TfType, cfg: dict, scope: Scope) -> Any:
        self.visited.add(address)
        prior = self.prior.get(address)
        lifecycle = _lifecycle(res.block.body, scope)
        triggered = []
        for expr in lifecycle["replace_triggered_by"]:
            expr.evaluate(scope)  # what it names is worked out first
            ref = _address_of(expr, inst.prefix)
            if ref is not None and any(c == ref or c.startswith(ref + "[") for c in self.changed):
                triggered.append(ref)
        if prior is not None and prior.type == res.type:
            ignore = lifecycle["ignore_changes"]
            if ignore == "all":
                cfg = dict(prior.config)
            else:
                for key in ignore:
                    if key in prior.config:
                        cfg[key] = prior.config[key]
                    else:
                        cfg.pop(key, None)
        action, reasons = _decide(prior, res.type, entry, cfg, triggered)
        if action != "no-op":
            self.result.changes.append(Change(address, action, res.block.pos, reasons))
            self.changed.add(address)
        if self.mode == "plan":
            if action in ("create", "replace"):
                return _Pending({**cfg, **{k: UNKNOWN for k in entry.computed}})
            if action == "update":
                return ResourceObject({**prior.attributes, **cfg}, entry, address)
            return ResourceObject(prior.attributes, entry, address)
        if action == "no-op":
            return ResourceObject(prior.attributes, entry, address)
        provider = self.providers.get(entry.cfn)
        if provider is None:
            self.unsupported(res, address)
            return _Placeholder(address, res.type, self.ctx)
        lid = logical_id(address)
        try:
            props = entry.props(cfg, self.ctx)
            if action == "update":
                with self.cloud.store.transaction():
                    got = provider.update_resource(self.ctx, entry.cfn, lid, prior.physical_id, prior.props, props)
                    row = self._row(address, res.type, entry, got, props, cfg, prior.seq)
                self.result.updated.append(address)
            elif action == "create":
                with self.cloud.store.transaction():
                    got = provider.create_resource(self.ctx, entry.cfn, lid, props)
                    self.seq += 1
                    row = self._row(address, res.type, entry, got, props, cfg, self.seq)
                self.result.created.append(address)
            else:  # replace
                old_provider = self.providers.get(prior.cfn_type)
                if lifecycle["create_before_destroy"]:
                    with self.cloud.store.transaction():
                        got = provider.create_resource(self.ctx, entry.cfn, lid, props)
                        self.seq += 1
                        row = self._row(address, res.type, entry, got, props, cfg, self.seq)
                    with self.cloud.store.transaction():
                        if old_provider is not None and prior.physical_id:
                            old_provider.delete_resource(self.ctx, prior.cfn_type, prior.physical_id, prior.props)
                else:
                    with self.cloud.store.transaction():
                        if old_provider is not None and prior.physical_id:
                            old_provider.delete_resource(self.ctx, prior.cfn_type, prior.physical_id, prior.props)
                        self.state.forget(address)
                    with self.cloud.store.transaction():
                        got = provider.create_resource(self.ctx, entry.cfn, lid, props)
                        self.seq += 1
                        row = self._row(address, res.type, entry, got, props, cfg, self.seq)
                self.result.replaced.append(address)
        except (HclError, Failed):
            raise
        except Exception as exc:  # a provider's refusal (or its bug): this resource fails, the rest goes on
            if not isinstance(exc, (ServiceError, ValueError, KeyError, TypeError)):
                log.exception("applying %s failed", address)
            message = f"{res.block.pos.file}:{res.block.pos.line}:{res.block.pos.column}: {address}: {_message(exc)}"
            self.result.failed[address] = message
            raise Failed(address, message) from None
        return ResourceObject(row.attributes, entry, address)

    def _row(self, address: str, kind: str, entry: TfType, got: Provisioned, props: dict, cfg: dict,
             seq: int) -> Row:
        attributes = {**cfg, **entry.attrs(cfg, got, self.ctx)}
        row = Row(address, kind, entry.cfn, got.physical_id, props, json.loads(json.dumps(cfg)),
                  json.loads(json.dumps(attributes)), seq)
        self.state.save(row)
        return row


class _TemplateScope(Scope):
    """templatefile's scope: only the variables it was given."""

    def root(self, name: str, pos: Pos) -> Any:
        if name in self.names:
            return self.names[name]
        raise HclError("Invalid function argument", f'Invalid value for "vars" parameter: vars map does not contain '
                       f'key "{name}", referenced at {pos}.', pos)


def _decide(prior: Row | None, kind: str, entry: TfType, cfg: dict, triggered: list[str]) -> tuple[str, list[str]]:
    if prior is None:
        return "create", []
    if prior.type != kind:
        return "replace", [f"type changed from {prior.type}"]
    if triggered:
        return "replace", [f"replace_triggered_by {', '.join(triggered)}"]
    plain = json.loads(json.dumps(cfg, default=lambda v: "\0unknown"))
    keys = sorted(k for k in set(plain) | set(prior.config) if plain.get(k) != prior.config.get(k))
    if not keys:
        return "no-op", []
    forced = [k for k in keys if k in entry.force_new]
    if forced:
        return "replace", [f"{k} forces replacement" for k in forced]
    return "update", keys


def _lifecycle(body: Body, scope: Scope) -> dict[str, Any]:
    out: dict[str, Any] = {"create_before_destroy": False, "prevent_destroy": False, "ignore_changes": [],
                           "replace_triggered_by": []}
    for block in body.blocks_of("lifecycle"):
        for name, attr in block.body.attributes.items():
            if name in ("create_before_destroy", "prevent_destroy"):
                out[name] = to_bool(attr.expr.evaluate(scope), attr.pos)
            elif name == "ignore_changes":
                if isinstance(attr.expr, Variable) and attr.expr.name == "all":
                    out[name] = "all"
                elif isinstance(attr.expr, Tuple):
                    out[name] = [_first_name(e) for e in attr.expr.items]
                else:
                    raise HclError("Invalid ignore_changes", 'ignore_changes must be a list of attribute names, or '
                                   '"all".', attr.pos)
            elif name == "replace_triggered_by":
                if not isinstance(attr.expr, Tuple):
                    raise HclError("Invalid replace_triggered_by expression", "replace_triggered_by must be a list "
                                   "of references to managed resources.", attr.pos)
                out[name] = list(attr.expr.items)
            else:
                raise HclError("Unsupported argument", f'An argument named "{name}" is not expected here.', attr.pos)
        for inner in block.body.blocks:
            if inner.type not in ("precondition", "postcondition"):
                raise HclError("Unsupported block type", f'Blocks of type "{inner.type}" are not expected here.',
                               inner.pos)
    return out


def _first_name(expr: Expr) -> str:
    while isinstance(expr, (GetAttr, Index)):
        if isinstance(expr.target, Variable) and isinstance(expr, GetAttr):
            return expr.target.name
        expr = expr.target
    if isinstance(expr, Variable):
        return expr.name
    raise HclError("Invalid ignore_changes", "Expected an attribute name.", expr.pos)


def _address_of(expr: Expr, prefix: str) -> str | None:
    refs = expr.references()
    if not refs:
        return None
    path, _ = refs[0]
    if len(path) >= 2:
        return f"{prefix}{path[0]}.{path[1]}"
    return None


def _base(address: str) -> str:
    return re.sub(r"\[[^\]]*\]$", "", address)


def _message(exc: Exception) -> str:
    if isinstance(exc, ServiceError):
        return f"{exc.code}: {exc.message}"
    return getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"


def _now(cloud: Any) -> str:
    import datetime

    return datetime.datetime.fromtimestamp(cloud.clock.now(), datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


__all__ = ["Run", "State", "Result", "Change", "Failed"]
