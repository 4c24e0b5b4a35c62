"""HCL files as a small syntax tree whose every expression knows its file:line:column.

python-hcl2's Lark parser does the parsing (it keeps positions); its own transformer
turns expressions back into ``"${...}"`` strings, which would mean parsing them twice,
so this module walks the Lark tree itself into :class:`Body`, :class:`Block` and
expression nodes with an ``evaluate(scope)`` each. Values are plain Python values
(str, int/float, bool, None, list, dict); :data:`UNKNOWN` stands for a value only known
after apply (a resource not created yet), and spreads through every operation, as in
Terraform's plan.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

__all__ = ["Body", "Block", "Attribute", "Expr", "HclError", "UNKNOWN", "parse", "parse_file", "Pos"]


class _Unknown:
    _it: "_Unknown | None" = None

    def __new__(cls) -> "_Unknown":
        if cls._it is None:
            cls._it = super().__new__(cls)
        return cls._it

    def __repr__(self) -> str:
        return "(known after apply)"


UNKNOWN = _Unknown()


@dataclass(frozen=True)
class Pos:
    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class HclError(Exception):
    """A Terraform diagnostic: its summary (Terraform's wording), detail and where."""

    def __init__(self, summary: str, detail: str = "", pos: Pos | None = None) -> None:
        super().__init__(summary)
        self.summary, self.detail, self.pos = summary, detail, pos

    def __str__(self) -> str:
        where = f"{self.pos}: " if self.pos else ""
        return f"{where}Error: {self.summary}" + (f": {self.detail}" if self.detail else "")


# -- the tree ----------------------------------------------------------------------------------


@dataclass
class Attribute:
    name: str
    expr: "Expr"
    pos: Pos


@dataclass
class Block:
    type: str
    labels: list[str]
    body: "Body"
    pos: Pos


@dataclass
class Body:
    attributes: dict[str, Attribute] = field(default_factory=dict)
    blocks: list[Block] = field(default_factory=list)
    pos: Pos | None = None

    def blocks_of(self, kind: str) -> list[Block]:
        return [b for b in self.blocks if b.type == kind]


class Expr:
    pos: Pos

    def evaluate(self, scope: "Any") -> Any:
        raise NotImplementedError

    def references(self) -> list[tuple[list[str], Pos]]:
        """Traversals this expression reads (``["aws_x", "name", "id"]``), for the dependency graph."""
        out: list[tuple[list[str], Pos]] = []
        self._refs(out, set())
        return out

    def _refs(self, out: list, bound: set[str]) -> None:
        for child in self.children():
            child._refs(out, bound)

    def children(self) -> list["Expr"]:
        return []


class Literal(Expr):
    def __init__(self, value: Any, pos: Pos) -> None:
        self.value, self.pos = value, pos

    def evaluate(self, scope: Any) -> Any:
        return self.value


class Variable(Expr):
    """A bare name: the root of a traversal (``var``, ``aws_lambda_function``, ``each``...)."""

    def __init__(self, name: str, pos: Pos) -> None:
        self.name, self.pos = name, pos

    def evaluate(self, scope: Any) -> Any:
        return scope.root(self.name, self.pos)

    def _refs(self, out: list, bound: set[str]) -> None:
        if self.name not in bound:
            out.append(([self.name], self.pos))


class GetAttr(Expr):
    def __init__(self, target: Expr, name: str, pos: Pos) -> None:
        self.target, self.name, self.pos = target, name, pos

    def children(self) -> list[Expr]:
        return [self.target]

    def evaluate(self, scope: Any) -> Any:
        return get_attr(self.target.evaluate(scope), self.name, self.pos)

    def _refs(self, out: list, bound: set[str]) -> None:
        path = _traversal(self)
        if path is not None and path[0] not in bound:
            out.append((path, self.pos))
        else:
            self.target._refs(out, bound)


class Index(Expr):
    def __init__(self, target: Expr, key: Expr, pos: Pos) -> None:
        self.target, self.key, self.pos = target, key, pos

    def children(self) -> list[Expr]:
        return [self.target, self.key]

    def evaluate(self, scope: Any) -> Any:
        return index(self.target.evaluate(scope), self.key.evaluate(scope), self.pos)


class Splat(Expr):
    """``x[*].a.b`` and ``x.*.a``: the steps after the splat applied to each element."""

    def __init__(self, target: Expr, steps: list[Callable[[Any], Any]], pos: Pos, step_exprs: list[Expr]) -> None:
        self.target, self.steps, self.pos, self.step_exprs = target, steps, pos, step_exprs

    def children(self) -> list[Expr]:
        return [self.target, *self.step_exprs]

    def evaluate(self, scope: Any) -> Any:
        value = self.target.evaluate(scope)
        if value is UNKNOWN:
            return UNKNOWN
        if value is None:
            return []
        items = value if isinstance(value, list) else [value]  # a splat on one object makes a one-item list
        out = []
        for item in items:
            for step in self.steps:
                item = step(item, scope)
            out.append(item)
        return out


class Call(Expr):
    def __init__(self, name: str, args: list[Expr], expand: bool, pos: Pos) -> None:
        self.name, self.args, self.expand, self.pos = name, args, expand, pos

    def children(self) -> list[Expr]:
        return list(self.args)

    def evaluate(self, scope: Any) -> Any:
        if self.name in ("try", "can"):  # their arguments' errors are their result
            for arg in self.args:
                try:
                    value = arg.evaluate(scope)
                except HclError:
                    continue
                return True if self.name == "can" else value
            if self.name == "can":
                return False
            raise HclError("Invalid function argument", "No expression in the sequence produced a valid result.",
                           self.pos)
        args = [a.evaluate(scope) for a in self.args]
        if self.expand and args:
            last = args.pop()
            if last is UNKNOWN:
                return UNKNOWN
            if not isinstance(last, list):
                raise HclError("Invalid expanding argument value",
                               "The expanding argument (indicated by ...) must be of a tuple, list, or set type.",
                               self.args[-1].pos)
            args.extend(last)
        return scope.call(self.name, args, self.pos, [a.pos for a in self.args])


class Conditional(Expr):
    def __init__(self, cond: Expr, then: Expr, other: Expr, pos: Pos) -> None:
        self.cond, self.then, self.other, self.pos = cond, then, other, pos

    def children(self) -> list[Expr]:
        return [self.cond, self.then, self.other]

    def evaluate(self, scope: Any) -> Any:
        cond = self.cond.evaluate(scope)
        if cond is UNKNOWN:
            return UNKNOWN
        return (self.then if to_bool(cond, self.cond.pos) else self.other).evaluate(scope)


_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
    "/": lambda a, b: a / b, "%": lambda a, b: a % b,
    "<": lambda a, b: a < b, ">": lambda a, b: a > b, "<=": lambda a, b: a <= b, ">=": lambda a, b: a >= b,
}


