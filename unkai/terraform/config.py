"""A Terraform module read from its directory: the ``.tf`` files' top-level blocks sorted
into variables, locals, outputs, resources, data sources and module calls, plus the
variable machinery (type constraints, ``-var``, ``.tfvars``, ``TF_VAR_``, validation).

Reading only sorts blocks; nothing is evaluated here, because most values depend on
resources that do not exist until apply (see ``run.py``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unkai.terraform.hcl import (UNKNOWN, Attribute, Block, Call, Expr, GetAttr, HclError, Object, Pos, TfSet,
                                 Tuple, Variable, number, parse, parse_file, to_bool, to_number, to_string,
                                 type_name)

META_RESOURCE = {"count", "for_each", "provider", "depends_on", "lifecycle", "provisioner", "connection"}
TOP_LEVEL = {"terraform", "provider", "variable", "locals", "output", "resource", "data", "module", "moved",
             "import", "check", "removed"}


@dataclass
class Resource:
    mode: str  # "managed" or "data"
    type: str
    name: str
    block: Block

    @property
    def key(self) -> str:
        return f"{self.type}.{self.name}" if self.mode == "managed" else f"data.{self.type}.{self.name}"


@dataclass
class Module:
    dir: Path
    variables: dict[str, Block] = field(default_factory=dict)
    locals: dict[str, Attribute] = field(default_factory=dict)
    outputs: dict[str, Block] = field(default_factory=dict)
    resources: dict[str, Resource] = field(default_factory=dict)  # by key (type.name / data.type.name)
    calls: dict[str, Block] = field(default_factory=dict)
    providers: list[Block] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)


def tf_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.suffix == ".tf" and p.is_file())


def is_root_module(path: Path) -> bool:
    """A directory with ``.tf`` files and no SAM template: ``unkai up`` runs it as Terraform."""
    return path.is_dir() and bool(tf_files(path)) and not any(
        (path / n).is_file() for n in ("template.yaml", "template.yml", "template.json"))


def load_module(directory: Path) -> Module:
    """Read every ``.tf`` file of a module directory (Terraform reads them as one)."""
    directory = directory.resolve()
    if not directory.is_dir():
        raise HclError("Unreadable module directory", f"The directory {directory} could not be read.")
    module = Module(directory)
    for path in tf_files(directory):
        module.files.append(path)
        body = _parsed(path)
        if body.attributes:
            attr = next(iter(body.attributes.values()))
            raise HclError("Unsupported argument", f'An argument named "{attr.name}" is not expected here.', attr.pos)
        for block in body.blocks:
            _sort(module, block)
    return module


_PARSED: dict[Path, tuple[str, Any]] = {}


def _parsed(path: Path) -> Any:
    """A file's syntax tree, parsed again only when its text changed: parsing is most of a
    re-apply's time, and an edit usually touches one file of many. Trees are never mutated."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError):
        return parse_file(path)  # reports the error as Terraform words it
    cached = _PARSED.get(path)
    if cached is not None and cached[0] == text:
        return cached[1]
    body = parse(text, str(path))
    _PARSED[path] = (text, body)
    return body


def _sort(module: Module, block: Block) -> None:
    kind, labels = block.type, block.labels
    if kind not in TOP_LEVEL:
        raise HclError("Unsupported block type", f'Blocks of type "{kind}" are not expected here.', block.pos)
    want = {"variable": 1, "output": 1, "module": 1, "resource": 2, "data": 2, "provider": 1, "locals": 0,
            "terraform": 0}.get(kind)
    if want is not None and len(labels) != want:
        raise HclError("Missing name for " + kind if len(labels) < want else "Extraneous label for " + kind,
                       f"A {kind} block must have {want} label(s)." if want else
                       f"No labels are expected for {kind} blocks.", block.pos)
    if kind == "variable":
        _unique(module.variables, labels[0], block, "variable")
        module.variables[labels[0]] = block
    elif kind == "output":
        _unique(module.outputs, labels[0], block, "output")
        module.outputs[labels[0]] = block
    elif kind == "module":
        _unique(module.calls, labels[0], block, "module call")
        module.calls[labels[0]] = block
    elif kind == "locals":
        for name, attr in block.body.attributes.items():
            if name in module.locals:
                raise HclError("Duplicate local value definition", f'A local value named "{name}" was already '
                               f"defined at {module.locals[name].pos}. Local value names must be unique within a "
                               "module.", attr.pos)
            module.locals[name] = attr
    elif kind in ("resource", "data"):
        res = Resource("managed" if kind == "resource" else "data", labels[0], labels[1], block)
        if res.key in module.resources:
            raise HclError(f"Duplicate {'resource' if kind == 'resource' else 'data'} \"{labels[0]}\" configuration",
                           f'A {kind} {labels[0]} "{labels[1]}" was already declared at '
                           f"{module.resources[res.key].block.pos}. Resource names must be unique per type in each "
                           "module.", block.pos)
        module.resources[res.key] = res
    elif kind == "provider":
        module.providers.append(block)
    elif kind == "terraform":
        for inner in block.body.blocks_of("backend"):
            module.notes.append(f'{inner.pos}: backend "{inner.labels[0] if inner.labels else ""}" ignored: '
                                "unkai keeps the state in its own store")
        for inner in block.body.blocks_of("cloud"):
            module.notes.append(f"{inner.pos}: cloud block ignored: unkai keeps the state in its own store")


