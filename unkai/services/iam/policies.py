"""IAM policy documents: AWS's grammar checks and its evaluation logic, in one place.

A document is parsed once into a ``Compiled`` policy (action and resource patterns as
regular expressions, conditions as small closures) and cached by its text, so evaluating
a request against a role with many policies costs a few regex matches, not a JSON parse.

Evaluation follows AWS's policy evaluation logic
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html):
an explicit Deny in any policy wins; otherwise an Allow is needed from an identity-based
or a resource-based policy, and, when present, the permissions boundary and the session
policy must allow as well.
"""

from __future__ import annotations

import fnmatch
import functools
import ipaddress
import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable

VERSIONS = ("2012-10-17", "2008-10-17")
_STATEMENT_KEYS = {"Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Principal",
                   "NotPrincipal", "Condition"}


class PolicyError(ValueError):
    """A document AWS refuses; the message is AWS's MalformedPolicyDocument text."""


# -- grammar --------------------------------------------------------------------------------

def parse(text: str, kind: str = "identity") -> dict:
    """The document as a dict, checked as IAM checks it. ``kind``: ``identity`` (managed,
    inline, boundary, session policies), ``trust`` (a role's AssumeRolePolicyDocument) or
    ``resource`` (bucket, queue, topic, key and secret policies)."""
    try:
        doc = json.loads(text)
    except (TypeError, ValueError):
        raise PolicyError("Syntax errors in policy.") from None
    if not isinstance(doc, dict):
        raise PolicyError("Syntax errors in policy.")
    unknown = set(doc) - {"Version", "Id", "Statement"}
    if unknown:
        raise PolicyError("Syntax errors in policy.")
    version = doc.get("Version")
    if version is not None and version not in VERSIONS:
        raise PolicyError("The policy failed legacy parsing")
    statements = doc.get("Statement")
    if statements is None:
        raise PolicyError("Syntax errors in policy.")
    if isinstance(statements, dict):
        statements = [statements]
    if not isinstance(statements, list) or not statements:
        raise PolicyError("Syntax errors in policy.")
    sids = set()
    for st in statements:
        _check_statement(st, kind)
        sid = st.get("Sid")
        if sid is not None:
            if sid in sids:
                raise PolicyError("Statement IDs (SID) in a single policy must be unique.")
            sids.add(sid)
    return doc


def _check_statement(st: Any, kind: str) -> None:
    if not isinstance(st, dict) or set(st) - _STATEMENT_KEYS:
        raise PolicyError("Syntax errors in policy.")
    if st.get("Effect") not in ("Allow", "Deny"):
        if "Effect" not in st:
            raise PolicyError("Missing required field Effect")
        raise PolicyError(f"Invalid effect: {st.get('Effect')}")
    if "Action" in st and "NotAction" in st:
        raise PolicyError("Syntax errors in policy.")
    if "Action" not in st and "NotAction" not in st:
        raise PolicyError("Policy statement must contain actions.")
    for key in ("Action", "NotAction", "Resource", "NotResource"):
        if key in st:
            values = st[key] if isinstance(st[key], list) else [st[key]]
            if not values or not all(isinstance(v, str) for v in values):
                raise PolicyError("Syntax errors in policy.")
            if key.endswith("Action"):
                for v in values:
                    if v != "*" and ":" not in v:
                        raise PolicyError(f"Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, "
                                          f"etc.")
    if kind == "identity":
        if "Principal" in st or "NotPrincipal" in st:
            raise PolicyError("Policy document should not specify a principal.")
        if "Resource" not in st and "NotResource" not in st:
            raise PolicyError("Policy statement must contain resources.")
    elif kind == "trust":
        if "Resource" in st or "NotResource" in st:
            raise PolicyError("Has prohibited field Resource")
        if "Principal" not in st and "NotPrincipal" not in st:
            raise PolicyError("Missing required field Principal")
    else:
        if "Principal" not in st and "NotPrincipal" not in st:
            raise PolicyError("Missing required field Principal")
    condition = st.get("Condition")
    if condition is not None:
        if not isinstance(condition, dict) or not all(isinstance(v, dict) for v in condition.values()):
            raise PolicyError("Syntax errors in policy.")
        for op in condition:
            if _operator(op) is None:
                raise PolicyError(f"Invalid Condition type : {op}.")