class Binary(Expr):
    def __init__(self, op: str, left: Expr, right: Expr, pos: Pos) -> None:
        self.op, self.left, self.right, self.pos = op, left, right, pos

    def children(self) -> list[Expr]:
        return [self.left, self.right]

    def evaluate(self, scope: Any) -> Any:
        a = self.left.evaluate(scope)
        if self.op == "&&" and a is False:
            return False
        if self.op == "||" and a is True:
            return True
        b = self.right.evaluate(scope)
        if a is UNKNOWN or b is UNKNOWN:
            return UNKNOWN
        if self.op == "==":
            return _equal(a, b)
        if self.op == "!=":
            return not _equal(a, b)
        if self.op in ("&&", "||"):
            a, b = to_bool(a, self.left.pos), to_bool(b, self.right.pos)
            return (a and b) if self.op == "&&" else (a or b)
        a, b = to_number(a, self.left.pos), to_number(b, self.right.pos)
        if self.op in ("/", "%") and b == 0:
            raise HclError("Operation failed", "Can't divide by zero.", self.pos)
        return number(_OPS[self.op](a, b))


class Unary(Expr):
    def __init__(self, op: str, operand: Expr, pos: Pos) -> None:
        self.op, self.operand, self.pos = op, operand, pos

    def children(self) -> list[Expr]:
        return [self.operand]

    def evaluate(self, scope: Any) -> Any:
        value = self.operand.evaluate(scope)
        if value is UNKNOWN:
            return UNKNOWN
        if self.op == "!":
            return not to_bool(value, self.pos)
        return number(-to_number(value, self.pos))