def _unique(seen: dict, name: str, block: Block, what: str) -> None:
    if name in seen:
        raise HclError(f"Duplicate {what}", f'A {what} named "{name}" was already declared at {seen[name].pos}.',
                       block.pos)


# -- types -----------------------------------------------------------------------------------------


def type_of(expr: Expr) -> Any:
    """A type constraint expression (``list(object({a=string}))``) as a nested tuple."""
    if isinstance(expr, Variable):
        if expr.name in ("string", "number", "bool", "any"):
            return expr.name
        if expr.name in ("list", "set", "map"):
            return (expr.name, "any")
    if isinstance(expr, Call):
        if expr.name in ("list", "set", "map") and len(expr.args) == 1:
            return (expr.name, type_of(expr.args[0]))
        if expr.name == "object" and len(expr.args) == 1 and isinstance(expr.args[0], Object):
            attrs = {}
            for key, value in expr.args[0].items:
                name = key.evaluate(None)
                optional, default = False, None
                if isinstance(value, Call) and value.name == "optional":
                    optional = True
                    default = value.args[1] if len(value.args) > 1 else None
                    value = value.args[0]
                attrs[name] = (type_of(value), optional, default)
            return ("object", attrs)
        if expr.name == "tuple" and len(expr.args) == 1 and isinstance(expr.args[0], Tuple):
            return ("tuple", [type_of(e) for e in expr.args[0].items])
    raise HclError("Invalid type specification", "The type expression is not valid: use string, number, bool, "
                   "list(T), set(T), map(T), object({...}), tuple([...]) or any.", expr.pos)


def convert(value: Any, kind: Any, pos: Pos | None, what: str = "") -> Any:
    """``value`` converted to type ``kind`` as Terraform converts input variables."""
    if value is None or value is UNKNOWN or kind == "any":
        return value
    try:
        if kind == "string":
            if isinstance(value, (list, dict)):
                raise ValueError(f"string required, but have {type_name(value)}")
            return to_string(value, pos)
        if kind == "number":
            return number(to_number(value, pos))
        if kind == "bool":
            return to_bool(value, pos)
        name, inner = kind
        if name in ("list", "set"):
            if not isinstance(value, list):
                raise ValueError(f"{name} of {_type_text(inner)} required")
            items = [convert(v, inner, pos, what) for v in value]
            return _dedupe(items) if name == "set" else items
        if name == "map":
            if not isinstance(value, dict):
                raise ValueError(f"map of {_type_text(inner)} required")
            return {k: convert(v, inner, pos, what) for k, v in value.items()}
        if name == "tuple":
            if not isinstance(value, list) or len(value) != len(inner):
                raise ValueError(f"tuple required")
            return [convert(v, t, pos, what) for v, t in zip(value, inner)]
        if name == "object":
            if not isinstance(value, dict):
                raise ValueError("object required")
            out = {}
            for attr, (t, optional, default) in inner.items():
                if attr not in value or value[attr] is None:
                    if not optional:
                        raise ValueError(f'attribute "{attr}" is required')
                    out[attr] = convert(default.evaluate(None), t, pos, what) if default is not None else None
                else:
                    out[attr] = convert(value[attr], t, pos, what)
            return out
    except HclError as exc:
        raise ValueError(exc.detail) from None
    return value


def _dedupe(items: list) -> TfSet:
    out: list = []
    for i in items:
        if i not in out:
            out.append(i)
    if all(isinstance(i, str) for i in out):
        out.sort()
    return TfSet(out)


def _type_text(kind: Any) -> str:
    if isinstance(kind, str):
        return kind
    if kind[0] in ("list", "set", "map"):
        return f"{kind[0]}({_type_text(kind[1])})"
    return kind[0]


