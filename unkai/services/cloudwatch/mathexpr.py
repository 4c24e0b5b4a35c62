"""Metric math: the expressions of GetMetricData and metric-math alarms.

A value is a number, a time series (``{timestamp: value}``) or an array of labelled
series (``METRICS()``). Arithmetic between series pairs points by timestamp, as
CloudWatch does; a number applies to every point. The functions are the common ones of
AWS's "Metric math syntax and functions" page; anything else is reported with
CloudWatch's own wording, never a crash.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Union

Series = dict[float, float]


@dataclass
class Labelled:
    label: str
    series: Series


Value = Union[float, Series, list[Labelled]]


class MathError(ValueError):
    """A malformed or unsupported expression (answered as a query's error message)."""


_TOKEN = re.compile(r"\s*(?:(\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+)|([A-Za-z_][A-Za-z0-9_]*)|(\"(?:[^\"\\]|\\.)*\"|'[^']*')"
                    r"|(==|!=|<=|>=|&&|\|\||[-+*/^(),<>\[\]]))")


def tokenize(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise MathError(f"Unrecognized character '{text[pos:].strip()[:1]}' in expression")
        number, name, string, op = m.groups()
        if number is not None:
            out.append(("num", number))
        elif name is not None:
            out.append(("name", name))
        elif string is not None:
            out.append(("str", string[1:-1]))
        else:
            out.append(("op", op))
        pos = m.end()
    return out


_BINARY = {"||": 1, "OR": 1, "&&": 2, "AND": 2, "==": 3, "!=": 3, "<": 4, "<=": 4, ">": 4, ">=": 4,
           "+": 5, "-": 5, "*": 6, "/": 6, "^": 7}


class Parser:
    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.i = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        tok = self.peek()
        if tok is None:
            raise MathError("Unexpected end of expression")
        self.i += 1
        return tok

    def parse(self) -> Any:
        node = self.expr(0)
        if self.peek() is not None:
            raise MathError(f"Unexpected token '{self.peek()[1]}'")
        return node

    def expr(self, min_prec: int) -> Any:
        left = self.unary()
        while True:
            tok = self.peek()
            if tok is None:
                return left
            op = tok[1].upper() if tok[0] == "name" else tok[1]
            prec = _BINARY.get(op) if tok[0] in ("op", "name") else None
            if prec is None or prec < min_prec:
                return left
            self.take()
            right = self.expr(prec + (0 if op == "^" else 1))
            left = ("bin", op, left, right)

    def unary(self) -> Any:
        tok = self.take()
        if tok == ("op", "-"):
            return ("neg", self.unary())
        if tok == ("op", "("):
            node = self.expr(0)
            if self.take() != ("op", ")"):
                raise MathError("Missing ')'")
            return node
        if tok == ("op", "["):  # an array of time series: AVG([m1, m2])
            items = []
            while True:
                items.append(self.expr(0))
                sep = self.take()
                if sep == ("op", "]"):
                    return ("array", items)
                if sep != ("op", ","):
                    raise MathError("Expected ',' or ']'")
        if tok[0] == "num":
            return ("num", float(tok[1]))
        if tok[0] == "str":
            return ("str", tok[1])
        if tok[0] == "name":
            if self.peek() == ("op", "("):
                self.take()
                args = []
                if self.peek() != ("op", ")"):
                    while True:
                        args.append(self.expr(0))
                        sep = self.take()
                        if sep == ("op", ")"):
                            break
                        if sep != ("op", ","):
                            raise MathError("Expected ',' or ')'")
                else:
                    self.take()
                return ("call", tok[1].upper(), args)
            return ("ref", tok[1])
        raise MathError(f"Unexpected token '{tok[1]}'")


def references(text: str) -> set[str]:
    """The query ids an expression uses (to order evaluation and find cycles)."""
    return {v for k, v in tokenize(text) if k == "name"} - set(_FUNCTIONS) - {"AND", "OR", "REPEAT", "LINEAR"}


class Evaluator:
    """Evaluates parsed expressions against the other queries' results.

    ``lookup(id)`` gives another query's value; ``timestamps`` are the period starts of
    the request (for FILL and TIME_SERIES); ``period`` the seconds between them."""

    def __init__(self, lookup: Callable[[str], Value], all_series: Callable[[], list[Labelled]],
                 timestamps: list[float], period: int) -> None:
        self.lookup = lookup
        self.all_series = all_series
        self.timestamps = timestamps
        self.period = period

    def run(self, text: str) -> Value:
        return self.eval(Parser(text).parse())

    def eval(self, node: Any) -> Value:
        kind = node[0]
        if kind == "num":
            return node[1]
        if kind == "str":
            raise MathError("A string is not a valid operand")
        if kind == "ref":
            return self.lookup(node[1])
        if kind == "neg":
            return _apply(self.eval(node[1]), lambda a: -a)
        if kind == "array":
            out: list[Labelled] = []
            for item in node[1]:
                value = self.eval(item)
                if isinstance(value, list):
                    out.extend(value)
                elif isinstance(value, dict):
                    out.append(Labelled(item[1] if item[0] == "ref" else "", value))
                else:
                    raise MathError("An array holds time series, not numbers")
            return out
        if kind == "bin":
            return _binary(node[1], self.eval(node[2]), self.eval(node[3]))
        name, args = node[1], node[2]
        fn = _FUNCTIONS.get(name)
        if fn is None:
            raise MathError(f"Unknown function: {name}")
        return fn(self, args)


def _apply(value: Value, fn: Callable[[float], float]) -> Value:
    if isinstance(value, (int, float)):
        return fn(value)
    if isinstance(value, dict):
        return {t: fn(v) for t, v in value.items()}
    return [Labelled(s.label, {t: fn(v) for t, v in s.series.items()}) for s in value]


def _safe(fn: Callable[[float, float], float]) -> Callable[[float, float], float]:
    def run(a: float, b: float) -> float:
        try:
            return fn(a, b)
        except (ZeroDivisionError, OverflowError, ValueError):
            return math.nan
    return run


_OPS: dict[str, Callable[[float, float], float]] = {
    "+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
    "/": _safe(lambda a, b: a / b if b else (math.nan if a == 0 else math.copysign(math.inf, a))),
    "^": _safe(lambda a, b: a ** b),
    "==": lambda a, b: float(a == b), "!=": lambda a, b: float(a != b), "<": lambda a, b: float(a < b),
    "<=": lambda a, b: float(a <= b), ">": lambda a, b: float(a > b), ">=": lambda a, b: float(a >= b),
    "&&": lambda a, b: float(bool(a) and bool(b)), "AND": lambda a, b: float(bool(a) and bool(b)),
    "||": lambda a, b: float(bool(a) or bool(b)), "OR": lambda a, b: float(bool(a) or bool(b)),
}


def _binary(op: str, a: Value, b: Value) -> Value:
    fn = _OPS[op]
    if isinstance(a, list) or isinstance(b, list):
        if isinstance(a, list) and isinstance(b, list):
            raise MathError("Arithmetic between two arrays of time series is not supported")
        if isinstance(a, list):
            return [Labelled(s.label, _binary(op, s.series, b)) for s in a]  # type: ignore[arg-type]
        return [Labelled(s.label, _binary(op, a, s.series)) for s in b]  # type: ignore[arg-type, union-attr]
    if isinstance(a, dict) and isinstance(b, dict):
        return {t: fn(a[t], b[t]) for t in a if t in b}
    if isinstance(a, dict):
        return {t: fn(v, b) for t, v in a.items()}  # type: ignore[arg-type]
    if isinstance(b, dict):
        return {t: fn(a, v) for t, v in b.items()}  # type: ignore[arg-type]
    return fn(a, b)  # type: ignore[arg-type]


def _one(ev: Evaluator, args: list, name: str, count: int = 1) -> list[Value]:
    if len(args) != count:
        raise MathError(f"Function {name} expects {count} argument(s)")
    return [ev.eval(a) for a in args]


def _reduce(name: str, combine: Callable[[list[float]], float]) -> Callable[[Evaluator, list], Value]:
    def run(ev: Evaluator, args: list) -> Value:
        if len(args) != 1:
            raise MathError(f"Function {name} expects 1 argument")
        value = ev.eval(args[0])
        if isinstance(value, list):  # across series, point by point
            times = sorted({t for s in value for t in s.series})
            return {t: combine([s.series[t] for s in value if t in s.series]) for t in times}
        if isinstance(value, dict):  # one series: a single number
            return combine(list(value.values())) if value else math.nan
        return value
    return run


def _metrics(ev: Evaluator, args: list) -> Value:
    found = ev.all_series()
    if args:
        if args[0][0] != "str":
            raise MathError("METRICS() takes a string filter")
        found = [s for s in found if args[0][1] in s.label]
    return found


def _fill(ev: Evaluator, args: list) -> Value:
    if len(args) != 2:
        raise MathError("Function FILL expects 2 arguments")
    value = ev.eval(args[0])
    mode = args[1][1].upper() if args[1][0] == "ref" else None

    def fill(series: Series) -> Series:
        out: Series = {}
        last = None
        known = sorted(series)
        for t in ev.timestamps:
            if t in series:
                out[t] = last = series[t]
            elif mode == "REPEAT":
                if last is not None:
                    out[t] = last
            elif mode == "LINEAR":
                before = [k for k in known if k < t]
                after = [k for k in known if k > t]
                if before and after:
                    a, b = before[-1], after[0]
                    out[t] = series[a] + (series[b] - series[a]) * (t - a) / (b - a)
            else:
                filler = ev.eval(args[1])
                if isinstance(filler, dict):
                    if t in filler:
                        out[t] = filler[t]
                elif isinstance(filler, (int, float)):
                    out[t] = filler
        return out

    if isinstance(value, list):
        return [Labelled(s.label, fill(s.series)) for s in value]
    if isinstance(value, dict):
        return fill(value)
    raise MathError("FILL expects a time series")


def _per_series(name: str, fn: Callable[[Evaluator, Series], Series]) -> Callable[[Evaluator, list], Value]:
    def run(ev: Evaluator, args: list) -> Value:
        (value,) = _one(ev, args, name)
        if isinstance(value, list):
            return [Labelled(s.label, fn(ev, s.series)) for s in value]
        if isinstance(value, dict):
            return fn(ev, value)
        raise MathError(f"Function {name} expects a time series")
    return run


def _diff(ev: Evaluator, s: Series) -> Series:
    ts = sorted(s)
    return {b: s[b] - s[a] for a, b in zip(ts, ts[1:])}


def _rate(ev: Evaluator, s: Series) -> Series:
    ts = sorted(s)
    return {b: (s[b] - s[a]) / (b - a) for a, b in zip(ts, ts[1:])}


def _running_sum(ev: Evaluator, s: Series) -> Series:
    out, acc = {}, 0.0
    for t in sorted(s):
        acc += s[t]
        out[t] = acc
    return out


def _period(ev: Evaluator, args: list) -> Value:
    (value,) = _one(ev, args, "PERIOD")
    return float(ev.period)


def _time_series(ev: Evaluator, args: list) -> Value:
    (value,) = _one(ev, args, "TIME_SERIES")
    if not isinstance(value, (int, float)):
        raise MathError("TIME_SERIES expects a number")
    return {t: float(value) for t in ev.timestamps}


def _if(ev: Evaluator, args: list) -> Value:
    if len(args) not in (2, 3):
        raise MathError("Function IF expects 2 or 3 arguments")
    cond = ev.eval(args[0])
    yes = ev.eval(args[1])
    no = ev.eval(args[2]) if len(args) == 3 else None
    if not isinstance(cond, dict):
        return (yes if cond else no) if no is not None or cond else math.nan  # type: ignore[return-value]
    out: Series = {}
    for t, c in cond.items():
        branch = yes if c else no
        if branch is None:
            continue
        v = branch.get(t) if isinstance(branch, dict) else branch
        if isinstance(v, (int, float)):
            out[t] = v
    return out


def _unary(name: str, fn: Callable[[float], float]) -> Callable[[Evaluator, list], Value]:
    def safe(a: float) -> float:
        try:
            return float(fn(a))
        except (ValueError, OverflowError):
            return math.nan

    def run(ev: Evaluator, args: list) -> Value:
        (value,) = _one(ev, args, name)
        return _apply(value, safe)
    return run


def _stddev(values: list[float]) -> float:
    return statistics.pstdev(values) if len(values) > 1 else 0.0


_FUNCTIONS: dict[str, Callable[[Evaluator, list], Value]] = {
    "METRICS": _metrics,
    "SUM": _reduce("SUM", sum),
    "AVG": _reduce("AVG", lambda v: sum(v) / len(v) if v else math.nan),
    "MIN": _reduce("MIN", lambda v: min(v) if v else math.nan),
    "MAX": _reduce("MAX", lambda v: max(v) if v else math.nan),
    "STDDEV": _reduce("STDDEV", _stddev),
    "FILL": _fill,
    "DIFF": _per_series("DIFF", _diff),
    "RATE": _per_series("RATE", _rate),
    "RUNNING_SUM": _per_series("RUNNING_SUM", _running_sum),
    "PERIOD": _period,
    "TIME_SERIES": _time_series,
    "IF": _if,
    "ABS": _unary("ABS", abs),
    "CEIL": _unary("CEIL", math.ceil),
    "FLOOR": _unary("FLOOR", math.floor),
    "LOG": _unary("LOG", math.log),
    "LOG10": _unary("LOG10", math.log10),
    "SQRT": _unary("SQRT", math.sqrt),
    "EXP": _unary("EXP", math.exp),
}
