"""Matching a request path to a REST API resource or an HTTP API route: literal
segments beat ``{param}`` segments, which beat a greedy ``{proxy+}``; a method beats
ANY. Both API types share this tree."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote


class Node:
    __slots__ = ("literal", "var", "var_name", "greedy", "greedy_name", "methods", "template")

    def __init__(self) -> None:
        self.literal: dict[str, Node] = {}
        self.var: Node | None = None
        self.var_name = ""
        self.greedy: Node | None = None
        self.greedy_name = ""
        self.methods: dict[str, Any] = {}
        self.template = "/"


class Router:
    """Path templates (``/items/{id}``, ``/{proxy+}``) with a target per method."""

    def __init__(self) -> None:
        self.root = Node()

    def add(self, template: str, method: str, target: Any) -> None:
        node = self.root
        for part in [p for p in template.split("/") if p]:
            if part.startswith("{") and part.endswith("+}"):
                if node.greedy is None:
                    node.greedy = Node()
                    node.greedy_name = part[1:-2]
                node = node.greedy
            elif part.startswith("{") and part.endswith("}"):
                if node.var is None:
                    node.var = Node()
                    node.var_name = part[1:-1]
                node = node.var
            else:
                node = node.literal.setdefault(part, Node())
        node.template = template or "/"
        node.methods[method.upper()] = target

    def match(self, path: str, method: str) -> tuple[Any, str, dict[str, str]] | None:
        """(target, template, path parameters) for the raw (undecoded) ``path``."""
        parts = [p for p in path.split("/") if p]
        return self._walk(self.root, parts, 0, method.upper(), {})

    def has_path(self, path: str) -> bool:
        """Whether any method is configured for this path (HTTP APIs tell 404 from 405 this way)."""
        parts = [p for p in path.split("/") if p]
        return self._walk(self.root, parts, 0, None, {}) is not None

    def _walk(self, node: Node, parts: list[str], i: int, method: str | None,
              params: dict[str, str]) -> tuple[Any, str, dict[str, str]] | None:
        if i == len(parts):
            target = self._pick(node, method)
            if target is not None:
                return target, node.template, params
            # a greedy child also matches nothing? No: {proxy+} needs at least one segment
            return None
        part = parts[i]
        child = node.literal.get(unquote(part)) or node.literal.get(part)
        if child is not None:
            found = self._walk(child, parts, i + 1, method, params)
            if found is not None:
                return found
        if node.var is not None:
            found = self._walk(node.var, parts, i + 1, method, {**params, node.var_name: unquote(part)})
            if found is not None:
                return found
        if node.greedy is not None:
            target = self._pick(node.greedy, method)
            if target is not None:
                rest = "/".join(unquote(p) for p in parts[i:])
                return target, node.greedy.template, {**params, node.greedy_name: rest}
        return None

    @staticmethod
    def _pick(node: Node, method: str | None) -> Any:
        if method is None:
            return next(iter(node.methods.values()), None)
        target = node.methods.get(method)
        if target is None:
            target = node.methods.get("ANY")
        return target
