"""Terraform without a terraform binary (issue 18): ``unkai up`` of
examples/websocket-terraform/envs/dev, seconds until ready (parse, plan, apply of 24
resources, then the server's ready line), and a one-line change (the stage's throttling
burst limit) re-applied by the watcher: from the file write to the apply's end, and the
plan+apply alone as unkai reports it.

    python bench/terraform.py             # writes bench/results/terraform.json
    python bench/terraform.py --runs 5
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import harness  # noqa: E402

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "websocket-terraform"


def wait_for(log: Path, pattern: str, after: int, timeout: float = 60) -> tuple[float, str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")[after:]
        m = re.search(pattern, text)
        if m:
            return time.perf_counter(), m.group(0)
        time.sleep(0.005)
    raise RuntimeError(f"{pattern!r} not seen:\n{log.read_text()[-3000:]}")


def one_run() -> dict[str, float]:
    work = Path(tempfile.mkdtemp(prefix="bench-tf-"))
    shutil.copytree(EXAMPLE, work / "example")
    root = work / "example" / "envs" / "dev"
    started = time.perf_counter()
    server = harness.start_unkai(str(root))
    try:
        log = Path(server.log.name)
        _, line = wait_for(log, r"ready in (\d+) ms", 0)
        ready_ms = float(re.search(r"(\d+)", line).group(1))
        # wall time from spawning the process to the health check answering ready
        while True:
            with urllib.request.urlopen(server.endpoint + "/_unkai/health", timeout=5) as resp:
                if b'"ready"' in resp.read():
                    break
            time.sleep(0.005)
        wall_ready = time.perf_counter() - started
        stage = root.parent.parent / "modules" / "websocket" / "api-gateway.tf"
        reapply_ms, apply_only_ms = [], []
        for burst in (4000, 4500, 5000):
            time.sleep(1.0)  # the watcher re-arms after each apply; a write before that is not seen
            text = stage.read_text()
            offset = len(log.read_text(errors="replace"))
            stage.write_text(re.sub(r"throttling_burst_limit   = \d+", f"throttling_burst_limit   = {burst}", text))
            t0 = time.perf_counter()
            t1, line = wait_for(log, r"planned and applied in (\d+) ms", offset)
            reapply_ms.append((t1 - t0) * 1000)
            apply_only_ms.append(float(re.search(r"(\d+) ms", line).group(1)))
        import boto3

        stage_doc = boto3.client("apigatewayv2", endpoint_url=server.endpoint, region_name="ap-northeast-1",
                                 aws_access_key_id="test", aws_secret_access_key="test")
        api = stage_doc.get_apis()["Items"][0]["ApiId"]
        assert stage_doc.get_stage(ApiId=api, StageName="example")["DefaultRouteSettings"][
            "ThrottlingBurstLimit"] == 5000
        return {"ready_wall_s": wall_ready, "ready_reported_ms": ready_ms,
                "reapply_from_write_ms": statistics.median(reapply_ms),
                "reapply_plan_and_apply_ms": statistics.median(apply_only_ms)}
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


def bare_ready_ms() -> float:
    """``unkai up`` with nothing to apply, on the same machine: the server's own start-up."""
    server = harness.start_unkai()
    try:
        _, line = wait_for(Path(server.log.name), r"ready in (\d+) ms", 0)
        return float(re.search(r"(\d+)", line).group(1))
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    runs = [dict(one_run(), bare_ready_reported_ms=bare_ready_ms()) for _ in range(args.runs)]
    summary = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    rows = [["unkai up (spawn to ready), s", f"{summary['ready_wall_s']:.2f}", "<= 1.5 s"],
            ["  as unkai reports it ('ready in'), ms", f"{summary['ready_reported_ms']:.0f}", ""],
            ["  unkai up with nothing to apply ('ready in'), ms", f"{summary['bare_ready_reported_ms']:.0f}", ""],
            ["one-line change, file write to applied, ms", f"{summary['reapply_from_write_ms']:.0f}",
             "<= 300 ms (includes the watcher's 200 ms debounce)"],
            ["  plan + apply alone, ms", f"{summary['reapply_plan_and_apply_ms']:.0f}", ""]]
    print(harness.table(rows, ["examples/websocket-terraform", "median", "issue 18 target"]))
    path = harness.write("terraform", {"runs": runs, "median": summary})
    print(f"written to {path}")


if __name__ == "__main__":
    main()
