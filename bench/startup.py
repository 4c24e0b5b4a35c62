"""Start-up time and idle memory: unkai with no template, unkai with examples/qa-form,
moto's server and ministack, started in turns (round-robin) in one run.

    python bench/startup.py [--rounds 5] [--src DIR] [--before DIR] [--no-peers]

"Ready" is the first answer from the server's health URL that says so (unkai:
``/_unkai/health`` with ``"status": "ready"``, after the template is deployed), timed
from the process's spawn. RSS and PSS are read 1 s after ready, idle. unkai is measured
twice: with Python's bytecode cache (``__pycache__`` written by an earlier run, the
usual case) and with ``PYTHONDONTWRITEBYTECODE=1`` and no cache, where every module is
compiled at each start (some machines set it in the environment).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
import harness  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
_FROM_SRC = harness._FROM_SRC


def start(argv: list[str], url: str, env: dict[str, str], cwd: str | None = None,
          ready: str | None = None) -> dict[str, Any]:
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=cwd)
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{argv} exited with {proc.returncode}")
            if time.perf_counter() - t0 > 120:
                raise RuntimeError(f"{argv} not ready in 120 s")
            try:
                body = urllib.request.urlopen(url, timeout=2).read()
                if ready is None or ready.encode() in body:
                    break
            except urllib.error.HTTPError:
                if ready is None:
                    break
            except OSError:
                pass
            time.sleep(0.002)
        elapsed = time.perf_counter() - t0
        cpu = cpu_ms(proc.pid)
        time.sleep(1)
        return {"ready_ms": elapsed * 1000, "cpu_ms": cpu, "rss_mb": harness.rss_mb(proc.pid), "pss_mb": harness.pss_mb(proc.pid)}
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def cpu_ms(pid: int) -> float:
    """User + system CPU time the process (and the children it has waited for) used so far:
    steadier than wall time on a loaded machine, where ready_ms includes waiting for a core."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
    return ticks * 1000 / os.sysconf("SC_CLK_TCK")


def unkai_argv(src: str | None) -> list[str]:
    if src:
        return [sys.executable, "-c", _FROM_SRC.format(src=src)]
    return [sys.executable, "-m", "unkai"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--src", help="run unkai from this source tree instead of the installed one")
    parser.add_argument("--before", help="also start the unkai in this source tree (an older commit), in turns")
    parser.add_argument("--no-peers", action="store_true")
    parser.add_argument("--no-template", action="store_true", help="skip unkai up examples/qa-form")
    parser.add_argument("--out", default="startup")
    args = parser.parse_args()
    src_root = Path(args.src) if args.src else ROOT
    exe = Path(sys.executable)
    base_env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    nocache_env = dict(base_env, PYTHONDONTWRITEBYTECODE="1", PYTHONPYCACHEPREFIX=tempfile.mkdtemp(prefix="nopyc-"))
    targets: dict[str, Any] = {}

    def unkai(src: str | None, extra: list[str], env: dict[str, str]) -> Any:
        root = Path(src) if src else src_root

        def run() -> dict[str, Any]:
            port = harness.free_port()
            return start(unkai_argv(src) + ["up", "--ephemeral", "--port", str(port), *extra],
                         f"http://127.0.0.1:{port}/_unkai/health", env, cwd=str(root), ready='"ready"')
        return run

    trees = [(args.before, "unkai before"), (args.src, "unkai")] if args.before else [(args.src, "unkai")]
    for src, label in trees:
        root = Path(src) if src else src_root
        targets[f"{label}, no template (bytecode cached)"] = unkai(src, ["--no-template"], base_env)
        targets[f"{label}, no template (PYTHONDONTWRITEBYTECODE=1)"] = unkai(src, ["--no-template"], nocache_env)
        if not args.no_template:
            targets[f"{label} examples/qa-form (warm: bytecode and requirements cached)"] = unkai(
                src, [str(root / "examples" / "qa-form")], base_env)
    if not args.no_peers:
        def moto() -> dict[str, Any]:
            port = harness.free_port()
            return start([str(exe.with_name("moto_server")), "-p", str(port)],
                         f"http://127.0.0.1:{port}/moto-api/", base_env)

        def ministack() -> dict[str, Any]:
            port = harness.free_port()
            return start([str(exe.with_name("ministack"))], f"http://127.0.0.1:{port}/_localstack/health",
                         dict(base_env, GATEWAY_PORT=str(port), LOG_LEVEL="WARNING"),
                         cwd=tempfile.mkdtemp(prefix="bench-ministack-"))

        targets["moto server (bytecode cached)"] = moto
        targets["ministack (bytecode cached)"] = ministack
    # one untimed start of each writes the bytecode caches and (qa-form) the requirements cache
    for name, run in targets.items():
        if "PYTHONDONTWRITEBYTECODE" not in name:
            run()
    samples: dict[str, list[dict[str, Any]]] = {name: [] for name in targets}
    load = [os.getloadavg()]
    for _ in range(args.rounds):
        for name, run in targets.items():
            samples[name].append(run())
        load.append(os.getloadavg())
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=src_root).stdout.strip()
    results: dict[str, Any] = {"rounds": args.rounds, "commit": commit, "before": args.before or "", "load_average": load, "targets": {}}
    rows = []
    for name, runs in samples.items():
        r = {key: round(statistics.median(s[key] for s in runs), 1) for key in ("ready_ms", "cpu_ms", "rss_mb", "pss_mb")}
        r["ready_ms_min"] = round(min(s["ready_ms"] for s in runs), 1)
        results["targets"][name] = r
        rows.append([name, f"{r['ready_ms']:,.0f} (min {r['ready_ms_min']:,.0f})", f"{r['cpu_ms']:,.0f}", r["rss_mb"], r["pss_mb"]])
    path = harness.write(args.out, results)
    print(harness.table(rows, ["server", "ready, median ms", "CPU until ready, ms", "idle RSS MB", "idle PSS MB"]))
    print(f"load average during the run: {load[0]} .. {load[-1]}")
    print(f"\nwritten to {path}")


if __name__ == "__main__":
    main()
