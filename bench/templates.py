"""Issue 21's template benchmark: `unkai up` of a 50-function SAM template.

- cold: `unkai up` on a state directory whose requirements are already installed (the
  second start; the first one installs them), seconds from the process start to
  /_unkai/health saying ready;
- edit: one function's Timeout changed in the running stack's template, seconds from the
  write to Lambda reporting the new Timeout (then /_unkai/drain answers).

    python bench/templates.py [--functions 50]

Targets (issue 21): <= 2 s cold, <= 200 ms for a one-function edit.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))
import harness  # noqa: E402
from template_helpers import make_wheel  # noqa: E402


def template(functions: int, timeout_of_first: int = 3) -> str:
    lines = ["Transform: AWS::Serverless-2016-10-31", "Globals:", "  Function:", "    Runtime: python3.12",
             "    Handler: app.handler", "    CodeUri: src/", "Resources:"]
    for i in range(functions):
        lines += [f"  Fn{i}:", "    Type: AWS::Serverless::Function", "    Properties:",
                  f"      Timeout: {timeout_of_first if i == 0 else 3}",
                  "      Events:", "        Api:", "          Type: HttpApi",
                  "          Properties:", f"            Path: /fn{i}", "            Method: GET"]
    return "\n".join(lines) + "\n"


def start(app: Path, state: Path, port: int) -> tuple[subprocess.Popen, float]:
    began = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "unkai", "up", str(app), "--port", str(port), "--state-dir",
                             str(state)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_unkai/health", timeout=1) as r:
                if json.loads(r.read())["status"] == "ready":
                    return proc, time.perf_counter() - began
        except OSError:
            pass
        if proc.poll() is not None:
            raise RuntimeError("unkai exited")
        time.sleep(0.01)


def first_timeout(port: int) -> int:
    """Fn0's Timeout as Lambda reports it: the edit is applied when it is the new one."""
    import boto3

    kw = dict(endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1", aws_access_key_id="x",
              aws_secret_access_key="x")
    cfn, lam = boto3.client("cloudformation", **kw), boto3.client("lambda", **kw)
    name = cfn.describe_stack_resource(StackName="app", LogicalResourceId="Fn0")["StackResourceDetail"][
        "PhysicalResourceId"]
    return lam.get_function_configuration(FunctionName=name)["Timeout"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--functions", type=int, default=50)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-templates-"))
    try:
        app, state = root / "app", root / "state"
        (app / "src").mkdir(parents=True)
        (app / "template.yaml").write_text(template(args.functions))
        (app / "src" / "app.py").write_text("import tinypkg\n\ndef handler(event, context):\n    return 1\n")
        make_wheel(app / "src")
        (app / "src" / "requirements.txt").write_text("./tinypkg-1.0-py3-none-any.whl\n")
        port = harness.free_port()
        proc, first = start(app, state, port)  # installs the requirements
        proc.terminate()
        proc.wait()
        colds, edits = [], []
        for attempt in range(3):
            proc, cold = start(app, state, port)
            colds.append(cold)
            while first_timeout(port) != 3:  # a restart re-applies the template: wait until it has
                time.sleep(0.05)
            began = time.perf_counter()
            (app / "template.yaml").write_text(template(args.functions, timeout_of_first=4 + attempt))
            while first_timeout(port) != 4 + attempt:
                time.sleep(0.005)
            urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/_unkai/drain", method="POST")).read()
            edits.append(time.perf_counter() - began)
            proc.terminate()
            proc.wait()
            (app / "template.yaml").write_text(template(args.functions))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    result = {"functions": args.functions, "first_start_with_install_s": round(first, 3),
              "cold_s": [round(c, 3) for c in colds], "edit_s": [round(e, 3) for e in edits]}
    print(harness.table([["cold (requirements cached)", f"{min(colds):.2f} s", "<= 2 s"],
                         ["one-function edit (from the file's write, through the watcher, to Lambda's new Timeout)",
                          f"{min(edits) * 1000:.0f} ms", "<= 200 ms"]],
                        ["unkai up, {} functions".format(args.functions), "best of 3", "target"]))
    print(harness.write("templates", result))


if __name__ == "__main__":
    main()
