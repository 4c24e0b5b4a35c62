"""Lambda durable functions with real handlers on AWS's durable execution SDK
(``aws_durable_execution_sdk_python``): steps checkpointed once, waits on unkai's clock,
callbacks completed through SendDurableExecutionCallbackSuccess, failures, executions listed
and inspected, AWS's errors for bad input, a SAM app brought up with ``unkai up``, and a
waiting execution surviving ``kill -9``."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from lambda_code import call, deploy, private_server

from unkai.testing import UnkaiServer, new_queue

unkai = private_server("durable")
DURABLE = {"ExecutionTimeout": 3600, "RetentionPeriodInDays": 7}
APP = Path(__file__).parent / "apps" / "durable-order"

STEPS = """
from aws_durable_execution_sdk_python import DurableContext, durable_execution

def add(n):
    print("step ran", n)
    return n + 1

@durable_execution
def handler(event, context: DurableContext):
    a = context.step(lambda _: add(event["n"]), name="first")
    b = context.step(lambda _: add(a), name="second")
    return {"result": b}
"""

WAITS = """
from aws_durable_execution_sdk_python import DurableContext, durable_execution
from aws_durable_execution_sdk_python.config import Duration

@durable_execution
def handler(event, context: DurableContext):
    before = context.step(lambda _: print("before the wait") or "ok", name="before")
    context.wait(Duration.from_seconds(60), name="cool-off")
    after = context.step(lambda _: print("after the wait") or "done", name="after")
    return [before, after]
"""

CALLBACK = """
import json
from aws_durable_execution_sdk_python import DurableContext, durable_execution
from aws_durable_execution_sdk_python.config import CallbackConfig, Duration

@durable_execution
def handler(event, context: DurableContext):
    callback = context.create_callback(name="approval",
                                       config=CallbackConfig(timeout=Duration.from_seconds(event.get("timeout", 0))))
    answer = callback.result()
    return {"approved": json.loads(answer)}
"""

FAILS = """
from aws_durable_execution_sdk_python import DurableContext, durable_execution

@durable_execution
def handler(event, context: DurableContext):
    context.step(lambda _: "fine", name="fine")
    raise ValueError("order " + str(event["order"]) + " is not valid")
"""

RETRIES = """
from aws_durable_execution_sdk_python import DurableContext, durable_execution
from aws_durable_execution_sdk_python.config import Duration, JitterStrategy, StepConfig
from aws_durable_execution_sdk_python.retries import RetryStrategyConfig, create_retry_strategy

def flaky(step_context):
    print("attempt", step_context.attempt)
    if step_context.attempt < 2:
        raise ConnectionError("the warehouse did not answer")
    return step_context.attempt

@durable_execution
def handler(event, context: DurableContext):
    retry = create_retry_strategy(RetryStrategyConfig(max_attempts=3, initial_delay=Duration.from_seconds(30),
                                                      jitter_strategy=JitterStrategy.NONE))
    return {"attempts": context.step(flaky, name="call-warehouse", config=StepConfig(retry_strategy=retry))}
"""

CHAINED = """
from aws_durable_execution_sdk_python import DurableContext, durable_execution

@durable_execution
def handler(event, context: DurableContext):
    quote = context.invoke(event["pricer"], {"item": event["item"]}, name="price")
    return {"item": event["item"], "price": quote["price"]}
"""

PRICER = """
def handler(event, context):
    return {"price": len(event["item"]) * 10}
"""

FAN_OUT = """
from aws_durable_execution_sdk_python import DurableContext, durable_execution
from aws_durable_execution_sdk_python.config import Duration
from aws_durable_execution_sdk_python.waits import WaitForConditionConfig, WaitForConditionDecision

def poll(state, check_context):
    return {"polls": state["polls"] + 1}

def every_20_seconds(state, attempts):
    if state["polls"] >= 2:
        return WaitForConditionDecision.stop_polling()
    return WaitForConditionDecision.continue_waiting(Duration.from_seconds(20))

