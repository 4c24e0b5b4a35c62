"""Running the cloud: the state-directory lock, the store, the services and the
HTTP server, started and stopped in the right order."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import json
import logging
import os
import re
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import (
    HEADER_RE,
    HEADER_VALUE_RE,
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)

from unkai import __version__
from unkai.cloud import Cloud
from unkai.config import Config
from unkai.connections import Guarded
from unkai.gateway import Gateway
from unkai.store import Store

SERVER_FILE = "server.json"


class AlreadyRunning(Exception):
    pass


class CannotListen(Exception):
    pass


def _listen(config: Config) -> socket.socket:
    """Bind the port up front: a clear error if it is taken, and the real port for --port 0."""
    family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((config.host, config.port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    config.port = sock.getsockname()[1]
    return sock


def lock_state_dir(state_dir: Path) -> IO[Any]:
    """Hold the state directory for this process; a second ``unkai up`` is refused."""
    private_state_dir(state_dir)
    handle = open(state_dir / "unkai.lock", "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        info = read_server_file(state_dir) or {}
        where = f" (pid {info['pid']}, {info['endpoint']})" if "pid" in info else ""
        raise AlreadyRunning(
            f"unkai is already running on the state directory {state_dir}{where}. "
            "Stop it first, or give this one its own --state-dir or --ephemeral."
        ) from None
    return handle


def private_state_dir(state_dir: Path) -> None:
    """Create the state directory owner-only (0700) and make every file unkai creates from
    now on owner-only (umask 077): the database holds functions' environments and
    secrets, the S3 objects whatever users put there. A state directory from an older
    unkai is closed the same way."""
    os.umask(0o077)
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    known = [state_dir / name for name in ("unkai.db", "unkai.db-wal", "unkai.db-shm", SERVER_FILE, "unkai.lock")]
    if any(path.exists() for path in known) or not any(state_dir.iterdir()):
        state_dir.chmod(0o700)
    for path in known:
        with contextlib.suppress(FileNotFoundError):
            path.chmod(0o600)


def read_server_file(state_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((state_dir / SERVER_FILE).read_text())
    except (OSError, ValueError):
        return None


def run(config: Config, announce: Callable[[str], None] = print) -> None:
    """Serve until Ctrl-C or SIGTERM."""
    started = time.perf_counter()
    with contextlib.ExitStack() as cleanup:
        if config.ephemeral:
            temp_dir = tempfile.mkdtemp(prefix="unkai-")
            cleanup.callback(shutil.rmtree, temp_dir, ignore_errors=True)
            config.state_dir = Path(temp_dir)
        config.state_dir = config.state_dir.resolve()
        cleanup.enter_context(lock_state_dir(config.state_dir))
        try:
            sock = cleanup.enter_context(_listen(config))
        except OSError as exc:
            raise CannotListen(f"cannot listen on {config.host}:{config.port}: {exc.strerror or exc}") from None
        store = Store(config.state_dir / "unkai.db")
        cleanup.callback(store.close)
        store.checkpoint_in_background()
        cleanup.callback((config.state_dir / SERVER_FILE).unlink, missing_ok=True)
        cloud = Cloud(config, store)
        gateway = Gateway(cloud)
        cloud.gateway = gateway
        _run_loop(_serve(cloud, gateway, config, announce, started, sock))


def _run_loop(coro: Any) -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is absent on some platforms
        asyncio.run(coro)
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(coro)


class _Server(uvicorn.Server):
    """uvicorn's server, but a stop signal only ends serving: we clean up and exit 0
    (uvicorn would re-raise the signal after its own shutdown and skip ours)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        original = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)


