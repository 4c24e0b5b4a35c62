"""Email templates and how SES renders them.

SES templates are Handlebars: ``{{name}}``, ``{{a.b}}`` and ``{{{raw}}}`` (never
HTML-escaped: "SES doesn't escape HTML content when rendering", AWS's guide says), ``{{#if x}}…{{else}}…{{/if}}``, ``{{#unless}}``,
``{{#each list}}…{{this}}…{{@index}}…{{/each}}`` and ``{{#with obj}}``. A plain
reference to an attribute the data lacks is SES's ``MissingRenderingAttribute``
("Attribute 'x' is not present in the rendering data."); inside ``#if`` a missing value
is simply false, as in Handlebars."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from unkai.services.ses import errors

_TOKEN = re.compile(r"\{\{\{\s*(?P<raw>[^}]+?)\s*\}\}\}|\{\{~?\s*(?P<kind>[#/^!]?)\s*(?P<body>.*?)\s*~?\}\}", re.S)


@dataclass
class Template:
    name: str
    subject: str | None
    text: str | None
    html: str | None
    created: float


def get(store: Any, account: str, region: str, name: str) -> Template | None:
    row = store.one("SELECT name, subject, text, html, created FROM ses_templates WHERE account=? AND region=? "
                    "AND name=?", (account, region, name))
    return Template(*row) if row else None


def names(store: Any, account: str, region: str) -> list[tuple[str, float]]:
    return store.all("SELECT name, created FROM ses_templates WHERE account=? AND region=? ORDER BY name",
                     (account, region))


def put(store: Any, account: str, region: str, t: Template) -> None:
    store.execute("INSERT INTO ses_templates(account, region, name, subject, text, html, created) "
                  "VALUES(?, ?, ?, ?, ?, ?, ?) ON CONFLICT(account, region, name) DO UPDATE SET "
                  "subject=excluded.subject, text=excluded.text, html=excluded.html",
                  (account, region, t.name, t.subject, t.text, t.html, t.created))


def delete(store: Any, account: str, region: str, name: str) -> bool:
    return store.execute("DELETE FROM ses_templates WHERE account=? AND region=? AND name=?",
                         (account, region, name)).rowcount > 0


class MissingAttribute(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


class BadTemplate(Exception):
    pass


def parse_data(text: str | None, v2: bool = False) -> dict[str, Any]:
    """TemplateData: a JSON object, else SES's InvalidRenderingParameter."""
    if text is None or text == "":
        return {}
    try:
        data = json.loads(text)
    except ValueError:
        raise errors.invalid_rendering_data(v2) from None
    if not isinstance(data, dict):
        raise errors.invalid_rendering_data(v2)
    return data


def render(source: str | None, data: dict[str, Any]) -> str | None:
    """Render one part; raises MissingAttribute or BadTemplate."""
    if source is None:
        return None
    tree, rest = _parse(source, 0, None)
    if rest != len(source):  # pragma: no cover - _parse consumes everything at the top level
        raise BadTemplate("unbalanced blocks")
    out: list[str] = []
    _emit(tree, [data], out)
    return "".join(out)


def validate(source: str | None) -> None:
    """Raise BadTemplate for a template Handlebars could not compile (unclosed blocks)."""
    if source is not None:
        _parse(source, 0, None)


def _parse(src: str, pos: int, closing: str | None) -> tuple[list, int]:
    nodes: list = []
    while True:
        m = _TOKEN.search(src, pos)
        if m is None:
            if closing is not None:
                raise BadTemplate(f"{{{{#{closing}}}}} is never closed")
            nodes.append(("text", src[pos:]))
            return nodes, len(src)
        if m.start() > pos:
            nodes.append(("text", src[pos:m.start()]))
        pos = m.end()
        if m["raw"] is not None:
            nodes.append(("var", m["raw"].strip(), False))
            continue
        kind, body = m["kind"], m["body"].strip()
        if kind == "!":
            continue
        if kind == "#":
            helper, _, arg = body.partition(" ")
            if helper not in ("if", "unless", "each", "with"):
                raise BadTemplate(f"unknown helper {helper}")
            inner, pos = _parse(src, pos, helper)
            then, otherwise = inner, []
            for i, node in enumerate(inner):
                if node == ("else",):
                    then, otherwise = inner[:i], inner[i + 1:]
                    break
            nodes.append(("block", helper, arg.strip(), then, otherwise))
            continue
        if kind == "/":
            if body != closing:
                raise BadTemplate(f"{{{{/{body}}}}} does not close {{{{#{closing}}}}}")
            return nodes, pos
        if body == "else":
            nodes.append(("else",))
            continue
        nodes.append(("var", body, True))


_MISSING = object()


def _lookup(path: str, stack: list[Any]) -> Any:
    if path in ("this", "."):
        return stack[-1]
    if path.startswith("this."):
        path, scopes = path[5:], [stack[-1]]
    elif path.startswith("../"):
        ups = 0
        while path.startswith("../"):
            path, ups = path[3:], ups + 1
        scopes = [stack[max(0, len(stack) - 1 - ups)]]
    else:
        scopes = [stack[-1]]
    for scope in scopes:
        value: Any = scope
        for part in path.split("."):
            if isinstance(value, dict) and part in value:
                value = value[part]
            else:
                value = _MISSING
                break
        if value is not _MISSING:
            return value
    return _MISSING


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (dict, list)):
        return "[object Object]" if isinstance(value, dict) else ",".join(_text(v) for v in value)
    return str(value)


def _emit(nodes: list, stack: list[Any], out: list[str], index: int | None = None) -> None:
    for node in nodes:
        if node[0] == "text":
            out.append(node[1])
        elif node[0] == "var":
            path = node[1]
            if path == "@index":
                out.append(str(index or 0))
                continue
            value = _lookup(path, stack)
            if value is _MISSING:
                raise MissingAttribute(path)
            text = _text(value)
            out.append(text)  # SES does not escape, unlike Handlebars
        elif node[0] == "block":
            _, helper, arg, then, otherwise = node
            value = _lookup(arg, stack) if arg else _MISSING
            truthy = value is not _MISSING and bool(value) and value != 0
            if helper == "if":
                _emit(then if truthy else otherwise, stack, out, index)
            elif helper == "unless":
                _emit(otherwise if truthy else then, stack, out, index)
            elif helper == "with":
                if truthy:
                    _emit(then, stack + [value], out, index)
                else:
                    _emit(otherwise, stack, out, index)
            elif helper == "each":
                items = list(value.values()) if isinstance(value, dict) else value if isinstance(value, list) else []
                if not truthy or not items:
                    _emit(otherwise, stack, out, index)
                for i, item in enumerate(items):
                    _emit(then, stack + [item], out, i)