@durable_execution
def handler(event, context: DurableContext):
    squares = context.map(event["items"], lambda ctx, item, index, items: ctx.step(lambda _: item * item,
                                                                                   name=f"square-{index}"),
                          name="squares").get_results()
    pair = context.parallel([lambda ctx: ctx.step(lambda _: "left", name="l"),
                             lambda ctx: ctx.step(lambda _: "right", name="r")], name="pair").get_results()
    polled = context.wait_for_condition(poll, WaitForConditionConfig(wait_strategy=every_20_seconds,
                                                                     initial_state={"polls": 0}), name="poll")
    return {"squares": squares, "pair": pair, "polls": polled["polls"]}
"""

CRASHES_ONCE = """
import os
import boto3
from aws_durable_execution_sdk_python import DurableContext, durable_execution

@durable_execution
def handler(event, context: DurableContext):
    before = context.step(lambda _: print("checkpointed step") or 1, name="before")
    ssm = boto3.client("ssm")
    try:
        ssm.delete_parameter(Name=event["flag"])
        os._exit(3)  # the worker dies mid-invocation, once
    except ssm.exceptions.ParameterNotFound:
        pass
    return {"before": before, "after": context.step(lambda _: 2, name="after")}
"""

BROKEN = """
raise RuntimeError("this module cannot be imported")
"""

PLAIN = """
def handler(event, context):
    return {"plain": True}
