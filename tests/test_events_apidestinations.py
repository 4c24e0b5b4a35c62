"""EventBridge connections and API destinations through boto3: rules whose target is an
HTTP endpoint (unkai's webhook inbox, or a small real HTTP server in this file for OAuth
and failures), with the connection's auth and parameters, the target's HttpParameters and
InputTransformer, the invocation rate limit on unkai's clock, retries and dead letters."""

from __future__ import annotations

import base64
import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from botocore.exceptions import ClientError

from unkai.testing import new_queue, receive_all

ACCOUNT = "000000000000"


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def error(exc: pytest.ExceptionInfo) -> tuple[str, str]:
    return exc.value.response["Error"]["Code"], exc.value.response["Error"]["Message"]


class Receiver:
    """A real HTTP server on 127.0.0.1: an OAuth token endpoint and an API that answers the
    statuses it is told to, recording every request."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.statuses: list[int] = []  # answers for /api, in order (200 once they run out)
        self.tokens = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                receiver.requests.append({"method": self.command, "path": self.path, "headers": dict(self.headers),
                                          "body": body})
                if self.path.startswith("/enrich"):  # a batch of SQS records in, one enriched object each out
                    out = json.dumps([{"order": json.loads(r["body"])["id"], "enriched": True}
                                      for r in json.loads(body)])
                    status = 200
                elif self.path.startswith("/token"):
                    receiver.tokens += 1
                    out, status = json.dumps({"access_token": f"tok-{receiver.tokens}", "expires_in": 3600}), 200
                else:
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                    out = "{}"
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out.encode())

            do_POST = do_GET = do_PUT = _answer

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def api_calls(self) -> list[dict]:
        return [r for r in self.requests if r["path"].startswith("/api")]


@pytest.fixture(scope="module")
def receiver():
    r = Receiver()
    yield r
    r.server.shutdown()


def rule_to(events, arn: str, target: dict) -> str:
    name = uid("http")
    source = uid("src")
    events.put_rule(Name=name, EventPattern=json.dumps({"source": [source]}))
    events.put_targets(Rule=name, Targets=[dict(target, Id="api", Arn=arn)])
    return source


def test_basic_auth_connection_calls_the_endpoint_with_parameters_and_transformed_input(unkai):
    events = unkai.client("events")
    name = uid("basic")
    created = events.create_connection(
        Name=name, AuthorizationType="BASIC", Description="to the inbox",
        AuthParameters={"BasicAuthParameters": {"Username": "user", "Password": "pw"},
                        "InvocationHttpParameters": {
                            "HeaderParameters": [{"Key": "x-team", "Value": "ops", "IsValueSecret": False},
                                                 {"Key": "x-secret", "Value": "s3", "IsValueSecret": True}],
                            "QueryStringParameters": [{"Key": "env", "Value": "dev"}]}})
    assert created["ConnectionState"] == "AUTHORIZED"
    assert created["ConnectionArn"].startswith(f"arn:aws:events:us-east-1:{ACCOUNT}:connection/{name}/")
    described = events.describe_connection(Name=name)
    assert described["AuthorizationType"] == "BASIC" and described["Description"] == "to the inbox"
    assert described["AuthParameters"]["BasicAuthParameters"] == {"Username": "user"}  # never the password
    headers = described["AuthParameters"]["InvocationHttpParameters"]["HeaderParameters"]
    assert headers == [{"Key": "x-team", "Value": "ops", "IsValueSecret": False},
                       {"Key": "x-secret", "IsValueSecret": True}]
    assert described["SecretArn"].startswith(
        f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:events!connection/{name}/")
    inbox = uid("hook")
    dest = events.create_api_destination(Name=uid("dest"), ConnectionArn=created["ConnectionArn"],
                                         InvocationEndpoint=unkai.url(f"/_unkai/inbox/{inbox}/orders/*"),
                                         HttpMethod="POST", InvocationRateLimitPerSecond=10)
    assert dest["ApiDestinationState"] == "ACTIVE"
    assert ":api-destination/" in dest["ApiDestinationArn"]
    source = rule_to(events, dest["ApiDestinationArn"], {
        "HttpParameters": {"PathParameterValues": ["o-1"], "HeaderParameters": {"x-rule": "r"},
                           "QueryStringParameters": {"page": "1"}},
        "InputTransformer": {"InputPathsMap": {"id": "$.detail.id"},
                             "InputTemplate": '{"order": <id>, "from": "unkai"}'}})
    events.put_events(Entries=[{"Source": source, "DetailType": "t", "Detail": '{"id": 7}'}])
    unkai.drain()
    calls = unkai.inbox(inbox)
    assert len(calls) == 1
    call = calls[0]
    assert call["method"] == "POST" and call["path"] == f"/_unkai/inbox/{inbox}/orders/o-1"
    assert dict(p.split("=") for p in call["query"].split("&")) == {"env": "dev", "page": "1"}
    assert call["headers"]["authorization"] == "Basic " + base64.b64encode(b"user:pw").decode()
    assert call["headers"]["x-team"] == "ops" and call["headers"]["x-secret"] == "s3"
    assert call["headers"]["x-rule"] == "r"
    assert call["headers"]["content-type"] == "application/json; charset=utf-8"
    assert call["json"] == {"order": 7, "from": "unkai"}


def test_api_key_connection_and_the_rate_limit_on_the_clock(unkai):
    events = unkai.client("events")
    conn = events.create_connection(Name=uid("key"), AuthorizationType="API_KEY",
                                    AuthParameters={"ApiKeyAuthParameters": {"ApiKeyName": "x-api-key",
                                                                             "ApiKeyValue": "k-123"}})
    assert events.describe_connection(Name=conn["ConnectionArn"].split("/")[1])["AuthParameters"] == {
        "ApiKeyAuthParameters": {"ApiKeyName": "x-api-key"}}
    inbox = uid("limited")
    dest = events.create_api_destination(Name=uid("one-per-second"), ConnectionArn=conn["ConnectionArn"],
                                         InvocationEndpoint=unkai.url(f"/_unkai/inbox/{inbox}"), HttpMethod="PUT",
                                         InvocationRateLimitPerSecond=1)
    source = rule_to(events, dest["ApiDestinationArn"], {})
    events.put_events(Entries=[{"Source": source, "DetailType": "t", "Detail": json.dumps({"n": i})}
                               for i in range(3)])
    unkai.drain()
    assert len(unkai.inbox(inbox)) == 1  # the other two wait for the next seconds
    unkai.advance(1.01)
    unkai.drain()
    assert len(unkai.inbox(inbox)) == 2
    unkai.advance(1.01)
    unkai.drain()
    calls = unkai.inbox(inbox)
    assert sorted(c["json"]["detail"]["n"] for c in calls) == [0, 1, 2]
    assert {c["method"] for c in calls} == {"PUT"}
    assert {c["headers"]["x-api-key"] for c in calls} == {"k-123"}


def test_oauth_client_credentials_token_is_fetched_cached_and_sent(unkai, receiver):
    events = unkai.client("events")
    name = uid("oauth")
    created = events.create_connection(
        Name=name, AuthorizationType="OAUTH_CLIENT_CREDENTIALS",
        AuthParameters={"OAuthParameters": {
            "ClientParameters": {"ClientID": "cid", "ClientSecret": "csecret"},
            "AuthorizationEndpoint": receiver.url + "/token", "HttpMethod": "POST",
            "OAuthHttpParameters": {"BodyParameters": [{"Key": "scope", "Value": "events"}]}}})
    assert created["ConnectionState"] == "AUTHORIZING"
    unkai.drain()
    described = events.describe_connection(Name=name)
    assert described["ConnectionState"] == "AUTHORIZED" and "LastAuthorizedTime" in described
    assert described["AuthParameters"]["OAuthParameters"]["ClientParameters"] == {"ClientID": "cid"}
    token_call = [r for r in receiver.requests if r["path"] == "/token"][-1]
    assert token_call["headers"]["Authorization"] == "Basic " + base64.b64encode(b"cid:csecret").decode()
    assert "grant_type=client_credentials" in token_call["body"] and "scope=events" in token_call["body"]
    fetched = receiver.tokens
    dest = events.create_api_destination(Name=uid("oauth-api"), ConnectionArn=created["ConnectionArn"],
                                         InvocationEndpoint=receiver.url + "/api/oauth", HttpMethod="POST")
    source = rule_to(events, dest["ApiDestinationArn"], {})
    events.put_events(Entries=[{"Source": source, "DetailType": "t", "Detail": "{}"}] * 2)
    unkai.drain()
    calls = [r for r in receiver.api_calls() if r["path"] == "/api/oauth"]
    assert len(calls) == 2
    assert {c["headers"]["Authorization"] for c in calls} == {f"Bearer tok-{fetched}"}
    assert receiver.tokens == fetched  # cached: no new token for the calls


def test_failed_calls_are_retried_then_dead_lettered(unkai, receiver):
    events, sqs = unkai.client("events"), unkai.client("sqs")
    conn = events.create_connection(Name=uid("retry"), AuthorizationType="API_KEY",
                                    AuthParameters={"ApiKeyAuthParameters": {"ApiKeyName": "k", "ApiKeyValue": "v"}})
    dest = events.create_api_destination(Name=uid("flaky"), ConnectionArn=conn["ConnectionArn"],
                                         InvocationEndpoint=receiver.url + "/api/flaky", HttpMethod="POST")
    dlq_url, dlq_arn = new_queue(sqs)
    source = rule_to(events, dest["ApiDestinationArn"], {"DeadLetterConfig": {"Arn": dlq_arn},
                                                         "RetryPolicy": {"MaximumRetryAttempts": 5}})
    receiver.statuses[:] = [503, 200]  # a 5xx is retried
    events.put_events(Entries=[{"Source": source, "DetailType": "t", "Detail": '{"a": 1}'}])
    unkai.drain()
    unkai.advance(2)
    unkai.drain()
    assert len([r for r in receiver.api_calls() if r["path"] == "/api/flaky"]) == 2
    assert receive_all(sqs, dlq_url) == []

    receiver.statuses[:] = [400]  # a 4xx other than 401/407/409/429 is final
    events.put_events(Entries=[{"Source": source, "DetailType": "t", "Detail": '{"a": 2}'}])
    unkai.drain()
    messages = sqs.receive_message(QueueUrl=dlq_url, MessageAttributeNames=["All"], WaitTimeSeconds=1)["Messages"]
    assert json.loads(messages[0]["Body"])["detail"] == {"a": 2}
    attributes = {k: v["StringValue"] for k, v in messages[0]["MessageAttributes"].items()}
    assert attributes["TARGET_ARN"] == dest["ApiDestinationArn"]
    assert attributes["ERROR_CODE"] == "SDK_CLIENT_ERROR"
    assert "400" in attributes["ERROR_MESSAGE"]


def test_connection_and_destination_lifecycle_and_errors(unkai):
    events = unkai.client("events")
    name = uid("life")
    conn = events.create_connection(Name=name, AuthorizationType="BASIC",
                                    AuthParameters={"BasicAuthParameters": {"Username": "a", "Password": "b"}})
    with pytest.raises(ClientError) as exc:
        events.create_connection(Name=name, AuthorizationType="BASIC",
                                 AuthParameters={"BasicAuthParameters": {"Username": "a", "Password": "b"}})
    assert error(exc) == ("ResourceAlreadyExistsException", f"Connection {name} already exists.")
    updated = events.update_connection(Name=name, AuthParameters={"BasicAuthParameters": {"Username": "c"}})
    assert updated["ConnectionState"] == "AUTHORIZED"
    assert events.describe_connection(Name=name)["AuthParameters"]["BasicAuthParameters"] == {"Username": "c"}
    assert name in [c["Name"] for c in events.list_connections(NamePrefix=name)["Connections"]]
    assert events.deauthorize_connection(Name=name)["ConnectionState"] == "DEAUTHORIZING"
    assert events.describe_connection(Name=name)["ConnectionState"] == "DEAUTHORIZED"

    dest_name = uid("d")
    events.create_api_destination(Name=dest_name, ConnectionArn=conn["ConnectionArn"],
                                  InvocationEndpoint="https://example.com/hook", HttpMethod="POST")
    described = events.describe_api_destination(Name=dest_name)
    assert described["InvocationRateLimitPerSecond"] == 300 and described["HttpMethod"] == "POST"
    events.update_api_destination(Name=dest_name, HttpMethod="PUT", InvocationRateLimitPerSecond=5)
    assert events.describe_api_destination(Name=dest_name)["HttpMethod"] == "PUT"
    listed = events.list_api_destinations(ConnectionArn=conn["ConnectionArn"])["ApiDestinations"]
    assert [d["Name"] for d in listed] == [dest_name]
    events.delete_api_destination(Name=dest_name)
    with pytest.raises(ClientError) as exc:
        events.describe_api_destination(Name=dest_name)
    assert error(exc) == ("ResourceNotFoundException", f"An api-destination '{dest_name}' does not exist.")
    assert events.delete_connection(Name=name)["ConnectionState"] == "DELETING"
    with pytest.raises(ClientError) as exc:
        events.describe_connection(Name=name)
    assert error(exc) == ("ResourceNotFoundException", f"Connection '{name}' does not exist.")
    with pytest.raises(ClientError) as exc:
        events.create_api_destination(Name=uid("d"), ConnectionArn=conn["ConnectionArn"],
                                      InvocationEndpoint="https://example.com", HttpMethod="POST")
    assert exc.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_a_pipe_enriches_its_batch_through_an_api_destination(unkai, receiver):
    events, sqs, pipes = unkai.client("events"), unkai.client("sqs"), unkai.client("pipes")
    conn = events.create_connection(Name=uid("enrich"), AuthorizationType="API_KEY",
                                    AuthParameters={"ApiKeyAuthParameters": {"ApiKeyName": "x-key",
                                                                             "ApiKeyValue": "e-1"}})
    dest = events.create_api_destination(Name=uid("enricher"), ConnectionArn=conn["ConnectionArn"],
                                         InvocationEndpoint=receiver.url + "/enrich", HttpMethod="POST")
    src_url, src_arn = new_queue(sqs)
    out_url, out_arn = new_queue(sqs)
    name = uid("api-enriched")
    pipes.create_pipe(Name=name, RoleArn=f"arn:aws:iam::{ACCOUNT}:role/p", Source=src_arn, Target=out_arn,
                      Enrichment=dest["ApiDestinationArn"],
                      EnrichmentParameters={"HttpParameters": {"HeaderParameters": {"x-pipe": name}}})
    sqs.send_message(QueueUrl=src_url, MessageBody=json.dumps({"id": 42}))
    unkai.drain()
    assert [json.loads(b) for b in receive_all(sqs, out_url)] == [{"order": 42, "enriched": True}]
    call = [r for r in receiver.requests if r["path"] == "/enrich"][-1]
    assert call["headers"]["x-key"] == "e-1" and call["headers"]["x-pipe"] == name
    pipes.delete_pipe(Name=name)
