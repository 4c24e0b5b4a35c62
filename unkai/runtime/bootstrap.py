"""The Python side of unkai's Lambda runtime: a fork server and the workers it forks.

This file runs under the function's interpreter (any CPython 3.8+), not under unkai,
so it uses the standard library only. Started as ``python -S bootstrap.py SDK_DIR FD``
with the control socket's fd as FD, it imports boto3 and botocore once (the fork
server, or zygote) and then forks one worker per execution environment on request:
a worker starts with the SDK already in memory, so a handler that imports boto3
initialises in milliseconds.

Frames on every socket are ``type (1 byte) + length (4 bytes, big endian) + body``.

Control socket (unkai <-> zygote):
  unkai -> ``F`` JSON spec, with the worker's socket passed as SCM_RIGHTS
  zygote -> ``Z`` ready, ``P`` {"id", "pid"} forked, ``X`` {"pid", "status"} exited

Worker socket (unkai <-> one worker):
  worker -> ``N`` init done {"ok", "init_ms", "error"?, "files"}
  unkai -> ``I`` JSON header + NUL + event payload
  worker -> ``L`` output (one event per line), ``G`` one log event, ``R`` response payload,
  ``E`` error JSON, ``J`` the event is not JSON; each of ``R``, ``E`` and ``J`` comes
  right after (in the same write as) ``M``, the worker's peak RSS so far in KiB
"""

from __future__ import annotations

import array
import decimal
import errno
import io
import json
import os
import selectors
import signal
import socket
import struct
import sys
import threading
import time
import traceback

try:
    import resource
except ImportError:  # not a Unix: no peak to report (unkai then looks in /proc)
    resource = None

HEADER = struct.Struct("!cI")
MiB = 1024 * 1024
MAXRSS_UNIT = 1 if sys.platform.startswith("linux") else 1024 if sys.platform == "darwin" else 0  # ru_maxrss: KiB, bytes


# -- framing -------------------------------------------------------------------------

def send_frame(sock, kind, body, lock=None):
    data = HEADER.pack(kind, len(body)) + body
    if lock is None:
        sock.sendall(data)
    else:
        with lock:
            sock.sendall(data)


def recv_exact(sock, n):
    chunks = []
    while n:
        chunk = sock.recv(min(n, 1 << 20))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def recv_frame(sock):
    kind, length = HEADER.unpack(recv_exact(sock, HEADER.size))
    return kind, recv_exact(sock, length) if length else b""


def read_frames(sock):
    """Frames from ``sock`` until it closes, read through a buffer: one recv per frame, not two."""
    stream = sock.makefile("rb", buffering=1 << 16)
    while True:
        try:
            head = stream.read(HEADER.size)
            if len(head) < HEADER.size:
                return
            kind, length = HEADER.unpack(head)
            body = stream.read(length) if length else b""
        except OSError:
            return
        if len(body) < length:
            return
        yield kind, body


# -- the zygote ----------------------------------------------------------------------

def warm_sdk(sdk_dir):
    """Import the SDK and share one model loader between every boto3 session, so a
    worker's first client reads no JSON from disk."""
    sys.path = sys.path + [sdk_dir]
    try:
        import boto3  # noqa: F401
        import botocore.loaders
        import botocore.session
    except ImportError:  # the SDK does not load on this interpreter: workers import it themselves
        sys.path.remove(sdk_dir)
        return
    shared = botocore.loaders.create_loader()
    botocore.loaders.create_loader = lambda search_paths_envvar=None: shared
    session = botocore.session.Session()
    session.register_component("data_loader", shared)
    for name in ("endpoints", "partitions", "sdk-default-configuration", "_retry"):
        try:
            shared.load_data(name)
        except Exception:
            pass
    for service in ("sqs", "sns", "s3", "dynamodb", "lambda", "ses", "ssm", "events", "logs", "sts",
                    "apigatewaymanagementapi", "kinesis", "secretsmanager", "scheduler", "sesv2"):
        try:
            shared.load_service_model(service, "service-2")
            shared.load_service_model(service, "endpoint-rule-set-1")
        except Exception:
            pass


STDLIB = []