"""


@pytest.fixture(scope="module")
def lam(unkai):
    return unkai.client("lambda")


def code(exc: pytest.ExceptionInfo) -> str:
    return exc.value.response["Error"]["Code"]


def durable(lam, source: str) -> str:
    return deploy(lam, source, Runtime="python3.11", DurableConfig=DURABLE, Timeout=30)


def history(lam, arn: str) -> list[dict]:
    return lam.get_durable_execution_history(DurableExecutionArn=arn, IncludeExecutionData=True)["Events"]


def logged(unkai, name: str, text: str) -> int:
    return len(unkai.client("logs").filter_log_events(logGroupName=f"/aws/lambda/{name}",
                                                       filterPattern=f'"{text}"')["events"])


def test_durable_config_is_kept_on_create_get_and_update(lam):
    name = durable(lam, STEPS)
    config = lam.get_function_configuration(FunctionName=name)
    assert config["DurableConfig"] == {"ExecutionTimeout": 3600, "RetentionPeriodInDays": 7}
    assert lam.get_function(FunctionName=name)["Configuration"]["DurableConfig"]["ExecutionTimeout"] == 3600
    updated = lam.update_function_configuration(FunctionName=name, DurableConfig={"ExecutionTimeout": 900,
                                                                                   "RetentionPeriodInDays": 30})
    assert updated["DurableConfig"] == {"ExecutionTimeout": 900, "RetentionPeriodInDays": 30}
    with pytest.raises(ClientError) as exc:
        lam.update_function_configuration(FunctionName=name, DurableConfig={"RetentionPeriodInDays": 91})
    assert code(exc) == "ValidationException"


def test_steps_run_once_and_a_synchronous_invoke_answers_with_the_result(lam, unkai):
    name = durable(lam, STEPS)
    resp, body = call(lam, name, {"n": 1}, Qualifier="$LATEST")
    assert body == {"result": 3} and "FunctionError" not in resp
    arn = resp["DurableExecutionArn"]
    assert arn.startswith(f"arn:aws:lambda:us-east-1:000000000000:function:{name}:$LATEST/durable-execution/")
    ex = lam.get_durable_execution(DurableExecutionArn=arn)
    assert ex["Status"] == "SUCCEEDED" and json.loads(ex["Result"]) == {"result": 3}
    assert json.loads(ex["InputPayload"]) == {"n": 1} and ex["EndTimestamp"] >= ex["StartTimestamp"]
    types = [e["EventType"] for e in history(lam, arn)]
    assert types[0] == "ExecutionStarted" and types[-1] == "ExecutionSucceeded"
    assert types.count("StepSucceeded") == 2
    steps = [e for e in history(lam, arn) if e["EventType"] == "StepSucceeded"]
    assert [s["Name"] for s in steps] == ["first", "second"]
    assert [s["StepSucceededDetails"]["Result"]["Payload"] for s in steps] == ["2", "3"]
    assert logged(unkai, name, "step ran") == 2


def test_a_wait_suspends_the_execution_until_unkais_clock_passes_it(lam, unkai):
    name = durable(lam, WAITS)
    resp = lam.invoke(FunctionName=name, InvocationType="Event", Payload=b"{}")
    assert resp["StatusCode"] == 202
    arn = resp["DurableExecutionArn"]
    unkai.drain()
    assert lam.get_durable_execution(DurableExecutionArn=arn)["Status"] == "RUNNING"
    started = [e for e in history(lam, arn) if e["EventType"] == "WaitStarted"]
    assert started[0]["Name"] == "cool-off" and started[0]["WaitStartedDetails"]["Duration"] == 60
    assert logged(unkai, name, "after the wait") == 0
    unkai.advance(61)
    unkai.drain()
    ex = lam.get_durable_execution(DurableExecutionArn=arn)
    assert ex["Status"] == "SUCCEEDED" and json.loads(ex["Result"]) == ["ok", "done"]
    assert logged(unkai, name, "before the wait") == 1  # replayed from its checkpoint, not run again
    assert logged(unkai, name, "after the wait") == 1
    assert "WaitSucceeded" in [e["EventType"] for e in history(lam, arn)]


def test_a_callback_resumes_the_execution_with_the_result_sent(lam, unkai):
    name = durable(lam, CALLBACK)
    arn = lam.invoke(FunctionName=name, InvocationType="Event", Payload=b"{}")["DurableExecutionArn"]
    unkai.drain()
    started = [e for e in history(lam, arn) if e["EventType"] == "CallbackStarted"]
    callback_id = started[0]["CallbackStartedDetails"]["CallbackId"]
    lam.send_durable_execution_callback_heartbeat(CallbackId=callback_id)
    lam.send_durable_execution_callback_success(CallbackId=callback_id, Result=json.dumps({"by": "ana"}).encode())
    unkai.drain()
    ex = lam.get_durable_execution(DurableExecutionArn=arn)
    assert ex["Status"] == "SUCCEEDED" and json.loads(ex["Result"]) == {"approved": {"by": "ana"}}
    with pytest.raises(ClientError) as exc:  # a callback is closed once answered
        lam.send_durable_execution_callback_success(CallbackId=callback_id, Result=b"{}")
    assert code(exc) == "CallbackTimeoutException"


def test_a_callback_failure_or_timeout_fails_the_execution(lam, unkai):
    name = durable(lam, CALLBACK)
    arn = lam.invoke(FunctionName=name, InvocationType="Event", Payload=b"{}")["DurableExecutionArn"]
    unkai.drain()
    callback_id = [e for e in history(lam, arn) if e["EventType"] == "CallbackStarted"][0][
        "CallbackStartedDetails"]["CallbackId"]
    lam.send_durable_execution_callback_failure(CallbackId=callback_id, Error={"ErrorType": "Rejected",
                                                                               "ErrorMessage": "no budget"})
    unkai.drain()
    ex = lam.get_durable_execution(DurableExecutionArn=arn)
    assert ex["Status"] == "FAILED" and "no budget" in ex["Error"]["ErrorMessage"]

    timed = lam.invoke(FunctionName=name, InvocationType="Event",
                       Payload=json.dumps({"timeout": 300}).encode())["DurableExecutionArn"]
    unkai.drain()
    assert lam.get_durable_execution(DurableExecutionArn=timed)["Status"] == "RUNNING"
    unkai.advance(301)
    unkai.drain()
    assert lam.get_durable_execution(DurableExecutionArn=timed)["Status"] == "FAILED"
    assert "CallbackTimedOut" in [e["EventType"] for e in history(lam, timed)]


def test_a_handler_that_raises_fails_the_execution_and_the_invoke(lam):
    name = durable(lam, FAILS)
    resp, body = call(lam, name, {"order": 7})
    assert resp["FunctionError"] == "Unhandled"
    assert body["errorType"] == "ValueError" and body["errorMessage"] == "order 7 is not valid"
    ex = lam.get_durable_execution(DurableExecutionArn=resp["DurableExecutionArn"])
    assert ex["Status"] == "FAILED" and ex["Error"]["ErrorType"] == "ValueError"


def test_an_asynchronously_started_execution_that_fails_sends_its_event_to_the_dead_letter_queue(lam, unkai):
    sqs = unkai.client("sqs")
    url, arn = new_queue(sqs)
    name = deploy(lam, FAILS, DurableConfig=DURABLE, DeadLetterConfig={"TargetArn": arn})
    lam.invoke(FunctionName=name, InvocationType="Event", Payload=json.dumps({"order": 9}).encode())
    call(lam, name, {"order": 10})  # a synchronous caller gets the error itself: nothing goes to the queue
    unkai.drain()
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"])["Messages"]
    assert [json.loads(m["Body"]) for m in messages] == [{"order": 9}]
    assert messages[0]["MessageAttributes"]["ErrorMessage"]["StringValue"] == "order 9 is not valid"


def test_a_crashed_invocation_is_run_again_from_its_last_checkpoint(lam, unkai):
    unkai.client("ssm").put_parameter(Name="/durable/crash-once", Value="1", Type="String")
    name = durable(lam, CRASHES_ONCE)
    arn = lam.invoke(FunctionName=name, InvocationType="Event",
                     Payload=json.dumps({"flag": "/durable/crash-once"}).encode())["DurableExecutionArn"]
    unkai.drain()
    assert lam.get_durable_execution(DurableExecutionArn=arn)["Status"] == "RUNNING"  # re-driven after 1 s
    unkai.advance(1.5)
    unkai.drain()
    ex = lam.get_durable_execution(DurableExecutionArn=arn)
    assert ex["Status"] == "SUCCEEDED" and json.loads(ex["Result"]) == {"before": 1, "after": 2}
    assert logged(unkai, name, "checkpointed step") == 1
    completed = [e for e in history(lam, arn) if e["EventType"] == "InvocationCompleted"]
    assert len(completed) == 2 and "Error" in completed[0]["InvocationCompletedDetails"]


def test_an_invocation_that_keeps_failing_fails_the_execution_after_three_redrives(lam, unkai):
    name = deploy(lam, BROKEN, DurableConfig=DURABLE)
    arn = lam.invoke(FunctionName=name, InvocationType="Event", Payload=b"{}")["DurableExecutionArn"]
    unkai.drain()
    for delay in (1, 2, 4):  # run again after 1, 2 and 4 s
        assert lam.get_durable_execution(DurableExecutionArn=arn)["Status"] == "RUNNING"
        unkai.advance(delay + 0.5)
        unkai.drain()
    ex = lam.get_durable_execution(DurableExecutionArn=arn)
    assert ex["Status"] == "FAILED" and ex["Error"]["ErrorMessage"] == "this module cannot be imported"
    assert [e["EventType"] for e in history(lam, arn)].count("InvocationCompleted") == 4


def test_executions_are_listed_by_function_and_can_be_stopped(lam, unkai):
    name = durable(lam, CALLBACK)
    first = lam.invoke(FunctionName=name, InvocationType="Event", Payload=b"{}",
                       DurableExecutionName="order-1")["DurableExecutionArn"]
    second = lam.invoke(FunctionName=name, InvocationType="Event", Payload=b"{}")["DurableExecutionArn"]
    assert "/durable-execution/order-1/" in first
    again = lam.invoke(FunctionName=name, InvocationType="Event", Payload=b"{}", DurableExecutionName="order-1")
    assert again["DurableExecutionArn"] == first  # same name and input: the same execution
    with pytest.raises(ClientError) as exc:
        lam.invoke(FunctionName=name, InvocationType="Event", Payload=b'{"x": 1}', DurableExecutionName="order-1")
    assert code(exc) == "DurableExecutionAlreadyStartedException"
    unkai.drain()
    listed = lam.list_durable_executions_by_function(FunctionName=name)["DurableExecutions"]
    assert [e["DurableExecutionArn"] for e in listed] == [first, second]
    assert {e["Status"] for e in listed} == {"RUNNING"}
    assert lam.list_durable_executions_by_function(FunctionName=name, DurableExecutionName="order-1")[
        "DurableExecutions"][0]["DurableExecutionName"] == "order-1"
    stopped = lam.stop_durable_execution(DurableExecutionArn=first)
    assert stopped["StopTimestamp"]
    running = lam.list_durable_executions_by_function(FunctionName=name, Statuses=["RUNNING"])["DurableExecutions"]
    assert [e["DurableExecutionArn"] for e in running] == [second]
    page = lam.list_durable_executions_by_function(FunctionName=name, MaxItems=1, ReverseOrder=True)
    assert page["DurableExecutions"][0]["DurableExecutionArn"] == second and page["NextMarker"]
    assert lam.get_durable_execution(DurableExecutionArn=first)["Status"] == "STOPPED"
    with pytest.raises(ClientError) as exc:
        lam.stop_durable_execution(DurableExecutionArn=first)
    assert code(exc) == "InvalidParameterValueException"


def test_bad_input_is_answered_with_awss_errors(lam, unkai):
    name = durable(lam, STEPS)
    resp, _ = call(lam, name, {"n": 0})
    arn = resp["DurableExecutionArn"]
    unknown = arn.rsplit("/", 2)[0] + "/nope/0000"
    with pytest.raises(ClientError) as exc:
        lam.get_durable_execution(DurableExecutionArn=unknown)
    assert code(exc) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as exc:
        lam.get_durable_execution_history(DurableExecutionArn="arn:aws:lambda:us-east-1:000000000000:function:x")
    assert code(exc) == "ValidationException"
    with pytest.raises(ClientError) as exc:
        lam.send_durable_execution_callback_success(CallbackId=base64.b64encode(b"1:nothing:0").decode(),
                                                    Result=b"{}")
    assert code(exc) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as exc:
        lam.send_durable_execution_callback_failure(CallbackId="not*a*callback")
    assert code(exc) == "ValidationException"
    with pytest.raises(ClientError) as exc:
        lam.checkpoint_durable_execution(DurableExecutionArn=unknown, CheckpointToken="AAAA", Updates=[])
    assert code(exc) == "InvalidParameterValueException"
    with pytest.raises(ClientError) as exc:
        lam.list_durable_executions_by_function(FunctionName="no-such-function")
    assert code(exc) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as exc:
        lam.invoke(FunctionName=name, Payload=b"{}", DurableExecutionName="bad name!")
    assert code(exc) == "ValidationException"


def test_a_running_execution_rejects_a_stale_checkpoint_token(lam, unkai):
    name = durable(lam, CALLBACK)
    arn = lam.invoke(FunctionName=name, InvocationType="Event", Payload=b"{}")["DurableExecutionArn"]
    unkai.drain()
    with pytest.raises(ClientError) as exc:
        lam.checkpoint_durable_execution(DurableExecutionArn=arn, CheckpointToken="dW5rYWk6MTox", Updates=[
            {"Id": "x", "Type": "STEP", "Action": "START"}])
    assert code(exc) == "InvalidParameterValueException"
    lam.stop_durable_execution(DurableExecutionArn=arn)


def test_a_failing_step_is_retried_after_its_delay_on_unkais_clock(lam, unkai):
    name = durable(lam, RETRIES)
    arn = lam.invoke(FunctionName=name, InvocationType="Event", Payload=b"{}")["DurableExecutionArn"]
    unkai.drain()
    assert lam.get_durable_execution(DurableExecutionArn=arn)["Status"] == "RUNNING"
    failed = [e for e in history(lam, arn) if e["EventType"] == "StepFailed"]
    assert failed[0]["StepFailedDetails"]["RetryDetails"]["NextAttemptDelaySeconds"] == 30
    assert "the warehouse did not answer" in failed[0]["StepFailedDetails"]["Error"]["Payload"]["ErrorMessage"]
    assert logged(unkai, name, "attempt") == 1
    unkai.advance(31)
    unkai.drain()
    ex = lam.get_durable_execution(DurableExecutionArn=arn)
    assert ex["Status"] == "SUCCEEDED" and json.loads(ex["Result"]) == {"attempts": 2}
    assert logged(unkai, name, "attempt") == 2


def test_a_chained_invoke_runs_the_other_function_and_resumes_with_its_result(lam):
    pricer = deploy(lam, PRICER)
    name = durable(lam, CHAINED)
    resp, body = call(lam, name, {"item": "lamp", "pricer": pricer})
    assert body == {"item": "lamp", "price": 40}, body
    types = [e["EventType"] for e in history(lam, resp["DurableExecutionArn"])]
    assert "ChainedInvokeStarted" in types and "ChainedInvokeSucceeded" in types


def test_map_parallel_and_wait_for_condition_run_through_child_contexts_and_polls(lam, unkai):
    name = durable(lam, FAN_OUT)
    arn = lam.invoke(FunctionName=name, InvocationType="Event",
                     Payload=json.dumps({"items": [1, 2, 3]}).encode())["DurableExecutionArn"]
    unkai.drain()
    assert lam.get_durable_execution(DurableExecutionArn=arn)["Status"] == "RUNNING"  # polling, 20 s apart
    unkai.advance(21)
    unkai.drain()
    ex = lam.get_durable_execution(DurableExecutionArn=arn)
    assert ex["Status"] == "SUCCEEDED", ex
    assert json.loads(ex["Result"]) == {"squares": [1, 4, 9], "pair": ["left", "right"], "polls": 2}
    types = [e["EventType"] for e in history(lam, arn)]
    assert types.count("ContextSucceeded") >= 2 + 3  # map, parallel and their branches


def test_a_paused_execution_is_not_invoked_until_resumed_and_only_ended_ones_are_deleted(lam, unkai):
    name = durable(lam, WAITS)
    arn = lam.invoke(FunctionName=name, InvocationType="Event", Payload=b"{}")["DurableExecutionArn"]
    unkai.drain()
    lam.pause_durable_execution(DurableExecutionArn=arn, Reason="maintenance")
    paused = lam.get_durable_execution(DurableExecutionArn=arn)
    assert paused["Status"] == "PAUSED" and paused["PauseDetails"]["Reason"] == "maintenance"
    with pytest.raises(ClientError) as exc:
        lam.delete_durable_execution(DurableExecutionArn=arn)
    assert code(exc) == "ResourceConflictException"
    unkai.advance(61)  # the wait completes while paused, but the function is not invoked
    unkai.drain()
    assert lam.get_durable_execution(DurableExecutionArn=arn)["Status"] == "PAUSED"
    assert logged(unkai, name, "after the wait") == 0
    lam.resume_durable_execution(DurableExecutionArn=arn)
    unkai.drain()
    assert lam.get_durable_execution(DurableExecutionArn=arn)["Status"] == "SUCCEEDED"
    types = [e["EventType"] for e in history(lam, arn)]
    assert "ExecutionPaused" in types and "ExecutionResumed" in types
    with pytest.raises(ClientError) as exc:
        lam.resume_durable_execution(DurableExecutionArn=arn)
    assert code(exc) == "ResourceConflictException"
    assert lam.delete_durable_execution(DurableExecutionArn=arn)["DeletionRequestTimestamp"]
    with pytest.raises(ClientError) as exc:
        lam.get_durable_execution(DurableExecutionArn=arn)
    assert code(exc) == "ResourceNotFoundException"


def test_a_pause_stops_the_execution_timeout_only_when_asked(lam, unkai):
    name = deploy(lam, WAITS, DurableConfig={"ExecutionTimeout": 100}, Timeout=30)
    kept = lam.invoke(FunctionName=name, InvocationType="Event", Payload=b"{}")["DurableExecutionArn"]
    counted = lam.invoke(FunctionName=name, InvocationType="Event", Payload=b"{}")["DurableExecutionArn"]
    unkai.drain()
    lam.pause_durable_execution(DurableExecutionArn=kept, ExecutionTimeoutPaused=True)
    lam.pause_durable_execution(DurableExecutionArn=counted)
    unkai.advance(200)
    unkai.drain()
    assert lam.get_durable_execution(DurableExecutionArn=counted)["Status"] == "TIMED_OUT"
    assert lam.get_durable_execution(DurableExecutionArn=kept)["Status"] == "PAUSED"
    lam.resume_durable_execution(DurableExecutionArn=kept)
    unkai.drain()
    assert lam.get_durable_execution(DurableExecutionArn=kept)["Status"] == "SUCCEEDED"


def test_an_ended_execution_is_kept_for_its_retention_period(lam, unkai):
    name = deploy(lam, STEPS, DurableConfig={"ExecutionTimeout": 60, "RetentionPeriodInDays": 1})
    arn = call(lam, name, {"n": 5})[0]["DurableExecutionArn"]
    unkai.advance(23 * 3600)
    unkai.drain()
    assert lam.get_durable_execution(DurableExecutionArn=arn)["Status"] == "SUCCEEDED"
    unkai.advance(3600 + 1)
    unkai.drain()
    with pytest.raises(ClientError) as exc:
        lam.get_durable_execution(DurableExecutionArn=arn)
    assert code(exc) == "ResourceNotFoundException"


def test_a_function_without_durable_config_gets_its_event_as_before(lam):
    name = deploy(lam, PLAIN)
    resp, body = call(lam, name, {"a": 1})
    assert body == {"plain": True} and "DurableExecutionArn" not in resp
    assert "DurableConfig" not in lam.get_function_configuration(FunctionName=name)
    with pytest.raises(ClientError) as exc:  # AWS enables durable execution only when a function is created
        lam.update_function_configuration(FunctionName=name, DurableConfig={"ExecutionTimeout": 60})
    assert code(exc) == "InvalidParameterValueException"


def test_the_durable_order_app_comes_up_and_completes_its_workflow(tmp_path):
    """The SAM app in tests/apps/durable-order: a step, a wait, then an approval callback whose id
    the workflow sends to an SQS queue, as a human-approval workflow does."""
    app = tmp_path / "app"
    shutil.copytree(APP, app)
    with UnkaiServer(tmp_path / "state", str(app / "template.yaml")) as server:
        stack = server.client("cloudformation").describe_stacks()["Stacks"][0]
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
        lam, sqs = server.client("lambda"), server.client("sqs")
        config = lam.get_function_configuration(FunctionName=outputs["FunctionName"])
        assert config["DurableConfig"]["ExecutionTimeout"] == 86400
        arn = lam.invoke(FunctionName=outputs["FunctionName"], Qualifier="$LATEST", InvocationType="Event",
                         Payload=json.dumps({"order": "o-1", "amount": 40}).encode())["DurableExecutionArn"]
        server.drain()
        assert lam.get_durable_execution(DurableExecutionArn=arn)["Status"] == "RUNNING"
        server.advance(301)  # the cool-off wait
        server.drain()
        messages = sqs.receive_message(QueueUrl=outputs["ApprovalQueueUrl"], WaitTimeSeconds=1)["Messages"]
        request = json.loads(messages[0]["Body"])
        assert request["order"] == "o-1"
        lam.send_durable_execution_callback_success(CallbackId=request["callbackId"],
                                                    Result=json.dumps({"approved": True}).encode())
        server.drain()
        ex = lam.get_durable_execution(DurableExecutionArn=arn)
        assert ex["Status"] == "SUCCEEDED"
        assert json.loads(ex["Result"]) == {"order": "o-1", "status": "shipped", "reserved": 40}
        table = server.client("dynamodb").get_item(TableName=outputs["OrdersTable"], Key={"id": {"S": "o-1"}})
        assert table["Item"]["status"]["S"] == "shipped"


CFN_TEMPLATE = """
AWSTemplateFormatVersion: "2010-09-09"
Resources:
  Role:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Version: "2012-10-17"
        Statement: [{Effect: Allow, Principal: {Service: lambda.amazonaws.com}, Action: sts:AssumeRole}]
      ManagedPolicyArns: [arn:aws:iam::aws:policy/service-role/AWSLambdaBasicDurableExecutionRolePolicy]
  Greeter:
    Type: AWS::Lambda::Function
    Properties:
      Runtime: python3.13
      Handler: index.handler
      Role: !GetAtt Role.Arn
      DurableConfig:
        ExecutionTimeout: 600
      Code:
        ZipFile: |
          from aws_durable_execution_sdk_python import durable_execution

          @durable_execution
          def handler(event, context):
              return context.step(lambda _: "hello " + event["name"], name="greet")