# -- compiled form -----------------------------------------------------------------------------

def _glob(pattern: str, case: bool) -> re.Pattern:
    """IAM's wildcards: ``*`` any run of characters, ``?`` one character; policy variables
    (``${aws:username}``) are matched as literals unless resolved beforehand."""
    out = []
    for ch in pattern:
        out.append(".*" if ch == "*" else "." if ch == "?" else re.escape(ch))
    return re.compile("".join(out) + r"\Z", 0 if case else re.IGNORECASE | re.DOTALL)


def _union(patterns: list[str], case: bool) -> re.Pattern | None:
    if not patterns:
        return None
    if "*" in patterns:
        return re.compile(r".*\Z", re.DOTALL)
    return re.compile("|".join(f"(?:{_glob(p, case).pattern})" for p in patterns),
                      0 if case else re.IGNORECASE | re.DOTALL)


def _listed(value: Any) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


@dataclass
class Statement:
    sid: str | None
    effect: str
    action: re.Pattern | None
    not_action: re.Pattern | None
    resource: re.Pattern | None
    not_resource: re.Pattern | None
    principals: dict[str, list[str]] | None
    not_principals: dict[str, list[str]] | None
    conditions: list[Callable[[dict], bool]]
    raw: dict

    def applies(self, action: str, resource: str, context: dict) -> bool:
        if self.action is not None and not self.action.match(action):
            return False
        if self.not_action is not None and self.not_action.match(action):
            return False
        if self.resource is not None and not self.resource.match(resource):
            return False
        if self.not_resource is not None and self.not_resource.match(resource):
            return False
        if self.principals is not None and not _principal_matches(self.principals, context):
            return False
        if self.not_principals is not None and _principal_matches(self.not_principals, context):
            return False
        return all(check(context) for check in self.conditions)


def _principals(value: Any) -> dict[str, list[str]] | None:
    if value is None:
        return None
    if value == "*":
        return {"AWS": ["*"]}
    return {k: [str(v) for v in _listed(vs)] for k, vs in value.items()} if isinstance(value, dict) else {}


def _principal_matches(principals: dict[str, list[str]], context: dict) -> bool:
    who = context.get("aws:PrincipalArn", "")
    service = context.get("aws:PrincipalServiceName", "")
    account = context.get("aws:PrincipalAccount", "")
    federated = context.get("unkai:Federated", "")
    for kind, values in principals.items():
        for v in values:
            if v == "*":
                return True
            if kind == "AWS":
                if v in (who, context.get("unkai:SessionArn", "")):
                    return True
                if v == account or v == f"arn:aws:iam::{account}:root":
                    # Naming an account delegates to that account's IAM policies: it grants by
                    # itself only to the account's root user (or where the caller asks for it).
                    if account and context.get("unkai:AccountMatches", False):
                        return True
            elif kind == "Service" and v == service:
                return True
            elif kind == "Federated" and v == federated:
                return True
    return False


@dataclass
class Compiled:
    statements: list[Statement] = field(default_factory=list)
    name: str = ""


@functools.lru_cache(maxsize=4096)
def compile_text(text: str) -> Compiled:
    """The compiled form of a stored (already checked) document, cached by its text."""
    try:
        doc = json.loads(text)
    except ValueError:
        return Compiled()
    return compile_doc(doc)


