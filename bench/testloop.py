"""A test suite's loop against the flagship: 200 small pytest tests over examples/qa-form,
each isolated by ``unkai_clean`` (a reset to the deployed stack), against the same tests
each given a freshly started unkai (the isolation a restart buys).

Each small test writes through real clients and asserts that nothing from an earlier test
is left: a DynamoDB item in the stack's table, an S3 object, a new SQS queue with a
message, a webhook call in the inbox. The suite runs as a user's would, with
``python -m pytest`` in a subprocess; its conftest records every reset's time as the
client saw it (the POST's round trip) and as the server measured it.

    python bench/testloop.py [--tests 200] [--restarts 10]

Restarting is measured over ``--restarts`` tests (each a fresh ``unkai up`` of the
flagship: deploy included) and projected to the suite's size.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

CONFTEST = '''
import json, os, time
import pytest
from unkai.testing import UnkaiServer

pytest_plugins = ["unkai.testing"]
EXAMPLE = {example!r}
TIMES = {times!r}
MODE = {mode!r}
samples = []


def start(tmp):
    port = UnkaiServer.free_port()
    endpoint = f"http://127.0.0.1:{{port}}"
    return UnkaiServer(tmp / "state", EXAMPLE, "--quiet",
                       "--parameter-overrides", f"TeamsWebhookUrl={{endpoint}}/_unkai/inbox/teams",
                       "--parameter-overrides", f"BacklogUrl={{endpoint}}/_unkai/inbox/backlog?apiKey=",
                       port=port).start(timeout=180)


@pytest.fixture(scope="session")
def unkai(tmp_path_factory):
    if MODE != "reset":
        yield None
        return
    server = start(tmp_path_factory.mktemp("qa"))
    yield server
    server.stop()


@pytest.fixture
def unkai_clean(unkai, tmp_path_factory):
    if MODE == "reset":
        began = time.perf_counter()
        answer = unkai.reset()
        samples.append({{"client_ms": (time.perf_counter() - began) * 1000, "server_ms": answer["ms"]}})
        yield unkai
        return
    began = time.perf_counter()
    server = start(tmp_path_factory.mktemp("qa"))
    samples.append({{"client_ms": (time.perf_counter() - began) * 1000}})
    yield server
    server.stop()


def pytest_sessionfinish(session):
    with open(TIMES, "w") as handle:
        json.dump(samples, handle)
'''

TESTS = '''
import json, urllib.request, uuid


def test_item_{i}(unkai_clean):
    table = unkai_clean.resource("dynamodb").Table("qa-questions")
    assert table.scan()["Items"] == []
    table.put_item(Item={{"project_id": "P-{i}", "submit_datetime": "2026-01-01T00:00:00Z"}})
    assert len(table.scan()["Items"]) == 1


def test_object_{i}(unkai_clean):
    s3 = unkai_clean.client("s3")
    s3.create_bucket(Bucket="scratch")
    s3.put_object(Bucket="scratch", Key="k{i}", Body=b"x" * 100_000)
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="scratch")["Contents"]] == ["k{i}"]


def test_queue_{i}(unkai_clean):
    sqs = unkai_clean.client("sqs")
    url = sqs.create_queue(QueueName="scratch")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="m{i}")
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in got] == ["m{i}"]


def test_inbox_{i}(unkai_clean):
    assert unkai_clean.get("/_unkai/inbox") == []
    urllib.request.urlopen(urllib.request.Request(unkai_clean.url("/_unkai/inbox/teams"), data=b"{{}}"))
    assert len(unkai_clean.inbox("teams")) == 1
'''


def ms_stats(samples: list[float]) -> dict[str, float]:
    s = sorted(samples)
    return {"median": round(statistics.median(s), 2), "p95": round(s[min(len(s) - 1, int(len(s) * 0.95))], 2),
            "max": round(s[-1], 2), "n": len(s)}


def run_suite(tests: int, mode: str, work: Path) -> dict:
    suite = work / mode
    suite.mkdir()
    times = suite / "times.json"
    (suite / "conftest.py").write_text(CONFTEST.format(example=str(ROOT / "examples" / "qa-form"),
                                                       times=str(times), mode=mode))
    body = "".join(textwrap.dedent(TESTS).format(i=i) for i in range(tests // 4))
    (suite / "test_loop.py").write_text(body)
    began = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:xdist",
                           "-p", "no:cacheprovider", "--rootdir", str(suite), str(suite)],
                          cwd=suite, capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    total = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"the {mode} suite failed:\n{done.stdout[-4000:]}\n{done.stderr[-2000:]}")
    samples = json.loads(times.read_text())
    client = [s["client_ms"] for s in samples]
    result = {"tests": len(samples), "total_s": round(total, 2),
              "per_test_isolation_ms": ms_stats(client),
              "summary": done.stdout.strip().splitlines()[-1]}
    if mode == "reset":
        result["server_reset_ms"] = ms_stats([s["server_ms"] for s in samples])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tests", type=int, default=200)
    parser.add_argument("--restarts", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="unkai-testloop-") as tmp:
        reset = run_suite(args.tests, "reset", Path(tmp))
        restart = run_suite(args.restarts, "restart", Path(tmp))
    per_restart = restart["per_test_isolation_ms"]["median"]
    projected = reset["total_s"] - reset["tests"] * reset["per_test_isolation_ms"]["median"] / 1000 \
        + reset["tests"] * per_restart / 1000
    data = {"reset": reset, "restart": restart, "restart_projected_total_s": round(projected, 1)}
    path = harness.write("testloop", data)
    rows = [
        ["tests", reset["tests"], f"{restart['tests']} (projected to {reset['tests']})"],
        ["suite total", f"{reset['total_s']:.1f} s", f"{projected:.1f} s"],
        ["isolation per test, median (client)", f"{reset['per_test_isolation_ms']['median']:.1f} ms",
         f"{per_restart:.0f} ms"],
        ["isolation per test, p95 (client)", f"{reset['per_test_isolation_ms']['p95']:.1f} ms",
         f"{restart['per_test_isolation_ms']['p95']:.0f} ms"],
        ["reset inside the server, median / p95", f"{reset['server_reset_ms']['median']:.1f} / "
         f"{reset['server_reset_ms']['p95']:.1f} ms", ""],
    ]
    print(harness.table(rows, ["measure", "unkai_clean (reset)", "restart per test"]))
    print(f"written to {path}")


if __name__ == "__main__":
    main()
