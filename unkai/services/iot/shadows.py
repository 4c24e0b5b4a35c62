"""Device shadow documents, as AWS IoT's Device Shadow service keeps them.

A shadow is ``state`` (``desired``, ``reported``) with per-leaf ``metadata`` timestamps
and a ``version`` that grows by one on every accepted update. An update merges into the
stored state (``null`` deletes a key, or a whole section), a ``version`` in the request
that differs is rejected with 409, and ``delta`` is computed on read: every desired leaf
that reported does not equal (arrays compare whole, as AWS's do). Pure functions over
JSON values; the store and the topics live in ``data.py``.
"""

from __future__ import annotations

import json
from typing import Any

from unkai.services.iot import errors

SECTIONS = ("desired", "reported")
MAX_DEPTH = 6  # AWS: at most 6 levels of nesting under desired / reported
MAX_BYTES = 8 * 1024  # AWS: the state document is at most 8 KB


def parse_update(payload: bytes) -> dict:
    """An UpdateThingShadow request document, or AWS's InvalidRequestException."""
    try:
        doc = json.loads(payload or b"")
    except (ValueError, UnicodeDecodeError):
        raise errors.invalid("Payload contains invalid json") from None
    if not isinstance(doc, dict):
        raise errors.invalid("Payload contains invalid json")
    if "state" not in doc:
        raise errors.invalid("Missing required node: state")
    state = doc["state"]
    if state is not None and not isinstance(state, dict):
        raise errors.invalid("Invalid JSON: state node must be an object")
    for key in state or {}:
        if key not in SECTIONS:
            raise errors.invalid(f"State contains an invalid node: '{key}'")
        if state[key] is not None and not isinstance(state[key], dict):
            raise errors.invalid(f"Invalid JSON: {key} node must be an object")
        if _depth(state[key]) > MAX_DEPTH:
            raise errors.invalid("JSON contains too many levels of nesting; maximum is 6")
    if "version" in doc and (not isinstance(doc["version"], int) or isinstance(doc["version"], bool)):
        raise errors.invalid("Invalid version: version must be an integer")
    if len(json.dumps(state or {}).encode()) > MAX_BYTES:
        raise errors.too_large()
    return doc


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    return 0


def _merge(target: dict, patch: dict, meta: dict, now: int) -> None:
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
            meta.pop(key, None)
        elif isinstance(value, dict):
            sub = target.get(key) if isinstance(target.get(key), dict) else {}
            sub_meta = meta.get(key) if isinstance(meta.get(key), dict) and "timestamp" not in meta.get(key) else {}
            _merge(sub, value, sub_meta, now)
            target[key], meta[key] = sub, sub_meta
        else:
            target[key] = value
            meta[key] = _stamp(value, now)


def _stamp(value: Any, now: int) -> Any:
    if isinstance(value, list):
        return [_stamp(v, now) for v in value]
    return {"timestamp": now}


def _prune(target: dict) -> None:
    for key in [k for k, v in target.items() if isinstance(v, dict) and not v]:
        target.pop(key)


def apply(state: dict, metadata: dict, update: dict, now: int) -> tuple[dict, dict, dict, dict]:
    """Merge ``update['state']`` into the stored document: the new (state, metadata) and
    the accepted message's (state, metadata), which echo only what the update touched."""
    state, metadata = json.loads(json.dumps(state)), json.loads(json.dumps(metadata))
    patch = update["state"]
    touched_meta: dict = {}
    if patch is None:  # "state": null clears the document
        return {}, {}, {}, {}
    for section, value in patch.items():
        if value is None:
            state.pop(section, None)
            metadata.pop(section, None)
            touched_meta[section] = None
            continue
        target, meta = state.setdefault(section, {}), metadata.setdefault(section, {})
        _merge(target, value, meta, now)
        touched = {}
        _merge({}, value, touched, now)
        touched_meta[section] = touched
        if not target:
            state.pop(section)
            metadata.pop(section, None)
    return state, metadata, patch, touched_meta


def delta(desired: Any, reported: Any) -> Any:
    """The desired leaves that reported does not equal; None when there are none."""
    if not isinstance(desired, dict):
        return None if desired == reported else desired
    out = {}
    for key, value in desired.items():
        other = reported.get(key) if isinstance(reported, dict) else None
        if isinstance(value, dict) and isinstance(other, dict):
            sub = delta(value, other)
            if sub:
                out[key] = sub
        elif value != other or (isinstance(reported, dict) and key not in reported):
            out[key] = value
    return out or None


def delta_metadata(meta: dict, d: dict) -> dict:
    out = {}
    for key, value in d.items():
        m = meta.get(key)
        out[key] = delta_metadata(m, value) if isinstance(value, dict) and isinstance(m, dict) else m
    return out


def document(state: dict, metadata: dict, version: int, now: int, with_delta: bool = True) -> dict:
    """GetThingShadow's document (with ``delta``) or the ``documents`` message's view."""
    out_state = {k: state[k] for k in SECTIONS if k in state}
    if with_delta and "desired" in state:
        d = delta(state["desired"], state.get("reported") or {})
        if d:
            out_state["delta"] = d
    out_meta = {k: metadata[k] for k in SECTIONS if k in metadata}
    return {"state": out_state, "metadata": out_meta, "version": version, "timestamp": now}