def compile_doc(doc: dict) -> Compiled:
    out = Compiled()
    for st in _listed(doc.get("Statement")):
        if not isinstance(st, dict):
            continue
        conditions = []
        for op, pairs in (st.get("Condition") or {}).items():
            for key, values in pairs.items():
                check = _condition(op, key, _listed(values))
                if check is not None:
                    conditions.append(check)
        out.statements.append(Statement(
            st.get("Sid"), st.get("Effect", "Deny"),
            _union(_listed(st.get("Action")), False) if "Action" in st else None,
            _union(_listed(st.get("NotAction")), False) if "NotAction" in st else None,
            _union(_listed(st.get("Resource")), True) if "Resource" in st else None,
            _union(_listed(st.get("NotResource")), True) if "NotResource" in st else None,
            _principals(st.get("Principal")), _principals(st.get("NotPrincipal")), conditions, st))
    return out


# -- conditions --------------------------------------------------------------------------------

def _num(v: Any) -> float | None:
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def _date(v: Any) -> float | None:
    from unkai.protocol.values import parse_timestamp

    try:
        return parse_timestamp(v, "date")
    except Exception:
        return _num(v)


def _ip(value: Any, cidr: Any) -> bool:
    try:
        return ipaddress.ip_address(str(value)) in ipaddress.ip_network(str(cidr), strict=False)
    except ValueError:
        return False


_BASE: dict[str, Callable[[Any, Any], bool]] = {
    "StringEquals": lambda a, b: str(a) == str(b),
    "StringNotEquals": lambda a, b: str(a) == str(b),
    "StringEqualsIgnoreCase": lambda a, b: str(a).lower() == str(b).lower(),
    "StringNotEqualsIgnoreCase": lambda a, b: str(a).lower() == str(b).lower(),
    "StringLike": lambda a, b: fnmatch.fnmatchcase(str(a), str(b).replace("[", "[[]")),
    "StringNotLike": lambda a, b: fnmatch.fnmatchcase(str(a), str(b).replace("[", "[[]")),
    "ArnEquals": lambda a, b: str(a) == str(b),
    "ArnNotEquals": lambda a, b: str(a) == str(b),
    "ArnLike": lambda a, b: _glob(str(b), True).match(str(a)) is not None,
    "ArnNotLike": lambda a, b: _glob(str(b), True).match(str(a)) is not None,
    "NumericEquals": lambda a, b: _num(a) is not None and _num(a) == _num(b),
    "NumericNotEquals": lambda a, b: _num(a) is not None and _num(a) == _num(b),
    "NumericLessThan": lambda a, b: None not in (_num(a), _num(b)) and _num(a) < _num(b),
    "NumericLessThanEquals": lambda a, b: None not in (_num(a), _num(b)) and _num(a) <= _num(b),
    "NumericGreaterThan": lambda a, b: None not in (_num(a), _num(b)) and _num(a) > _num(b),
    "NumericGreaterThanEquals": lambda a, b: None not in (_num(a), _num(b)) and _num(a) >= _num(b),
    "DateEquals": lambda a, b: None not in (_date(a), _date(b)) and _date(a) == _date(b),
    "DateNotEquals": lambda a, b: None not in (_date(a), _date(b)) and _date(a) == _date(b),
    "DateLessThan": lambda a, b: None not in (_date(a), _date(b)) and _date(a) < _date(b),
    "DateLessThanEquals": lambda a, b: None not in (_date(a), _date(b)) and _date(a) <= _date(b),
    "DateGreaterThan": lambda a, b: None not in (_date(a), _date(b)) and _date(a) > _date(b),
    "DateGreaterThanEquals": lambda a, b: None not in (_date(a), _date(b)) and _date(a) >= _date(b),
    "Bool": lambda a, b: str(a).lower() == str(b).lower(),
    "BinaryEquals": lambda a, b: str(a) == str(b),
    "IpAddress": _ip,
    "NotIpAddress": _ip,
}
_NEGATED = {"StringNotEquals", "StringNotEqualsIgnoreCase", "StringNotLike", "ArnNotEquals", "ArnNotLike",
            "NumericNotEquals", "DateNotEquals", "NotIpAddress"}