class Tuple(Expr):
    def __init__(self, items: list[Expr], pos: Pos) -> None:
        self.items, self.pos = items, pos

    def children(self) -> list[Expr]:
        return list(self.items)

    def evaluate(self, scope: Any) -> Any:
        return [i.evaluate(scope) for i in self.items]


class Object(Expr):
    def __init__(self, items: list[tuple[Expr, Expr]], pos: Pos) -> None:
        self.items, self.pos = items, pos

    def children(self) -> list[Expr]:
        return [e for pair in self.items for e in pair]

    def evaluate(self, scope: Any) -> Any:
        out: dict[str, Any] = {}
        for key, value in self.items:
            k = key.evaluate(scope)
            if k is UNKNOWN:
                return UNKNOWN
            out[to_string(k, key.pos)] = value.evaluate(scope)
        return out


class For(Expr):
    def __init__(self, key_var: str | None, value_var: str, collection: Expr, key: Expr | None, value: Expr,
                 cond: Expr | None, group: bool, is_object: bool, pos: Pos) -> None:
        self.key_var, self.value_var, self.collection = key_var, value_var, collection
        self.key, self.value, self.cond, self.group, self.is_object, self.pos = key, value, cond, group, is_object, pos

    def children(self) -> list[Expr]:
        return [e for e in (self.collection, self.key, self.value, self.cond) if e is not None]

    def _refs(self, out: list, bound: set[str]) -> None:
        self.collection._refs(out, bound)
        inner = bound | {n for n in (self.key_var, self.value_var) if n}
        for e in (self.key, self.value, self.cond):
            if e is not None:
                e._refs(out, inner)

    def evaluate(self, scope: Any) -> Any:
        coll = self.collection.evaluate(scope)
        if coll is UNKNOWN:
            return UNKNOWN
        if isinstance(coll, dict):
            pairs = list(coll.items())
        elif isinstance(coll, list):
            pairs = list(enumerate(coll)) if not isinstance(coll, TfSet) else [(v, v) for v in coll]
        else:
            raise HclError("Iteration over non-iterable value",
                           "A value of type " + type_name(coll) + " cannot be used as the collection in a 'for' "
                           "expression.", self.collection.pos)
        out_list: list[Any] = []
        out_map: dict[str, Any] = {}
        for k, v in pairs:
            names = {self.value_var: v}
            if self.key_var:
                names[self.key_var] = k
            inner = scope.child(names)
            if self.cond is not None:
                c = self.cond.evaluate(inner)
                if c is UNKNOWN:
                    return UNKNOWN
                if not to_bool(c, self.cond.pos):
                    continue
            if self.is_object:
                key = self.key.evaluate(inner)  # type: ignore[union-attr]
                if key is UNKNOWN:
                    return UNKNOWN
                key = to_string(key, self.key.pos)  # type: ignore[union-attr]
                value = self.value.evaluate(inner)
                if self.group:
                    out_map.setdefault(key, []).append(value)
                elif key in out_map:
                    raise HclError("Duplicate object key",
                                   f'Two different items produced the key "{key}" in this \'for\' expression. If '
                                   "duplicates are expected, use the ellipsis (...) after the value expression to "
                                   "enable grouping by key.", self.key.pos)  # type: ignore[union-attr]
                else:
                    out_map[key] = value
            else:
                out_list.append(self.value.evaluate(inner))
        return out_map if self.is_object else out_list


class Template(Expr):
    """A quoted string or heredoc with ``${}`` interpolations and ``%{}`` directives."""

    def __init__(self, parts: list[Any], pos: Pos) -> None:
        self.parts, self.pos = parts, pos  # str | Expr | ("if", cond, then, else) | ("for", k, v, coll, body)

    def children(self) -> list[Expr]:
        return list(_exprs_of(self.parts))

    def _refs(self, out: list, bound: set[str]) -> None:
        _refs_of(self.parts, out, bound)

    def evaluate(self, scope: Any) -> Any:
        if len(self.parts) == 1 and isinstance(self.parts[0], Expr):  # "${x}" is x itself, of any type
            return self.parts[0].evaluate(scope)
        return _render(self.parts, scope)


def _exprs_of(parts: list[Any]) -> list[Expr]:
    out: list[Expr] = []
    for p in parts:
        if isinstance(p, Expr):
            out.append(p)
        elif isinstance(p, tuple) and p[0] == "if":
            out.append(p[1])
            out.extend(_exprs_of(p[2]) + _exprs_of(p[3]))
        elif isinstance(p, tuple) and p[0] == "for":
            out.append(p[3])
            out.extend(_exprs_of(p[4]))
    return out