def zygote(control_fd, sdk_dir):
    del sys.path[0]  # this script's directory is not the handler's business
    STDLIB[:] = sys.path
    warm_sdk(sdk_dir)
    control = socket.socket(fileno=control_fd)
    rfd, wfd = os.pipe()
    os.set_blocking(wfd, False)
    signal.set_wakeup_fd(wfd)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sel = selectors.DefaultSelector()
    sel.register(control, selectors.EVENT_READ, "control")
    sel.register(rfd, selectors.EVENT_READ, "signal")
    send_frame(control, b"Z", b"{}")
    while True:
        for key, _ in sel.select():
            if key.data == "signal":
                os.read(rfd, 4096)
                reap(control)
                continue
            try:
                msg, fds = receive_spec(control)
            except EOFError:
                os._exit(0)  # unkai went away: so do we (workers notice their own socket closing)
            pid = os.fork()
            if pid == 0:
                sel.close()
                os.close(rfd)
                os.close(wfd)
                signal.set_wakeup_fd(-1)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                control.close()
                worker(json.loads(msg.decode()), fds[0])
                os._exit(0)
            for fd in fds:
                os.close(fd)
            spec = json.loads(msg.decode())
            send_frame(control, b"P", json.dumps({"id": spec["id"], "pid": pid}).encode())
        reap(control)


def receive_spec(control):
    fds = array.array("i")
    header = b""
    while len(header) < HEADER.size:
        data, ancdata, _, _ = control.recvmsg(HEADER.size - len(header), socket.CMSG_SPACE(4 * fds.itemsize))
        if not data:
            raise EOFError
        header += data
        for level, kind, cdata in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(cdata[: len(cdata) - (len(cdata) % fds.itemsize)])
    _, length = HEADER.unpack(header)
    return recv_exact(control, length), list(fds)


def reap(control):
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        send_frame(control, b"X", json.dumps({"pid": pid, "status": describe_status(status)}).encode())


def describe_status(status):
    """AWS's words for how a runtime process ended."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        names = {signal.SIGSEGV: "segmentation fault", signal.SIGKILL: "killed", signal.SIGABRT: "aborted",
                 signal.SIGTERM: "terminated", signal.SIGBUS: "bus error", signal.SIGFPE: "floating point exception",
                 signal.SIGILL: "illegal instruction"}
        return "signal: " + names.get(sig, signal.Signals(sig).name.lower())
    return "exit status %d" % os.WEXITSTATUS(status)


# -- a worker (one execution environment) ---------------------------------------------

class LambdaContext:
    """The context object AWS's Python runtime passes to handlers."""

    def __init__(self, header, env):
        self.aws_request_id = header["request_id"]
        self.log_group_name = env.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = env.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.function_name = env.get("AWS_LAMBDA_FUNCTION_NAME")
        self.memory_limit_in_mb = env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.function_version = env.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.invoked_function_arn = header["invoked_function_arn"]
        self.tenant_id = header.get("tenant_id")
        self._deadline = time.monotonic() + header["remaining_ms"] / 1000.0
        self._epoch_deadline_time_in_ms = int(time.time() * 1000 + header["remaining_ms"])
        self.identity = CognitoIdentity(header.get("identity") or {})
        cc = header.get("client_context")
        self.client_context = ClientContext(cc) if cc is not None else None

    def get_remaining_time_in_millis(self):
        return max(int((self._deadline - time.monotonic()) * 1000), 0)

    def log(self, msg):
        sys.stdout.write(str(msg))

    def __repr__(self):
        return ("LambdaContext([aws_request_id=%s,log_group_name=%s,log_stream_name=%s,function_name=%s,"
                "memory_limit_in_mb=%s,function_version=%s,invoked_function_arn=%s,client_context=%s,identity=%s])"
                % (self.aws_request_id, self.log_group_name, self.log_stream_name, self.function_name,
                   self.memory_limit_in_mb, self.function_version, self.invoked_function_arn, self.client_context,
                   self.identity))


