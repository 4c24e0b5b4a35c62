"""Minimal XML text helpers: fast escaping for output, safe parsing for input."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from unkai.protocol.errors import SerializationError

_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "\r": "&#xD;"}
_NEEDS_ESCAPE = re.compile(r'[&<>"\r]')
# Characters XML 1.0 cannot carry at all (even escaped); AWS never returns them.
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


_ANY = re.compile("[&<>\"\r\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")  # either of the two above


def escape(text: str) -> str:
    if not _ANY.search(text):  # most values: one scan, nothing to change
        return text
    if _NEEDS_ESCAPE.search(text):
        text = _NEEDS_ESCAPE.sub(lambda m: _ESCAPES[m.group()], text)
    if _INVALID_XML.search(text):
        text = _INVALID_XML.sub(lambda m: f"&#x{ord(m.group()):X};", text)
    return text


def strip_ns(tag: str) -> str:
    return tag.rsplit("}", 1)[-1] if tag.startswith("{") else tag


def parse(body: bytes) -> ET.Element:
    """Parse a request body with defusedxml: DTDs, entities and external references are
    refused by the parser itself, so no encoding (UTF-16, UTF-32...) can slip one past."""
    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import fromstring

    try:
        return fromstring(body, forbid_dtd=True)
    except DefusedXmlException:
        raise SerializationError("DTDs are not allowed in request bodies.") from None
    except (ET.ParseError, ValueError) as exc:  # ValueError: an encoding expat cannot read
        raise SerializationError(f"The XML you provided was not well-formed: {exc}") from None
    except RecursionError:
        raise SerializationError("The XML you provided was nested too deeply.") from None
