"""Lambda answers as AWS does, in the details clients branch on (issue 23, item 3: Lambda API).

Expected values come from AWS's documentation (Lambda function states), botocore's waiters
(``function_active_v2``, ``function_updated_v2``) and responses recorded against AWS (CreateFunction,
UpdateFunctionConfiguration and CreateEventSourceMapping outputs as the AWS CLI prints them)."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest
from botocore.exceptions import ClientError
from lambda_code import ROLE, deploy, zip_of


@pytest.fixture(scope="module")
def lam(unkai):
    return unkai.client("lambda")


def error_of(exc: pytest.ExceptionInfo) -> tuple[str, str, int]:
    resp = exc.value.response
    return resp["Error"]["Code"], resp["Error"]["Message"], resp["ResponseMetadata"]["HTTPStatusCode"]


def test_create_answers_pending_then_the_function_is_active_and_the_v2_waiter_returns(lam):
    name = f"st-{time.time_ns()}"
    created = lam.create_function(FunctionName=name, Runtime="python3.11", Role=ROLE, Handler="app.handler",
                                  Code={"ZipFile": zip_of({"app.py": "def handler(e, c):\n    return 1\n"})})
    assert (created["State"], created["StateReason"], created["StateReasonCode"]) == \
        ("Pending", "The function is being created.", "Creating")
    assert "LastUpdateStatus" not in created
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 5})
    got = lam.get_function(FunctionName=name)["Configuration"]
    assert (got["State"], got["LastUpdateStatus"]) == ("Active", "Successful")
    assert "StateReason" not in got and "StateReasonCode" not in got


def test_updates_answer_in_progress_then_successful_and_the_updated_waiter_returns(lam):
    name = deploy(lam, "def handler(e, c):\n    return 1\n")
    updated = lam.update_function_configuration(FunctionName=name, Timeout=10)
    assert (updated["State"], updated["LastUpdateStatus"], updated["LastUpdateStatusReason"],
            updated["LastUpdateStatusReasonCode"]) == ("Active", "InProgress", "The function is being created.",
                                                       "Creating")
    lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 5})
    code = lam.update_function_code(FunctionName=name, ZipFile=zip_of({"app.py": "def handler(e, c):\n    return 2\n"}))
    assert code["LastUpdateStatus"] == "InProgress"
    lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 5})
    got = lam.get_function_configuration(FunctionName=name)
    assert (got["LastUpdateStatus"], got["Timeout"]) == ("Successful", 10)
    assert "LastUpdateStatusReason" not in got


def test_environment_given_empty_is_echoed_and_absent_when_never_given(lam):
    empty = deploy(lam, "x = 1\n", Environment={"Variables": {}})
    assert lam.get_function_configuration(FunctionName=empty)["Environment"] == {"Variables": {}}
    plain = deploy(lam, "x = 1\n")
    assert "Environment" not in lam.get_function_configuration(FunctionName=plain)
    # an update that empties the variables removes the member
    withvars = deploy(lam, "x = 1\n", Environment={"Variables": {"A": "1"}})
    lam.update_function_configuration(FunctionName=withvars, Environment={"Variables": {}})
    assert "Environment" not in lam.get_function_configuration(FunctionName=withvars)


@pytest.mark.parametrize("call", ["get_function", "get_function_configuration", "delete_function", "invoke",
                                  "list_versions_by_function"])
def test_a_missing_function_is_named_by_its_arn_with_a_top_level_message(lam, call):
    with pytest.raises(ClientError) as exc:
        getattr(lam, call)(FunctionName="no-such-function")
    arn = "arn:aws:lambda:us-east-1:000000000000:function:no-such-function"
    assert error_of(exc) == ("ResourceNotFoundException", f"Function not found: {arn}", 404)
    assert exc.value.response["Message"] == f"Function not found: {arn}"  # REST-JSON's top-level key


def test_an_operation_unkai_does_not_serve_answers_not_found_first_then_a_json_error(lam):
    with pytest.raises(ClientError) as exc:
        lam.get_provisioned_concurrency_config(FunctionName="no-such-function", Qualifier="1")
    assert error_of(exc)[:2] == ("ResourceNotFoundException", "Function not found: arn:aws:lambda:us-east-1:"
                                 "000000000000:function:no-such-function:1")
    name = deploy(lam, "x = 1\n")
    with pytest.raises(ClientError) as exc:  # botocore parsed it: the body is JSON, not XML
        lam.get_function_scaling_config(FunctionName=name, Qualifier="$LATEST")
    assert error_of(exc)[0] == "NotImplemented" and error_of(exc)[2] == 501


def test_event_source_mappings_are_described_as_aws_describes_each_source(unkai, lam):
    name = deploy(lam, "def handler(e, c):\n    return None\n")
    sqs = unkai.client("sqs")
    url = sqs.create_queue(QueueName=f"esm-{time.time_ns()}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    created = lam.create_event_source_mapping(FunctionName=name, EventSourceArn=queue_arn, BatchSize=5)
    assert (created["State"], created["StateTransitionReason"], created["FunctionResponseTypes"]) == \
        ("Creating", "USER_INITIATED", [])
    assert "LastProcessingResult" not in created  # AWS reports it for streams only
    kinesis = unkai.client("kinesis")
    stream = f"esm-{time.time_ns()}"
    kinesis.create_stream(StreamName=stream, ShardCount=1)
    stream_arn = kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]["StreamARN"]
    made = lam.create_event_source_mapping(FunctionName=name, EventSourceArn=stream_arn, StartingPosition="LATEST")
    assert (made["State"], made["StateTransitionReason"], made["LastProcessingResult"],
            made["FunctionResponseTypes"]) == ("Creating", "User action", "No records processed", [])
    assert (made["MaximumRetryAttempts"], made["MaximumRecordAgeInSeconds"], made["DestinationConfig"]) == \
        (-1, -1, {"OnFailure": {}})
    listed = {m["UUID"]: m for m in lam.list_event_source_mappings(FunctionName=name)["EventSourceMappings"]}
    assert listed[made["UUID"]]["StateTransitionReason"] == "User action"
    assert listed[created["UUID"]]["FunctionResponseTypes"] == []
    for uid in listed:
        lam.delete_event_source_mapping(UUID=uid)


def test_a_function_url_handler_returning_a_dict_body_sends_json_not_a_python_repr(unkai, lam):
    code = """
    def handler(event, context):
        return {'statusCode': 200, 'body': {'ok': True, 'none': None}}
    """
    name = deploy(lam, code)
    url = lam.create_function_url_config(FunctionName=name, AuthType="NONE")["FunctionUrl"]
    with urllib.request.urlopen(url) as resp:  # the FunctionUrl as returned reaches unkai
        raw = resp.read()
    assert json.loads(raw) == {"ok": True, "none": None}
    assert b"True" not in raw and b"None" not in raw


def test_recursion_runtime_and_provisioned_concurrency_settings_read_back(lam):
    name = deploy(lam, "x = 1\n")
    assert lam.get_function_recursion_config(FunctionName=name)["RecursiveLoop"] == "Terminate"
    assert lam.put_function_recursion_config(FunctionName=name, RecursiveLoop="Allow")["RecursiveLoop"] == "Allow"
    assert lam.get_function_recursion_config(FunctionName=name)["RecursiveLoop"] == "Allow"
    runtime = lam.get_runtime_management_config(FunctionName=name)
    assert runtime["UpdateRuntimeOn"] == "Auto" and runtime["FunctionArn"].endswith(f":function:{name}")
    version = lam.publish_version(FunctionName=name)["Version"]
    with pytest.raises(ClientError) as exc:
        lam.get_provisioned_concurrency_config(FunctionName=name, Qualifier=version)
    assert error_of(exc)[:2] == ("ProvisionedConcurrencyConfigNotFoundException",
                                 "No Provisioned Concurrency Config found for this function")
    put = lam.put_provisioned_concurrency_config(FunctionName=name, Qualifier=version,
                                                 ProvisionedConcurrentExecutions=2)
    assert (put["RequestedProvisionedConcurrentExecutions"], put["Status"]) == (2, "IN_PROGRESS")
    got = lam.get_provisioned_concurrency_config(FunctionName=name, Qualifier=version)
    assert (got["AllocatedProvisionedConcurrentExecutions"], got["Status"]) == (2, "READY")
    listed = lam.list_provisioned_concurrency_configs(FunctionName=name)["ProvisionedConcurrencyConfigs"]
    assert [c["FunctionArn"].rsplit(":", 1)[1] for c in listed] == [version]
    with pytest.raises(ClientError) as exc:
        lam.put_provisioned_concurrency_config(FunctionName=name, Qualifier="$LATEST",
                                               ProvisionedConcurrentExecutions=1)
    assert error_of(exc)[0] == "InvalidParameterValueException"
    lam.delete_provisioned_concurrency_config(FunctionName=name, Qualifier=version)
    assert lam.list_provisioned_concurrency_configs(FunctionName=name)["ProvisionedConcurrencyConfigs"] == []


def test_a_bad_function_name_quotes_the_current_pattern_and_counts_every_broken_constraint(lam):
    pattern = ("(arn:(aws[a-zA-Z-]*)?:lambda:)?((eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\\d{1}:)?"
               "(\\d{12}:)?(function:)?([a-zA-Z0-9-_\\.]+)(:(\\$LATEST(\\.PUBLISHED)?|[a-zA-Z0-9-_]+))?")
    with pytest.raises(ClientError) as exc:
        lam.get_function(FunctionName="bad name!")
    assert error_of(exc)[:2] == ("ValidationException", "1 validation error detected: Value 'bad name!' at "
                                 "'functionName' failed to satisfy constraint: Member must satisfy regular expression "
                                 f"pattern: {pattern}")
    long_bad = "!" * 257
    with pytest.raises(ClientError) as exc:
        lam.get_function(FunctionName=long_bad)
    assert error_of(exc)[1].startswith("2 validation errors detected: ")
    assert error_of(exc)[1].endswith("Member must have length less than or equal to 256")


def test_get_layer_version_by_arn_checks_the_arn_before_looking_it_up(unkai):
    """A malformed Arn is AWS's ValidationException with the model's pattern (it was a 500)."""
    from botocore.config import Config

    raw = unkai.client("lambda", config=Config(parameter_validation=False, retries={"max_attempts": 1}))
    with pytest.raises(ClientError) as exc:
        raw.get_layer_version_by_arn(Arn="not-an-arn")
    code, message, status = error_of(exc)
    assert (code, status) == ("ValidationException", 400)
    assert message.startswith("1 validation error detected: Value 'not-an-arn' at 'arn' failed to satisfy constraint: "
                              "Member must satisfy regular expression pattern: ((arn:")
    with pytest.raises(ClientError) as exc:
        raw.get_layer_version_by_arn(Arn="arn:aws:lambda:us-east-1:000000000000:layer:no-such-layer:1")
    assert error_of(exc)[0] == "ResourceNotFoundException"