def _operator(op: str) -> str | None:
    base = op.split(":", 1)[-1] if op.startswith(("ForAnyValue:", "ForAllValues:")) else op
    base = base.removesuffix("IfExists")
    return base if base in _BASE or base == "Null" else None


def _condition(op: str, key: str, values: list) -> Callable[[dict], bool] | None:
    base = _operator(op)
    if base is None:
        return None
    if base == "Null":
        want = str(values[0]).lower() == "true" if values else True
        return lambda ctx: (_lookup(ctx, key) is None) == want
    test = _BASE[base]
    negated = base in _NEGATED
    if_exists = op.endswith("IfExists")
    quantifier = op.split(":", 1)[0] if op.startswith(("ForAnyValue:", "ForAllValues:")) else ""

    def check(ctx: dict) -> bool:
        got = _lookup(ctx, key)
        if got is None:
            if if_exists or quantifier == "ForAllValues":
                return True
            # "the condition is false", except that a key which must not match is absent: true
            return negated
        items = got if isinstance(got, list) else [got]
        values_r = [_substitute(v, ctx) for v in values]
        if quantifier == "ForAllValues":
            ok = all(any(test(i, v) for v in values_r) for i in items)
        else:
            ok = any(test(i, v) for i in items for v in values_r)
        return not ok if negated else ok

    return check


def _lookup(ctx: dict, key: str) -> Any:
    if key in ctx:
        return ctx[key]
    lowered = key.lower()
    for k, v in ctx.items():
        if k.lower() == lowered:
            return v
    return None


_VARIABLE = re.compile(r"\$\{([^}]+)\}")


def _substitute(value: Any, ctx: dict) -> Any:
    if not isinstance(value, str) or "${" not in value:
        return value
    return _VARIABLE.sub(lambda m: str(_lookup(ctx, m.group(1)) or {"*": "*", "?": "?", "$": "$"}.get(m.group(1), "")),
                         value)


# -- evaluation -----------------------------------------------------------------------------------

@dataclass
class Decision:
    allowed: bool
    decision: str  # "allowed", "explicitDeny", "implicitDeny"
    statement: Statement | None = None
    policy: str = ""  # the name of the policy whose statement decided
    reason: str = ""  # for the AccessDenied message: "no identity-based policy allows the X action"


def _match(policies: list[Compiled], effect: str, action: str, resource: str,
           context: dict) -> tuple[Statement, str] | None:
    for policy in policies:
        for st in policy.statements:
            if st.effect == effect and st.applies(action, resource, context):
                return st, policy.name
    return None


def evaluate(action: str, resource: str, context: dict, identity: list[Compiled],
             resource_policy: list[Compiled] | None = None, boundary: list[Compiled] | None = None,
             session: list[Compiled] | None = None) -> Decision:
    """AWS's decision for one request: explicit deny, then an allow from identity or
    resource policies, limited by the permissions boundary and the session policy."""
    everything = identity + (resource_policy or []) + (boundary or []) + (session or [])
    denied = _match(everything, "Deny", action, resource, context)
    if denied is not None:
        return Decision(False, "explicitDeny", denied[0], denied[1],
                        f"with an explicit deny in {_where(denied[1])}")
    by_resource = _match(resource_policy or [], "Allow", action, resource, context)
    by_identity = _match(identity, "Allow", action, resource, context)
    if by_identity is None and by_resource is None:
        return Decision(False, "implicitDeny", reason=f"because no identity-based policy allows the {action} action")
    if boundary is not None and _match(boundary, "Allow", action, resource, context) is None:
        return Decision(False, "implicitDeny", reason=f"because no permissions boundary allows the {action} action")
    if session is not None and by_resource is None and _match(session, "Allow", action, resource, context) is None:
        return Decision(False, "implicitDeny", reason=f"because no session policy allows the {action} action")
    found = by_identity or by_resource
    return Decision(True, "allowed", found[0], found[1])


def _where(policy: str) -> str:
    return "a resource-based policy" if policy.startswith("resource:") else "an identity-based policy"
