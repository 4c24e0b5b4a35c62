"""Terraform's built-in functions, as https://developer.hashicorp.com/terraform/language/functions
defines them (argument types, null handling and error wording).

Each function takes evaluated arguments and returns a value; a bad argument raises
:class:`ArgumentError` with the argument's index, which the caller turns into
Terraform's "Invalid function argument" at that argument's file:line:column.
Filesystem functions read relative to the module's directory (``path.module``), the
way configurations call them.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import math
import os
import re
import uuid
from pathlib import Path
from typing import Any, Callable

from unkai.terraform.hcl import UNKNOWN, TfSet, number, to_bool, to_number, to_string, type_name


class ArgumentError(Exception):
    def __init__(self, index: int, message: str) -> None:
        super().__init__(message)
        self.index, self.message = index, message


class CallError(Exception):
    """A failure of the call as a whole ("Error in function call")."""


def _str(args: list, i: int) -> str:
    v = args[i]
    if v is None:
        raise ArgumentError(i, "argument must not be null.")
    if isinstance(v, (list, dict)):
        raise ArgumentError(i, f"string required, but have {type_name(v)}.")
    return to_string(v, None)


def _num(args: list, i: int) -> Any:
    v = args[i]
    try:
        return to_number(v, None)
    except Exception:
        raise ArgumentError(i, f"a number is required, not {type_name(v)}.") from None


def _list(args: list, i: int) -> list:
    v = args[i]
    if not isinstance(v, list):
        raise ArgumentError(i, f"list of any single type required, but have {type_name(v)}.")
    return v


def _map(args: list, i: int) -> dict:
    v = args[i]
    if not isinstance(v, dict):
        raise ArgumentError(i, f"map of any single type required, but have {type_name(v)}.")
    return v


def tojson(value: Any) -> str:
    """jsonencode: compact, keys sorted, and ``<``, ``>``, ``&`` escaped as Go's encoder does (so a
    hash of it, such as a deployment's trigger, is the one terraform computes)."""
    text = json.dumps(_plain(value), separators=(",", ":"), ensure_ascii=False, sort_keys=True)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026") \
        .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _plain(value: Any) -> Any:
    if isinstance(value, float):
        return number(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _decode(v: Any) -> Any:
    if isinstance(v, float):
        return number(v)
    if isinstance(v, dict):
        return {k: _decode(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_decode(x) for x in v]
    return v


def _toset(args: list) -> TfSet:
    items = _list(args, 0)
    seen: list[Any] = []
    for item in items:
        if item not in seen:
            seen.append(item)
    if all(isinstance(i, str) for i in seen):
        seen.sort()
    return TfSet(seen)


def _tostring(args: list) -> Any:
    v = args[0]
    if v is None:
        return None
    if isinstance(v, (list, dict)):
        raise ArgumentError(0, f"Invalid value for \"v\" parameter: cannot convert {type_name(v)} to string.")
    return to_string(v, None)


def _format(args: list) -> str:
    fmt = _str(args, 0)
    values = args[1:]
    out: list[str] = []
    i, n = 0, 0
    for m in re.finditer(r"%%|%([-+# 0]*)(\d*)(?:\.(\d+))?([vdsfqtbxXeEgGo])", fmt):
        out.append(fmt[i:m.start()])
        i = m.end()
        if m.group(0) == "%%":
            out.append("%")
            continue
        if n >= len(values):
            raise CallError(f"not enough arguments for %{m.group(4)} at {m.start()}")
        v = values[n]
        n += 1
        flags, width, prec, verb = m.group(1), m.group(2), m.group(3), m.group(4)
        if verb in ("v", "s"):
            text = v if isinstance(v, str) else tojson(v) if isinstance(v, (list, dict)) else to_string(v, None)
        elif verb == "q":
            text = json.dumps(to_string(v, None))
        elif verb == "t":
            text = "true" if to_bool(v, None) else "false"
        elif verb == "d":
            text = str(int(to_number(v, None)))
        elif verb in "fFeEgG":
            text = ("%" + (f".{prec}" if prec else "") + verb) % float(to_number(v, None))
        elif verb in "xXob":
            num = int(to_number(v, None)) if not isinstance(v, str) or verb == "b" else None
            text = format(num, verb) if num is not None else v.encode().hex() if verb == "x" else v.encode().hex().upper()
        else:
            text = str(v)
        if width:
            text = text.ljust(int(width)) if "-" in flags else text.rjust(int(width), "0" if "0" in flags else " ")
        out.append(text)
    out.append(fmt[i:])
    return "".join(out)


def _merge(args: list) -> dict:
    out: dict = {}
    for i, v in enumerate(args):
        if v is None:
            continue
        out.update(_map(args, i))
    return out


def _lookup(args: list) -> Any:
    m = _map(args, 0)
    key = _str(args, 1)
    if key in m:
        return m[key]
    if len(args) > 2:
        return args[2]
    raise CallError(f'the given key "{key}" does not exist in the map')


def _element(args: list) -> Any:
    items = _list(args, 0)
    if not items:
        raise CallError("cannot use element function with an empty list")
    i = int(_num(args, 1))
    if i < 0:
        raise ArgumentError(1, "element index must not be negative")
    return items[i % len(items)]


def _length(args: list) -> int:
    v = args[0]
    if isinstance(v, (str, list, dict)):
        return len(v)
    raise ArgumentError(0, "argument must be a string, a collection type, or a structural type.")


def _flatten(args: list) -> list:
    def flat(items: list) -> list:
        out = []
        for i in items:
            out.extend(flat(i) if isinstance(i, list) else [i])
        return out
    return flat(_list(args, 0))


def _zipmap(args: list) -> dict:
    keys, values = _list(args, 0), _list(args, 1)
    if len(keys) != len(values):
        raise CallError(f"number of keys ({len(keys)}) does not match number of values ({len(values)})")
    return {to_string(k, None): v for k, v in zip(keys, values)}


def _file(base: Path, args: list) -> str:
    path = _path(base, _str(args, 0))
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        raise ArgumentError(0, f"Invalid value for \"path\" parameter: no file exists at \"{args[0]}\"; this "
                               "function works only with files that are distributed as part of the configuration "
                               "source code, so if this file will be created by a resource in this configuration you "
                               "must instead obtain this result from an attribute of that resource.") from None


def _filebytes(base: Path, args: list) -> bytes:
    path = _path(base, _str(args, 0))
    try:
        return path.read_bytes()
    except OSError:
        raise ArgumentError(0, f"Invalid value for \"path\" parameter: no file exists at \"{args[0]}\"; this "
                               "function works only with files that are distributed as part of the configuration "
                               "source code.") from None


def _path(base: Path, p: str) -> Path:
    path = Path(os.path.expanduser(p))
    return path if path.is_absolute() else base / path


def _templatefile(base: Path, args: list, render: Callable[[str, str, dict], Any]) -> Any:
    text = _file(base, args)
    return render(text, str(_path(base, _str(args, 0))), _map(args, 1))


def _regex(args: list) -> Any:
    pattern, text = _str(args, 0), _str(args, 1)
    m = re.search(_re(pattern), text)
    if m is None:
        raise CallError("pattern did not match any part of the given string")
    if m.re.groupindex:
        return m.groupdict()
    if m.re.groups:
        return list(m.groups())
    return m.group(0)


def _re(pattern: str) -> str:
    return re.sub(r"\(\?P?<", "(?P<", pattern)


def _cidrsubnet(args: list) -> str:
    net = ipaddress.ip_network(_str(args, 0), strict=False)
    bits, num = int(_num(args, 1)), int(_num(args, 2))
    return str(list(net.subnets(prefixlen_diff=bits))[num])


def _replace(args: list) -> str:
    text, sub, rep = _str(args, 0), _str(args, 1), _str(args, 2)
    if len(sub) > 1 and sub.startswith("/") and sub.endswith("/"):
        return re.sub(_re(sub[1:-1]), re.sub(r"\$\{?(\w+)\}?", r"\\g<\1>", rep), text)
    return text.replace(sub, rep)


def _timeadd(args: list) -> str:
    from datetime import datetime, timedelta

    ts = datetime.fromisoformat(_str(args, 0).replace("Z", "+00:00"))
    total = 0.0
    for amount, unit in re.findall(r"(-?[\d.]+)(ns|us|µs|ms|s|m|h)", _str(args, 1)):
        total += float(amount) * {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}[unit]
    return (ts + timedelta(seconds=total)).isoformat().replace("+00:00", "Z")


def _coalesce(args: list) -> Any:
    for v in args:
        if v is not None and v != "":
            return v
    raise CallError("no non-null, non-empty-string arguments")


def _one(args: list) -> Any:
    items = _list(args, 0)
    if len(items) > 1:
        raise ArgumentError(0, f"must be a list, set, or tuple value with either zero or one elements.")
    return items[0] if items else None


def _try(args: list) -> Any:
    return args[0]


def table(base: Path, now: Callable[[], str], render: Callable[[str, str, dict], Any]) -> dict[str, Callable]:
    """The functions for a module in directory ``base``."""
    sha = lambda algo: (lambda a: hashlib.new(algo, _str(a, 0).encode()).hexdigest())  # noqa: E731
    filesha = lambda algo: (lambda a: hashlib.new(algo, _filebytes(base, a)).hexdigest())  # noqa: E731
    filesha64 = lambda algo: (lambda a: base64.b64encode(hashlib.new(algo, _filebytes(base, a)).digest()).decode())  # noqa: E731
    return {
        # strings
        "format": _format,
        "formatlist": lambda a: [_format([a[0], *row]) for row in zip(*[x if isinstance(x, list) else
                                                                        [x] * max(len(y) for y in a[1:] if
                                                                                  isinstance(y, list))
                                                                        for x in a[1:]])],
        "join": lambda a: _str(a, 0).join(to_string(v, None) for lst in a[1:] for v in lst),
        "split": lambda a: _str(a, 1).split(_str(a, 0)) if _str(a, 0) else list(_str(a, 1)),
        "lower": lambda a: _str(a, 0).lower(), "upper": lambda a: _str(a, 0).upper(),
        "title": lambda a: re.sub(r"\b(\w)", lambda m: m.group(1).upper(), _str(a, 0)),
        "trimspace": lambda a: _str(a, 0).strip(),
        "trim": lambda a: _str(a, 0).strip(_str(a, 1)),
        "trimprefix": lambda a: _str(a, 0)[len(_str(a, 1)):] if _str(a, 0).startswith(_str(a, 1)) else _str(a, 0),
        "trimsuffix": lambda a: _str(a, 0)[:-len(_str(a, 1))] if _str(a, 1) and _str(a, 0).endswith(_str(a, 1))
        else _str(a, 0),
        "replace": _replace,
        "substr": lambda a: _str(a, 0)[int(_num(a, 1)):(None if int(_num(a, 2)) < 0 else
                                                       int(_num(a, 1)) + int(_num(a, 2)))],
        "strrev": lambda a: _str(a, 0)[::-1],
        "startswith": lambda a: _str(a, 0).startswith(_str(a, 1)),
        "endswith": lambda a: _str(a, 0).endswith(_str(a, 1)),
        "strcontains": lambda a: _str(a, 1) in _str(a, 0),
        "chomp": lambda a: re.sub(r"[\r\n]+$", "", _str(a, 0)),
        "indent": lambda a: _str(a, 1).replace("\n", "\n" + " " * int(_num(a, 0))),
        "regex": _regex,
        "regexall": lambda a: [m.groupdict() if m.re.groupindex else list(m.groups()) if m.re.groups else m.group(0)
                               for m in re.finditer(_re(_str(a, 0)), _str(a, 1))],
        # numbers
        "abs": lambda a: abs(_num(a, 0)), "ceil": lambda a: math.ceil(_num(a, 0)),
        "floor": lambda a: math.floor(_num(a, 0)),
        "max": lambda a: max(_num(a, i) for i in range(len(a))),
        "min": lambda a: min(_num(a, i) for i in range(len(a))),
        "pow": lambda a: number(float(_num(a, 0)) ** _num(a, 1)),
        "signum": lambda a: (_num(a, 0) > 0) - (_num(a, 0) < 0),
        "parseint": lambda a: int(_str(a, 0), int(_num(a, 1))),
        "log": lambda a: math.log(_num(a, 0), _num(a, 1)),
        # collections
        "length": _length,
        "concat": lambda a: [v for i in range(len(a)) for v in _list(a, i)],
        "merge": _merge,
        "lookup": _lookup,
        "element": _element,
        "index": lambda a: _list(a, 0).index(a[1]) if a[1] in _list(a, 0) else (_ for _ in ()).throw(
            CallError("item not found")),
        "contains": lambda a: a[1] in _list(a, 0),
        "keys": lambda a: sorted(_map(a, 0)), "values": lambda a: [_map(a, 0)[k] for k in sorted(_map(a, 0))],
        "flatten": _flatten,
        "distinct": lambda a: [v for i, v in enumerate(_list(a, 0)) if v not in _list(a, 0)[:i]],
        "compact": lambda a: [v for v in _list(a, 0) if v not in (None, "")],
        "reverse": lambda a: list(reversed(_list(a, 0))),
        "sort": lambda a: sorted(to_string(v, None) for v in _list(a, 0)),
        "slice": lambda a: _list(a, 0)[int(_num(a, 1)):int(_num(a, 2))],
        "range": lambda a: list(range(*[int(_num(a, i)) for i in range(len(a))])),
        "zipmap": _zipmap,
        "toset": _toset, "tolist": lambda a: list(_list(a, 0)), "tomap": lambda a: dict(_map(a, 0)),
        "tostring": _tostring, "tonumber": lambda a: None if a[0] is None else _num(a, 0),
        "tobool": lambda a: None if a[0] is None else to_bool(a[0], None),
        "coalesce": _coalesce,
        "coalescelist": lambda a: next((v for v in a if isinstance(v, list) and v), []),
        "setunion": lambda a: _toset([[v for i in range(len(a)) for v in _list(a, i)]]),
        "setintersection": lambda a: _toset([[v for v in _list(a, 0) if all(v in x for x in a[1:])]]),
        "setsubtract": lambda a: _toset([[v for v in _list(a, 0) if v not in _list(a, 1)]]),
        "setproduct": lambda a: [list(t) for t in __import__("itertools").product(*a)],
        "chunklist": lambda a: [_list(a, 0)[i:i + int(_num(a, 1))] for i in range(0, len(_list(a, 0)),
                                                                                  max(1, int(_num(a, 1))))],
        "transpose": lambda a: {v: sorted(k for k, vs in _map(a, 0).items() if v in vs)
                                for vs in _map(a, 0).values() for v in vs},
        "one": _one, "sum": lambda a: number(sum(to_number(v, None) for v in _list(a, 0))),
        "alltrue": lambda a: all(to_bool(v, None) for v in _list(a, 0)),
        "anytrue": lambda a: any(to_bool(v, None) for v in _list(a, 0)),
        "matchkeys": lambda a: [v for v, k in zip(_list(a, 0), _list(a, 1)) if k in _list(a, 2)],
        # encoding
        "jsonencode": lambda a: tojson(a[0]),
        "jsondecode": lambda a: _jsondecode(a),
        "yamlencode": lambda a: __import__("yaml").safe_dump(_plain(a[0]), sort_keys=True),
        "yamldecode": lambda a: _decode(__import__("yaml").safe_load(_str(a, 0))),
        "base64encode": lambda a: base64.b64encode(_str(a, 0).encode()).decode(),
        "base64decode": lambda a: base64.b64decode(_str(a, 0)).decode(),
        "urlencode": lambda a: __import__("urllib.parse").parse.quote(_str(a, 0), safe=""),
        "csvdecode": lambda a: list(__import__("csv").DictReader(_str(a, 0).splitlines())),
        # hashes and crypto
        "md5": sha("md5"), "sha1": sha("sha1"), "sha256": sha("sha256"), "sha512": sha("sha512"),
        "base64sha256": lambda a: base64.b64encode(hashlib.sha256(_str(a, 0).encode()).digest()).decode(),
        "base64sha512": lambda a: base64.b64encode(hashlib.sha512(_str(a, 0).encode()).digest()).decode(),
        "uuid": lambda a: str(uuid.uuid4()),
        "uuidv5": lambda a: str(uuid.uuid5({"dns": uuid.NAMESPACE_DNS, "url": uuid.NAMESPACE_URL,
                                            "oid": uuid.NAMESPACE_OID, "x500": uuid.NAMESPACE_X500}
                                           .get(_str(a, 0), None) or uuid.UUID(_str(a, 0)), _str(a, 1))),
        # filesystem
        "file": lambda a: _file(base, a),
        "fileexists": lambda a: _path(base, _str(a, 0)).is_file(),
        "filebase64": lambda a: base64.b64encode(_filebytes(base, a)).decode(),
        "filemd5": filesha("md5"), "filesha1": filesha("sha1"), "filesha256": filesha("sha256"),
        "filesha512": filesha("sha512"),
        "filebase64sha256": filesha64("sha256"), "filebase64sha512": filesha64("sha512"),
        "fileset": lambda a: sorted(str(p.relative_to(_path(base, _str(a, 0))))
                                    for p in _path(base, _str(a, 0)).glob(_str(a, 1)) if p.is_file()),
        "templatefile": lambda a: _templatefile(base, a, render),
        "abspath": lambda a: str(_path(base, _str(a, 0)).resolve()),
        "dirname": lambda a: os.path.dirname(_str(a, 0)), "basename": lambda a: os.path.basename(_str(a, 0)),
        "pathexpand": lambda a: os.path.expanduser(_str(a, 0)),
        # time and network
        "timestamp": lambda a: now(),
        "timeadd": _timeadd,
        "formatdate": lambda a: _str(a, 1),
        "cidrsubnet": _cidrsubnet,
        "cidrhost": lambda a: str(ipaddress.ip_network(_str(a, 0), strict=False)[int(_num(a, 1))]),
        "cidrnetmask": lambda a: str(ipaddress.ip_network(_str(a, 0), strict=False).netmask),
        # type
        "can": lambda a: True, "try": _try, "type": lambda a: type_name(a[0]),
        "sensitive": lambda a: a[0], "nonsensitive": lambda a: a[0],
    }


def _jsondecode(a: list) -> Any:
    try:
        return _decode(json.loads(_str(a, 0)))
    except json.JSONDecodeError as exc:
        raise ArgumentError(0, f"Invalid value for \"str\" parameter: {exc.msg}.") from None


# Arity of the functions whose count Terraform checks (name -> (min, max or None)).
ARITY: dict[str, tuple[int, int | None]] = {
    "jsonencode": (1, 1), "jsondecode": (1, 1), "file": (1, 1), "filebase64sha256": (1, 1), "sha1": (1, 1),
    "sha256": (1, 1), "md5": (1, 1), "length": (1, 1), "lookup": (2, 3), "toset": (1, 1), "tolist": (1, 1),
    "tomap": (1, 1), "upper": (1, 1), "lower": (1, 1), "join": (2, None), "split": (2, 2), "replace": (3, 3),
    "element": (2, 2), "format": (1, None), "merge": (0, None), "concat": (0, None), "keys": (1, 1),
    "values": (1, 1), "contains": (2, 2), "zipmap": (2, 2), "base64encode": (1, 1), "templatefile": (2, 2),
    "substr": (3, 3), "tostring": (1, 1), "tonumber": (1, 1), "coalesce": (1, None), "flatten": (1, 1),
}

# Functions whose result is known even when an argument is not (only ``length`` of a known list shape is
# known in Terraform; every other call with an unknown argument is unknown).
def any_unknown(value: Any) -> bool:
    if value is UNKNOWN:
        return True
    if isinstance(value, list):
        return any(any_unknown(v) for v in value)
    if isinstance(value, dict):
        return any(any_unknown(v) for v in value.values())
    return False
