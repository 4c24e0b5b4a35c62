"""Error bodies as AWS writes them for REST-JSON services: the message under the key the
error shape names in botocore's model (``Message`` for Lambda's and Scheduler's
ResourceNotFoundException, ``message`` for Pipes' NotFoundException), so the modeled
member reaches ``err.response`` as it does against AWS."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

ACCOUNT = "000000000000"


def test_lambda_not_found_carries_type_and_message_as_aws_sends_them(unkai):
    with pytest.raises(ClientError) as exc:
        unkai.client("lambda").get_function(FunctionName="no-such-function-here")
    response = exc.value.response
    message = f"Function not found: arn:aws:lambda:us-east-1:{ACCOUNT}:function:no-such-function-here"
    assert response["Error"] == {"Code": "ResourceNotFoundException", "Message": message}
    assert response["Message"] == message
    assert response["Type"] == "User"


def test_scheduler_errors_carry_the_top_level_message(unkai):
    scheduler = unkai.client("scheduler")
    with pytest.raises(ClientError) as exc:
        scheduler.get_schedule(Name="no-such-schedule")
    assert exc.value.response["Message"] == "Schedule no-such-schedule does not exist."
    with pytest.raises(ClientError) as exc:
        scheduler.create_schedule(Name="bad-cron", ScheduleExpression="cron(0 1 * * * *)",
                                  FlexibleTimeWindow={"Mode": "OFF"},
                                  Target={"Arn": f"arn:aws:sqs:us-east-1:{ACCOUNT}:q",
                                          "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/r"})
    assert exc.value.response["Error"]["Code"] == "ValidationException"
    assert exc.value.response["Message"] == "Invalid Schedule Expression cron(0 1 * * * *)."


def test_pipes_errors_keep_the_lowercase_message_its_model_names(unkai):
    with pytest.raises(ClientError) as exc:
        unkai.client("pipes").describe_pipe(Name="no-such-pipe")
    assert exc.value.response["message"] == "Pipe no-such-pipe not found"
    assert "Message" not in exc.value.response
