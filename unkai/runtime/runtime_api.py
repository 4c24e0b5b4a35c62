"""The Lambda Runtime API, the Extensions API and the Telemetry API of one execution
environment, served on a loopback port of its own (``AWS_LAMBDA_RUNTIME_API``).

A custom runtime (``provided.al2023``: a ``bootstrap`` executable) and external
extensions (``/opt/extensions/*`` from layers) talk to Lambda only through these
HTTP endpoints, so unkai serves them as AWS documents them:

- Runtime API (``/2018-06-01/runtime/...``): ``invocation/next`` hands out the next
  event with its ``Lambda-Runtime-*`` headers; ``invocation/{id}/response`` (buffered,
  or ``Lambda-Runtime-Function-Response-Mode: streaming`` with a chunked body and the
  error trailers) and ``invocation/{id}/error`` end it; ``init/error`` fails the init.
- Extensions API (``/2020-01-01/extension/...``): ``register`` and ``event/next``, which
  answers ``INVOKE`` and ``SHUTDOWN`` events; ``init/error``, ``exit/error``.
- Telemetry API (``PUT /2022-07-01/telemetry``, and the older Logs API
  ``PUT /2020-08-15/logs``): ``platform``, ``function`` and ``extension`` records
  POSTed as JSON arrays to the subscriber's HTTP listener (``sandbox.localdomain`` is
  the loopback address here).

Ordinary Python functions never start this server: their worker speaks unkai's framed
socket protocol (``bootstrap.py``), which keeps the hot path as it was. An environment
gets a server only when it runs a custom runtime or has external extensions.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

MAX_RESPONSE = 6 * 1024 * 1024  # a buffered response's limit
STREAM_CONTENT_TYPE = "application/octet-stream"


@dataclass
class Invocation:
    """One event handed to the runtime, and how its answer arrives."""

    request_id: str
    payload: bytes
    headers: dict[str, str]
    deadline_ms: int
    invoked_arn: str
    trace: str | None = None
    done: asyncio.Future = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    # streaming: called with ("start", content_type), ("chunk", bytes); the final answer still resolves ``done``
    on_stream: Callable[[str, Any], None] | None = None
    streamed: bool = False
    responded: bool = False


@dataclass
class Extension:
    name: str
    id: str
    events: list[str]
    queue: asyncio.Queue = field(default_factory=asyncio.Queue)
    waiting: bool = False  # blocked in event/next: done with the last event
    idle: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class Subscription:
    extension: str
    url: str
    types: list[str]
    max_items: int = 1000
    buffer: list[dict] = field(default_factory=list)


class RuntimeApi:
    """The endpoints of one environment; ``address`` is what ``AWS_LAMBDA_RUNTIME_API`` says."""

    def __init__(self, function_name: str, version: str, handler: str, account: str) -> None:
        self.function_name = function_name
        self.version = version
        self.handler = handler
        self.account = account
        self.server: asyncio.AbstractServer | None = None
        self.address = ""
        self.invocations: asyncio.Queue[Invocation] = asyncio.Queue()
        self.current: dict[str, Invocation] = {}
        self.runtime_ready = asyncio.Event()  # the runtime asked for its first event: its init is done
        self.init_error: dict | None = None
        self.init_failed = asyncio.Event()
        self.extensions: dict[str, Extension] = {}
        self.subscriptions: list[Subscription] = []
        self.backlog: list[dict] = []  # telemetry since the environment started, for late subscribers
        self.init_done = False
        self._tasks: set[asyncio.Task] = set()
        self._connections: set[asyncio.Task] = set()  # each waits in invocation/next or event/next

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        self.address = "127.0.0.1:%d" % self.server.sockets[0].getsockname()[1]

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
        for inv in self.current.values():
            if not inv.done.done():
                inv.done.cancel()
        for task in list(self._tasks) + list(self._connections):
            task.cancel()

    # -- what the environment asks -------------------------------------------------------

    def submit(self, invocation: Invocation) -> None:
        self.current[invocation.request_id] = invocation
        self.invocations.put_nowait(invocation)

    def forget(self, request_id: str) -> None:
        self.current.pop(request_id, None)

    def dispatch(self, event: dict) -> None:
        """Send an Extensions API event (INVOKE, SHUTDOWN) to every extension registered for it."""
        for ext in self.extensions.values():
            if event["eventType"] in ext.events:
                ext.idle.clear()
                ext.queue.put_nowait(event)

    async def extensions_idle(self, timeout: float) -> None:
        """Wait until every extension has asked for its next event (it is done with the last one)."""
        waits = [e.idle.wait() for e in self.extensions.values() if not e.idle.is_set()]
        if waits:
            try:
                await asyncio.wait_for(asyncio.gather(*waits), timeout)
            except asyncio.TimeoutError:
                pass

    # -- telemetry -------------------------------------------------------------------------

    def telemetry(self, kind: str, record: Any, when_ms: int | None = None) -> None:
        """Record one Telemetry API event (``platform.start``, ``function``, ``extension``...)."""
        when = when_ms if when_ms is not None else int(time.time() * 1000)
        event = {"time": _iso(when), "type": kind, "record": record}
        group = kind.split(".", 1)[0]
        if not self.init_done and len(self.backlog) < 1000:
            self.backlog.append(event)
        for sub in self.subscriptions:
            if group in sub.types:
                sub.buffer.append(event)
                if len(sub.buffer) >= sub.max_items:
                    self._spawn(self._deliver(sub))

    def flush(self) -> None:
        """Deliver buffered telemetry now (after each invocation, and at shutdown)."""
        for sub in self.subscriptions:
            if sub.buffer:
                self._spawn(self._deliver(sub))

    async def flushed(self) -> None:
        tasks = [t for t in self._tasks if not t.done()]
        if tasks:
            await asyncio.wait(tasks, timeout=2)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, sub: Subscription) -> None:
        batch, sub.buffer = sub.buffer, []
        if not batch:
            return
        parts = urlsplit(sub.url)
        host = parts.hostname or "127.0.0.1"
        if host in ("sandbox.localdomain", "sandbox", "localhost", "0.0.0.0"):
            host = "127.0.0.1"  # Lambda's name for the environment's own address
        port = parts.port or 80
        body = json.dumps(batch).encode()
        request = (f"POST {parts.path or '/'}{'?' + parts.query if parts.query else ''} HTTP/1.1\r\n"
                   f"Host: {parts.netloc}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                   "Connection: close\r\n\r\n").encode() + body
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 2)
            writer.write(request)
            await writer.drain()
            await asyncio.wait_for(reader.read(), 5)
            writer.close()
        except (OSError, asyncio.TimeoutError) as exc:
            log.debug("telemetry delivery to %s failed: %s", sub.url, exc)

    # -- HTTP ------------------------------------------------------------------------------

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:  # cancelled when the environment goes, wherever it waits
            self._connections.add(task)
            task.add_done_callback(self._connections.discard)
        try:
            while True:
                line = await reader.readline()
                if not line:
                    return
                try:
                    method, target, _ = line.decode("latin-1").split(" ", 2)
                except ValueError:
                    return
                headers = await _fields(reader)
                status, out_headers, body = await self._route(method, target.split("?", 1)[0], headers, reader)
                head = [f"HTTP/1.1 {status} {_REASONS.get(status, 'OK')}", f"Content-Length: {len(body)}",
                        *(f"{k}: {v}" for k, v in out_headers.items())]
                if "content-type" not in {k.lower() for k in out_headers}:
                    head.append("Content-Type: application/json")
                writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            return
        finally:
            writer.close()

    async def _body(self, headers: dict[str, str], reader: asyncio.StreamReader) -> bytes:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            chunks = []
            async for chunk in _chunks(reader, {}):
                chunks.append(chunk)
            return b"".join(chunks)
        length = int(headers.get("content-length") or 0)
        return await reader.readexactly(length) if length else b""

    async def _route(self, method: str, path: str, headers: dict[str, str],
                     reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
        parts = path.strip("/").split("/")
        if parts[:3] == ["2018-06-01", "runtime", "invocation"]:
            if parts[3:] == ["next"] and method == "GET":
                return await self._next()
            if len(parts) == 5 and method == "POST" and parts[4] in ("response", "error"):
                return await self._answer(parts[3], parts[4], headers, reader)
        if parts == ["2018-06-01", "runtime", "init", "error"] and method == "POST":
            body = await self._body(headers, reader)
            self.init_error = _error_body(body, headers.get("lambda-runtime-function-error-type"))
            self.init_failed.set()
            return 202, {}, b'{"status":"OK"}'
        if parts[:2] == ["2020-01-01", "extension"]:
            return await self._extension(method, parts[2:], headers, reader)
        if path.rstrip("/") in ("/2022-07-01/telemetry", "/2020-08-15/logs") and method == "PUT":
            return self._subscribe(headers, await self._body(headers, reader))
        await self._body(headers, reader)
        return 404, {}, json.dumps({"errorMessage": f"Unknown path {path}", "errorType": "InvalidRequest"}).encode()

    async def _next(self) -> tuple[int, dict[str, str], bytes]:
        self.runtime_ready.set()
        inv = await self.invocations.get()
        headers = {"Lambda-Runtime-Aws-Request-Id": inv.request_id,
                   "Lambda-Runtime-Deadline-Ms": str(inv.deadline_ms),
                   "Lambda-Runtime-Invoked-Function-Arn": inv.invoked_arn,
                   "Content-Type": "application/json", **inv.headers}
        if inv.trace:
            headers["Lambda-Runtime-Trace-Id"] = inv.trace
        return 200, headers, inv.payload

    async def _answer(self, request_id: str, kind: str, headers: dict[str, str],
                      reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
        inv = self.current.get(request_id)
        streaming = headers.get("lambda-runtime-function-response-mode", "").lower() == "streaming"
        if inv is None or inv.responded:
            await self._body(headers, reader)
            return 400, {}, json.dumps({"errorMessage": "Invalid request ID", "errorType": "InvalidRequestID"}).encode()
        inv.responded = True
        if kind == "error":
            body = await self._body(headers, reader)
            error = _error_body(body, headers.get("lambda-runtime-function-error-type"))
            _resolve(inv, ("error", error))
            return 202, {}, b'{"status":"OK"}'
        if streaming and "chunked" in headers.get("transfer-encoding", "").lower():
            # passed on as it comes when the caller streams (InvokeWithResponseStream, RESPONSE_STREAM
            # URLs); a plain Invoke gets it whole
            inv.streamed = inv.on_stream is not None
            if inv.on_stream is not None:
                inv.on_stream("start", headers.get("content-type") or STREAM_CONTENT_TYPE)
            trailers: dict[str, str] = {}
            total = []
            async for chunk in _chunks(reader, trailers):
                total.append(chunk)
                if inv.on_stream is not None:
                    inv.on_stream("chunk", chunk)
            if trailers.get("lambda-runtime-function-error-type"):
                error = _error_body(base64.b64decode(trailers.get("lambda-runtime-function-error-body") or ""),
                                    trailers["lambda-runtime-function-error-type"])
                _resolve(inv, ("error", error))
            else:
                _resolve(inv, ("response", b"".join(total)))
            return 202, {}, b'{"status":"OK"}'
        body = await self._body(headers, reader)
        if len(body) > MAX_RESPONSE and not streaming:
            _resolve(inv, ("error", {"errorType": "Function.ResponseSizeTooLarge",
                                     "errorMessage": f"Response payload size ({len(body)} bytes) exceeded maximum "
                                     f"allowed payload size ({MAX_RESPONSE} bytes)."}))
            return 413, {}, json.dumps({"errorMessage": f"Exceeded maximum allowed payload size ({MAX_RESPONSE} "
                                        "bytes).", "errorType": "RequestEntityTooLarge"}).encode()
        _resolve(inv, ("response", body))
        return 202, {}, b'{"status":"OK"}'

    async def _extension(self, method: str, parts: list[str], headers: dict[str, str],
                         reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
        body = await self._body(headers, reader) if method != "GET" else b""
        if parts == ["register"] and method == "POST":
            name = headers.get("lambda-extension-name") or ""
            if not name:
                return 400, {}, json.dumps({"errorMessage": "Empty extension name", "errorType":
                                            "Extension.InvalidExtensionName"}).encode()
            if self.init_done:
                return 403, {}, json.dumps({"errorMessage": "Extension registration is only allowed during init",
                                            "errorType": "Extension.RegistrationNotAllowed"}).encode()
            try:
                events = (json.loads(body or b"{}") or {}).get("events") or []
            except ValueError:
                return 400, {}, json.dumps({"errorMessage": "Invalid request body", "errorType":
                                            "InvalidRequest"}).encode()
            ext = Extension(name, str(uuid.uuid4()), [e for e in events if e in ("INVOKE", "SHUTDOWN")])
            self.extensions[ext.id] = ext
            out = {"functionName": self.function_name, "functionVersion": self.version, "handler": self.handler}
            if "accountId" in headers.get("lambda-extension-accept-feature", ""):
                out["accountId"] = self.account
            return 200, {"Lambda-Extension-Identifier": ext.id}, json.dumps(out).encode()
        ext = self.extensions.get(headers.get("lambda-extension-identifier") or "")
        if ext is None:
            return 403, {}, json.dumps({"errorMessage": "Invalid extension identifier", "errorType":
                                        "Extension.InvalidExtensionIdentifier"}).encode()
        if parts == ["event", "next"] and method == "GET":
            ext.waiting = True
            ext.idle.set()
            try:
                event = await ext.queue.get()
            finally:
                ext.waiting = False
            return 200, {"Lambda-Extension-Event-Identifier": str(uuid.uuid4())}, json.dumps(event).encode()
        if parts in (["init", "error"], ["exit", "error"]) and method == "POST":
            return 202, {}, b'{"status":"OK"}'
        return 404, {}, json.dumps({"errorMessage": "Unknown path", "errorType": "InvalidRequest"}).encode()

    def _subscribe(self, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        ext = self.extensions.get(headers.get("lambda-extension-identifier") or "")
        if ext is None:
            return 403, {}, json.dumps({"errorMessage": "Invalid extension identifier", "errorType":
                                        "Extension.InvalidExtensionIdentifier"}).encode()
        try:
            request = json.loads(body or b"{}")
            url = request["destination"]["URI"]
            types = [t for t in request.get("types") or [] if t in ("platform", "function", "extension")]
        except (ValueError, KeyError, TypeError):
            return 400, {}, json.dumps({"errorMessage": "Invalid subscription request", "errorType":
                                        "ValidationError"}).encode()
        if not urlsplit(url).scheme == "http" or not types:
            return 400, {}, json.dumps({"errorMessage": "Invalid subscription request", "errorType":
                                        "ValidationError"}).encode()
        sub = Subscription(ext.name, url, types, int((request.get("buffering") or {}).get("maxItems") or 1000))
        sub.buffer = [e for e in self.backlog if e["type"].split(".", 1)[0] in types]
        self.subscriptions.append(sub)
        return 200, {"Content-Type": "text/plain"}, b"OK"


async def _fields(reader: asyncio.StreamReader) -> dict[str, str]:
    """Header (or trailer) lines up to the blank line that ends them, by lower-cased name."""
    fields: dict[str, str] = {}
    while True:
        raw = await reader.readline()
        if raw in (b"\r\n", b"\n", b""):
            return fields
        key, _, value = raw.decode("latin-1").partition(":")
        fields[key.strip().lower()] = value.strip()


async def _chunks(reader: asyncio.StreamReader, trailers: dict[str, str]):  # type: ignore[no-untyped-def]
    """The chunks of a chunked body as they arrive; its trailers land in ``trailers``."""
    while True:
        size_line = await reader.readline()
        if not size_line:
            raise asyncio.IncompleteReadError(b"", None)
        size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            trailers.update(await _fields(reader))
            return
        data = await reader.readexactly(size)
        await reader.readexactly(2)
        yield data


def _error_body(body: bytes, error_type: str | None) -> dict:
    try:
        error = json.loads(body or b"{}")
    except ValueError:
        error = {}
    if not isinstance(error, dict):
        error = {}
    out = {"errorMessage": str(error.get("errorMessage") or ""),
           "errorType": str(error.get("errorType") or error_type or "Unhandled")}
    if error.get("stackTrace"):
        out["stackTrace"] = error["stackTrace"]
    return out


def _resolve(inv: Invocation, value: tuple) -> None:
    if not inv.done.done():
        inv.done.set_result(value)


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + f".{ms % 1000:03d}Z"


_REASONS = {200: "OK", 202: "Accepted", 400: "Bad Request", 403: "Forbidden", 404: "Not Found",
            413: "Payload Too Large", 500: "Internal Server Error"}
