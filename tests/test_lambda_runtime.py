"""The Lambda runtime through the Invoke API: real worker processes, warm environments,
AWS's environment, context, errors, limits, logs and hot reload."""

from __future__ import annotations

import base64
import json
import threading
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from lambda_code import call, deploy, zip_of

DIVIDE = """
import json

def myfunc01_handler(event, context):
    x = event['x']
    y = event['y']
    print('x = {}'.format(x))
    print('y = {}'.format(y))
    return json.dumps({'result': x / y})
"""


@pytest.fixture(scope="module")
def lam(unkai):
    return unkai.client("lambda")


@pytest.fixture(scope="module")
def logs(unkai):
    return unkai.client("logs")


def log_text(logs, name: str) -> str:
    events = logs.filter_log_events(logGroupName=f"/aws/lambda/{name}")["events"]
    return "".join(e["message"] for e in events)


def test_divide_example_result_and_log(lam, logs):
    name = deploy(lam, DIVIDE, handler="app.myfunc01_handler")
    resp, payload = call(lam, name, {"x": 10, "y": 2}, LogType="Tail")
    assert resp["StatusCode"] == 200 and "FunctionError" not in resp
    assert json.loads(payload) == {"result": 5.0}
    assert resp["ExecutedVersion"] == "$LATEST"
    tail = base64.b64decode(resp["LogResult"]).decode()
    assert "x = 10\n" in tail and "y = 2\n" in tail
    assert tail.startswith("START RequestId: ") or "\nSTART RequestId: " in tail
    text = log_text(logs, name)
    assert "x = 10\n" in text and "y = 2\n" in text