class CognitoIdentity:
    def __init__(self, data):
        self.cognito_identity_id = data.get("cognitoIdentityId")
        self.cognito_identity_pool_id = data.get("cognitoIdentityPoolId")

    def __repr__(self):
        return "CognitoIdentity([cognito_identity_id=%s,cognito_identity_pool_id=%s])" % (
            self.cognito_identity_id, self.cognito_identity_pool_id)


class ClientContext:
    def __init__(self, data):
        self.client = data.get("client")
        self.custom = data.get("custom")
        self.env = data.get("env")

    def __repr__(self):
        return "ClientContext([client=%s,custom=%s,env=%s])" % (self.client, self.custom, self.env)


class LogStream(io.TextIOBase):
    """sys.stdout / sys.stderr: each line becomes a log event, in order with results."""

    def __init__(self, channel, fileno):
        self.channel = channel
        self._fileno = fileno
        self.buffer_text = ""

    def writable(self):
        return True

    def fileno(self):
        return self._fileno

    def isatty(self):
        return False

    @property
    def encoding(self):
        return "utf-8"

    def write(self, text):
        if not isinstance(text, str):
            raise TypeError("write() argument must be str, not %s" % type(text).__name__)
        self.buffer_text += text
        if "\n" in self.buffer_text:
            done, _, self.buffer_text = self.buffer_text.rpartition("\n")
            self.channel.log(done + "\n")
        return len(text)

    def flush(self):
        if self.buffer_text:
            text, self.buffer_text = self.buffer_text, ""
            self.channel.log(text)


class Channel:
    def __init__(self, sock):
        self.sock = sock
        self.lock = threading.Lock()

    def send(self, kind, body):
        send_frame(self.sock, kind, body, self.lock)

    def answer(self, kind, body):
        """An invocation's answer, with the peak memory unkai reports as Max Memory Used."""
        peak = peak_kib()
        if peak is None:
            self.send(kind, body)
            return
        peak = b"%d" % peak
        with self.lock:
            self.sock.sendall(HEADER.pack(b"M", len(peak)) + peak + HEADER.pack(kind, len(body)) + body)

    def log(self, text):
        if text:
            self.send(b"L", text.encode("utf-8", "replace"))

    def event(self, text):
        """One log event as it is, newlines and all (logging records, error reports)."""
        self.send(b"G", text.encode("utf-8", "replace"))


class FaultError(Exception):
    def __init__(self, error_type, message, stack=None):
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.stack = stack or []


def worker(spec, sock_fd):
    started = time.monotonic()
    sock = socket.socket(fileno=sock_fd)
    channel = Channel(sock)
    try:
        os.setsid()
    except OSError:
        pass
    setup_process(spec, channel)
    redirect_aws_hosts(spec.get("endpoint") or "")
    handler, error = None, None
    try:
        handler = load_handler(spec["handler"])
    except FaultError as exc:
        error = {"errorMessage": exc.message, "errorType": exc.error_type, "requestId": "", "stackTrace": exc.stack}
        log_fault(channel, exc)
    except MemoryError:
        error = {"errorType": "Runtime.OutOfMemory", "errorMessage": "Runtime exited with error: out of memory"}
    sys.stdout.flush()
    sys.stderr.flush()
    init_ms = (time.monotonic() - started) * 1000.0
    files = code_files(spec.get("watch_roots") or [])
    channel.send(b"N", json.dumps({"ok": error is None, "init_ms": init_ms, "error": error, "files": files}).encode())
    if error is not None:
        os._exit(1)
    serve(handler, channel, sock)


def setup_process(spec, channel):
    limit = spec.get("memory_mb")
    if limit and resource is not None:
        try:
            floor = data_size() + 16 * MiB
            resource.setrlimit(resource.RLIMIT_DATA, (max(limit * MiB, floor), max(limit * MiB, floor)))
        except (ValueError, OSError):
            pass
        limit_address_space(limit)
    limit_file_size(spec.get("ephemeral_mb") or 512)
    os.environ.clear()
    os.environ.update(spec["env"])
    if hasattr(time, "tzset"):
        time.tzset()
    tmp = spec["tmp"]
    os.makedirs(tmp, exist_ok=True)
    import tempfile
    tempfile.tempdir = None
    os.chdir(spec["task_root"])
    sys.path[:] = [p for p in spec["sys_path"] if p] + STDLIB + [spec["sdk_dir"]]
    # sys.argv as AWS's bootstrap leaves it
    sys.argv = ["/var/runtime/bootstrap.py"]
    # fd-level output (C extensions, subprocesses) reaches the log through a pipe
    rfd, wfd = os.pipe()
    os.dup2(wfd, 1)
    os.dup2(wfd, 2)
    os.close(wfd)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    threading.Thread(target=pump_fd, args=(rfd, channel), daemon=True).start()
    sys.stdout = LogStream(channel, 1)
    sys.stderr = LogStream(channel, 2)
    setup_logging(channel)


