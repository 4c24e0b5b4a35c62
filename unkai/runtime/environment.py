"""One execution environment: a worker process running one function's code, warm
between invocations, with its own log stream, /tmp and limits."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import math
import os
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from unkai.feed import TRACE, trace_header
from unkai.runtime.bootstrap import HEADER
from unkai.runtime.zygote import Zygote

LogSink = Callable[["EnvironmentSpec", str, list[tuple[int, str]]], None]  # (spec, stream, [(ms, message)])


@dataclass
class EnvironmentSpec:
    """Everything that shapes an environment; two invocations share environments only
    when their specs are equal."""

    function_name: str
    function_arn: str  # unqualified
    version: str
    handler: str
    runtime: str
    memory_mb: int
    timeout: float
    env: dict[str, str]
    task_root: str
    extra_paths: list[str] = field(default_factory=list)
    layer_paths: list[str] = field(default_factory=list)
    log_group: str = ""
    region: str = "us-east-1"
    account: str = "000000000000"
    endpoint: str = ""
    code_sha: str = ""
    ephemeral_mb: int = 512  # EphemeralStorage: the largest file the function may write (its /tmp)
    # ``unkai up --debug``: the worker listens for a debugger (DAP) on this port (0: not debugged)
    debug_port: int = 0
    debug_wait: bool = False  # wait for the debugger to attach before loading the handler
    debug_path: str = ""  # a directory holding debugpy, put first on the worker's sys.path
    # a custom runtime (provided.al2023...): the bootstrap executable the worker runs, speaking the Runtime API
    bootstrap: str = ""
    extensions: list[str] = field(default_factory=list)  # external extensions' executables (layers' extensions/)
    log_format: str = "Text"  # LoggingConfig.LogFormat; JSON sets AWS_LAMBDA_LOG_FORMAT and _LOG_LEVEL as AWS does
    app_log_level: str = ""  # LoggingConfig.ApplicationLogLevel

    @functools.cached_property
    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.__dict__, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class Outcome:
    """How one invocation went."""

    payload: bytes
    error_type: str | None = None  # set when the function failed (X-Amz-Function-Error: Unhandled)
    duration_ms: float = 0.0
    init_ms: float | None = None
    max_memory_mb: int = 0
    log_text: str = ""  # START..REPORT of this invocation, for LogType=Tail
    invalid_request: str | None = None  # the payload was not JSON
    log_stream: str = ""
    streamed: bool = False  # the function streamed its response (the stream callback saw it as it came)

    @property
    def failed(self) -> bool:
        return self.error_type is not None


class WorkerExited(Exception):
    pass


BUFFER_LIMIT = 32 * 1024 * 1024


class Frames(asyncio.Protocol):
    """The worker's socket, read as frames arrive: log output is recorded and the next
    other frame handed to whoever waits for it. Frames that arrive while nobody waits
    stay buffered until someone does, so log output keeps its place among invocations."""

    def __init__(self, env: "Environment") -> None:
        self.env = env
        self.buffer = bytearray()
        self.waiter: asyncio.Future | None = None
        self.closed = False
        self.paused = False
        self.transport: asyncio.Transport | None = None
        self.peak_kb: int | None = None  # the worker's peak RSS, sent just before each answer

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            frame = self._take()
            if frame is not None:
                waiter.set_result(frame)
        elif self.env.api is not None:  # extensions and custom runtimes write between invocations too
            self._take(logs_only=True)
            self.env.flush_logs()
        elif len(self.buffer) > BUFFER_LIMIT and not self.paused:
            self.paused = True  # output nobody waits for: the worker blocks until someone does
            self.transport.pause_reading()

    def eof_received(self) -> bool:
        self._lost()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost()

    def _lost(self) -> None:
        self.closed = True
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            frame = self._take()
            if frame is not None:
                waiter.set_result(frame)
            else:
                waiter.set_exception(WorkerExited())

    def _take(self, logs_only: bool = False) -> tuple[bytes, bytes] | None:
        """The next complete frame that is not log output; log frames before it are recorded
        (``logs_only``: record the log frames at the front, leave the rest buffered)."""
        buffer, pos, size, env = self.buffer, 0, HEADER.size, self.env
        found = None
        while len(buffer) - pos >= size:
            kind, length = HEADER.unpack_from(buffer, pos)
            end = pos + size + length
            if end > len(buffer) or (logs_only and kind not in (b"L", b"G", b"T", b"K")):
                break
            body = bytes(buffer[pos + size:end])
            pos = end
            if kind == b"L":
                env._log_output(body.decode("utf-8", "replace"))
            elif kind == b"G":
                env.log(body.decode("utf-8", "replace"))
                if env.api is not None:
                    env.api.telemetry("function", body.decode("utf-8", "replace").rstrip("\n"), env.now_ms())
            elif kind == b"M":
                self.peak_kb = int(body)
            elif kind == b"T":
                env._log_output(body.decode("utf-8", "replace"), "extension")
            elif kind == b"K":
                env.extension_exited()
            else:
                found = kind, body
                break
        if pos:
            del buffer[:pos]
        return found

    def peak_mb(self) -> int | None:
        """The peak the worker reported with its last answer (once), in MB as AWS rounds it."""
        kb, self.peak_kb = self.peak_kb, None
        return None if kb is None else math.ceil(kb / 1024)

    async def next(self, timeout: float | None) -> tuple[bytes, bytes]:
        if self.paused:
            self.paused = False
            self.transport.resume_reading()
        frame = self._take()
        if frame is not None:
            return frame
        if self.closed:
            raise WorkerExited()
        loop = asyncio.get_running_loop()
        self.waiter = waiter = loop.create_future()
        timer = loop.call_later(timeout, _expire, waiter) if timeout is not None else None
        try:
            return await waiter
        finally:
            self.waiter = None
            if timer is not None:
                timer.cancel()


def _expire(waiter: asyncio.Future) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


class Environment:
    def __init__(self, spec: EnvironmentSpec, zygote: Zygote, tmp_root: str, sdk: str, sink: LogSink,
                 now_ms: Callable[[], int], hide: str = "") -> None:
        self.spec = spec
        self.hide = hide
        self.zygote = zygote
        self.sink = sink
        self.now_ms = now_ms
        self.id = secrets.token_hex(16)
        day = time.strftime("%Y/%m/%d", time.gmtime(now_ms() / 1000))
        self.log_stream = f"{day}/[{spec.version}]{self.id}"
        self.tmp = os.path.join(tmp_root, self.id)
        self.sdk = sdk
        self.pid = 0
        self.transport: asyncio.Transport | None = None
        self._frames = Frames(self)
        self.init_ms: float | None = None
        self.init_error: dict | None = None
        self.files: dict[str, tuple[int, int]] = {}
        self.dead = False
        self.over_memory = False  # killed by MemoryWatch
        self.uses = 0
        self._collect: list[str] | None = None
        self._pending: list[tuple[int, str]] = []
        self.api: Any = None  # the Runtime API server of a custom runtime or of external extensions
        self.extensions_running = 0
        self._exited = asyncio.Event()

    # -- logging ---------------------------------------------------------------------

    def log(self, message: str) -> None:
        self._pending.append((self.now_ms(), message))
        if self._collect is not None:
            self._collect.append(message)

    def flush_logs(self) -> None:
        if self._pending:
            events, self._pending = self._pending, []
            self.sink(self.spec, self.log_stream, events)

    def _log_output(self, text: str, source: str = "function") -> None:
        lines = text.splitlines(keepends=True)
        for line in lines:
            self.log(line)
        if self.api is not None:
            for line in lines:
                self.api.telemetry(source, line.rstrip("\n"), self.now_ms())

    def extension_exited(self) -> None:
        self.extensions_running -= 1
        if self.extensions_running <= 0:
            self._exited.set()

    # -- lifecycle --------------------------------------------------------------------

    def _worker_spec(self) -> dict[str, Any]:
        spec = self.spec
        env = {
            "LANG": "en_US.UTF-8", "TZ": ":UTC", "PATH": "/usr/local/bin:/usr/bin/:/bin",
            "LD_LIBRARY_PATH": "", "PYTHONPATH": "",
            "LAMBDA_TASK_ROOT": spec.task_root, "LAMBDA_RUNTIME_DIR": os.path.dirname(__file__),
            "AWS_REGION": spec.region, "AWS_DEFAULT_REGION": spec.region,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
            "AWS_LAMBDA_FUNCTION_NAME": spec.function_name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
            "AWS_LAMBDA_FUNCTION_VERSION": spec.version,
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_LAMBDA_LOG_GROUP_NAME": spec.log_group,
            "AWS_LAMBDA_LOG_STREAM_NAME": self.log_stream,
            "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001",
            "AWS_ACCESS_KEY_ID": "ASIAUNKAILOCAL000000", "AWS_SECRET_ACCESS_KEY": "unkai-local-secret-key",
            "AWS_SESSION_TOKEN": "unkai-local-session-token",
            "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR", "_AWS_XRAY_DAEMON_ADDRESS": "169.254.79.129",
            "_HANDLER": spec.handler, "TMPDIR": self.tmp, "HOME": self.tmp,
            "AWS_ENDPOINT_URL": spec.endpoint,
            "UNKAI_ENDPOINT": spec.endpoint,
        }
        if self.api is not None:
            env["AWS_LAMBDA_RUNTIME_API"] = self.api.address
        if spec.log_format == "JSON":
            env["AWS_LAMBDA_LOG_FORMAT"] = "JSON"
            env["AWS_LAMBDA_LOG_LEVEL"] = spec.app_log_level or "INFO"
        if spec.bootstrap:  # an OS-only runtime: AWS names no execution environment
            env.pop("AWS_EXECUTION_ENV")
        env.update(spec.env)
        layers = []
        for layer in spec.layer_paths:
            major_minor = spec.runtime.removeprefix("python")
            layers += [os.path.join(layer, "python", "lib", f"python{major_minor}", "site-packages"),
                       os.path.join(layer, "python")]
        return {
            "handler": spec.handler, "env": env, "tmp": self.tmp, "task_root": spec.task_root,
            "sys_path": [spec.task_root, *spec.extra_paths, *layers], "sdk_dir": str(self.zygote.sdk),
            "hide": [self.hide] if self.hide else [],
            "memory_mb": spec.memory_mb, "ephemeral_mb": spec.ephemeral_mb, "endpoint": spec.endpoint,
            "watch_roots": [spec.task_root.rstrip("/") + "/", *[p.rstrip("/") + "/" for p in spec.layer_paths]],
            **({"exec": spec.bootstrap} if spec.bootstrap else {}),
            **({"extensions": spec.extensions, "layers": spec.layer_paths} if spec.extensions or spec.bootstrap
               else {}),
            **({"debug": {"port": spec.debug_port, "wait": spec.debug_wait, "path": spec.debug_path}}
               if spec.debug_port else {}),
        }

    async def start(self) -> None:
        """Fork the worker and run the function's init code."""
        os.makedirs(self.tmp, exist_ok=True)
        spec = self.spec
        self.log(f"INIT_START Runtime Version: {spec.runtime.replace('python', 'python:')}.v1\t"
                 f"Runtime Version ARN: arn:aws:lambda:{spec.region}::runtime:unkai-local\n")
        if spec.bootstrap and not (os.path.isfile(spec.bootstrap) and os.access(spec.bootstrap, os.X_OK)):
            self.init_ms = 0.0
            self.init_error = {"errorType": "Runtime.InvalidEntrypoint", "errorMessage":
                               f"RequestId: {{request_id}} Error: Couldn't find valid bootstrap(s): "
                               f"[{spec.task_root.rstrip('/')}/bootstrap /opt/bootstrap]"}
            return
        await self.zygote.ensure()  # the zygote picks the SDK this interpreter imports
        if spec.bootstrap or spec.extensions:
            await self._start_api()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.pid = await self.zygote.fork(self.id, self._worker_spec(), theirs)
        finally:
            theirs.close()
        self.extensions_running = len(spec.extensions)
        self.transport, _ = await asyncio.get_running_loop().create_unix_connection(lambda: self._frames, sock=ours)
        if spec.bootstrap:
            await self._init_custom()
            return
        kind, body = await self._next_frame()
        while kind != b"N":
            kind, body = await self._next_frame()
        info = json.loads(body)
        self.init_ms = info["init_ms"]
        if not info["ok"]:
            self.init_error = info["error"]
            return
        self.files = {path: _stat(path) for path in info["files"]}
        if self.api is not None:
            await self._extensions_ready(INIT_TIMEOUT)
            self._init_telemetry(info["init_ms"], "success")

    # -- the Runtime API (custom runtimes, external extensions) --------------------------------

    async def _start_api(self) -> None:
        from unkai.runtime.runtime_api import RuntimeApi

        spec = self.spec
        self.api = RuntimeApi(spec.function_name, spec.version, spec.handler, spec.account)
        await self.api.start()
        self.api.telemetry("platform.initStart", {
            "initializationType": "on-demand", "phase": "init", "runtimeVersion": spec.runtime,
            "runtimeVersionArn": f"arn:aws:lambda:{spec.region}::runtime:unkai-local",
            "functionName": spec.function_name, "functionVersion": spec.version}, self.now_ms())

    async def _extensions_ready(self, timeout: float) -> None:
        """Lambda's init ends when every extension has registered and asked for its first event."""
        api, expected = self.api, len(self.spec.extensions)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.dead and not self._exited.is_set():
            if len(api.extensions) >= expected and all(e.idle.is_set() for e in api.extensions.values()):
                break
            if self._frames.closed:
                break
            await asyncio.sleep(0.005)
        api.init_done = True

    def _init_telemetry(self, init_ms: float, status: str) -> None:
        now = self.now_ms()
        self.api.telemetry("platform.initRuntimeDone", {"initializationType": "on-demand", "phase": "init",
                                                        "status": status}, now)
        self.api.telemetry("platform.initReport", {"initializationType": "on-demand", "phase": "init",
                                                   "status": status, "metrics": {"durationMs": round(init_ms, 3)}}, now)
        self.api.backlog.clear()

    async def _init_custom(self) -> None:
        """A custom runtime's init ends when its bootstrap asks for the first event (or reports an init error)."""
        started = time.monotonic()
        api = self.api
        waits = {asyncio.ensure_future(api.runtime_ready.wait()): "ready",
                 asyncio.ensure_future(api.init_failed.wait()): "failed",
                 asyncio.ensure_future(self._frames.next(None)): "exited"}
        done, pending = await asyncio.wait(waits, timeout=INIT_TIMEOUT, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        outcome = waits[next(iter(done))] if done else "timeout"
        for task in done:
            if not task.cancelled():
                task.exception()  # a worker that exited: WorkerExited, expected here
        self.init_ms = (time.monotonic() - started) * 1000
        if outcome == "ready":
            await self._extensions_ready(INIT_TIMEOUT)
            self._init_telemetry(self.init_ms, "success")
            return
        if outcome == "failed":
            self.init_error = api.init_error
        elif outcome == "exited":
            how = await self._exit_status()
            self.init_error = {"errorType": "Runtime.ExitError",
                               "errorMessage": f"RequestId: {{request_id}} Error: Runtime exited with error: {how}"}
        else:
            self.init_error = {"errorType": "Sandbox.Timedout",
                               "errorMessage": f"RequestId: {{request_id}} Error: Task timed out after "
                                               f"{INIT_TIMEOUT:.2f} seconds"}
        self._init_telemetry(self.init_ms, "error")
        self.log(f"INIT_REPORT Init Duration: {self.init_ms:.2f} ms\tPhase: init\tStatus: error\t"
                 f"Error Type: {self.init_error['errorType']}\n")

    async def _next_frame(self, timeout: float | None = None) -> tuple[bytes, bytes]:
        """The next frame that is not log output (log output is recorded as it comes)."""
        return await self._frames.next(timeout)

    def code_changed(self) -> bool:
        """Whether a source file the handler loaded has been edited since."""
        for path, seen in self.files.items():
            if _stat(path) != seen:
                return True
        return False

    async def invoke(self, request_id: str, payload: bytes, invoked_arn: str, client_context: Any = None,
                     cold: bool = False, tenant_id: str | None = None,
                     stream: Callable[[str, Any], None] | None = None) -> Outcome:
        """Run one event. ``stream`` receives ``("start", content_type)`` and ``("chunk", bytes)`` when the
        function streams its response (a custom runtime's streaming mode); the Outcome still has it all."""
        spec = self.spec
        self._collect = []
        self.uses += 1
        started = time.monotonic()
        self.log(f"START RequestId: {request_id} Version: {spec.version}\n")
        outcome = Outcome(b"", log_stream=self.log_stream)
        status = "success"
        error_type = None
        peak = 0
        reported = None  # Max Memory Used as the worker reported it with its answer
        if self.api is not None:
            self.api.telemetry("platform.start", {"requestId": request_id, "version": spec.version}, self.now_ms())
        if self.init_error is not None:
            outcome = self._error_outcome(dict(self.init_error, requestId=request_id, errorMessage=str(
                self.init_error.get("errorMessage", "")).replace("{request_id}", request_id)))
            status, error_type = "error", self.init_error["errorType"]
            await self._ended()
        elif spec.bootstrap:
            outcome, status, error_type, peak = await self._invoke_custom(request_id, payload, invoked_arn,
                                                                          client_context, tenant_id, stream)
        else:
            if self.api is not None:
                self._dispatch_invoke(request_id, invoked_arn)
            header = json.dumps({"request_id": request_id, "invoked_function_arn": invoked_arn,
                                 "remaining_ms": int(spec.timeout * 1000), "client_context": client_context,
                                 "trace": trace_header(TRACE.get()) if TRACE.get() else None,
                                 "tenant_id": tenant_id})
            try:
                self.transport.write(b"".join((HEADER.pack(b"I", len(header) + 1 + len(payload)), header.encode(),
                                               b"\0", payload)))
                # under a debugger the timeout and the memory limit are suspended: a paused handler is
                # not a hung one, and the debugger's own memory is not the function's
                watch = MemoryWatch(self) if not spec.debug_port else None
                try:
                    kind, body = await self._next_frame(None if spec.debug_port else spec.timeout)
                finally:
                    if watch is not None:
                        watch.cancel()
                if kind == b"R":
                    outcome.payload = body
                    reported = self._frames.peak_mb()
                elif kind == b"E":
                    error = json.loads(body)
                    if error.get("oom"):
                        raise WorkerExited()
                    outcome = self._error_outcome(error)
                    status, error_type = "error", error["errorType"]
                    reported = self._frames.peak_mb()
                elif kind == b"J":
                    outcome.invalid_request = body.decode()
                    reported = self._frames.peak_mb()
            except TimeoutError:
                peak = self._max_memory_mb()
                self.kill(graceful=False)
                self.log(f"{_iso(self.now_ms())} {request_id} Task timed out after {spec.timeout:.2f} seconds\n")
                outcome = self._error_outcome({
                    "errorType": "Sandbox.Timedout",
                    "errorMessage": f"RequestId: {request_id} Error: Task timed out after {spec.timeout:.2f} seconds",
                })
                status, error_type = "timeout", "Sandbox.Timedout"
            except (WorkerExited, ConnectionError, OSError):
                how = await self._exit_status()
                error_type = "Runtime.OutOfMemory" if _oom(how, self) else "Runtime.ExitError"
                message = f"RequestId: {request_id} Error: Runtime exited with error: {how}"
                self.log(f"{message}\n{error_type}\n")
                outcome = self._error_outcome({"errorType": error_type, "errorMessage": message})
                status = "error"
        duration = (time.monotonic() - started) * 1000
        outcome.duration_ms = duration
        outcome.init_ms = self.init_ms if cold else None
        outcome.max_memory_mb = max(self._max_memory_mb() if reported is None else reported, peak, 1)
        self.log(f"END RequestId: {request_id}\n")
        billed = math.ceil(duration + (self.init_ms or 0 if cold else 0))
        report = (f"REPORT RequestId: {request_id}\tDuration: {duration:.2f} ms\tBilled Duration: {billed} ms\t"
                  f"Memory Size: {spec.memory_mb} MB\tMax Memory Used: {outcome.max_memory_mb} MB\t")
        if cold and self.init_ms is not None:
            report += f"Init Duration: {self.init_ms:.2f} ms\t"
        if status != "success":
            report += f"Status: {status}\t"
            if error_type and status == "error":
                report += f"Error Type: {error_type}\t"
        self.log(report + "\n")
        if self.api is not None:
            self._report_telemetry(request_id, status, duration, billed, outcome, cold)
        outcome.log_text = "".join(self._collect)
        self._collect = None
        self.flush_logs()
        return outcome

    def _dispatch_invoke(self, request_id: str, invoked_arn: str) -> None:
        deadline = int(time.time() * 1000 + self.spec.timeout * 1000)
        event = {"eventType": "INVOKE", "deadlineMs": deadline, "requestId": request_id,
                 "invokedFunctionArn": invoked_arn}
        if TRACE.get():
            event["tracing"] = {"type": "X-Amzn-Trace-Id", "value": trace_header(TRACE.get())}
        self.api.dispatch(event)

    def _report_telemetry(self, request_id: str, status: str, duration: float, billed: int, outcome: Outcome,
                          cold: bool) -> None:
        now = self.now_ms()
        self.api.telemetry("platform.runtimeDone", {"requestId": request_id, "status": status, "metrics": {
            "durationMs": round(duration, 3), "producedBytes": len(outcome.payload)}}, now)
        metrics: dict[str, Any] = {"durationMs": round(duration, 3), "billedDurationMs": billed,
                                   "memorySizeMB": self.spec.memory_mb, "maxMemoryUsedMB": outcome.max_memory_mb}
        if cold and self.init_ms is not None:
            metrics["initDurationMs"] = round(self.init_ms, 3)
        self.api.telemetry("platform.report", {"requestId": request_id, "status": status, "metrics": metrics}, now)
        self.api.flush()

    async def _invoke_custom(self, request_id: str, payload: bytes, invoked_arn: str, client_context: Any,
                             tenant_id: str | None, stream: Callable[[str, Any], None] | None
                             ) -> tuple[Outcome, str, str | None, int]:
        """One event through the Runtime API: the bootstrap takes it from invocation/next and answers."""
        from unkai.runtime.runtime_api import Invocation

        spec = self.spec
        headers = {}
        if client_context is not None:
            headers["Lambda-Runtime-Client-Context"] = json.dumps(client_context)
        if tenant_id:
            headers["Lambda-Runtime-Aws-Tenant-Id"] = tenant_id
        inv = Invocation(request_id, payload, headers, int(time.time() * 1000 + spec.timeout * 1000), invoked_arn,
                         trace_header(TRACE.get()) if TRACE.get() else None, on_stream=stream)
        self.api.submit(inv)
        self._dispatch_invoke(request_id, invoked_arn)
        watch = MemoryWatch(self)
        exited = asyncio.ensure_future(self._frames.next(None))
        try:
            done, _ = await asyncio.wait({inv.done, exited}, timeout=spec.timeout,
                                         return_when=asyncio.FIRST_COMPLETED)
        finally:
            watch.cancel()
            if not exited.done():
                exited.cancel()
            self.api.forget(request_id)
        if inv.done in done:
            kind, value = inv.done.result()
            if kind == "response":
                return Outcome(value, log_stream=self.log_stream, streamed=inv.streamed), "success", None, 0
            return self._error_outcome(value), "error", value["errorType"], 0
        if exited in done:
            how = await self._exit_status()
            error_type = "Runtime.OutOfMemory" if _oom(how, self) else "Runtime.ExitError"
            message = f"RequestId: {request_id} Error: Runtime exited with error: {how}"
            self.log(f"{message}\n{error_type}\n")
            return self._error_outcome({"errorType": error_type, "errorMessage": message}), "error", error_type, 0
        peak = self._max_memory_mb()
        self.kill(graceful=False)
        self.log(f"{_iso(self.now_ms())} {request_id} Task timed out after {spec.timeout:.2f} seconds\n")
        return self._error_outcome({
            "errorType": "Sandbox.Timedout",
            "errorMessage": f"RequestId: {request_id} Error: Task timed out after {spec.timeout:.2f} seconds",
        }), "timeout", "Sandbox.Timedout", peak

    async def settle(self) -> None:
        """After an invocation: the environment is free once every extension asked for its next event."""
        if self.api is not None and self.api.extensions and not self.dead:
            idle = asyncio.ensure_future(self.api.extensions_idle(self.spec.timeout))
            gone = asyncio.ensure_future(self._exited.wait())  # every extension exited: none will ask again
            await asyncio.wait({idle, gone}, return_when=asyncio.FIRST_COMPLETED)
            for task in (idle, gone):
                task.cancel()

    def _error_outcome(self, error: dict) -> Outcome:
        return Outcome(json.dumps(error).encode(), error_type=error["errorType"], log_stream=self.log_stream)

    async def _ended(self) -> None:
        self.kill(graceful=False)

    async def _exit_status(self) -> str:
        self.dead = True
        try:
            return await asyncio.wait_for(self.zygote.exit_status(self.pid), 5)
        except asyncio.TimeoutError:
            return "signal: killed"

    def _max_memory_mb(self) -> int:
        try:
            with open(f"/proc/{self.pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        return math.ceil(int(line.split()[1]) / 1024)
        except (OSError, ValueError):
            pass
        return 0

    def kill(self, graceful: bool = True) -> None:
        """End the worker and everything it started. Running external extensions first get
        the Extensions API's SHUTDOWN event and up to two seconds to finish (``graceful``)."""
        if graceful and not self.dead and self.api is not None and self.api.extensions and self.pid:
            self.dead = True
            try:
                task = asyncio.get_running_loop().create_task(self._shutdown())
            except RuntimeError:
                pass
            else:
                _SHUTTING_DOWN.add(task)
                task.add_done_callback(_SHUTTING_DOWN.discard)
                return
        self.dead = True
        if self.api is not None:
            self.api.close()
        if self.pid:
            for target in (lambda: os.killpg(self.pid, 9), lambda: os.kill(self.pid, 9)):
                try:
                    target()
                    break
                except (ProcessLookupError, PermissionError):
                    continue
        if self.transport is not None:
            self.transport.close()
        self.flush_logs()
        import shutil

        shutil.rmtree(self.tmp, ignore_errors=True)


    async def _shutdown(self) -> None:
        api = self.api
        api.flush()
        await api.flushed()
        api.dispatch({"eventType": "SHUTDOWN", "shutdownReason": "spindown",
                      "deadlineMs": int(time.time() * 1000) + SHUTDOWN_MS})
        if self.extensions_running > 0:
            try:
                await asyncio.wait_for(self._exited.wait(), SHUTDOWN_MS / 1000)
            except asyncio.TimeoutError:
                pass
        api.flush()
        await api.flushed()
        self.kill(graceful=False)


_SHUTTING_DOWN: set[asyncio.Task] = set()
INIT_TIMEOUT = 10.0  # Lambda's init phase limit
SHUTDOWN_MS = 2000  # what Lambda gives external extensions after SHUTDOWN


def _stat(path: str) -> tuple[int, int]:
    try:
        st = os.stat(path)
        return st.st_mtime_ns, st.st_size
    except OSError:
        return (0, 0)


def _oom(how: str, env: Environment) -> bool:
    return (how == "exit status 137" or getattr(env, "over_memory", False)) and env.spec.memory_mb > 0


class MemoryWatch:
    """Lambda counts a function's whole footprint against its memory size, shared memory
    too (``mmap.mmap(-1, n)``, which RLIMIT_DATA does not see). While an invocation runs,
    its worker's resident anonymous and shared memory is read every ``EVERY`` seconds and
    a worker past its size is killed, to end as Runtime.OutOfMemory, as on AWS. The
    worker's RLIMIT_AS (bootstrap.limit_address_space) is the hard cap between reads."""

    EVERY = 0.1
    __slots__ = ("env", "handle")

    def __init__(self, env: Environment) -> None:
        self.env = env
        self.handle = asyncio.get_running_loop().call_later(self.EVERY, self._check)

    def cancel(self) -> None:
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None

    def _check(self) -> None:
        env = self.env
        self.handle = None
        if env.dead or not env.pid or env.spec.memory_mb <= 0:
            return
        limit_kb = env.spec.memory_mb * 1024
        # statm's resident size (anonymous + file + shared pages) bounds what counts from above and
        # costs a few microseconds; status, which splits it (RssAnon, RssShmem), is read only past it
        used_kb = _resident_kb(env.pid)
        if used_kb is not None and used_kb > limit_kb:
            used_kb = _anon_and_shared_kb(env.pid)
        if used_kb is None:
            return
        if used_kb > limit_kb:
            env.over_memory = True
            env.kill(graceful=False)
            return
        self.handle = asyncio.get_running_loop().call_later(self.EVERY, self._check)


_PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def _resident_kb(pid: int) -> int | None:
    """The process's resident set (/proc/PID/statm's second field), in KB."""
    try:
        fd = os.open(f"/proc/{pid}/statm", os.O_RDONLY)
        try:
            return int(os.read(fd, 128).split()[1]) * _PAGE_KB
        finally:
            os.close(fd)
    except (OSError, ValueError, IndexError):
        return None


def _anon_and_shared_kb(pid: int) -> int | None:
    """RssAnon + RssShmem from /proc/PID/status: what Lambda counts against the memory size."""
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            text = f.read()
        used = 0
        for name in (b"\nRssAnon:", b"\nRssShmem:"):
            at = text.index(name) + len(name)
            used += int(text[at:text.index(b"\n", at)].split()[0])
        return used
    except (OSError, ValueError, IndexError):
        return None


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + f".{ms % 1000:03d}Z"
