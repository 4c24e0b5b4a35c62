"""Shapes to and from XML, as the query and rest-xml protocols lay them out.

The layout rules (flattened lists and maps, ``locationName``, ``xmlAttribute``,
``xmlNamespace``) are the inverse of botocore's XML response parser and request
serializer, so whatever botocore writes we read, and whatever we write it reads.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING, Any

from unkai.protocol import values
from unkai.protocol.errors import ParamError
from unkai.protocol.xml import escape, strip_ns

if TYPE_CHECKING:  # botocore.model is imported with the first model (it pulls in awscrt and urllib3)
    from botocore.model import Shape

SKIP_LOCATIONS = ("header", "headers", "uri", "querystring", "statusCode")


def _flat_name(member: Shape, default: str) -> str:
    """The element name a flattened list member repeats under."""
    if member.type_name == "list" and member.serialization.get("flattened"):
        name = member.member.serialization.get("name")
        if name:
            return name
    return member.serialization.get("name", default)


_OUT: dict[Any, list[tuple[str, Shape, str, str]]] = {}


def _members_out(shape: Shape) -> list[tuple[str, Shape, str, str]]:
    """A structure's members as ``to_xml`` writes them: (member, shape, kind, element or
    attribute name), kind ``attr``, ``list`` / ``map`` (flattened) or ``element``; members
    bound elsewhere (headers, URI, status code) left out. Worked out once per shape."""
    found = _OUT.get(shape)
    if found is None:
        found = []
        for key, member in shape.members.items():
            ser = member.serialization
            if ser.get("location") in SKIP_LOCATIONS:
                continue
            if ser.get("xmlAttribute"):
                found.append((key, member, "attr", ser["name"]))
                continue
            flattened = ser.get("flattened")
            kind = member.type_name if flattened and member.type_name in ("list", "map") else "element"
            found.append((key, member, kind, _flat_name(member, key)))
        _OUT[shape] = found
    return found


def to_xml(shape: Shape, value: Any, name: str, out: list[str], namespace: str | None = None,
           ts_format: str = "iso8601") -> None:
    """Append ``value`` as an element ``name`` of ``shape`` to ``out``."""
    t = shape.type_name
    if t == "structure":
        attrs = f' xmlns="{namespace}"' if namespace else ""
        body: list[str] = []
        for key, member, kind, mname in _members_out(shape):
            v = value.get(key)
            if v is None:
                continue
            if kind == "attr":
                if ":" in mname and not attrs.count("xmlns:xsi"):
                    attrs += ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
                attrs += f' {mname}="{escape(str(v))}"'
            elif kind == "list":
                for item in v:
                    to_xml(member.member, item, mname, body, ts_format=ts_format)
            elif kind == "map":
                _map_entries(member, v, mname, body, ts_format)
            else:
                to_xml(member, v, mname, body, ts_format=ts_format)
        out.append(f"<{name}{attrs}>")
        out.extend(body)
        out.append(f"</{name}>")
    elif t == "list":
        item_name = shape.member.serialization.get("name", "member")
        out.append(f"<{name}>")
        for item in value:
            to_xml(shape.member, item, item_name, out, ts_format=ts_format)
        out.append(f"</{name}>")
    elif t == "map":
        out.append(f"<{name}>")
        _map_entries(shape, value, "entry", out, ts_format)
        out.append(f"</{name}>")
    else:
        text = values.to_text(value, shape, ts_format)
        attrs = f' xmlns="{namespace}"' if namespace else ""
        out.append(f"<{name}{attrs}>{escape(text)}</{name}>")


def _map_entries(shape: Shape, value: dict, entry: str, out: list[str], ts_format: str) -> None:
    kname = shape.key.serialization.get("name", "key")
    vname = shape.value.serialization.get("name", "value")
    for k, v in value.items():
        out.append(f"<{entry}>")
        to_xml(shape.key, k, kname, out, ts_format=ts_format)
        to_xml(shape.value, v, vname, out, ts_format=ts_format)
        out.append(f"</{entry}>")


def from_xml(shape: Shape, node: ET.Element, path: str = "") -> Any:
    """Read an element of ``shape``; the inverse of ``to_xml``."""
    t = shape.type_name
    if t == "structure":
        children: dict[str, list[ET.Element]] = {}
        for child in node:
            children.setdefault(strip_ns(child.tag), []).append(child)
        result: dict[str, Any] = {}
        for key, member in shape.members.items():
            if member.serialization.get("location") in SKIP_LOCATIONS:
                continue
            if member.serialization.get("xmlAttribute"):
                attr = member.serialization["name"].split(":")[-1]
                for k, v in node.attrib.items():
                    if strip_ns(k) == attr:
                        result[key] = v
                continue
            found = children.get(_flat_name(member, key))
            if not found:
                continue
            sub = f"{path}.{key}" if path else key
            if member.serialization.get("flattened") and member.type_name == "list":
                result[key] = [from_xml(member.member, n, sub) for n in found]
            elif member.serialization.get("flattened") and member.type_name == "map":
                result[key] = _map_from(member, found, sub)
            else:
                result[key] = from_xml(member, found[0], sub)
        for req in shape.required_members:
            if req not in result and shape.members[req].serialization.get("location") not in SKIP_LOCATIONS:
                raise ParamError("missing", f"{path}.{req}" if path else req,
                                 f"The request is missing the required element {req}.")
        return result
    if t == "list":
        return [from_xml(shape.member, child, path) for child in node]
    if t == "map":
        return _map_from(shape, list(node), path)
    return values.from_text(node.text or "", shape, path)


def _map_from(shape: Shape, entries: list[ET.Element], path: str) -> dict:
    kname = shape.key.serialization.get("name", "key")
    vname = shape.value.serialization.get("name", "value")
    result = {}
    for entry in entries:
        k = v = None
        for part in entry:
            tag = strip_ns(part.tag)
            if tag == kname:
                k = from_xml(shape.key, part, path)
            elif tag == vname:
                v = from_xml(shape.value, part, path)
        if k is not None:
            result[k] = v
    return result
