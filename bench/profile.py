"""Where the server's CPU goes per call: unkai run under cProfile (CPU time, not wall), WARM + N
calls of one operation through boto3, minus a run of WARM calls only (start-up, the model's
first load and shutdown cancel out), grouped by area.

    python bench/profile.py --op sqs-send --calls 3000     # or secret-get, sts

cProfile slows Python code about 4x, so read the shares, not the microseconds. Writes
bench/results/profile-OP.txt."""

from __future__ import annotations

import argparse
import pstats
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import boto3

sys.path.insert(0, str(Path(__file__).parent))
import harness  # noqa: E402

WARM = 20

RUNNER = """
import cProfile, sys, time
from unkai.cli import main
profile = cProfile.Profile(time.process_time)
profile.enable()
try:
    main(sys.argv[2:])
except BaseException:
    pass
finally:
    profile.disable()
    profile.dump_stats(sys.argv[1])
"""


def calls(op: str, endpoint: str):
    kw = dict(endpoint_url=endpoint, **harness.CREDS)
    if op == "sqs-send":
        sqs = boto3.client("sqs", **kw)
        url = sqs.create_queue(QueueName="q")["QueueUrl"]
        return lambda: sqs.send_message(QueueUrl=url, MessageBody="hello")
    if op == "secret-get":
        sm = boto3.client("secretsmanager", **kw)
        sm.create_secret(Name="s", SecretString="x")
        return lambda: sm.get_secret_value(SecretId="s")
    sts = boto3.client("sts", **kw)
    return lambda: sts.get_caller_identity()


def area(file: str, name: str) -> str:
    f = file.replace("\\", "/")
    if "/unkai/" in f:
        rest = f.split("/unkai/", 1)[1]
        parts = rest.split("/")
        return "unkai/" + "/".join(parts[:2] if parts[0] == "services" else parts[:1])
    if "uvicorn" in f or "httptools" in f:
        return "uvicorn + httptools"
    if "asyncio" in f or "uvloop" in f:
        return "asyncio + uvloop"
    if "sqlite3" in name:
        return "sqlite3 (C calls)"
    if f == "~":
        return "built-ins: " + name.split(" of ")[0].strip("<>")[:50]
    return "stdlib/other: " + (f.rsplit("/", 1)[-1] if "/" in f else f)


def profile(op: str, n: int) -> dict[str, float]:
    state = tempfile.mkdtemp(prefix="bench-profile-")
    out = str(Path(state) / "server.prof")
    port = harness.free_port()
    proc = subprocess.Popen([sys.executable, "-c", RUNNER, out, "up", "--no-template", "--port", str(port),
                             "--state-dir", str(Path(state) / "state"), "--quiet"], stdout=subprocess.DEVNULL,
                            cwd=state)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(endpoint + "/_unkai/health", timeout=1).read()
                break
            except OSError:
                time.sleep(0.05)
        else:
            raise RuntimeError("unkai did not answer within 30 s")
        call = calls(op, endpoint)
        for _ in range(WARM + n):
            call()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(120)
    areas: dict[str, float] = {}
    for (file, _, name), (_, _, tottime, _, _) in pstats.Stats(out).stats.items():
        if name == "stop" and file.endswith("unkai/cloud.py"):
            continue  # shutdown (its time grows with what the calls stored): not part of a call
        key = area(file, name)
        areas[key] = areas.get(key, 0.0) + tottime
    shutil.rmtree(state, ignore_errors=True)
    return areas


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--op", choices=("sqs-send", "secret-get", "sts"), default="sqs-send")
    parser.add_argument("--calls", type=int, default=3000)
    args = parser.parse_args()
    busy, idle = profile(args.op, args.calls), profile(args.op, 0)
    per = {k: (busy.get(k, 0.0) - idle.get(k, 0.0)) / args.calls * 1e6 for k in set(busy) | set(idle)}
    total = sum(v for v in per.values() if v > 0)
    lines = [f"{args.op}: server CPU per call under cProfile {total:.0f} us (about 4x the unprofiled time), "
             f"by area ({WARM} + {args.calls} calls minus {WARM} calls; load {harness.os.getloadavg()[0]:.1f})",
             "| area | us per call (profiled) | share |", "|---|---|---|"]
    for key, value in sorted(per.items(), key=lambda kv: -kv[1]):
        if value / total >= 0.01:
            lines.append(f"| {key} | {value:.1f} | {value / total:.1%} |")
    text = "\n".join(lines) + "\n"
    print(text)
    harness.RESULTS.mkdir(exist_ok=True)
    (harness.RESULTS / f"profile-{args.op}.txt").write_text(text)


if __name__ == "__main__":
    main()
