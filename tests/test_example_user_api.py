"""examples/user-api end to end: the stack is deployed as on AWS (its Env comes from
Parameter Store), then the example's own E2E suite (examples/user-api/itest, written to
run against AWS) runs against unkai unchanged, pointed at it by the README's commands."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from examples_support import EXAMPLES, outputs, reader_steps, run_readme, start_example  # noqa: E402
from unkai.testing import UnkaiServer  # noqa: E402


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    state = tmp_path_factory.mktemp("user-api") / "state"
    with UnkaiServer(state).start() as setup:  # the environment's name, as the README keeps it
        (setup_lines,) = reader_steps("user-api", "ssm put-parameter")
        done = run_readme(setup_lines, setup, EXAMPLES.parent, tmp_path_factory.mktemp("home"))
        assert done.returncode == 0, done.stdout + done.stderr
        assert setup.client("ssm").get_parameter(Name="/dev/lambda/Env")["Parameter"]["Value"] == "dev"
    server = start_example(state, "user-api")
    try:
        yield server, outputs(server, "user-api")
    finally:
        server.stop()


def test_the_examples_itest_passes_against_unkai_as_the_readme_runs_it(stack, tmp_path):
    """The README's lines (`eval "$(unkai env)"`, then pytest on the itest) in a clean shell
    whose only hint of the server is ``UNKAI_ENDPOINT``."""
    server, out = stack
    (lines,) = reader_steps("user-api", "pytest examples/user-api/itest")
    assert lines[-1] == "pytest examples/user-api/itest --env dev"
    done = run_readme(lines, server, EXAMPLES.parent, tmp_path)
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
