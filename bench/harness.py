"""What every benchmark shares: starting the servers under comparison (unkai, the
floor, moto's server, ministack) on loopback, timing calls, and writing results.

The floor is a trivial keep-alive HTTP server that answers each request with a
canned response recorded from unkai's own answer to the same request, so the client
parses the very same bytes: whatever time remains is boto3's own cost.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import shutil
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).with_name("results")
CREDS = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench", "region_name": "us-east-1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A server process under test."""

    def __init__(self, name: str, argv: list[str], port: int, env: dict[str, str] | None = None,
                 ready_path: str = "/", cwd: str | None = None, timeout: float = 60) -> None:
        self.name = name
        self.port = port
        self.endpoint = f"http://127.0.0.1:{port}"
        self.log = tempfile.NamedTemporaryFile(prefix=f"bench-{name}-", suffix=".log", delete=False)
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                     env=dict(os.environ, **(env or {})), cwd=cwd)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{name} exited: {Path(self.log.name).read_text()[-2000:]}")
            try:
                urllib.request.urlopen(self.endpoint + ready_path, timeout=1).read()
                return
            except urllib.error.HTTPError:
                return  # it answers
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{name} did not start")

    def client(self, service: str, **kw: Any) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(service, endpoint_url=self.endpoint, config=Config(retries={"max_attempts": 0}),
                            **CREDS, **kw)

    def rss_mb(self) -> float:
        return rss_mb(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()


# UNKAI_BENCH_SRC=DIR runs the unkai in DIR (e.g. an older commit unpacked with `git archive`)
# instead of the installed one, for before/after figures from the same script. The editable
# install's finder sits on sys.meta_path and would win over sys.path, so it is dropped first.
_FROM_SRC = ("import runpy, sys; sys.meta_path = [f for f in sys.meta_path if 'editable' not in repr(f).lower()];"
             " sys.path.insert(0, {src!r}); sys.argv[0] = 'unkai'; runpy.run_module('unkai', run_name='__main__')")


def unkai_command() -> list[str]:
    src = os.environ.get("UNKAI_BENCH_SRC")
    return [sys.executable, "-c", _FROM_SRC.format(src=src)] if src else [sys.executable, "-m", "unkai"]


def start_unkai(*args: str) -> Server:
    port = free_port()
    return Server("unkai", [*unkai_command(), "up", "--ephemeral", "--port", str(port), *args],
                  port, ready_path="/_unkai/health")


def start_moto() -> Server:
    port = free_port()
    exe = Path(sys.executable).with_name("moto_server")
    return Server("moto", [str(exe), "-p", str(port)], port, ready_path="/moto-api/")


def start_ministack() -> Server:
    """ministack from ``MINISTACK`` (its executable, in a venv of its own: it pins botocore exactly),
    else from this venv or PATH."""
    port = free_port()
    beside = Path(sys.executable).with_name("ministack")
    exe = os.environ.get("MINISTACK") or (str(beside) if beside.exists() else shutil.which("ministack") or str(beside))
    home = tempfile.mkdtemp(prefix="bench-ministack-")
    return Server("ministack", [str(exe)], port, env={"GATEWAY_PORT": str(port), "LOG_LEVEL": "WARNING"},
                  ready_path="/_localstack/health", cwd=home)


def start_floor(canned: dict[str, dict[str, Any]]) -> Server:
    """The floor server, answering each request key with its canned response."""
    port = free_port()
    spec = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
    json.dump(canned, spec)
    spec.close()
    return Server("floor", [sys.executable, str(Path(__file__).with_name("floor.py")), str(port), spec.name],
                  port, ready_path="/__ready")


@contextmanager
def compared(make: Callable[[Server], Any], floor_of: Callable[[Any], Any]) -> Iterator[dict[str, Any]]:
    """The targets of one comparison, in report order: the floor (``floor_of`` gets unkai's
    target, whose answers it records and replays), unkai, then moto's server and
    ministack when they start. Each target has ``.server``; all are stopped afterwards."""
    targets: dict[str, Any] = {}
    try:
        server = start_unkai()
        try:
            unkai = targets["unkai"] = make(server)
        except BaseException:
            server.stop()
            raise
        targets = {"floor": floor_of(unkai), **targets}
        for start in (start_moto, start_ministack):
            try:
                server = start()
            except Exception as exc:  # not installed, or it would not start: measure the rest
                print(f"could not start {start.__name__}: {exc}")
                continue
            try:
                targets[server.name] = make(server)
            except Exception as exc:
                print(f"could not use {server.name}: {exc}")
                server.stop()
        yield targets
    finally:
        for target in targets.values():
            target.server.stop()


def request_key(method: str, path: str, target: str | None, action: str | None) -> str:
    return f"{method} {path} {target or ''} {action or ''}"


def record(client: Any, call: Callable[[Any], Any]) -> dict[str, Any]:
    """Run ``call(client)`` once and capture the request's key and the raw response (canned data for the floor)."""
    from urllib.parse import parse_qs, urlsplit

    captured: dict[str, Any] = {}

    def on_request(request: Any, **kwargs: Any) -> None:
        body = request.body or b""
        body = body.encode() if isinstance(body, str) else body
        if not isinstance(body, (bytes, bytearray)):  # a streamed body (S3 uploads): no Action in it
            body = b""
        action = parse_qs(body.decode()).get("Action", [None])[0] if b"Action=" in body else None
        target = request.headers.get("X-Amz-Target")
        target = target.decode() if isinstance(target, bytes) else target
        captured["key"] = request_key(request.method, urlsplit(request.url).path, target, action)

    def on_response(response_dict: Any = None, **kwargs: Any) -> None:
        captured["status"] = response_dict["status_code"]
        captured["headers"] = {k: v for k, v in response_dict["headers"].items()
                               if k.lower() not in ("date", "content-length", "connection", "server")}
        body = response_dict["body"]
        if not isinstance(body, (bytes, bytearray)):  # a streamed payload (Lambda Invoke): read it here
            body = body.read()
        captured["body"] = base64.b64encode(body).decode()

    client.meta.events.register("before-send", on_request)
    client.meta.events.register("response-received", on_response)
    try:
        call(client)
    finally:
        client.meta.events.unregister("before-send", on_request)
        client.meta.events.unregister("response-received", on_response)
    return captured


def timed(fn: Callable[[], Any], n: int, warmup: int = 50) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def stats(samples: list[float]) -> dict[str, float]:
    s = sorted(samples)
    return {
        "median_ms": round(statistics.median(s) * 1000, 3),
        "p99_ms": round(s[min(len(s) - 1, int(len(s) * 0.99))] * 1000, 3),
        "mean_ms": round(statistics.fmean(s) * 1000, 3),
        "n": len(s),
    }


def _proc_mb(pid: int, file: str, field: str) -> float:
    """A size in MB from a /proc/PID file (NaN once the process is gone)."""
    try:
        for line in Path(f"/proc/{pid}/{file}").read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def cpu_seconds(pid: int, children: bool = False) -> float:
    """User + system CPU seconds of a process (with ``children``: also of its children that
    exited and were waited for); 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12]) + ((int(fields[13]) + int(fields[14])) if children else 0)
    return ticks / os.sysconf("SC_CLK_TCK")


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (Lambda workers, their fork server...)."""
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        try:
            kids = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
        except OSError:
            continue
        found += [int(k) for k in kids]
        todo += [int(k) for k in kids]
    return found


def rss_mb(pid: int) -> float:
    return _proc_mb(pid, "status", "VmRSS:")


def pss_mb(pid: int) -> float:
    """Proportional set size: forked workers share their parent's pages, which RSS would count again in each."""
    return _proc_mb(pid, "smaps_rollup", "Pss:")


def machine() -> dict[str, Any]:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).parent,
                                capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "os": platform.platform(), "date": dt.date.today().isoformat(),
            "time_utc": dt.datetime.now(dt.timezone.utc).strftime("%H:%M"), "commit": commit,
            "load_average": [round(x, 1) for x in os.getloadavg()]}  # a shared machine: how busy it was


def write(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    data = {"benchmark": name, "machine": machine(), **data}
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


def merge(name: str, data: dict[str, Any]) -> Path:
    """Update some measures of ``results/NAME.json`` (a part run on its own), each with the
    machine it was measured on."""
    path = RESULTS / f"{name}.json"
    try:
        current = json.loads(path.read_text())
    except (OSError, ValueError):
        current = {"benchmark": name}
    for key, value in data.items():
        current[key] = {**value, "measured_on": machine()} if isinstance(value, dict) else value
    path.write_text(json.dumps(current, indent=2) + "\n")
    return path


def table(rows: list[list[Any]], headers: list[str]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