def test_divide_by_zero_is_an_unhandled_error_with_stack_trace(lam, logs):
    name = deploy(lam, DIVIDE, handler="app.myfunc01_handler")
    resp, payload = call(lam, name, {"x": 10, "y": 0})
    assert resp["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "ZeroDivisionError"
    assert payload["errorMessage"] == "division by zero"
    assert payload["requestId"]
    assert len(payload["stackTrace"]) == 1 and "app.py" in payload["stackTrace"][0]
    assert "in myfunc01_handler" in payload["stackTrace"][0]
    text = log_text(logs, name)
    assert "[ERROR] ZeroDivisionError: division by zero" in text
    assert "Traceback (most recent call last):" in text


def test_report_lines_as_aws_prints_them(lam, logs):
    name = deploy(lam, "def handler(e, c):\n    return 1\n", MemorySize=256)
    call(lam, name)
    call(lam, name)
    messages = [e["message"] for e in logs.filter_log_events(logGroupName=f"/aws/lambda/{name}")["events"]]
    starts = [m for m in messages if m.startswith("START RequestId: ")]
    ends = [m for m in messages if m.startswith("END RequestId: ")]
    reports = [m for m in messages if m.startswith("REPORT RequestId: ")]
    assert len(starts) == len(ends) == len(reports) == 2
    assert starts[0].endswith(" Version: $LATEST\n")
    import re
    pattern = (r"^REPORT RequestId: [0-9a-f-]{36}\tDuration: \d+\.\d\d ms\tBilled Duration: \d+ ms\t"
               r"Memory Size: 256 MB\tMax Memory Used: \d+ MB\t(Init Duration: \d+\.\d\d ms\t)?\n$")
    assert all(re.match(pattern, r) for r in reports)
    assert "Init Duration" in reports[0] and "Init Duration" not in reports[1]
    assert any(m.startswith("INIT_START Runtime Version: python:3.11") for m in messages)


def test_warm_environment_keeps_globals_and_has_aws_environment(lam):
    code = """
    import os, tempfile, boto3
    count = 0
    def handler(event, context):
        global count
        count += 1
        open(os.path.join(tempfile.gettempdir(), 'marker'), 'a').write('x')
        return {
            'count': count,
            'env': {k: os.environ.get(k) for k in ('AWS_REGION', 'AWS_DEFAULT_REGION', 'AWS_LAMBDA_FUNCTION_NAME',
                    'AWS_LAMBDA_FUNCTION_MEMORY_SIZE', 'AWS_LAMBDA_FUNCTION_VERSION', 'AWS_LAMBDA_LOG_GROUP_NAME',
                    'AWS_LAMBDA_LOG_STREAM_NAME', 'LAMBDA_TASK_ROOT', 'AWS_EXECUTION_ENV', '_HANDLER',
                    'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'TZ', 'LANG', 'GREETING',
                    'AWS_ENDPOINT_URL')},
            'cwd': os.getcwd(),
            'tmp': tempfile.gettempdir(),
            'context': [context.function_name, context.function_version, context.invoked_function_arn,
                        context.memory_limit_in_mb, context.aws_request_id, context.log_group_name,
                        context.log_stream_name],
            'remaining': context.get_remaining_time_in_millis(),
        }
    """
    name = deploy(lam, code, Environment={"Variables": {"GREETING": "hello"}}, Timeout=7, MemorySize=192)
    _, first = call(lam, name)
    _, second = call(lam, name)
    assert (first["count"], second["count"]) == (1, 2)
    env = first["env"]
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "us-east-1"
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == name
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "192"
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == f"/aws/lambda/{name}"
    assert env["AWS_LAMBDA_LOG_STREAM_NAME"].endswith(first["context"][6].split("]")[-1])
    assert env["AWS_EXECUTION_ENV"] == "AWS_Lambda_python3.11"
    assert env["_HANDLER"] == "app.handler"
    assert env["GREETING"] == "hello" and env["LANG"] and env["TZ"]
    assert env["AWS_ACCESS_KEY_ID"] and env["AWS_SECRET_ACCESS_KEY"] and env["AWS_SESSION_TOKEN"]
    assert env["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
    assert first["cwd"] == env["LAMBDA_TASK_ROOT"]
    assert first["tmp"] != "/tmp" and "marker" not in str(Path(first["tmp"]).parent)
    fname, version, arn, memory, request_id, group, stream = first["context"]
    assert (fname, version, memory, group) == (name, "$LATEST", "192", f"/aws/lambda/{name}")
    assert arn == f"arn:aws:lambda:us-east-1:000000000000:function:{name}"
    assert len(request_id) == 36 and stream == env["AWS_LAMBDA_LOG_STREAM_NAME"]
    assert 6000 < first["remaining"] <= 7000


def test_handler_reaches_unkai_through_boto3_even_with_an_explicit_aws_endpoint(lam, unkai):
    sqs = unkai.client("sqs")
    url = sqs.create_queue(QueueName=f"from-handler-{time.time_ns()}")["QueueUrl"]
    code = """
    import boto3
    def handler(event, context):
        default = boto3.client('sqs')
        default.send_message(QueueUrl=event['url'], MessageBody='via AWS_ENDPOINT_URL')
        explicit = boto3.client('sqs', region_name='us-east-1', endpoint_url='https://sqs.us-east-1.amazonaws.com')
        explicit.send_message(QueueUrl=event['url'], MessageBody='via amazonaws.com')
        return 'sent'
    """
    name = deploy(lam, code)
    resp, payload = call(lam, name, {"url": url})
    assert payload == "sent", payload
    bodies = sorted(m["Body"] for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"])
    assert bodies == ["via AWS_ENDPOINT_URL", "via amazonaws.com"]


@pytest.mark.parametrize("files,handler,error_type,message", [
    ({}, "missing.handler", "Runtime.ImportModuleError", "Unable to import module 'missing': No module named 'missing'"),
    ({"app.py": "def other(e, c):\n    pass\n"}, "app.handler", "Runtime.HandlerNotFound",
     "Handler 'handler' missing on module 'app'"),
    ({"app.py": "def handler(e, c)\n    pass\n"}, "app.handler", "Runtime.UserCodeSyntaxError",
     "Syntax error in module 'app': "),
    ({"app.py": "def handler(e, c):\n    return {1, 2}\n"}, "app.handler", "Runtime.MarshalError",
     "Unable to marshal response: Object of type set is not JSON serializable"),
])
def test_user_code_errors_as_aws_reports_them(lam, logs, files, handler, error_type, message):
    name = f"bad-{time.time_ns()}"
    lam.create_function(FunctionName=name, Runtime="python3.11", Role="arn:aws:iam::000000000000:role/r",
                        Handler=handler, Code={"ZipFile": zip_of(files or {"other.py": "x = 1\n"})})
    resp, payload = call(lam, name)
    assert resp["FunctionError"] == "Unhandled"
    assert payload["errorType"] == error_type
    assert payload["errorMessage"].startswith(message), payload
    assert error_type in log_text(logs, name)
    # unkai is still fine: the next call reports the same, and other functions work
    _, again = call(lam, name)
    assert again["errorType"] == error_type


def test_bad_payloads(lam):
    name = deploy(lam, "def handler(e, c):\n    return e\n")
    with pytest.raises(ClientError) as exc:
        lam.invoke(FunctionName=name, Payload=b"{not json")
    assert exc.value.response["Error"]["Code"] == "InvalidRequestContentException"
    with pytest.raises(ClientError) as exc:
        lam.invoke(FunctionName=name, Payload=b'"' + b"x" * (6 * 1024 * 1024) + b'"')
    assert exc.value.response["Error"]["Code"] == "RequestEntityTooLargeException"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
    # asynchronous invocations: 1 MB (1,048,576 bytes) as AWS allows since 2025
    with pytest.raises(ClientError) as exc:
        lam.invoke(FunctionName=name, InvocationType="Event", Payload=b'"' + b"x" * (1024 * 1024) + b'"')
    assert exc.value.response["Error"]["Code"] == "RequestEntityTooLargeException"
    assert "1048576 bytes" in exc.value.response["Error"]["Message"]
    big = b'"' + b"x" * (1024 * 1024 - 2) + b'"'
    assert lam.invoke(FunctionName=name, InvocationType="Event", Payload=big)["StatusCode"] == 202
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as exc:
        lam.invoke(FunctionName="no-such-function")
    assert "Function not found: arn:aws:lambda:us-east-1:000000000000:function:no-such-function" in str(exc.value)
    resp, payload = call(lam, name, {"ok": True})
    assert payload == {"ok": True}


def test_timeout_kills_the_environment(lam, logs):
    code = """
    import time
    calls = 0
    def handler(event, context):
        global calls
        calls += 1
        if event.get('sleep'):
            time.sleep(event['sleep'])
        return calls
    """
    name = deploy(lam, code, Timeout=1)
    assert call(lam, name)[1] == 1
    resp, payload = call(lam, name, {"sleep": 5})
    assert resp["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "Sandbox.Timedout"
    assert payload["errorMessage"].endswith("Error: Task timed out after 1.00 seconds")
    assert "Task timed out after 1.00 seconds" in log_text(logs, name)
    assert call(lam, name)[1] == 1  # a fresh environment


@pytest.mark.parametrize("body,how", [
    ("import sys\n    sys.exit(3)", "exit status 3"),
    ("import os\n    os._exit(7)", "exit status 7"),
    ("import ctypes\n    ctypes.string_at(0)", "signal: segmentation fault"),
])
def test_crashes_report_runtime_exit_error(lam, body, how):
    name = deploy(lam, f"def handler(e, c):\n    {body}\n")
    resp, payload = call(lam, name)
    assert resp["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "Runtime.ExitError"
    assert payload["errorMessage"].endswith(f"Error: Runtime exited with error: {how}")


def test_memory_size_is_enforced(lam):
    code = """
    def handler(event, context):
        blocks = [bytearray(1024 * 1024) for _ in range(event['mb'])]
        return len(blocks)
    """
    name = deploy(lam, code, MemorySize=128)
    assert call(lam, name, {"mb": 20})[1] == 20
    resp, payload = call(lam, name, {"mb": 400})
    assert resp["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "Runtime.OutOfMemory"
    assert call(lam, name, {"mb": 1})[1] == 1


def test_reserved_concurrency_throttles_synchronous_invokes(lam):
    code = "import time\ndef handler(e, c):\n    time.sleep(e.get('sleep', 0))\n    return 'done'\n"
    name = deploy(lam, code)
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1)
    assert lam.get_function_concurrency(FunctionName=name)["ReservedConcurrentExecutions"] == 1
    call(lam, name)  # warm
    slow = threading.Thread(target=call, args=(lam, name, {"sleep": 1.5}))
    slow.start()
    time.sleep(0.5)
    with pytest.raises(lam.exceptions.TooManyRequestsException) as exc:
        call(lam, name)
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert exc.value.response["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
    slow.join()
    assert call(lam, name)[1] == "done"
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    with pytest.raises(lam.exceptions.TooManyRequestsException):
        call(lam, name)
    lam.delete_function_concurrency(FunctionName=name)
    assert call(lam, name)[1] == "done"


def test_edited_code_takes_effect_on_the_next_invocation(lam, unkai):
    import hashlib

    files = {"app.py": "import helper\ndef handler(e, c):\n    return helper.VALUE\n", "helper.py": "VALUE = 1\n"}
    name = f"reload-{time.time_ns()}"
    package = zip_of(files)
    lam.create_function(FunctionName=name, Runtime="python3.11", Role="arn:aws:iam::000000000000:role/r",
                        Handler="app.handler", Code={"ZipFile": package})
    assert call(lam, name)[1] == 1
    assert call(lam, name)[1] == 1
    # edit the code in place, as a developer edits the CodeUri of a template's function
    root = unkai.state_dir / "lambda" / "code" / hashlib.sha256(package).hexdigest()
    (root / "helper.py").write_text("VALUE = 2\n")
    assert call(lam, name)[1] == 2


def test_dry_run_event_and_tail(lam, unkai, logs):
    name = deploy(lam, "def handler(e, c):\n    print('event', e)\n    return 'ok'\n")
    assert lam.invoke(FunctionName=name, InvocationType="DryRun")["StatusCode"] == 204
    resp = lam.invoke(FunctionName=name, InvocationType="Event", Payload=b'{"n": 1}')
    assert resp["StatusCode"] == 202
    unkai.drain()
    assert "event {'n': 1}" in log_text(logs, name)