Outputs:
  Greeter:
    Value: !Ref Greeter
"""


def test_a_cloudformation_function_with_durable_config_and_inline_code_runs_durably(tmp_path):
    (tmp_path / "template.yaml").write_text(CFN_TEMPLATE)
    with UnkaiServer(tmp_path / "state", str(tmp_path / "template.yaml")) as server:
        lam = server.client("lambda")
        outputs = server.client("cloudformation").describe_stacks()["Stacks"][0]["Outputs"]
        config = lam.get_function_configuration(FunctionName=outputs[0]["OutputValue"])
        assert config["DurableConfig"] == {"ExecutionTimeout": 600, "RetentionPeriodInDays": 14}
        resp, body = call(lam, config["FunctionName"], {"name": "ana"}, Qualifier="$LATEST")
        assert body == "hello ana"
        assert lam.get_durable_execution(DurableExecutionArn=resp["DurableExecutionArn"])["Status"] == "SUCCEEDED"


TERRAFORM = """
data "archive_file" "fn" {
  type        = "zip"
  source_dir  = "${path.module}/fn"
  output_path = "build/fn.zip"
}

resource "aws_iam_role" "fn" {
  name               = "durable-fn"
  assume_role_policy = jsonencode({Version = "2012-10-17", Statement = [{Effect = "Allow",
    Principal = {Service = "lambda.amazonaws.com"}, Action = "sts:AssumeRole"}]})
}

