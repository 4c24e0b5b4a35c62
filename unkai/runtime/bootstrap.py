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
  right after (in the same write as) ``M``, the worker's peak RSS so far in KiB;
  ``T`` an external extension's output, ``K`` {"name", "status"} an extension exited

A custom runtime (``exec`` in the spec: a ``bootstrap`` executable) and external
extensions (``extensions``: executables from the layers' ``extensions/``) are started by
the worker after its sandbox and limits are in place, so they inherit both; they talk to
unkai over the Runtime API (``AWS_LAMBDA_RUNTIME_API``), not over this socket.
"""

from __future__ import annotations

import array
import decimal
import errno
import gc
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

class _UniquePaths(list):
    """The shared loader's search paths: every boto3 Session appends its data directory,
    once is enough."""

    def append(self, path):
        if path not in self:
            super().append(path)


def warm_sdk(sdk_dir):
    """Import the SDK and share one model loader between every boto3 session, so a
    worker's first client or resource reads no JSON from disk."""
    sys.path = sys.path + [sdk_dir]
    try:
        import boto3
        import botocore.loaders
        import botocore.session
    except ImportError:  # the SDK does not load on this interpreter: workers import it themselves
        sys.path.remove(sdk_dir)
        return
    shared = botocore.loaders.create_loader()
    shared._search_paths = _UniquePaths(shared.search_paths)
    # botocore.session holds its own reference to create_loader (a from-import): patch both
    botocore.loaders.create_loader = botocore.session.create_loader = lambda search_paths_envvar=None: shared
    session = boto3.Session(region_name="us-east-1")  # adds boto3's resource models to the shared path
    for name in ("endpoints", "partitions", "sdk-default-configuration", "_retry"):
        try:
            shared.load_data(name)
        except Exception:
            pass
    resources = set(session.get_available_resources())
    for service in ("sqs", "sns", "s3", "dynamodb", "lambda", "ses", "ssm", "events", "logs", "sts",
                    "apigatewaymanagementapi", "kinesis", "secretsmanager", "scheduler", "sesv2"):
        try:
            types = ["service-2", "endpoint-rule-set-1"] + (["resources-1"] if service in resources else [])
            for kind in types:
                version = shared.determine_latest_version(service, kind)
                shared.load_service_model(service, kind, version)  # fills load_data's cache by path
        except Exception:
            pass
    # What a handler's first resource, S3 call or request imports on top (every cold worker
    # did, 20-25 ms of CPU for a DynamoDB + S3 + SQS + SES handler): imported once, here.
    for module in ("boto3.dynamodb.conditions", "boto3.dynamodb.table", "boto3.dynamodb.transform",
                   "boto3.dynamodb.types", "boto3.s3.inject", "boto3.s3.transfer", "s3transfer.subscribers",
                   "encodings.idna"):
        try:
            __import__(module)
        except Exception:  # not in this SDK version
            pass


STDLIB = []


def zygote(control_fd, sdk_dir):
    del sys.path[0]  # this script's directory is not the handler's business
    STDLIB[:] = sys.path
    warm_sdk(sdk_dir)
    try:
        import ctypes  # noqa: F401 - every worker's sandbox and limits use it: load it once, here
    except ImportError:
        pass
    # What the zygote loaded (the SDK, its models) is shared with every worker it forks. The
    # collector's passes write into each object's header, which would copy every page they sit
    # on into each worker: frozen, they are never walked, and the pages stay shared.
    gc.collect()
    gc.freeze()
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
    if spec.get("extensions"):
        start_extensions(spec["extensions"], channel)
    if spec.get("exec"):
        run_executable(spec["exec"], channel, sock)  # a custom runtime: never returns
    redirect_aws_hosts(spec.get("endpoint") or "")
    redirect_default_port(spec.get("endpoint") or "")
    if spec.get("debug"):
        start_debugger(spec["debug"])
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


def start_debugger(debug):
    """``unkai up --debug``: listen for a DAP client (VS Code, PyCharm) and, unless told not
    to, wait for it before the handler is loaded. debugpy comes from the directory unkai
    links it into; its compiled speed-ups are for unkai's interpreter, so they are off."""
    for key in ("PYDEVD_USE_CYTHON", "PYDEVD_USE_FRAME_EVAL"):
        os.environ[key] = "NO"
    os.environ["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"
    sys.path.insert(0, debug["path"])
    try:
        import debugpy

        debugpy.listen(("127.0.0.1", debug["port"]))
    except Exception as exc:  # the port is taken, or debugpy cannot run here: run undebugged, and say why
        print("unkai: debugpy could not listen on 127.0.0.1:%s: %s" % (debug["port"], exc), file=sys.stderr)
        return
    print("unkai: debugpy listening on 127.0.0.1:%s%s" % (
        debug["port"], "; waiting for a debugger to attach" if debug.get("wait") else ""), file=sys.stderr)
    sys.stderr.flush()
    if debug.get("wait"):
        debugpy.wait_for_client()


def setup_process(spec, channel):
    enter_sandbox(spec)  # first, while the worker has a single thread (user namespaces need that)
    limit = None if spec.get("debug") else spec.get("memory_mb")  # a debugger's memory is not the function's
    if limit and resource is not None:
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


DEFAULT_PORT = 4566  # unkai's default port (unkai/config.py)


def redirect_default_port(endpoint):
    """Inside a worker, ``localhost:4566`` (unkai's default port, which templates' local
    defaults name, such as a webhook URL pointing at ``/_unkai/inbox/...``) reaches the unkai
    running the worker whatever its ``--port``: a connection to the loopback address on
    port 4566 is made to unkai's own port instead. A template keeps a plain URL that
    deploys to AWS unchanged (where it is overridden), and examples run on any port."""
    from urllib.parse import urlsplit

    parts = urlsplit(endpoint)
    if parts.port in (None, DEFAULT_PORT) or parts.hostname not in ("127.0.0.1", "localhost"):
        return
    target = (parts.hostname, parts.port)
    loopback = ("127.0.0.1", "localhost")

    def mapped(address):
        if isinstance(address, tuple) and len(address) == 2 and address[1] == DEFAULT_PORT \
                and address[0] in loopback:
            return target
        return address

    original_connect, original_connect_ex = socket.socket.connect, socket.socket.connect_ex
    socket.socket.connect = lambda self, address: original_connect(self, mapped(address))
    socket.socket.connect_ex = lambda self, address: original_connect_ex(self, mapped(address))


# -- sandbox ---------------------------------------------------------------------------
# A Lambda function sees its code, the runtime and a /tmp of its own, and cannot write
# anywhere else; here it must also not see unkai's state dir (every function's environment,
# SecureStrings, objects) nor other workers' /proc entries. Linux only, best effort: without
# Landlock or namespaces the worker runs as before (docs/security.md says what then differs).

CLONE_NEWNS, CLONE_NEWUSER = 0x00020000, 0x10000000
MS_BIND, MS_REC, MS_PRIVATE = 0x1000, 0x4000, 0x40000
PR_SET_NO_NEW_PRIVS = 38
LANDLOCK_CREATE_RULESET, LANDLOCK_ADD_RULE, LANDLOCK_RESTRICT_SELF = 444, 445, 446  # one number on every arch
FS_EXECUTE, FS_WRITE_FILE, FS_READ_FILE, FS_READ_DIR = 1, 2, 4, 8
FS_REFER, FS_TRUNCATE, FS_IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
FILE_RIGHTS = FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE | FS_IOCTL_DEV


def enter_sandbox(spec):
    if not sys.platform.startswith("linux") or not spec.get("hide"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
    except (ImportError, OSError):
        return
    private = private_tmp(libc, spec)
    restrict_files(libc, ctypes, spec, private)
    if os.getuid() == 0:
        drop_capabilities(libc, ctypes)


def private_tmp(libc, spec):
    """Give the worker a /tmp of its own, in a mount namespace of its own (a user namespace
    too when not root), as on AWS: a tmpfs of the function's EphemeralStorage size, so that
    writing past it fails with ENOSPC as there (or the environment's directory, where tmpfs
    cannot be mounted). Not when a path the worker needs lives under /tmp (a state dir
    there, as in test suites): the mount would hide it."""
    shared = os.path.realpath("/tmp").rstrip("/") + "/"
    needed = [spec["tmp"], spec["sdk_dir"], *spec["sys_path"], *spec["hide"], __file__, sys.prefix,
              *spec.get("layers", []), spec.get("exec"),
              (spec.get("debug") or {}).get("path"),
              sys.base_prefix, *STDLIB]
    if any(os.path.realpath(p).startswith(shared) for p in needed if p):
        return False
    tmp = spec["tmp"]
    uid, gid = os.getuid(), os.getgid()
    flags = CLONE_NEWNS if uid == 0 else CLONE_NEWNS | CLONE_NEWUSER
    if libc.unshare(flags) != 0:
        return False
    if flags & CLONE_NEWUSER:
        try:
            for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
                with open(f"/proc/self/{name}", "w") as f:
                    f.write(text)
        except OSError:
            return False
    if libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        return False
    size = f"size={int(spec.get('ephemeral_mb') or 512)}m,mode=0700,uid={uid},gid={gid}".encode()
    if libc.mount(b"tmpfs", b"/tmp", b"tmpfs", 0, size) != 0 and \
            libc.mount(tmp.encode(), b"/tmp", None, MS_BIND, None) != 0:
        return False
    for name in ("TMPDIR", "HOME"):
        if spec["env"].get(name) == tmp:
            spec["env"][name] = "/tmp"
    return True


def drop_capabilities(libc, ctypes):
    """Lambda runs a function as an unprivileged user. A worker of a root unkai keeps uid 0
    (its files stay its own) but loses every capability, so it cannot read past file modes
    or other processes' memory and environment (CAP_SYS_PTRACE would bypass Landlock's scope)."""
    for cap in range(64):
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP, until past the last capability
            break
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
    data = (ctypes.c_uint32 * 6)()  # effective, permitted, inheritable: twice 32 bits, all empty
    libc.capset(header, data)


def restrict_files(libc, ctypes, spec, private):
    """Landlock: read everything but the hidden dirs, write only /tmp (and /dev/null).
    Being in a Landlock domain also keeps the worker from reading other processes'
    /proc/PID/environ (ptrace access is scoped to the domain). A /tmp shared with the
    machine (no private mount) stays writable as a whole."""
    abi = libc.syscall(LANDLOCK_CREATE_RULESET, None, 0, 1)
    if abi < 1:
        return False
    handled = (1 << 13) - 1 | (FS_REFER if abi >= 2 else 0) | (FS_TRUNCATE if abi >= 3 else 0) \
        | (FS_IOCTL_DEV if abi >= 5 else 0)

    class PathBeneath(ctypes.Structure):
        _pack_ = 1
        _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]

    attr = ctypes.c_uint64(handled)
    ruleset = libc.syscall(LANDLOCK_CREATE_RULESET, ctypes.byref(attr), 8, 0)
    if ruleset < 0:
        return False
    hidden = [os.path.realpath(p) for p in spec["hide"]]

    def add(path, rights):
        try:
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except OSError:
            return
        try:
            if not os.path.isdir(path):
                rights &= FILE_RIGHTS
            rule = PathBeneath(rights & handled, fd)
            libc.syscall(LANDLOCK_ADD_RULE, ruleset, 1, ctypes.byref(rule), 0)
        finally:
            os.close(fd)

    def grant(path, rights):
        """Grant ``path``'s tree, stepping around the hidden dirs inside it: a rule covers a
        whole tree, so an ancestor of a hidden dir is granted through its other entries."""
        real = os.path.realpath(path)
        inside = [h for h in hidden if h.startswith(real.rstrip("/") + "/")]
        if not inside:
            add(real, rights)
            return
        try:
            entries = [e.path for e in os.scandir(real)]
        except OSError:
            return
        for entry in entries:
            child = os.path.realpath(entry)
            if child in hidden or any(child.startswith(h + "/") for h in hidden):
                continue
            grant(child, rights)

    read = FS_EXECUTE | FS_READ_FILE | FS_READ_DIR | FS_IOCTL_DEV
    try:
        grant("/", read)
        for path in [*spec["sys_path"], *spec.get("layers", []), spec["sdk_dir"],
                     os.path.dirname(os.path.abspath(__file__)),
                     (spec.get("debug") or {}).get("path")]:
            if path:
                grant(path, read)
        grant(spec["tmp"], handled)
        add(os.path.realpath("/tmp"), handled)  # the private one, or the machine's as a whole
        add("/dev/null", FS_READ_FILE | FS_WRITE_FILE | FS_TRUNCATE)
        if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            return False
        return libc.syscall(LANDLOCK_RESTRICT_SELF, ruleset, 0) == 0
    finally:
        os.close(ruleset)


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


def pump_fd(fd, channel, kind=b"L"):
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError as exc:
            if exc.errno == errno.EINTR:
                continue
            return
        if not data:
            return
        channel.send(kind, data)


CURRENT = {"request_id": None}
JSON_LEVELS = {"WARNING": "WARN", "CRITICAL": "FATAL"}  # AWS's level names in JSON logs


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

    class JsonFormatter(logging.Formatter):
        """LoggingConfig LogFormat JSON: each record as AWS's Python runtime writes it."""

        def format(self, record):
            out = {"timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
                   + ".%03dZ" % record.msecs,
                   "level": JSON_LEVELS.get(record.levelname, record.levelname), "message": record.getMessage(),
                   "logger": record.name, "requestId": getattr(record, "aws_request_id", "")}
            if record.exc_info and record.exc_info[1] is not None:
                out["errorType"] = type(record.exc_info[1]).__name__
                out["errorMessage"] = str(record.exc_info[1])
                out["stackTrace"] = traceback.format_tb(record.exc_info[2])
            out["location"] = "%s:%s:%d" % (record.pathname, record.funcName, record.lineno)
            return json.dumps(out, default=str) + "\n"

    logging.Formatter.converter = time.gmtime
    handler = LambdaLoggerHandler()
    if os.environ.get("AWS_LAMBDA_LOG_FORMAT") == "JSON":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(
            "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n", "%Y-%m-%dT%H:%M:%S"))
    handler.addFilter(LambdaLoggerFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    level = os.environ.get("AWS_LAMBDA_LOG_LEVEL")
    if level:
        root.setLevel({"TRACE": "DEBUG"}.get(level.upper(), level.upper()))


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
    end_extensions()
    os._exit(0)


EXTENSIONS = {}  # pid -> name of the external extensions this worker started


def start_extensions(paths, channel):
    """Start each external extension (``/opt/extensions/*``) beside the runtime, as Lambda's
    init phase does; their output is logged as extension output, and each exit is reported."""
    rfd, wfd = os.pipe()
    threading.Thread(target=pump_fd, args=(rfd, channel, b"T"), daemon=True).start()
    for path in paths:
        name = os.path.basename(path)
        try:
            pid = os.posix_spawn(path, [path], dict(os.environ),
                                 file_actions=[(os.POSIX_SPAWN_DUP2, wfd, 1), (os.POSIX_SPAWN_DUP2, wfd, 2)])
        except OSError as exc:
            channel.event("[ERROR] could not start extension %s: %s\n" % (name, exc))
            continue
        EXTENSIONS[pid] = name
        threading.Thread(target=watch_extension, args=(pid, name, channel), daemon=True).start()
    os.close(wfd)


def watch_extension(pid, name, channel):
    try:
        _, status = os.waitpid(pid, 0)
    except ChildProcessError:
        return
    EXTENSIONS.pop(pid, None)
    try:
        channel.send(b"K", json.dumps({"name": name, "status": describe_status(status)}).encode())
    except OSError:
        pass


def end_extensions():
    for pid in list(EXTENSIONS):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def run_executable(path, channel, sock):
    """A custom runtime: run ``bootstrap`` (output to the log), and end as it ends. When unkai
    closes the socket, the runtime and the extensions go too."""
    try:
        pid = os.posix_spawn(path, [path], dict(os.environ))
    except OSError as exc:
        channel.event("[ERROR] could not start %s: %s\n" % (path, exc))
        end_extensions()
        os._exit(127)

    def watch_socket():
        for _ in read_frames(sock):
            pass
        end_extensions()
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
        os._exit(0)

    threading.Thread(target=watch_socket, daemon=True).start()
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except InterruptedError:
            continue
    time.sleep(0.05)  # let the pump pass on the runtime's last output
    end_extensions()
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
    os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1)


def flush_std():
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass


if __name__ == "__main__":
    zygote(int(sys.argv[2]), sys.argv[1])
