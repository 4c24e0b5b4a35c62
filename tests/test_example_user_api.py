"""examples/user-api end to end: the stack is deployed as on AWS (its Env comes from
Parameter Store), then the example's own E2E suite (examples/user-api/itest, written to
run against AWS) runs against unkai unchanged, pointed at it with AWS_ENDPOINT_URL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from examples_support import EXAMPLES, outputs, start_example  # noqa: E402
from unkai.testing import UnkaiServer  # noqa: E402


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    state = tmp_path_factory.mktemp("user-api") / "state"
    with UnkaiServer(state).start() as setup:  # the environment's name, as the team keeps it
        setup.client("ssm").put_parameter(Name="/dev/lambda/Env", Value="dev", Type="String")
    server = start_example(state, "user-api")
    try:
        yield server, outputs(server, "user-api")
    finally:
        server.stop()


def test_the_examples_itest_passes_against_unkai(stack):
    server, out = stack
    env = dict(os.environ, AWS_ENDPOINT_URL=server.endpoint, AWS_ACCESS_KEY_ID="itest", AWS_SECRET_ACCESS_KEY="itest",
               AWS_DEFAULT_REGION=server.region)
    env.pop("AWS_PROFILE", None)
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", str(EXAMPLES / "user-api" / "itest"), "--env", "dev"],
                          capture_output=True, text=True, timeout=300, env=env, cwd=EXAMPLES / "user-api")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:] + server.output()[-3000:]
    assert "7 passed" in done.stdout


def test_the_function_logs_the_talks_structured_fields(stack):
    server, out = stack
    logs = server.client("logs")
    events = logs.filter_log_events(logGroupName="/aws/lambda/dev-create_user")["events"]
    records = [json.loads(e["message"]) for e in events if e["message"].lstrip().startswith("{")]
    created = [r for r in records if r["log_event"] == "UserCreated"]
    assert created, records
    assert set(created[0]) >= {"task_uuid", "lambda_request_id", "lambda_handler", "log_event", "timestamp",
                               "timestamp_jst", "level", "lambda_commit_id"}
    assert created[0]["lambda_handler"] == "dev-create_user" and created[0]["lambda_commit_id"] == "000000000"
    errors = [r for r in records if r["level"] == "ERROR"]
    assert {r["log_event"] for r in errors} >= {"InvalidRequest", "UserAlreadyExists"}
    assert out["UsersTableName"] == "dev-users"
