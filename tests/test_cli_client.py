"""The developer loop through the real `unkai` command, as a user types it: `unkai up`
finds ./template.yaml, then `status`, `invoke` (with `events generate`), `reset`, `env`
(for eval and as an AWS profile), errors that name the endpoint, and `stop`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Resources:
  Echo:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      Handler: index.handler
      InlineCode: |
        def handler(event, context):
            print("got", len(event.get("Records", [])), "records")
            if event.get("fail"):
                raise ValueError("asked to fail")
            return {"records": len(event.get("Records", [])), "body": event.get("Records", [{}])[0].get("body")}
  Jobs:
    Type: AWS::SQS::Queue
Outputs:
  EchoName:
    Value: !Ref Echo
"""


def unkai(*args: str, cwd: Path, stdin: str | None = None, env: dict | None = None,
          check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "unkai", *args], cwd=cwd, input=stdin, capture_output=True,
                          text=True, timeout=120, env=env or dict(os.environ))
    if check:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A folder holding template.yaml, with `unkai up` (no argument) running in it."""
    root = tmp_path_factory.mktemp("project")
    (root / "template.yaml").write_text(TEMPLATE)
    log = open(root / "up.log", "w")
    env = {k: v for k, v in os.environ.items() if k != "UNKAI_ENDPOINT"}
    proc = subprocess.Popen([sys.executable, "-m", "unkai", "up", "--port", "0"], cwd=root, stdout=log,
                            stderr=subprocess.STDOUT, env=dict(env, PYTHONUNBUFFERED="1"))
    deadline = time.monotonic() + 60
    while "Ctrl-C to stop" not in (root / "up.log").read_text():
        assert proc.poll() is None and time.monotonic() < deadline, (root / "up.log").read_text()
        time.sleep(0.05)
    try:
        yield root, proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(15)
        log.close()


def test_up_without_an_argument_uses_the_template_here_and_says_so(project):
    root, _ = project
    printed = (root / "up.log").read_text()
    assert "unkai: using template.yaml" in printed and f"stack      {root.name}" in printed


def test_status_names_the_endpoint_the_stack_and_its_outputs(project):
    root, _ = project
    out = unkai("status", cwd=root).stdout
    endpoint = json.loads((root / ".unkai" / "server.json").read_text())["endpoint"]
    assert f"ready at {endpoint}" in out and f"stack     {root.name} (CREATE_COMPLETE)" in out
    assert "EchoName" in out and "pending   nothing" in out


def test_invoke_takes_a_generated_event_from_stdin_and_prints_the_result(project):
    root, _ = project
    event = unkai("events", "generate", "sqs", "receive-message", "--body", "hello", cwd=root).stdout
    assert json.loads(event)["Records"][0]["eventSource"] == "aws:sqs"
    done = unkai("invoke", "Echo", "--event", "-", cwd=root, stdin=event)
    assert json.loads(done.stdout) == {"records": 1, "body": "hello"}
    assert "got 1 records" in done.stderr and "REPORT RequestId" in done.stderr
    failed = unkai("invoke", "Echo", "--event", "-", cwd=root, stdin='{"fail": true}', check=False)
    assert failed.returncode == 1 and json.loads(failed.stdout)["errorType"] == "ValueError"


def test_reset_reports_its_time_and_leaves_the_stack(project):
    root, _ = project
    unkai("invoke", "Echo", cwd=root)
    out = unkai("reset", cwd=root).stdout
    assert out.startswith("Reset http://127.0.0.1:") and " ms." in out
    assert "EchoName" in unkai("status", cwd=root).stdout


def test_env_points_a_clean_shell_and_a_profile_at_unkai(project, tmp_path):
    root, _ = project
    clean = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}  # no region, no credentials
    script = (f'eval "$({sys.executable} -m unkai env)" && {sys.executable} -c '
              '"import boto3; print(boto3.client(\'sqs\').list_queues()[\'QueueUrls\'])"')
    done = subprocess.run(["bash", "-c", script], cwd=root, env=clean, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "Jobs" in done.stdout, done.stderr
    if shutil.which("aws"):  # the README's AWS CLI line, in the same clean shell
        done = subprocess.run(["bash", "-c", f'eval "$({sys.executable} -m unkai env)" && aws dynamodb list-tables'],
                              cwd=root, env=clean, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0 and '"TableNames": []' in done.stdout, done.stderr

    unkai("env", "--profile", "local", cwd=root, env=dict(clean, PYTHONPATH=os.pathsep.join(sys.path)))
    assert "endpoint_url = http" in (tmp_path / ".aws" / "config").read_text()
    script = ("import boto3; print(boto3.Session(profile_name='local').client('sqs').list_queues()['QueueUrls'])")
    done = subprocess.run([sys.executable, "-c", script], env=clean, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "Jobs" in done.stdout, done.stderr


@pytest.mark.parametrize("command", [("logs", "Echo"), ("mail",), ("inbox",), ("status",)])
def test_every_client_command_names_the_endpoint_it_could_not_reach(project, tmp_path, command):
    done = unkai(*command, cwd=tmp_path, check=False, env=dict(os.environ, UNKAI_ENDPOINT="http://127.0.0.1:9"))
    assert done.returncode == 1
    assert "unkai at http://127.0.0.1:9, from UNKAI_ENDPOINT" in done.stderr and "Is `unkai up` running?" in done.stderr


def test_client_commands_elsewhere_find_the_server_through_unkai_endpoint(project, tmp_path):
    root, _ = project
    endpoint = json.loads((root / ".unkai" / "server.json").read_text())["endpoint"]
    env = dict(os.environ, UNKAI_ENDPOINT=endpoint)
    assert unkai("mail", cwd=tmp_path, env=env).stdout.strip() == "No mail."
    assert endpoint in unkai("status", cwd=tmp_path, env=env).stdout
    # without it, from a folder with no server: the default port, and the error says so
    other = {k: v for k, v in os.environ.items() if k != "UNKAI_ENDPOINT"}
    done = unkai("mail", "--endpoint-url", "http://127.0.0.1:9", cwd=tmp_path, check=False, env=other)
    assert "from --endpoint-url" in done.stderr


def test_config_env_reads_that_environment_of_samconfig(tmp_path):
    (tmp_path / "template.yaml").write_text(textwrap.dedent("""\
        AWSTemplateFormatVersion: "2010-09-09"
        Parameters:
          Greeting: {Type: String}
        Resources:
          Q:
            Type: AWS::SQS::Queue
            Properties: {QueueName: !Sub "${Greeting}-queue"}
        """))
    (tmp_path / "samconfig.toml").write_text(textwrap.dedent("""\
        version = 0.1
        [default.deploy.parameters]
        stack_name = "shop-dev"
        parameter_overrides = "Greeting=hello"
        [prod.deploy.parameters]
        stack_name = "shop-prod"
        parameter_overrides = "Greeting=bonjour"
        """))
    assert "stack shop-dev" in unkai("validate", cwd=tmp_path).stdout
    assert "stack shop-prod" in unkai("validate", "--config-env", "prod", cwd=tmp_path).stdout
    missing = unkai("validate", "--config-env", "staging", cwd=tmp_path, check=False)
    assert missing.returncode == 1 and "'staging' (--config-env) is not in" in missing.stderr
    # `unkai up --config-env prod` deploys prod's stack with prod's parameters
    proc = subprocess.Popen([sys.executable, "-m", "unkai", "up", "--config-env", "prod", "--port", "0",
                             "--ephemeral"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if "Ctrl-C to stop" in line:
                break
        printed = "".join(lines)
        assert "stack      shop-prod" in printed, printed
    finally:
        proc.terminate()
        proc.wait(15)


def test_stop_ends_the_server_of_the_state_directory(project):
    root, proc = project
    out = unkai("stop", cwd=root).stdout
    assert out.startswith(f"Stopped unkai (pid {proc.pid}") and proc.wait(5) == 0
    assert "No unkai is running" in unkai("stop", cwd=root).stdout
