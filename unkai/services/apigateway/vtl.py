"""Mapping templates: Velocity (VTL) rendered by airspeed with API Gateway's own
objects, ``$input``, ``$util``, ``$context`` and ``$stageVariables``, as AWS documents
them for REST API mapping templates and gateway responses."""

from __future__ import annotations

import base64
import functools
import json
import re
from typing import Any
from urllib.parse import quote_plus, unquote_plus



class TemplateError(Exception):
    """A mapping template that does not parse or render."""


# `#set($context.responseOverride.header.X-Trace = ...)`: a header name with dashes is not a Velocity
# identifier, so it is spelled with _DASH inside the template and spelled back by overrides().
_OVERRIDE = re.compile(r"(\$\{?context\.(?:response|request)Override\.(?:header|querystring|path)\.)([A-Za-z0-9_-]+)")
_DASH = "__unkai_dash__"


@functools.lru_cache(maxsize=512)
def _compile(text: str) -> Any:
    """An airspeed Template (airspeed and jsonpath_ng are imported at first use: slow to
    import, and many stacks have no mapping template)."""
    import airspeed

    if "Override." in text:
        text = _OVERRIDE.sub(lambda m: m.group(1) + m.group(2).replace("-", _DASH), text)
    return airspeed.Template(text)


def overrides(values: dict[str, Any]) -> dict[str, Any]:
    """``$context.responseOverride`` / ``requestOverride`` as set by a template, names spelled as written."""
    return {key: {k.replace(_DASH, "-"): v for k, v in value.items()} if isinstance(value, dict) else value
            for key, value in values.items()}


@functools.lru_cache(maxsize=512)
def _jsonpath(expr: str) -> tuple[Any, bool]:
    from jsonpath_ng import parse as jsonpath_parse

    try:
        compiled = jsonpath_parse(expr)
    except Exception as exc:  # jsonpath_ng's JsonPathParserError, and whatever else a bad path raises
        raise TemplateError(f"Invalid JSONPath expression {expr!r}: {exc}") from None
    definite = not re.search(r"\*|\.\.|\?\(|:|,", expr)
    return compiled, definite


def json_path(data: Any, expr: str) -> Any:
    """A JSONPath lookup as Jayway JsonPath answers it: one value for a definite path
    (None when absent), a list for a wildcard, deep or filtered one."""
    expr = (expr or "$").strip()
    if expr == "$":
        return data
    compiled, definite = _jsonpath(expr)
    found = [m.value for m in compiled.find(data)]
    if definite:
        return found[0] if found else None
    return found


def escape_javascript(text: Any) -> str:
    """Java's StringEscapeUtils.escapeJavaScript, which ``$util.escapeJavaScript`` is:
    quotes (both kinds), backslash and slash escaped, non-ASCII as \\uXXXX."""
    out = []
    for ch in str(text):
        code = ord(ch)
        if ch in "\"'\\/":
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\b":
            out.append("\\b")
        elif ch == "\f":
            out.append("\\f")
        elif code < 0x20 or code > 0x7E:
            if code > 0xFFFF:
                code -= 0x10000
                out.append("\\u%04X\\u%04X" % (0xD800 + (code >> 10), 0xDC00 + (code & 0x3FF)))
            else:
                out.append("\\u%04X" % code)
        else:
            out.append(ch)
    return "".join(out)


class Util:
    """``$util``."""

    def escapeJavaScript(self, text: Any) -> str:  # noqa: N802 - VTL names
        return escape_javascript(text)

    def parseJson(self, text: Any) -> Any:  # noqa: N802
        try:
            return json.loads(text)
        except (TypeError, ValueError):
            raise TemplateError("Unable to parse JSON") from None

    def urlEncode(self, text: Any) -> str:  # noqa: N802
        return quote_plus(str(text), safe="*")

    def urlDecode(self, text: Any) -> str:  # noqa: N802
        return unquote_plus(str(text))

    def base64Encode(self, text: Any) -> str:  # noqa: N802
        data = text if isinstance(text, bytes) else str(text).encode()
        return base64.b64encode(data).decode()

    def base64Decode(self, text: Any) -> str:  # noqa: N802
        return base64.b64decode(str(text)).decode("utf-8", "replace")


class Input:
    """``$input``: the request (or integration response) payload and parameters."""

    def __init__(self, body: str, params: dict[str, dict[str, str]] | None = None) -> None:
        self._body = body
        self._params = params or {"path": {}, "querystring": {}, "header": {}}
        self._parsed: Any = ...

    @property
    def body(self) -> str:
        return self._body

    def _data(self) -> Any:
        if self._parsed is ...:
            try:
                self._parsed = json.loads(self._body) if self._body.strip() else {}
            except ValueError:
                self._parsed = self._body
        return self._parsed

    def json(self, expr: str = "$") -> str:
        value = json_path(self._data(), expr)
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))

    def path(self, expr: str = "$") -> Any:
        return json_path(self._data(), expr)

    def params(self, name: str | None = None) -> Any:
        if name is None:
            return self._params
        for where in ("path", "querystring", "header"):
            group = self._params.get(where) or {}
            if name in group:
                return group[name]
            if where == "header":
                lowered = name.lower()
                for key, value in group.items():
                    if key.lower() == lowered:
                        return value
        return ""


UTIL = Util()


def render(template: str, *, body: str, params: dict | None = None, context: dict | None = None,
           stage_variables: dict | None = None, extra: dict | None = None) -> str:
    """Render one mapping template."""
    namespace = {"input": Input(body, params), "util": UTIL, "context": context or {},
                 "stageVariables": stage_variables or {}}
    if extra:
        namespace.update(extra)
    try:
        return _compile(template).merge(namespace)
    except TemplateError:
        raise
    except Exception as exc:  # airspeed raises its own errors for bad templates
        raise TemplateError(f"Unable to transform the request: {exc}") from None