class _OneWrite:
    """A connection's transport that holds a response's head until the first write of
    its body (or the end of the loop iteration), so a small response leaves in one
    segment and one syscall, and the client wakes once to read it."""

    __slots__ = ("_transport", "_loop", "_head", "_seen")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._head: bytes | None = None
        self._seen = False

    def write(self, data: bytes) -> None:
        head = self._head
        if head is not None:
            self._head = None
            if len(data) < 65536:
                self._transport.write(head + data)
                return
            self._transport.write(head)
        elif not self._seen and data.startswith(b"HTTP/") and not data.startswith(b"HTTP/1.1 100 "):
            self._seen = True
            self._head = data
            self._loop.call_soon(self.flush)
            return
        self._transport.write(data)

    def flush(self) -> None:
        head, self._head = self._head, None
        if head is not None and not self._transport.is_closing():  # the client may have gone meanwhile
            self._transport.write(head)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


# What uvicorn's send() refuses in a header name or value (a 500, never a split header).
_BAD_NAME = re.compile(HEADER_RE.pattern.decode("latin-1"))
_BAD_VALUE = re.compile(HEADER_VALUE_RE.pattern.decode("latin-1"))
# Headers whose meaning uvicorn's send() acts on: a response carrying one takes that path.
_FRAMING = frozenset(("content-length", "transfer-encoding", "connection"))


def _respond(cycle_ref: "weakref.ref[RequestResponseCycle]", status: int, headers: list[tuple[str, str]],
             body: bytes, head_only: bool) -> bool:
    """Write a whole response (status, headers, a bytes body) in one write, as uvicorn's
    ``send()`` would for the two ASGI messages, without building them, checking each header
    by regular expression twice and holding the head until the body comes. Returns False
    when the response needs uvicorn's own path (framing headers set by the service, an
    unknown status, a paused transport), so the caller sends it the ASGI way instead."""
    cycle = cycle_ref()
    if cycle is None:  # the connection's request is gone (it cannot be while its app runs)
        return True
    if cycle.response_started or cycle.flow.write_paused:
        return False
    if cycle.disconnected:
        return True
    line = STATUS_LINE.get(status)
    if line is None:
        return False
    names = []
    values = []
    for name, value in headers:
        name = name.lower()
        if name in _FRAMING:
            return False
        names.append(name)
        values.append(str(value))
    if _BAD_NAME.search("".join(names)) or _BAD_VALUE.search("".join(values)):
        return False  # uvicorn's path refuses it (a 500), as before
    text = "".join([f"{name}: {value}\r\n" for name, value in zip(names, values)])
    if not cycle.keep_alive:
        text += "connection: close\r\n"
    # encoded before anything is marked sent: a value that is not Latin-1 fails here as in
    # Response.send (uvicorn answers 500), with nothing written
    head = f"{text}content-length: {len(body)}\r\n\r\n".encode("latin-1")
    default = cycle.default_headers
    parts = [line, *(b"%s: %s\r\n" % pair for pair in default), head] if default else [line, head]
    large = len(body) >= 65536 and not head_only
    if not head_only and not large:
        parts.append(body)
    cycle.response_started = True
    cycle.waiting_for_100_continue = False
    transport = cycle.transport
    if isinstance(transport, _OneWrite):  # nothing held in it yet: this is one write already
        transport = transport._transport
    transport.write(b"".join(parts))
    if large:  # not copied into the head's buffer
        transport.write(body)
    cycle.response_complete = True
    cycle.message_event.set()
    if not cycle.keep_alive:
        transport.close()
    cycle.on_response()
    return True


def _whole_body(cycle_ref: "weakref.ref[RequestResponseCycle]") -> bytes | None:
    """The request body when all of it has arrived (as for almost every API call), taken as
    uvicorn's ``receive()`` would hand it over in one message, without the coroutines and
    the message; None when more is due (or a 100 Continue is owed first): then read it the
    ASGI way."""
    cycle = cycle_ref()
    if cycle is None or cycle.more_body or cycle.disconnected or cycle.response_complete \
            or cycle.waiting_for_100_continue:
        return None
    body = bytes(cycle.body)
    cycle.body = bytearray()
    cycle.message_event.clear()
    cycle.flow.resume_reading()
    return body


