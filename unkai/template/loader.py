"""Reading a template file: YAML with CloudFormation's short tags (``!Ref``,
``!GetAtt``...) or JSON, into plain dicts, keeping the line every key was written
on so an error can point at it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from unkai.template.errors import TemplateError  # noqa: F401  (here since before errors.py: importers keep working)

Path_ = tuple[Any, ...]

# !Tag -> the long form's key. Everything else is Fn::<Tag>.
_TAGS = {"Ref": "Ref", "Condition": "Condition"}
_KNOWN = ("Base64", "Cidr", "FindInMap", "GetAtt", "GetAZs", "ImportValue", "Join", "Select", "Split", "Sub",
          "Transform", "And", "Equals", "If", "Not", "Or", "Length", "ToJsonString", "ForEach")


@dataclass
class Source:
    """A loaded template: its data, where it came from, and the line of every key."""

    data: dict[str, Any]
    file: Path | None = None
    text: str = ""
    lines: dict[Path_, int] = field(default_factory=dict)

    @property
    def base_dir(self) -> Path:
        return self.file.parent if self.file else Path.cwd()

    def line(self, path: Path_) -> int | None:
        """The line of ``path``, or of its nearest ancestor that has one."""
        path = tuple(path)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return None

    def locate(self, logical_id: str) -> tuple[Path_, str]:
        """Where a resource of the expanded template came from: itself, or the SAM resource (and
        event) that generated it (``FnTick`` from function ``Fn``'s event ``Tick``)."""
        resources = self.data.get("Resources") or {}
        if logical_id in resources:
            return ("Resources", logical_id), f"Resources.{logical_id}"
        parent = max((lid for lid in resources if logical_id.startswith(lid)), key=len, default=None)
        if parent is None:
            return (), f"Resources.{logical_id}"
        path: Path_ = ("Resources", parent)
        props = resources[parent].get("Properties") if isinstance(resources[parent], dict) else None
        events = props.get("Events") if isinstance(props, dict) else None
        if isinstance(events, dict):
            event = max((e for e in events if logical_id[len(parent):].startswith(e)), key=len, default=None)
            if event is not None:
                path = path + ("Properties", "Events", event)
        return path, f"Resources.{parent}"

    def error(self, message: str, path: Path_ = (), where: str | None = None) -> TemplateError:
        if where is None and len(path) >= 2 and path[0] in ("Resources", "Outputs", "Parameters", "Conditions",
                                                             "Mappings"):
            where = f"{path[0]}.{path[1]}"
        return TemplateError(message, self.file, self.line(path), where)


def find_template(path: Path) -> Path:
    """A template file, or the template in a directory (as ``sam`` looks for it)."""
    if path.is_dir():
        for name in ("template.yaml", "template.yml", "template.json"):
            if (path / name).is_file():
                return path / name
        raise TemplateError(f"no template.yaml, template.yml or template.json in {path}")
    return path


def load(path: Path) -> Source:
    path = find_template(Path(path)).resolve()
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise TemplateError(f"cannot read the template: {exc}", path) from None
    return parse(text, path)


def parse(text: str, file: Path | None = None) -> Source:
    """Parse template text (YAML or JSON)."""
    if not text.strip():
        raise TemplateError("the template is empty", file)
    data, lines = read_document(text, file)
    return _checked(Source(data, file, text, lines))


def read_document(text: str, file: Path | None = None) -> tuple[Any, dict[Path_, int]]:
    """YAML (with CloudFormation's tags) or JSON text as plain data, and the line of every key."""
    lines: dict[Path_, int] = {}
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        if text.lstrip().startswith("{"):
            try:  # JSON that YAML 1.1 cannot read (tabs, "\\/" escapes): no lines, but readable
                return json.loads(text), {}
            except ValueError as jexc:
                raise TemplateError(f"invalid JSON: {jexc.msg}", file, jexc.lineno) from None
        mark = exc.problem_mark
        raise TemplateError(f"invalid YAML: {exc.problem}", file, mark.line + 1 if mark else None) from None
    except yaml.YAMLError as exc:
        raise TemplateError(f"invalid YAML: {exc}", file) from None
    if node is None:
        return None, lines
    return _convert(node, (), lines, file), lines


def _checked(source: Source) -> Source:
    if not isinstance(source.data, dict):
        raise TemplateError("a template must be a mapping with a Resources section", source.file, 1)
    resources = source.data.get("Resources")
    if not isinstance(resources, dict) or not resources:
        raise source.error("the template has no Resources (at least one resource is required)", ("Resources",))
    return source


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """SafeLoader without timestamps: CloudFormation reads dates as strings. libyaml's parser when
    PyYAML has it: a 50-function template composes in a tenth of the time, with the same marks."""


_Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:timestamp"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_SCALARS = _Loader("")


def _convert(node: yaml.Node, path: Path_, lines: dict[Path_, int], file: Path | None) -> Any:
    lines.setdefault(path, node.start_mark.line + 1)
    tag = node.tag
    if tag.startswith("!"):
        name = tag[1:]
        if name not in _TAGS and name not in _KNOWN:
            raise TemplateError(f"unknown tag {tag}", file, node.start_mark.line + 1)
        key = _TAGS.get(name, f"Fn::{name}")
        inner = _convert_plain(node, path + (key,), lines, file)
        if name == "GetAtt" and isinstance(inner, str):
            res, _, attr = inner.partition(".")
            inner = [res, attr]
        return {key: inner}
    return _convert_plain(node, path, lines, file)


def _convert_plain(node: yaml.Node, path: Path_, lines: dict[Path_, int], file: Path | None) -> Any:
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        _SCALARS.flatten_mapping(node)
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise TemplateError("a mapping key must be a plain value", file, key_node.start_mark.line + 1)
            key = key_node.value  # keys are names, as written: `Off:` is "Off", not false
            if key in out:
                raise TemplateError(f"duplicate key {key!r}", file, key_node.start_mark.line + 1)
            lines[path + (key,)] = key_node.start_mark.line + 1
            out[key] = _convert(value_node, path + (key,), lines, file)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_convert(item, path + (i,), lines, file) for i, item in enumerate(node.value)]
    if node.tag.startswith("!"):  # a short tag on a scalar: the scalar is a string
        return node.value
    return _SCALARS.construct_object(node)