def redirect_aws_hosts(endpoint):
    """Send every request botocore makes to an AWS host name (an explicit endpoint_url
    such as https://sqs.ap-northeast-1.amazonaws.com, or the execute-api endpoint a
    WebSocket handler builds) to unkai over http, keeping the Host header, so the
    signature stays valid and unkai routes it as AWS would."""
    if not endpoint:
        return
    try:
        from botocore import httpsession
    except ImportError:
        return
    from urllib.parse import urlsplit, urlunsplit
    local = urlsplit(endpoint).netloc
    original = httpsession.URLLib3Session.send

    def send(self, request):
        parts = urlsplit(request.url)
        host = (parts.hostname or "").lower()
        if host.endswith((".amazonaws.com", ".amazonaws.com.cn", ".on.aws")):
            if "Host" not in request.headers:
                default = (parts.scheme == "https" and parts.port in (None, 443)) or \
                    (parts.scheme == "http" and parts.port in (None, 80))
                request.headers["Host"] = parts.hostname if default else parts.netloc
            request.url = urlunsplit(("http", local, parts.path, parts.query, ""))
        return original(self, request)

    httpsession.URLLib3Session.send = send


def peak_kib():
    """The process's peak resident set size in KiB (what /proc/PID/status calls VmHWM)."""
    if resource is None or not MAXRSS_UNIT:
        return None
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // MAXRSS_UNIT


AS_HEADROOM = 1024 * MiB  # thread stacks (8 MB each) and malloc arenas reserve space they never touch


def limit_address_space(limit_mb):
    """RLIMIT_DATA counts private memory only: a shared anonymous mapping (``mmap.mmap(-1, n)``)
    escapes it. Cap the whole address space too, at what the process maps now plus its
    memory size and room for reservations never touched (thread stacks), with malloc kept
    to two arenas so threads do not reserve 64 MB each. What is touched is watched by the
    server (environment.MemoryWatch)."""
    try:
        import ctypes

        ctypes.CDLL(None).mallopt(-8, 2)  # M_ARENA_MAX
    except (OSError, AttributeError):
        pass
    try:
        cap = address_space() + limit_mb * MiB + AS_HEADROOM
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    except (ValueError, OSError):
        pass


def limit_file_size(ephemeral_mb):
    """Lambda's ephemeral storage (512 MB unless EphemeralStorage says more) as the largest
    file the function may write: past it a write fails with EFBIG (no SIGXFSZ kill)."""
    if resource is None:
        return
    try:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        size = int(ephemeral_mb) * MiB
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
    except (ValueError, OSError):
        pass


def address_space():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def data_size():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmData:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def pump_fd(fd, channel):
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError as exc:
            if exc.errno == errno.EINTR:
                continue
            return
        if not data:
            return
        channel.send(b"L", data)


CURRENT = {"request_id": None}