class _HttpProtocol(Guarded, HttpToolsProtocol):
    """uvicorn's httptools protocol, writing each response through ``_OneWrite``, with
    head and body timeouts and a cap on connections per client (unkai/connections.py).
    A response whose body is bytes is written whole by ``_respond``, and a body that has
    all arrived is taken whole by ``_whole_body``, offered to the app as the ASGI scope
    extensions ``unkai.respond`` and ``unkai.body``."""

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None and cycle.transport is self.transport:
            cycle.transport = _OneWrite(self.transport, self.loop)
            # the extensions hold the cycle weakly: the cycle holds them (in its scope), and a
            # reference cycle per request would be left for the garbage collector to find
            ref = weakref.ref(cycle)
            cycle.scope["extensions"] = {"unkai.respond": functools.partial(_respond, ref),
                                         "unkai.body": functools.partial(_whole_body, ref)}


def _websockets(**kwargs: Any) -> Any:
    """uvicorn's websockets-sansio protocol for an upgraded connection, imported at the first
    WebSocket upgrade: the websockets library costs ~40 ms of a start that may serve none."""
    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

    return WebSocketsSansIOProtocol(**kwargs)


async def _serve(cloud: Cloud, gateway: Gateway, config: Config, announce: Callable[[str], None],
                 started: float, sock: socket.socket) -> None:
    uv = uvicorn.Config(
        gateway, host=config.host, port=config.port, loop="none", http=_HttpProtocol, ws=_websockets,
        lifespan="off", log_level="warning", access_log=False, server_header=False, proxy_headers=False,
        timeout_keep_alive=75, ws_max_size=16 * 1024 * 1024,
    )
    server = _Server(uv)
    failure: list[str] = []
    try:
        await cloud.start()
        watcher = asyncio.create_task(_when_started(server, cloud, config, announce, started, failure))
        try:
            await server.serve(sockets=[sock])
        finally:
            watcher.cancel()
    finally:
        await cloud.stop()
    if failure:
        raise SystemExit(f"Error: {failure[0]}")


async def _when_started(server: uvicorn.Server, cloud: Cloud, config: Config,
                        announce: Callable[[str], None], started: float, failure: list[str]) -> None:
    from unkai.template.errors import TemplateError  # not the loader: YAML only with a template

    while not server.started:
        await asyncio.sleep(0.005)
    try:
        await cloud.open()
    except TemplateError as exc:
        failure.append(str(exc))
        server.should_exit = True
        return
    except Exception as exc:  # never hang half-started: say what broke and stop
        logging.getLogger("unkai").exception("starting failed")
        failure.append(f"unkai could not start: {type(exc).__name__}: {exc}")
        server.should_exit = True
        return
    info = {"pid": os.getpid(), "endpoint": config.endpoint, "version": __version__,
            "region": config.region, "account": config.account_id}
    if config.verify_signatures:  # for `unkai mail/inbox/logs` and the dashboard (the file is owner-only)
        info["token"] = config.control_token
    path = config.state_dir / SERVER_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(info))
    tmp.replace(path)
    elapsed = time.perf_counter() - started
    lines = [
        f"unkai {__version__} ready in {elapsed * 1000:.0f} ms",
        f"  AWS APIs   {config.endpoint}   (region {config.region}, account {config.account_id})",
        f"  state      {config.state_dir}" + ("   (ephemeral)" if config.ephemeral else ""),
        f"  dashboard  {config.endpoint}/_unkai/   (`unkai open`)",
    ]
    if config.verify_signatures:
        lines.append(f"  control    X-Unkai-Token: {config.control_token}   (for /_unkai/ endpoints)")
    for line in getattr(cloud, "banner", []):
        lines.append(f"  {line}")
    lines.append("  Ctrl-C to stop")
    announce("\n".join(lines))
    sys.stdout.flush()
    if config.activity != "off":
        from unkai.terminal import Terminal

        cloud.feed.subscribe(Terminal(sys.stdout, config.activity))
