"""An honest drain after a crash: a message whose invocation a ``kill -9`` interrupted is
still invisible in its queue after the restart. ``/_unkai/drain`` and ``unkai status``
report it as pending (not "drained") until it is delivered again, after its visibility
timeout, and then the invocation completes. An asynchronous invocation interrupted the
same way is a job still in the store: it runs again after the restart."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from unkai.testing import UnkaiServer

TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Resources:
  Done:
    Type: AWS::SQS::Queue
  Jobs:
    Type: AWS::SQS::Queue
    Properties: {{VisibilityTimeout: 300}}  # longer than a slow restart on a loaded machine
  Worker:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      Handler: index.handler
      Timeout: 25
      Environment:
        Variables:
          DONE_URL: !Ref Done
          MARKER: {marker!r}
      InlineCode: |
        import os, time
        import boto3
        def handler(event, context):
            marker = os.environ["MARKER"] + "-" + event["Records"][0]["body"].replace(" ", "-")
            if not os.path.exists(marker):  # the first attempt: busy when unkai is killed
                open(marker, "w").close()
                time.sleep(20)
            boto3.client("sqs").send_message(QueueUrl=os.environ["DONE_URL"], MessageBody=event["Records"][0]["body"])
      Events:
        Jobs:
          Type: SQS
          Properties: {{Queue: !GetAtt Jobs.Arn}}
"""


def queue_urls(server) -> tuple[str, str]:
    urls = server.client("sqs").list_queues()["QueueUrls"]
    return next(u for u in urls if "Jobs" in u), next(u for u in urls if "Done" in u)


def test_a_message_interrupted_by_kill_9_is_pending_until_it_is_delivered_again(tmp_path):
    marker = tmp_path / "first-attempt"  # one file per event, made by its first attempt
    (tmp_path / "template.yaml").write_text(TEMPLATE.format(marker=str(marker)))
    args = (tmp_path / "state", str(tmp_path / "template.yaml"), "--quiet")
    first = UnkaiServer(*args).start(timeout=120)
    try:
        jobs, _ = queue_urls(first)
        first.client("sqs").send_message(QueueUrl=jobs, MessageBody="question 1")
        function = next(f["FunctionName"] for f in first.client("lambda").list_functions()["Functions"])
        first.client("lambda").invoke(FunctionName=function, InvocationType="Event",
                                      Payload=b'{"Records": [{"body": "async 1"}]}')
        deadline = time.monotonic() + 60
        while not (Path(f"{marker}-question-1").exists() and Path(f"{marker}-async-1").exists()):  # both held
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        first.kill()

    server = UnkaiServer(*args).start(timeout=120)
    try:
        jobs, done = queue_urls(server)
        left = server.post("/_unkai/drain?timeout=0")
        assert left["pending"].get("lambda.messages_interrupted_by_a_restart") == 1, left
        status = subprocess.run([sys.executable, "-m", "unkai", "status"], capture_output=True, text=True,
                                timeout=60, env=dict(os.environ, UNKAI_ENDPOINT=server.endpoint))
        pending = next(line for line in status.stdout.splitlines() if line.startswith("  pending"))
        assert "lambda.messages_interrupted_by_a_restart: 1" in pending, status.stdout + status.stderr

        server.advance(301)  # its visibility timeout passes: delivered again, and this time it completes
        server.drain(timeout=30)
        got = server.client("sqs").receive_message(QueueUrl=done, WaitTimeSeconds=5,
                                                   MaxNumberOfMessages=10).get("Messages") or []
        assert sorted(m["Body"] for m in got) == ["async 1", "question 1"]
        assert server.post("/_unkai/drain?timeout=0")["pending"] == {}
    finally:
        server.stop()


def test_a_mapped_invocations_log_lines_are_stored_with_its_messages_delete_even_under_kill_9(tmp_path):
    """An SQS-triggered invocation's log lines commit in the transaction that deletes its
    message: once the message is gone, its lines are in the store, whatever happens next."""
    from lambda_code import deploy

    state = tmp_path / "state"
    server = UnkaiServer(state).start()
    try:
        sqs, lam = server.client("sqs"), server.client("lambda")
        url = sqs.create_queue(QueueName="logged")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        name = deploy(lam, "def handler(event, context):\n"
                           "    for r in event['Records']:\n"
                           "        print('handled', r['body'])\n")
        lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=name, BatchSize=1)
        bodies = [f"m{i}" for i in range(5)]
        for body in bodies:
            sqs.send_message(QueueUrl=url, MessageBody=body)
        deadline = time.monotonic() + 60
        while True:  # every message deleted: each one's invocation has finished and been acknowledged
            counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
                "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
            if counts == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}:
                break
            assert time.monotonic() < deadline, counts
            time.sleep(0.02)
    finally:
        server.kill()  # kill -9, straight after the last delete

    server = UnkaiServer(state).start()
    try:
        events = server.client("logs").filter_log_events(logGroupName=f"/aws/lambda/{name}",
                                                         filterPattern='"handled"')["events"]
        assert sorted(e["message"].split()[-1] for e in events) == bodies
    finally:
        server.stop()
