"""A function's worker sees what a Lambda sandbox shows it and nothing of unkai's (issue 11,
finding 8 and finding 10): not the state dir (other functions' environments, SecureStrings,
objects), not other workers' environments through /proc, and a read-only file system
outside /tmp, as on AWS. Thread stacks it never touches do not count against its memory."""

from __future__ import annotations

import ctypes
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lambda_code import call, deploy  # noqa: E402

CODE = """
import errno, os, threading


def handler(event, context):
    what = event["try"]
    path = event.get("path", "")
    try:
        if what == "pid":
            return os.getpid()
        if what == "read":
            with open(path, "rb") as f:
                f.read(16)
            return "read"
        if what == "list":
            os.listdir(path)
            return "listed"
        if what == "write":
            with open(path, "w") as f:
                f.write("x")
            if not event.get("keep"):
                os.remove(path)
            return "written"
        if what == "fill":  # real blocks, not a sparse file: the sum of /tmp counts
            written = 0
            for n in range(event["files"]):
                with open(f"/tmp/fill{n}", "wb") as f:
                    os.posix_fallocate(f.fileno(), 0, event["mb"] << 20)
                written += event["mb"]
            return written
        if what == "threads":  # 16 live threads reserve 128 MB of stacks they never touch
            barrier = threading.Barrier(17)
            threads = [threading.Thread(target=barrier.wait) for _ in range(16)]
            for t in threads:
                t.start()
            barrier.wait()
            for t in threads:
                t.join()
            return len(threads)
    except OSError as exc:
        return errno.errorcode.get(exc.errno, "") if what == "fill" else type(exc).__name__
    finally:
        if what == "fill":
            for name in os.listdir("/tmp"):
                if name.startswith("fill"):
                    os.remove(os.path.join("/tmp", name))
"""


def landlock_abi() -> int:
    """The kernel's Landlock ABI version, 0 without it (unkai then runs workers unsandboxed)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return max(0, libc.syscall(444, None, 0, 1))
    except (OSError, AttributeError):
        return 0


def namespaces() -> bool:
    """Whether a worker can have a /tmp of its own: a mount namespace (root, or user namespaces
    allowed), and nothing it needs under /tmp (unkai, its interpreter), which the mount hides."""
    import unkai

    if any(os.path.realpath(p).startswith("/tmp/") for p in (sys.prefix, sys.base_prefix, unkai.__file__)):
        return False
    if os.getuid() == 0:
        return True
    import subprocess

    try:
        return subprocess.run(["unshare", "-Urm", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


needs_namespaces = pytest.mark.skipif(not sys.platform.startswith("linux") or not namespaces(),
                                      reason="no private /tmp here (no mount namespaces, or unkai itself lives under /tmp)")
needs_landlock = pytest.mark.skipif(not sys.platform.startswith("linux") or landlock_abi() < 1,
                                    reason="this kernel has no Landlock: unkai's workers run unsandboxed here")


@pytest.fixture(scope="module")
def outside():
    """A server whose state dir is not under /tmp, as a project's ``.unkai`` is: its workers
    get a private /tmp (a state dir under /tmp stays reachable and shared /tmp writable)."""
    from unkai.testing import UnkaiServer

    base = Path(tempfile.mkdtemp(prefix="unkai-sandbox-", dir=Path.home()))
    server = UnkaiServer(base / "project" / ".unkai").start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


@needs_landlock
def test_worker_cannot_read_state_dir_or_other_workers(outside):
    unkai = outside
    lam = unkai.client("lambda")
    spy = deploy(lam, CODE, MemorySize=128)
    other = deploy(lam, CODE, Environment={"Variables": {"DB_PASSWORD": "hunter2"}})
    _, other_pid = call(lam, other, {"try": "pid"})
    state = str(unkai.state_dir.resolve())

    assert call(lam, spy, {"try": "read", "path": os.path.join(state, "unkai.db")})[1] == "PermissionError"
    assert call(lam, spy, {"try": "list", "path": state})[1] == "PermissionError"
    assert call(lam, spy, {"try": "read", "path": f"/proc/{other_pid}/environ"})[1] == "PermissionError"
    assert call(lam, spy, {"try": "read", "path": f"/proc/{unkai.proc.pid}/environ"})[1] == "PermissionError"
    # what a function needs stays readable: its own process, the interpreter, system files
    assert call(lam, other, {"try": "read", "path": "/proc/self/environ"})[1] == "read"
    assert call(lam, spy, {"try": "read", "path": sys.executable})[1] == "read"
    assert call(lam, spy, {"try": "list", "path": "/etc"})[1] == "listed"


@needs_landlock
@needs_namespaces
def test_file_system_is_read_only_outside_a_private_tmp(outside):
    unkai = outside
    lam = unkai.client("lambda")
    fn = deploy(lam, CODE)
    other = deploy(lam, CODE)
    assert call(lam, fn, {"try": "write", "path": "/tmp/scratch"})[1] == "written"
    assert call(lam, fn, {"try": "write", "path": "/tmp/kept", "keep": True})[1] == "written"
    assert call(lam, other, {"try": "read", "path": "/tmp/kept"})[1] == "FileNotFoundError"  # its own /tmp
    assert call(lam, fn, {"try": "write", "path": "scratch"})[1] == "PermissionError"  # the code's own dir
    assert call(lam, fn, {"try": "write", "path": str(unkai.state_dir.parent / "planted")})[1] == "PermissionError"
    assert not (unkai.state_dir.parent / "planted").exists()


@needs_namespaces
def test_ephemeral_storage_caps_the_sum_of_tmp(outside):
    lam = outside.client("lambda")
    fn = deploy(lam, CODE)  # 512 MB by default
    assert call(lam, fn, {"try": "fill", "files": 2, "mb": 200})[1] == 400
    assert call(lam, fn, {"try": "fill", "files": 3, "mb": 200})[1] == "ENOSPC"  # each file fits, the sum does not
    large = deploy(lam, CODE, EphemeralStorage={"Size": 1024})
    assert call(lam, large, {"try": "fill", "files": 3, "mb": 200})[1] == 600


def test_untouched_thread_stacks_fit_in_128_mb(unkai):
    lam = unkai.client("lambda")
    fn = deploy(lam, CODE, MemorySize=128)
    resp, payload = call(lam, fn, {"try": "threads"})
    assert "FunctionError" not in resp, payload
    assert payload == 16