def setup_logging(channel):
    import logging

    class LambdaLoggerHandler(logging.Handler):
        def emit(self, record):
            try:
                channel.event(self.format(record))
            except Exception:
                self.handleError(record)

    class LambdaLoggerFilter(logging.Filter):
        def filter(self, record):
            record.aws_request_id = CURRENT["request_id"] or ""
            return True

    logging.Formatter.converter = time.gmtime
    handler = LambdaLoggerHandler()
    handler.setFormatter(logging.Formatter(
        "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n", "%Y-%m-%dT%H:%M:%S"))
    handler.addFilter(LambdaLoggerFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    level = os.environ.get("AWS_LAMBDA_LOG_LEVEL")
    if level:
        root.setLevel(level.upper())


def load_handler(name):
    import importlib
    try:
        modname, fname = name.rsplit(".", 1)
    except ValueError as exc:
        raise FaultError("Runtime.MalformedHandlerName", "Bad handler '%s': %s" % (name, exc))
    modname = modname.replace("/", ".")
    try:
        module = importlib.import_module(modname)
    except ImportError as exc:
        raise FaultError("Runtime.ImportModuleError", "Unable to import module '%s': %s" % (modname, exc))
    except SyntaxError as exc:
        trace = ['  File "%s" Line %s\n    %s\n' % (exc.filename, exc.lineno, (exc.text or "").rstrip("\n"))]
        raise FaultError("Runtime.UserCodeSyntaxError", "Syntax error in module '%s': %s" % (modname, exc), trace)
    except Exception as exc:
        raise FaultError(type(exc).__name__, str(exc), stack_trace(exc))
    handler = getattr(module, fname, None)
    if handler is None:
        raise FaultError("Runtime.HandlerNotFound", "Handler '%s' missing on module '%s'" % (fname, modname))
    return handler


def code_files(roots):
    """Source files the handler loaded from its code: unkai reloads the environment when one changes."""
    found = []
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if path and any(path.startswith(root) for root in roots):
            found.append(path)
    return found


def stack_trace(exc):
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if f.filename != __file__ and not f.filename.startswith("<frozen importlib")]
    return traceback.format_list(frames)


def log_fault(channel, exc):
    lines = "[ERROR] %s: %s" % (exc.error_type, exc.message)
    if exc.stack:
        lines += "\nTraceback (most recent call last):\n" + "".join(exc.stack).rstrip("\n")
    channel.event(lines + "\n")


def to_json(value):
    def default(obj):
        if isinstance(obj, decimal.Decimal):
            return int(obj) if obj == obj.to_integral_value() else float(obj)
        raise TypeError("Object of type %s is not JSON serializable" % type(obj).__name__)
    return json.dumps(value, default=default).encode()


def serve(handler, channel, sock):
    env = dict(os.environ)
    for kind, body in read_frames(sock):
        if kind != b"I":
            continue
        raw_header, _, payload = body.partition(b"\0")
        header = json.loads(raw_header.decode())
        CURRENT["request_id"] = header["request_id"]
        if header.get("trace"):  # as on AWS: boto3 sends it on as X-Amzn-Trace-Id
            os.environ["_X_AMZN_TRACE_ID"] = header["trace"]
        else:
            os.environ.pop("_X_AMZN_TRACE_ID", None)
        try:
            event = json.loads(payload.decode("utf-8")) if payload.strip() else {}
        except ValueError as exc:
            channel.answer(b"J", str(exc).encode())
            continue
        context = LambdaContext(header, env)
        try:
            result = handler(event, context)
            try:
                out = to_json(result)
            except (TypeError, ValueError) as exc:
                raise FaultError("Runtime.MarshalError", "Unable to marshal response: %s" % exc)
        except FaultError as exc:
            error = {"errorMessage": exc.message, "errorType": exc.error_type,
                     "requestId": header["request_id"], "stackTrace": exc.stack}
            log_fault(channel, exc)
            flush_std()
            channel.answer(b"E", json.dumps(error).encode())
            continue
        except MemoryError:
            flush_std()
            channel.send(b"E", json.dumps({"errorType": "Runtime.OutOfMemory", "oom": True}).encode())
            os._exit(137)
        except Exception as exc:
            error = {"errorMessage": str(exc), "errorType": type(exc).__name__,
                     "requestId": header["request_id"], "stackTrace": stack_trace(exc)}
            log_fault(channel, FaultError(type(exc).__name__, str(exc), error["stackTrace"]))
            flush_std()
            channel.answer(b"E", json.dumps(error).encode())
            continue
        flush_std()
        channel.answer(b"R", out)
    os._exit(0)


def flush_std():
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass


if __name__ == "__main__":
    zygote(int(sys.argv[2]), sys.argv[1])