resource "aws_lambda_function" "fn" {
  function_name    = "durable-tf"
  filename         = data.archive_file.fn.output_path
  source_code_hash = data.archive_file.fn.output_base64sha256
  role             = aws_iam_role.fn.arn
  handler          = "app.handler"
  runtime          = "python3.13"
  durable_config {
    execution_timeout = 900
    retention_period  = 3
  }
}
"""


def test_a_terraform_function_with_durable_config_runs_durably(tmp_path):
    root = tmp_path / "tf"
    (root / "fn").mkdir(parents=True)
    (root / "fn" / "app.py").write_text(STEPS)
    (root / "main.tf").write_text(TERRAFORM)
    with UnkaiServer(tmp_path / "state", str(root)) as server:
        lam = server.client("lambda")
        config = lam.get_function_configuration(FunctionName="durable-tf")
        assert config["DurableConfig"] == {"ExecutionTimeout": 900, "RetentionPeriodInDays": 3}
        _, body = call(lam, "durable-tf", {"n": 40}, Qualifier="$LATEST")
        assert body == {"result": 42}


def test_a_waiting_execution_survives_kill_9_and_finishes_after_the_restart(tmp_path):
    state = tmp_path / "state"
    server = UnkaiServer(state).start()
    try:
        lam = server.client("lambda")
        name = durable(lam, WAITS)
        arn = lam.invoke(FunctionName=name, InvocationType="Event", Payload=b"{}")["DurableExecutionArn"]
        server.drain()
        assert lam.get_durable_execution(DurableExecutionArn=arn)["Status"] == "RUNNING"
    finally:
        server.kill()
    server = UnkaiServer(state).start()
    try:
        lam = server.client("lambda")
        server.advance(61)
        server.drain()
        ex = lam.get_durable_execution(DurableExecutionArn=arn)
        assert ex["Status"] == "SUCCEEDED" and json.loads(ex["Result"]) == ["ok", "done"]
    finally:
        server.stop()