def _refs_of(parts: list[Any], out: list, bound: set[str]) -> None:
    for p in parts:
        if isinstance(p, Expr):
            p._refs(out, bound)
        elif isinstance(p, tuple) and p[0] == "if":
            p[1]._refs(out, bound)
            _refs_of(p[2], out, bound)
            _refs_of(p[3], out, bound)
        elif isinstance(p, tuple) and p[0] == "for":
            p[3]._refs(out, bound)
            _refs_of(p[4], out, bound | {n for n in (p[1], p[2]) if n})


def _render(parts: list[Any], scope: Any) -> Any:
    out: list[str] = []
    for p in parts:
        if isinstance(p, str):
            out.append(p)
        elif isinstance(p, Expr):
            value = p.evaluate(scope)
            if value is UNKNOWN:
                return UNKNOWN
            if value is None:
                raise HclError("Invalid template interpolation value",
                               "The expression result is null. Cannot include a null value in a string template.",
                               p.pos)
            if isinstance(value, (list, dict)):
                raise HclError("Invalid template interpolation value",
                               f"Cannot include the given value in a string template: string required, but have "
                               f"{type_name(value)}.", p.pos)
            out.append(to_string(value, p.pos))
        elif p[0] == "if":
            cond = p[1].evaluate(scope)
            if cond is UNKNOWN:
                return UNKNOWN
            got = _render(p[2] if to_bool(cond, p[1].pos) else p[3], scope)
            if got is UNKNOWN:
                return UNKNOWN
            out.append(got)
        else:
            _, kvar, vvar, coll_expr, body = p
            coll = coll_expr.evaluate(scope)
            if coll is UNKNOWN:
                return UNKNOWN
            pairs = coll.items() if isinstance(coll, dict) else enumerate(coll or [])
            for k, v in pairs:
                names = {vvar: v}
                if kvar:
                    names[kvar] = k
                got = _render(body, scope.child(names))
                if got is UNKNOWN:
                    return UNKNOWN
                out.append(got)
    return "".join(out)


def _traversal(expr: Expr) -> list[str] | None:
    """``a.b.c`` (with literal indexes kept as strings) as a list, or None if it does not start at a name."""
    steps: list[str] = []
    while True:
        if isinstance(expr, GetAttr):
            steps.append(expr.name)
            expr = expr.target
        elif isinstance(expr, Index) and isinstance(expr.key, (Literal, Template)):
            steps.append("[]")
            expr = expr.target
        elif isinstance(expr, Variable):
            steps.append(expr.name)
            return list(reversed(steps))
        else:
            return None


# -- values ------------------------------------------------------------------------------------


class TfSet(list):
    """A Terraform set (``toset``): a list with no duplicates, in Terraform's order."""


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, TfSet):
        return "set"
    if isinstance(value, list):
        return "tuple"
    if isinstance(value, dict):
        return "object"
    return "dynamic"


