"""EventBridge Scheduler answers as AWS does for bad input (issue 23, item 1's Scheduler
validations): a date that does not exist is an invalid expression (never a 500), and the model's
ranges are checked with AWS's "N validation errors detected" wording."""

from __future__ import annotations

import time

import pytest
from botocore.exceptions import ClientError

TARGET = {"Arn": "arn:aws:sqs:us-east-1:000000000000:q", "RoleArn": "arn:aws:iam::000000000000:role/r"}


@pytest.fixture(scope="module")
def scheduler(unkai):
    return unkai.client("scheduler")


def error_of(exc: pytest.ExceptionInfo) -> tuple[str, str, int]:
    resp = exc.value.response
    return resp["Error"]["Code"], resp["Error"]["Message"], resp["ResponseMetadata"]["HTTPStatusCode"]


def test_an_at_expression_with_an_impossible_date_is_invalid_not_a_crash(scheduler):
    with pytest.raises(ClientError) as exc:
        scheduler.create_schedule(Name=f"fid-{time.time_ns()}", ScheduleExpression="at(2030-13-01T00:00:00)",
                                  FlexibleTimeWindow={"Mode": "OFF"}, Target=TARGET)
    assert error_of(exc) == ("ValidationException", "Invalid Schedule Expression at(2030-13-01T00:00:00).", 400)


def test_ranges_beyond_the_model_are_counted_as_validation_errors(scheduler):
    with pytest.raises(ClientError) as exc:
        scheduler.create_schedule(Name=f"fid-{time.time_ns()}", ScheduleExpression="rate(5 minutes)",
                                  FlexibleTimeWindow={"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 2000},
                                  Target=dict(TARGET, RetryPolicy={"MaximumRetryAttempts": 200}))
    code, message, status = error_of(exc)
    assert (code, status) == ("ValidationException", 400)
    assert message == ("2 validation errors detected: Value '200' at 'target.retryPolicy.maximumRetryAttempts' "
                       "failed to satisfy constraint: Member must have value less than or equal to 185; Value '2000' "
                       "at 'flexibleTimeWindow.maximumWindowInMinutes' failed to satisfy constraint: Member must "
                       "have value less than or equal to 1440")
