"""CloudWatch Logs behaviour that needs unkai's clock moved (issue 23, item 3: Logs): a Live Tail
session ends after AWS's 3 hours with a SessionTimeoutException event. The module has its own
server, since it moves the clock by hours."""

from __future__ import annotations

import time

import pytest
from botocore.config import Config
from botocore.exceptions import EventStreamError
from lambda_code import private_server

unkai = private_server("logs-clock")


def test_a_live_tail_session_ends_after_three_hours_of_unkais_clock(unkai):
    logs = unkai.client("logs")
    tail = unkai.client("logs", config=Config(inject_host_prefix=False, retries={"max_attempts": 1}))
    group = f"/tail/{time.time_ns()}"
    logs.create_log_group(logGroupName=group)
    response = tail.start_live_tail(logGroupIdentifiers=[group])
    stream = iter(response["responseStream"])
    assert "sessionStart" in next(stream)
    assert next(stream)["sessionUpdate"]["sessionResults"] == []
    unkai.advance(3 * 3600)
    with pytest.raises(EventStreamError) as exc:
        for _, _event in zip(range(5), stream):
            pass
    assert exc.value.response["Error"]["Code"] == "SessionTimeoutException"
