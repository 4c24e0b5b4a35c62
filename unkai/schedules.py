"""Schedule expressions as EventBridge and EventBridge Scheduler read them:
``rate(5 minutes)``, six-field ``cron(0/5 * * * ? *)`` (day-of-week 1-7 is SUN-SAT,
with ``L``, ``W`` and ``#``; a year field), and Scheduler's one-time ``at(...)``.

Times are epoch seconds on unkai's clock. A rate schedule counts from its anchor
(when the rule was created), as on AWS."""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MAX_RUNS_PER_FIRE = 1000  # a huge clock advance fires every run due, up to this many
_RATE = re.compile(r"^rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)$")
_CRON = re.compile(r"^cron\((.+)\)$")
_AT = re.compile(r"^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$")
_UNIT = {"minute": 60, "hour": 3600, "day": 86400}
_DAYS = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}


class InvalidSchedule(ValueError):
    pass


@dataclass
class Schedule:
    expression: str
    kind: str  # rate | cron | at
    period: float = 0.0
    cron: str = ""
    years: tuple[int, int, frozenset[int] | None] | None = None  # (min, max, allowed or None for a range)
    at: float = 0.0
    zone: dt.tzinfo = dt.timezone.utc

    def next_after(self, after: float, anchor: float = 0.0) -> float | None:
        """The first run strictly after ``after`` (None: there is none)."""
        if self.kind == "at":
            return self.at if self.at > after else None
        if self.kind == "rate":
            k = math.floor((after - anchor) / self.period) + 1
            return anchor + max(k, 1) * self.period
        return self._next_cron(after)

    def _next_cron(self, after: float) -> float | None:
        from croniter import croniter  # here, not at the top: slow to import, and only cron schedules need it

        start = dt.datetime.fromtimestamp(after, self.zone)
        for _ in range(1000):
            when = croniter(self.cron, start).get_next(dt.datetime)
            if self.years is None or _year_ok(when.year, self.years):
                return when.timestamp()
            low, high, allowed = self.years
            later = [y for y in (allowed or range(low, high + 1)) if y > when.year]
            if not later:
                return None
            start = dt.datetime(min(later), 1, 1, tzinfo=self.zone) - dt.timedelta(seconds=1)
        return None


def _year_ok(year: int, years: tuple[int, int, frozenset[int] | None]) -> bool:
    low, high, allowed = years
    return year in allowed if allowed is not None else low <= year <= high


def parse(expression: str, timezone: str | None = None, allow_at: bool = False) -> Schedule:
    """Raises InvalidSchedule for anything AWS would refuse."""
    text = (expression or "").strip()
    try:
        zone: dt.tzinfo = ZoneInfo(timezone) if timezone else dt.timezone.utc
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidSchedule(f"Invalid time zone {timezone}") from None
    m = _RATE.match(text)
    if m:
        value, unit = int(m.group(1)), m.group(2)
        if value < 1 or (value == 1) != (not unit.endswith("s")):
            raise InvalidSchedule(text)
        return Schedule(text, "rate", period=value * _UNIT[unit.rstrip("s")], zone=zone)
    m = _AT.match(text)
    if m and allow_at:
        try:
            when = dt.datetime.fromisoformat(m.group(1)).replace(tzinfo=zone)
        except ValueError:  # a date that does not exist (month 13...): AWS's invalid expression
            raise InvalidSchedule(text) from None
        return Schedule(text, "at", at=when.timestamp(), zone=zone)
    m = _CRON.match(text)
    if m:
        return _cron(text, m.group(1).split(), zone)
    raise InvalidSchedule(text)


def _cron(text: str, fields: list[str], zone: dt.tzinfo) -> Schedule:
    if len(fields) != 6:
        raise InvalidSchedule(text)
    minutes, hours, dom, month, dow, year = fields
    if (dom == "?") == (dow == "?"):  # exactly one of day-of-month and day-of-week is '?'
        raise InvalidSchedule(text)
    dow = "*" if dow == "?" else _aws_dow(dow, text)
    dom = "*" if dom == "?" else dom
    spec = f"{minutes} {hours} {dom} {month} {dow}"
    from croniter import croniter

    try:
        croniter(spec)
    except (ValueError, KeyError, TypeError):
        raise InvalidSchedule(text) from None
    if not croniter.is_valid(spec):
        raise InvalidSchedule(text)
    return Schedule(text, "cron", cron=spec, years=_years(year, text), zone=zone)


def _aws_dow(field: str, text: str) -> str:
    """AWS day-of-week (1-7 = SUN-SAT, nL = last n of the month, n#k) -> croniter's (0-6)."""
    def one(token: str) -> str:
        token = token.upper()
        for name, number in _DAYS.items():
            token = token.replace(name, str(number))
        if token == "L":
            return "6"
        m = re.fullmatch(r"(\d)L", token)
        if m:
            return f"L{int(m.group(1)) - 1}"
        m = re.fullmatch(r"(\d)#(\d)", token)
        if m:
            return f"{int(m.group(1)) - 1}#{m.group(2)}"
        m = re.fullmatch(r"(\*|\d)(?:-(\d))?(?:/(\d+))?", token)
        if not m:
            raise InvalidSchedule(text)
        start, end, step = m.groups()
        if start != "*" and not 1 <= int(start) <= 7 or end and not 1 <= int(end) <= 7:
            raise InvalidSchedule(text)
        out = "*" if start == "*" else str(int(start) - 1)
        if end:
            out += f"-{int(end) - 1}"
        if step:
            out += f"/{step}"
        return out

    return ",".join(one(t) for t in field.split(","))


def _years(field: str, text: str) -> tuple[int, int, frozenset[int] | None] | None:
    if field in ("*", "?"):
        return None
    allowed: set[int] = set()
    for token in field.split(","):
        m = re.fullmatch(r"(\d{4})(?:-(\d{4}))?(?:/(\d+))?", token)
        if not m or not 1970 <= int(m.group(1)) <= 2199:
            raise InvalidSchedule(text)
        start = int(m.group(1))
        end = int(m.group(2)) if m.group(2) else (2199 if m.group(3) else start)
        allowed.update(range(start, end + 1, int(m.group(3) or 1)))
    return min(allowed), max(allowed), frozenset(allowed)


def event_time(epoch: float) -> str:
    """The ``time`` of an EventBridge event: ISO 8601 in UTC, to the second."""
    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