def parse_value(text: str, kind: Any) -> Any:
    """A ``-var`` or ``TF_VAR_`` value: a string for string variables, else an HCL expression."""
    if kind == "string" or (isinstance(kind, str) and kind != "any"):
        return text
    if kind == "any":
        try:
            return parse(f"v = {text}\n", "<value>").attributes["v"].expr.evaluate(_NoScope())
        except HclError:
            return text
    return parse(f"v = {text}\n", "<value>").attributes["v"].expr.evaluate(_NoScope())


class _NoScope:
    def root(self, name: str, pos: Pos) -> Any:
        raise HclError("Variables not allowed", "Variables may not be used here.", pos)

    def call(self, name: str, args: list, pos: Pos, arg_pos: list) -> Any:
        raise HclError("Function calls not allowed", "Functions may not be called here.", pos)

    def child(self, names: dict) -> "_NoScope":
        return self


def read_tfvars(path: Path) -> dict[str, tuple[Any, Pos]]:
    body = parse_file(path)
    out = {}
    for name, attr in body.attributes.items():
        out[name] = (attr.expr.evaluate(_NoScope()), attr.pos)
    return out


def root_inputs(root: Module, var_files: list[Path], cli_vars: dict[str, str],
                environ: dict[str, str] | None = None) -> dict[str, tuple[Any, bool]]:
    """The root module's raw inputs in Terraform's precedence: environment, terraform.tfvars,
    ``*.auto.tfvars`` (alphabetical), then ``-var-file`` and ``-var`` in command-line order
    (later wins). Values are (value, is_raw_string)."""
    environ = os.environ if environ is None else environ
    out: dict[str, tuple[Any, bool]] = {}
    for key, value in environ.items():
        if key.startswith("TF_VAR_") and key[7:] in root.variables:
            out[key[7:]] = (value, True)
    files = []
    if (root.dir / "terraform.tfvars").is_file():
        files.append(root.dir / "terraform.tfvars")
    files += sorted(p for p in root.dir.iterdir() if p.name.endswith(".auto.tfvars"))
    files += [Path(p) for p in var_files]
    for path in files:
        for name, (value, pos) in read_tfvars(path).items():
            if name not in root.variables:
                root.notes.append(f'{pos}: Value for undeclared variable "{name}" ignored')
                continue
            out[name] = (value, False)
    for name, value in cli_vars.items():
        if name not in root.variables:
            raise HclError("Value for undeclared variable", f'A variable named "{name}" was assigned on the command '
                           "line, but the root module does not declare a variable of that name.")
        out[name] = (value, True)
    return out


def variable_type(block: Block) -> Any:
    attr = block.body.attributes.get("type")
    return type_of(attr.expr) if attr is not None else "any"


def finish_variable(name: str, block: Block, value: Any, given: bool, pos: Pos, validate: Any) -> Any:
    """Convert and validate one variable's value (``validate(cond_expr, value)`` evaluates a condition)."""
    kind = variable_type(block)
    if not given:
        default = block.body.attributes.get("default")
        if default is None:
            raise HclError("No value for required variable", f'The root module input variable "{name}" is not set, '
                           "and has no default value. Use a -var or -var-file command line argument to provide a "
                           "value for this variable.", block.pos)
        value = default.expr.evaluate(_NoScope())
    nullable = block.body.attributes.get("nullable")
    if value is None and nullable is not None and nullable.expr.evaluate(_NoScope()) is False:
        raise HclError("Required variable not set", f'Unsuitable value for var.{name} set using an expression: '
                       "required variable may not be set to null.", pos)
    try:
        value = convert(value, kind, pos)
    except ValueError as exc:
        raise HclError("Invalid value for input variable", f'Unsuitable value for var.{name}: {exc}.', pos) from None
    for check in block.body.blocks_of("validation"):
        cond = check.body.attributes.get("condition")
        message = check.body.attributes.get("error_message")
        if cond is None:
            continue
        ok = validate(cond.expr, value)
        if ok is not UNKNOWN and not ok:
            text = validate(message.expr, value) if message is not None else "The value is not valid."
            raise HclError("Invalid value for variable", f"{text}\n\nThis was checked by the validation rule at "
                           f"{cond.pos}.", pos)
    return value


def get_string(block: Block, name: str) -> str | None:
    attr = block.body.attributes.get(name)
    if attr is None:
        return None
    value = attr.expr.evaluate(_NoScope())
    return value if isinstance(value, str) else None


__all__ = ["Module", "Resource", "load_module", "is_root_module", "root_inputs", "finish_variable", "convert",
           "type_of", "parse_value", "variable_type", "META_RESOURCE", "get_string", "GetAttr"]