def number(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer() and abs(value) < 2 ** 53:
        return int(value)
    return value


def to_number(value: Any, pos: Pos | None) -> Any:
    if isinstance(value, bool) or value is None:
        raise HclError("Invalid operand", f"Unsuitable value: a number is required, not {type_name(value)}.", pos)
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        try:
            return number(float(value)) if re.search(r"[.eE]", value) else int(value)
        except ValueError:
            pass
    raise HclError("Invalid operand", f"Unsuitable value: a number is required, not {type_name(value)}.", pos)


def to_bool(value: Any, pos: Pos | None) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
    raise HclError("Incorrect value type", f"Invalid expression value: a bool is required, not {type_name(value)}.",
                   pos)


def to_string(value: Any, pos: Pos | None) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        value = number(value)
        return str(value) if isinstance(value, int) else repr(value)
    raise HclError("Incorrect value type", f"Invalid expression value: a string is required, not {type_name(value)}.",
                   pos)


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return a == b


def get_attr(value: Any, name: str, pos: Pos) -> Any:
    if value is UNKNOWN:
        return UNKNOWN
    getter = getattr(value, "tf_attr", None)
    if getter is not None:
        return getter(name, pos)
    if isinstance(value, dict):
        if name in value:
            return value[name]
        raise HclError("Unsupported attribute", f'This object does not have an attribute named "{name}".', pos)
    if value is None:
        raise HclError("Attempt to get attribute from null value", "This value is null, so it does not have any "
                       "attributes.", pos)
    raise HclError("Unsupported attribute", f"Can't access attributes on a primitive-typed value ({type_name(value)}).",
                   pos)


def index(value: Any, key: Any, pos: Pos) -> Any:
    if value is UNKNOWN or key is UNKNOWN:
        return UNKNOWN
    getter = getattr(value, "tf_attr", None)
    if getter is not None:
        return getter(to_string(key, pos), pos)
    if isinstance(value, dict):
        k = to_string(key, pos)
        if k in value:
            return value[k]
        raise HclError("Invalid index", f'The given key does not identify an element in this collection value.', pos)
    if isinstance(value, list):
        if isinstance(value, TfSet):
            raise HclError("Invalid index", "Elements of a set are identified only by their value and don't have any "
                           "separate index or key to select with, so it's only possible to perform operations across "
                           "all elements of the set.", pos)
        i = to_number(key, pos)
        if not isinstance(i, int) or i < 0 or i >= len(value):
            raise HclError("Invalid index", "The given key does not identify an element in this collection value.",
                           pos)
        return value[i]
    if value is None:
        raise HclError("Attempt to index null value", "This value is null, so it does not have any indices.", pos)
    raise HclError("Invalid index", "This value does not have any indices.", pos)


# -- parsing -----------------------------------------------------------------------------------

_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\"}


def parse_file(path: Path) -> Body:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise HclError("Failed to read file", str(exc), Pos(str(path), 1, 1)) from None
    return parse(text, str(path))


def parse(text: str, file: str) -> Body:
    """Parse HCL text; a syntax error is an HclError naming file:line:column."""
    from hcl2.parser import parser
    from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

    if not text.endswith("\n"):
        text += "\n"
    try:
        tree = parser().parse(text)
    except UnexpectedToken as exc:
        tok = exc.token
        what = "end of file" if tok.type == "$END" else repr(str(tok))
        raise HclError("Invalid expression" if tok.type != "$END" else "Unclosed configuration block",
                       f"Unexpected {what} here.", Pos(file, exc.line if exc.line > 0 else 1,
                                                       exc.column if exc.column > 0 else 1)) from None
    except (UnexpectedCharacters, UnexpectedEOF, UnexpectedInput) as exc:
        raise HclError("Invalid character" if isinstance(exc, UnexpectedCharacters) else "Unexpected end of file",
                       "This character is not used within the language." if isinstance(exc, UnexpectedCharacters)
                       else "The file ended before the configuration was complete.",
                       Pos(file, getattr(exc, "line", 1) or 1, getattr(exc, "column", 1) or 1)) from None
    return _Builder(file).body(tree.children[0])


class _Builder:
    def __init__(self, file: str, line_offset: int = 0) -> None:
        self.file, self.line_offset = file, line_offset

    def pos(self, node: Any) -> Pos:
        if hasattr(node, "meta") and not getattr(node.meta, "empty", True):
            return Pos(self.file, node.meta.line + self.line_offset, node.meta.column)
        if hasattr(node, "line") and node.line is not None:
            return Pos(self.file, node.line + self.line_offset, node.column)
        if hasattr(node, "children"):
            for child in node.children:
                return self.pos(child)
        return Pos(self.file, 1, 1)

    @staticmethod
    def trees(node: Any) -> list[Any]:
        from lark import Tree

        return [c for c in node.children if isinstance(c, Tree) and c.data != "new_line_or_comment"]

    def name(self, node: Any) -> str:
        if node.data == "string":
            return self.plain_string(node)
        return str(node.children[0])

    def plain_string(self, node: Any) -> str:
        t = self.template(node)
        if any(not isinstance(p, str) for p in t.parts):
            raise HclError("Invalid string literal", "Template sequences are not allowed here.", t.pos)
        return "".join(t.parts)

    def body(self, node: Any) -> Body:
        body = Body(pos=self.pos(node))
        for child in self.trees(node):
            if child.data == "attribute":
                name_node, expr_node = self.trees(child)
                name = self.name(name_node)
                pos = self.pos(child)
                if name in body.attributes:
                    raise HclError("Attribute redefined", f'The argument "{name}" was already set at '
                                   f"{body.attributes[name].pos}. Each argument may be set only once.", pos)
                body.attributes[name] = Attribute(name, self.expr(expr_node), pos)
            else:
                parts = self.trees(child)
                body.blocks.append(Block(self.name(parts[0]), [self.name(p) for p in parts[1:-1]],
                                         self.body(parts[-1]), self.pos(child)))
        return body

    def expr(self, node: Any) -> Expr:  # noqa: C901 - one case per grammar rule
        from lark import Token

        pos = self.pos(node)
        kind = node.data
        kids = self.trees(node)
        if kind == "expr_term":
            return self.expr(kids[0])
        if kind == "conditional":
            return Conditional(self.expr(kids[0]), self.expr(kids[1]), self.expr(kids[2]), pos)
        if kind == "binary_op":
            term = kids[1]
            op_node, right = self.trees(term)
            return Binary(str(op_node.children[0]), self.expr(kids[0]), self.expr(right), pos)
        if kind == "unary_op":
            return Unary(str(node.children[0]), self.expr(kids[0]), pos)
        if kind == "int_lit":
            return Literal(int(node.children[0]), pos)
        if kind == "float_lit":
            return Literal(number(float(node.children[0])), pos)
        if kind == "literal_value":
            return Literal({"true": True, "false": False, "null": None}[str(node.children[0])], pos)
        if kind in ("identifier", "keyword"):
            return Variable(str(node.children[0]), pos)
        if kind == "string":
            return self.template(node)
        if kind == "template_string":
            return Literal(str(node.children[0])[2:-2], pos)
        if kind in ("heredoc_template", "heredoc_template_trim"):
            return self.heredoc(str(node.children[0]), kind.endswith("trim"), pos)
        if kind == "tuple":
            return Tuple([self.expr(k) for k in kids], pos)
        if kind == "object":
            items = []
            for elem in kids:
                key_node, value_node = self.trees(elem)
                inner = self.trees(key_node)
                key_expr = inner[0] if inner else key_node
                while key_expr.data == "expr_term" and len(self.trees(key_expr)) == 1 and \
                        not any(isinstance(c, Token) and c.type == "LPAR" for c in key_expr.children):
                    key_expr = self.trees(key_expr)[0]
                if key_expr.data in ("identifier", "keyword"):
                    key: Expr = Literal(str(key_expr.children[0]), self.pos(key_expr))
                else:
                    key = self.expr(key_expr)
                items.append((key, self.expr(value_node)))
            return Object(items, pos)
        if kind == "function_call":
            names = [k for k in kids if k.data == "identifier"]
            name = "::".join(str(n.children[0]) for n in names)
            args_node = next((k for k in kids if k.data == "arguments"), None)
            args = [self.expr(a) for a in self.trees(args_node)] if args_node is not None else []
            expand = args_node is not None and any(isinstance(c, Token) and c.type == "ELLIPSIS"
                                                   for c in args_node.children)
            return Call(name, args, expand, pos)
        if kind == "index_expr_term":
            target, idx = kids
            if idx.data == "short_index":
                return Index(self.expr(target), Literal(int(idx.children[1]), pos), pos)
            return Index(self.expr(target), self.expr(self.trees(idx)[0]), pos)
        if kind == "get_attr_expr_term":
            target, attr = kids
            return GetAttr(self.expr(target), self.name(self.trees(attr)[0]), pos)  # Terraform points at the traversal
        if kind in ("attr_splat_expr_term", "full_splat_expr_term"):
            target, splat = kids
            steps, step_exprs = [], []
            for step in self.trees(splat):
                fn, e = self.step(step)
                steps.append(fn)
                if e is not None:
                    step_exprs.append(e)
            return Splat(self.expr(target), steps, pos, step_exprs)
        if kind in ("for_tuple_expr", "for_object_expr"):
            intro = next(k for k in kids if k.data == "for_intro")
            idents = [str(k.children[0]) for k in self.trees(intro) if k.data == "identifier"]
            coll = self.expr([k for k in self.trees(intro) if k.data != "identifier"][0])
            key_var, value_var = (idents[0], idents[1]) if len(idents) == 2 else (None, idents[0])
            exprs = [k for k in kids if k.data not in ("for_intro", "for_cond")]
            cond_node = next((k for k in kids if k.data == "for_cond"), None)
            cond = self.expr(self.trees(cond_node)[0]) if cond_node is not None else None
            if kind == "for_tuple_expr":
                return For(key_var, value_var, coll, None, self.expr(exprs[0]), cond, False, False, pos)
            group = any(isinstance(c, Token) and c.type == "ELLIPSIS" for c in node.children)
            return For(key_var, value_var, coll, self.expr(exprs[0]), self.expr(exprs[1]), cond, group, True, pos)
        raise HclError("Unsupported expression", f"unkai does not evaluate {kind} expressions.", pos)

    def snippet(self, snippet: str) -> list[Any]:
        """One ``${...}`` or ``%{...}`` of a heredoc, parsed as if it stood in a quoted string."""
        from hcl2.parser import parser

        try:
            tree = parser().parse(f'x = "{_requote(snippet)}"\n')
        except Exception as exc:  # noqa: BLE001 - any parse failure is the template's syntax error
            raise HclError("Invalid template", str(exc).splitlines()[0], Pos(self.file, self.line_offset + 1, 1)) \
                from None
        node = tree
        while node.data != "string":
            node = self.trees(node)[0] if node.data != "attribute" else self.trees(node)[1]
        return [self.directive(p.children[0]) for p in self.trees(node)]

    def step(self, step: Any) -> tuple[Callable[[Any, Any], Any], Expr | None]:
        pos = self.pos(step)
        if step.data == "get_attr":
            name = self.name(self.trees(step)[0])
            return (lambda v, scope: get_attr(v, name, pos)), None
        if step.data == "short_index":
            i = int(step.children[1])
            return (lambda v, scope: index(v, i, pos)), None
        key = self.expr(self.trees(step)[0])
        return (lambda v, scope: index(v, key.evaluate(scope), pos)), key

    # -- strings and templates --

    def template(self, node: Any) -> Template:
        pos = self.pos(node)
        flat: list[Any] = []
        for part in self.trees(node):
            inner = part.children[0]
            if not hasattr(inner, "data"):
                tok = str(inner)
                if inner.type == "ESCAPED_INTERPOLATION":
                    flat.append(tok[1:])
                elif inner.type == "ESCAPED_DIRECTIVE":
                    flat.append(tok[1:])
                else:
                    flat.append(_unescape(tok, pos))
                continue
            flat.append(self.directive(inner))
        return Template(_nest(_merge(flat), pos), pos)

    def directive(self, node: Any) -> Any:
        kids = self.trees(node)
        strip = (str(node.children[1]) == "~", str(node.children[-2]) == "~")
        if node.data == "interpolation":
            return self.expr(kids[0]) if strip == (False, False) else ("interp", self.expr(kids[0]), strip)
        if node.data == "template_if_start":
            return ("%if", self.expr(kids[-1]), strip)
        if node.data == "template_for_start":
            idents = [str(k.children[0]) for k in kids if k.data == "identifier"]
            coll = self.expr([k for k in kids if k.data != "identifier"][0])
            return ("%for", idents, coll, strip)
        return ("%" + node.data.split("_")[1], strip)  # %else / %endif / %endfor

    def heredoc(self, raw: str, trim: bool, pos: Pos) -> Template:
        first_nl = raw.index("\n")
        lines = raw[first_nl + 1:].split("\n")
        lines = lines[:-2]  # the closing marker's line and the trailing newline
        if trim:
            indents = [len(line) - len(line.lstrip(" \t")) for line in lines if line.strip()]
            cut = min(indents) if indents else 0
            lines = [line[cut:] for line in lines]
        text = "\n".join(lines) + ("\n" if lines else "")
        return Template(_nest(_merge(self.raw_template(text, pos)), pos), pos)

    def raw_template(self, text: str, pos: Pos) -> list[Any]:
        """A heredoc body: literal text, with ``${...}`` and ``%{...}`` parsed as in a quoted string."""
        out: list[Any] = []
        i = 0
        while i < len(text):
            j = _next_sequence(text, i)
            if j < 0:
                out.append(text[i:].replace("$${", "${").replace("%%{", "%{"))
                break
            out.append(text[i:j].replace("$${", "${").replace("%%{", "%{"))
            end = _matching_brace(text, j + 1)
            if end < 0:
                raise HclError("Unterminated template string", "No closing marker was found for the string.", pos)
            line = pos.line + 1 + text.count("\n", 0, j)
            snippet = text[j:end + 1]
            out.extend(_Builder(self.file, line - 1).snippet(snippet))
            i = end + 1
        return out


def _requote(snippet: str) -> str:
    return snippet.replace("\n", " ")


def _next_sequence(text: str, i: int) -> int:
    while True:
        m = re.search(r"(\$\$\{|%%\{|\$\{|%\{)", text[i:])
        if m is None:
            return -1
        if m.group(1) in ("$${", "%%{"):
            i += m.end()
            continue
        return i + m.start()


def _matching_brace(text: str, start: int) -> int:
    depth, i, quote = 0, start, False
    while i < len(text):
        c = text[i]
        if quote:
            if c == "\\":
                i += 1
            elif c == '"':
                quote = False
        elif c == '"':
            quote = True
        elif c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


def _unescape(raw: str, pos: Pos) -> str:
    out, i = [], 0
    while i < len(raw):
        c = raw[i]
        if c == "\\" and i + 1 < len(raw):
            n = raw[i + 1]
            if n in _ESCAPES:
                out.append(_ESCAPES[n])
                i += 2
                continue
            if n in "uU":
                width = 4 if n == "u" else 8
                out.append(chr(int(raw[i + 2:i + 2 + width], 16)))
                i += 2 + width
                continue
            raise HclError("Invalid escape sequence", f"The symbol \"{n}\" is not a valid escape sequence selector.",
                           pos)
        out.append(c)
        i += 1
    return "".join(out)


def _merge(flat: list[Any]) -> list[Any]:
    out: list[Any] = []
    for p in flat:
        if isinstance(p, str) and out and isinstance(out[-1], str):
            out[-1] += p
        else:
            out.append(p)
    return out


def _nest(flat: list[Any], pos: Pos) -> list[Any]:
    """Flat ``%{if}``/``%{else}``/``%{endif}``/``%{for}`` markers as nested parts, with ``~`` strip markers applied."""
    flat = list(flat)
    for n, p in enumerate(flat):  # strip markers trim the literal text beside them
        strip = p[-1] if isinstance(p, tuple) and isinstance(p[-1], tuple) else None
        if strip:
            if strip[0] and n > 0 and isinstance(flat[n - 1], str):
                flat[n - 1] = flat[n - 1].rstrip()
            if strip[1] and n + 1 < len(flat) and isinstance(flat[n + 1], str):
                flat[n + 1] = flat[n + 1].lstrip()
    stack: list[tuple[Any, list[Any]]] = [(None, [])]
    for p in flat:
        if isinstance(p, tuple) and p[0] == "interp":
            stack[-1][1].append(p[1])
        elif isinstance(p, tuple) and p[0] == "%if":
            stack.append((["if", p[1], None], []))
        elif isinstance(p, tuple) and p[0] == "%for":
            idents = p[1]
            k, v = (idents[0], idents[1]) if len(idents) == 2 else (None, idents[0])
            stack.append((["for", k, v, p[2]], []))
        elif isinstance(p, tuple) and p[0] == "%else":
            head, parts = stack[-1]
            if head is None or head[0] != "if":
                raise HclError("Unexpected else directive", "No if directive is open here.", pos)
            head[2] = parts
            stack[-1] = (head, [])
        elif isinstance(p, tuple) and p[0] in ("%endif", "%endfor"):
            head, parts = stack.pop() if len(stack) > 1 else (None, None)
            if head is None or head[0] != p[0][4:]:
                raise HclError(f"Unexpected {p[0][1:]} directive", "No matching opening directive is open here.", pos)
            if head[0] == "if":
                then, other = (head[2], parts) if head[2] is not None else (parts, [])
                stack[-1][1].append(("if", head[1], then, other))
            else:
                stack[-1][1].append(("for", head[1], head[2], head[3], parts))
        else:
            stack[-1][1].append(p)
    if len(stack) > 1:
        raise HclError("Unterminated template directive", "A %{if} or %{for} has no matching end.", pos)
    return _merge(stack[0][1])


def json_value(value: Any) -> Any:
    """A value as jsonencode writes it (numbers without a trailing .0)."""
    return json.loads(json.dumps(value))
