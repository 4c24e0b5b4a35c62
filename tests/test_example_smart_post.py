"""examples/smart-post end to end: the stack is deployed as on AWS (its Env comes from
Parameter Store, the MQTT broker on a port of its own), then the example's own E2E suite
(examples/smart-post/itest, written to run against AWS in the talk's structure) runs
against unkai unchanged, pointed at it by the README's commands."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from examples_support import EXAMPLES, outputs, reader_steps, run_readme  # noqa: E402
from unkai.testing import UnkaiServer  # noqa: E402


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    state = tmp_path_factory.mktemp("smart-post") / "state"
    with UnkaiServer(state).start() as setup:  # the environment's name, as the README keeps it
        (setup_lines,) = reader_steps("smart-post", "ssm put-parameter")
        done = run_readme(setup_lines, setup, EXAMPLES.parent, tmp_path_factory.mktemp("home"))
        assert done.returncode == 0, done.stdout + done.stderr
        assert setup.client("ssm").get_parameter(Name="/dev/lambda/Env")["Parameter"]["Value"] == "dev"
    server = UnkaiServer(state, str(EXAMPLES / "smart-post"), "--mqtt-port", "0").start(timeout=120)
    try:
        yield server, outputs(server, "smart-post")
    finally:
        server.stop()


def test_the_examples_itest_passes_against_unkai_as_the_readme_runs_it(stack, tmp_path):
    """The README's lines (`eval "$(unkai env)"`, then pytest on the itest) in a clean shell
    whose only hint of the server is ``UNKAI_ENDPOINT``."""
    server, out = stack
    (lines,) = reader_steps("smart-post", "pytest examples/smart-post/itest")
    assert lines[-1] == "pytest examples/smart-post/itest --env dev"
    done = run_readme(lines, server, EXAMPLES.parent, tmp_path)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:] + server.output()[-3000:]
    assert "3 passed" in done.stdout


def test_node_registration_logs_the_talks_fields(stack):
    server, out = stack
    events = server.client("logs").filter_log_events(logGroupName="/aws/lambda/dev-iot_nodes_thing_registry")["events"]
    records = [json.loads(e["message"]) for e in events if e["message"].lstrip().startswith("{")]
    finished = [r for r in records if r["log_event"] == "NodeRegisterFinished"]
    assert finished, records
    assert set(finished[0]) >= {"task_uuid", "lambda_request_id", "device_id", "lambda_handler", "log_event",
                                "timestamp", "timestamp_jst", "level", "lambda_commit_id", "param_hub_uuid"}
    assert finished[0]["lambda_handler"] == "dev-iot_nodes_thing_registry"
    assert finished[0]["lambda_commit_id"] == "000000000" and len(finished[0]["node_uuids"]) == 2
    assert out["NodesRegisterFunctionName"] == "dev-iot_nodes_thing_registry"
