"""The unkai side of a fork server: one per interpreter, started on first use, asked
to fork a worker per execution environment and to report how each one ended."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import subprocess
from pathlib import Path

from unkai.runtime.bootstrap import HEADER

log = logging.getLogger("unkai.lambda")

BOOTSTRAP = Path(__file__).with_name("bootstrap.py")
# what AWS's Python runtime provides besides the standard library: the SDK, pip, and
# aws_durable_execution_sdk_python for durable functions
SDK_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six", "urllib3", "pip",
                "aws_durable_execution_sdk_python")


def sdk_dir(root: Path) -> Path:
    """A directory holding only what AWS's Python runtime provides (boto3 and its
    dependencies, and pip), linked from unkai's own environment."""
    import importlib.util

    target = root / "sdk"
    target.mkdir(parents=True, exist_ok=True)
    for name in SDK_PACKAGES:
        try:  # found, not imported: importing boto3 and the durable SDK cost the server ~0.5 s of CPU
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            continue
        if spec is None or not spec.origin or not os.path.exists(spec.origin):
            continue
        source = Path(spec.origin)
        source = source.parent if source.name == "__init__.py" else source
        link = target / source.name
        if link.is_symlink() and Path(os.readlink(link)) == source:
            continue
        link.unlink(missing_ok=True)
        link.symlink_to(source)
    return target


class ZygoteDied(Exception):
    pass


class Zygote:
    def __init__(self, executable: str, sdk: Path) -> None:
        self.executable = executable
        self.sdk = sdk
        self.proc: subprocess.Popen | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.sock: socket.socket | None = None
        self._ready: asyncio.Future | None = None
        self._forks: dict[str, asyncio.Future] = {}
        self._exits: dict[int, asyncio.Future] = {}
        self._statuses: dict[int, str] = {}
        self._start_lock = asyncio.Lock()
        self._reader_task: asyncio.Task | None = None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    async def ensure(self) -> None:
        async with self._start_lock:
            if self.alive and self._ready is not None and self._ready.done() and not self._ready.exception():
                return
            await self._start()

    async def _start(self) -> None:
        from unkai.runtime.sdk import sdk_for

        self.sdk = await sdk_for(self.executable, self.sdk)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        self.proc = subprocess.Popen(
            [self.executable, "-S", str(BOOTSTRAP), str(self.sdk), str(theirs.fileno())],
            pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, env=env,
        )
        theirs.close()
        self.sock = ours
        loop = asyncio.get_running_loop()
        self._ready = loop.create_future()
        reader, self.writer = await asyncio.open_unix_connection(sock=ours)
        self._reader_task = asyncio.create_task(self._read(reader))
        await self._ready

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                head = await reader.readexactly(HEADER.size)
                kind, length = HEADER.unpack(head)
                body = json.loads(await reader.readexactly(length)) if length else {}
                if kind == b"Z":
                    self._ready.set_result(None)
                elif kind == b"P":
                    fut = self._forks.pop(body["id"], None)
                    if fut and not fut.done():
                        fut.set_result(body["pid"])
                elif kind == b"X":
                    pid = body["pid"]
                    fut = self._exits.pop(pid, None)
                    if fut and not fut.done():
                        fut.set_result(body["status"])
                    else:
                        self._statuses[pid] = body["status"]
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        error = ZygoteDied(f"the Python fork server ({self.executable}) exited")
        if self._ready and not self._ready.done():
            self._ready.set_exception(error)
        for fut in list(self._forks.values()):
            if not fut.done():
                fut.set_exception(error)
        self._forks.clear()
        for fut in list(self._exits.values()):
            if not fut.done():
                fut.set_result("signal: killed")
        self._exits.clear()

    async def fork(self, env_id: str, spec: dict, sock: socket.socket) -> int:
        """Fork a worker that will talk over ``sock``; its pid."""
        await self.ensure()
        fut = asyncio.get_running_loop().create_future()
        self._forks[env_id] = fut
        body = json.dumps(dict(spec, id=env_id)).encode()
        # The worker's socket travels with the frame's first bytes (SCM_RIGHTS).
        self.sock.sendmsg([HEADER.pack(b"F", len(body)) + body],
                          [(socket.SOL_SOCKET, socket.SCM_RIGHTS, bytes(_fd_array(sock.fileno())))])
        return await fut

    def exit_status(self, pid: int) -> asyncio.Future:
        """A future for how ``pid`` ended (AWS's words: ``exit status 1``, ``signal: killed``)."""
        fut = asyncio.get_running_loop().create_future()
        if pid in self._statuses:
            fut.set_result(self._statuses.pop(pid))
        elif not self.alive:
            fut.set_result("signal: killed")
        else:
            self._exits[pid] = fut
        return fut

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        if self._reader_task is not None:
            self._reader_task.cancel()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass


def _fd_array(fd: int) -> bytes:
    import array

    return array.array("i", [fd]).tobytes()
