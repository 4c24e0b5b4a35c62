"""The terminal view of the event feed: what ``unkai up`` prints while it runs, one
concise line per thing that happened (an invocation, an API request, a retry, a
message moved to a dead-letter queue...), errors in red with the exception, where the
handler raised it and the command that shows the whole log.

It subscribes to ``cloud.feed`` in-process, so it sees exactly what the dashboard and
``GET /_unkai/feed`` see (the kinds are listed in docs/feed.md). Three levels:
``quiet`` prints only failures, ``normal`` adds invocations and API requests, and
``verbose`` adds every other kind and the handler's whole stack trace. Colours only
when the output is a terminal (and ``NO_COLOR`` is unset).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import IO, Any

from unkai.feed import Event, is_failure

LEVELS = ("quiet", "normal", "verbose")

_RED, _GREEN, _YELLOW, _DIM, _BOLD, _RESET = "\033[31m", "\033[32m", "\033[33m", "\033[2m", "\033[1m", "\033[0m"


class Terminal:
    """Formats feed events as lines and writes them to ``out``."""

    def __init__(self, out: IO[str] | None = None, level: str = "normal", color: bool | None = None) -> None:
        self.out = out or sys.stdout
        self.level = level
        if color is None:
            color = hasattr(self.out, "isatty") and self.out.isatty() and not os.environ.get("NO_COLOR")
        self.color = color

    def __call__(self, event: Event) -> None:
        lines = self.format(event)
        if lines:
            self.out.write("\n".join(lines) + "\n")
            self.out.flush()

    def paint(self, code: str, text: str) -> str:
        return f"{code}{text}{_RESET}" if self.color else text

    def format(self, event: Event) -> list[str]:
        """The lines for one event ([] when this level does not show it)."""
        kind = event.get("kind", "")
        formatter: Callable[[Event], list[str]] | None = _FORMATTERS.get(kind)
        failed = _is_failure(event)
        if self.level == "quiet" and not failed:
            return []
        if formatter is None:
            if self.level != "verbose" and not failed:
                return []
            formatter = _generic
        lines = formatter(self, event)
        if not lines:
            return []
        stamp = time.strftime("%H:%M:%S", time.localtime(event.get("time", time.time())))
        first = f"{self.paint(_DIM, stamp)} {lines[0]}"
        if failed:
            first = f"{self.paint(_DIM, stamp)} {self.paint(_RED, lines[0])}"
        return [first] + lines[1:]


_is_failure = is_failure  # one rule for the terminal and the dashboard (unkai/feed.py)


def _ms(value: Any) -> str:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "?"
    return f"{v:.0f} ms" if v >= 10 else f"{v:.1f} ms"


def _invoke(term: Terminal, e: Event) -> list[str]:
    fn = e.get("function") or "?"
    trigger = f" ← {e['trigger']}" if e.get("trigger") else ""
    temp = "cold" if e.get("cold") else "warm"
    if e.get("status") == "throttled":
        return [f"λ {fn}{trigger}  {term.paint(_RED, 'throttled (TooManyRequestsException)')}"]
    if e.get("status") != "error":
        status = term.paint(_GREEN, "ok")
        return [f"λ {fn}{trigger}  {_ms(e.get('duration_ms'))} {temp}  {status}"]
    message = (e.get("error_message") or "").strip().splitlines()
    text = f"{e.get('error_type') or 'Error'}: {message[0] if message else ''}".rstrip(": ")
    location = str(e.get("location") or "")
    cwd = os.getcwd() + os.sep
    where = f" at {location.removeprefix(cwd)}" if location else ""
    lines = [f"✗ λ {fn}{trigger}  {_ms(e.get('duration_ms'))} {temp}  {text}{where}"]
    if term.level == "verbose" and e.get("stack"):
        for frame in e["stack"]:
            lines.extend("    " + part for part in str(frame).rstrip().splitlines())
    lines.append(term.paint(_DIM, f"    whole log: unkai logs {fn}"))
    return lines


def _request(term: Terminal, e: Event) -> list[str]:
    status = int(e.get("status") or 0)
    code = str(status)
    if term.color and status < 500:
        code = term.paint(_GREEN if status < 400 else _YELLOW, code)
    prefix = "✗ " if status >= 500 else ""
    return [f"{prefix}→ {e.get('method')} {e.get('path')}  {code}  {_ms(e.get('latency_ms'))}  (API {e.get('api_id')})"]


def _retry(term: Terminal, e: Event) -> list[str]:
    return [f"↻ λ {e.get('function')} async retry {e.get('attempt')}/{e.get('of')} in {e.get('delay_s', 0):.0f} s"
            f" after {e.get('error_type') or 'an error'}"]


def _async_failed(term: Terminal, e: Event) -> list[str]:
    where = [f"dead-letter queue {e['dlq'].rsplit(':', 1)[-1]}"] if e.get("dlq") else []
    if e.get("destination"):
        where.append(f"OnFailure {e['destination'].rsplit(':', 1)[-1]}")
    to = f" → {' and '.join(where)}" if where else "; the event is dropped"
    return [f"✗ λ {e.get('function')} async event given up ({e.get('condition')}, {e.get('attempts')} attempts){to}"]


def _dlq(term: Terminal, e: Event) -> list[str]:
    return [f"✗ sqs {e.get('queue')}: a message moved to dead-letter queue {e.get('dlq')} "
            f"after {e.get('max_receive_count')} receives"]


def _delivery_failed(term: Terminal, e: Event) -> list[str]:
    why = f" ({e['error_code']}: {e.get('error_message', '')})" if e.get("error_code") else ""
    to = f" → dead-letter queue {str(e['dlq']).rsplit(':', 1)[-1]}" if e.get("dlq") else "; dropped"
    return [f"✗ {e.get('source')} delivery to {e.get('target')} failed{why}{to}"]


def _durable(term: Terminal, e: Event) -> list[str]:
    status = str(e.get("status") or "")
    why = f"  {e.get('error_type')}: {e.get('error_message', '')}" if e.get("error_type") else ""
    word = "started" if status == "RUNNING" else status.lower().replace("_", " ")
    return [f"{'✗ ' if status in ('FAILED', 'TIMED_OUT') else ''}λ {e.get('function')} durable execution "
            f"{e.get('name')} {word}{why}"]


def _generic(term: Terminal, e: Event) -> list[str]:
    fields = " ".join(f"{k}={v}" for k, v in e.items() if k not in ("id", "time", "kind"))
    return [f"· {e.get('kind')}  {fields}"]


_FORMATTERS: dict[str, Callable[[Terminal, Event], list[str]]] = {
    "lambda.invoke": _invoke,
    "apigateway.request": _request,
    "lambda.async_retry": _retry,
    "lambda.async_failed": _async_failed,
    "lambda.durable": _durable,
    "sqs.dlq": _dlq,
    "delivery.failed": _delivery_failed,
}
