"""Fuzzing the wire-protocol layer: requests generated from botocore's service models
(serialized by botocore itself, without its client-side validation) and raw garbage.
Whatever arrives, unkai answers with an AWS-shaped client error, never a 5xx, never
a hang."""

from __future__ import annotations

import datetime as dt
import json
import string
from urllib.parse import urlencode

import botocore.session
import httpx
import pytest
from botocore.serialize import create_serializer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from unkai.testing import UnkaiServer

SIG = ("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/{svc}/aws4_request, "
       "SignedHeaders=host;x-amz-date, Signature=" + "0" * 64)
# Operations that wait by design (long polls) get their wait forced to zero.
WAIT_MEMBERS = {"WaitTimeSeconds"}
NOT_FUZZED = {"s3": {"WriteGetObjectResponse", "SelectObjectContent"}, "kinesis": {"SubscribeToShard"}}


HTTP = httpx.Client(timeout=30)  # one client: building one per request costs more than the request


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = UnkaiServer(tmp_path_factory.mktemp("fuzz") / "state").start()
    yield srv
    srv.stop()
    assert "Traceback" not in srv.output() or "internal error" not in srv.output()


def _strings(shape) -> st.SearchStrategy:
    if shape.enum:
        return st.one_of(st.sampled_from(shape.enum), st.text(max_size=8))
    return st.one_of(
        st.text(max_size=24),
        st.text(alphabet=string.ascii_letters + string.digits + "-_.", min_size=1, max_size=24),
        st.sampled_from(["", "arn:aws:sqs:us-east-1:000000000000:q", "http://127.0.0.1/000000000000/q",
                         "../../etc/passwd", "a" * 300, "{}", "[]", "null"]),
    )


_STRATEGIES: dict = {}


def value_for(shape, depth: int = 0) -> st.SearchStrategy:
    key = (id(shape), depth)
    if key not in _STRATEGIES:
        _STRATEGIES[key] = _value_for(shape, depth)
    return _STRATEGIES[key]


def _value_for(shape, depth: int) -> st.SearchStrategy:
    t = shape.type_name
    if depth > 3:
        return st.none()
    if t == "structure":
        members = {n: value_for(m, depth + 1) for n, m in shape.members.items()
                   if not m.serialization.get("eventpayload") and m.type_name != "structure" or depth < 3}
        return st.fixed_dictionaries({}, optional=members)
    if t == "list":
        return st.lists(value_for(shape.member, depth + 1), max_size=3)
    if t == "map":
        return st.dictionaries(st.text(min_size=1, max_size=6), value_for(shape.value, depth + 1), max_size=3)
    if t in ("integer", "long"):
        return st.integers(min_value=-5, max_value=2**40)
    if t == "boolean":
        return st.booleans()
    if t in ("float", "double"):
        return st.floats(allow_nan=False, allow_infinity=False, width=32)
    if t == "blob":
        return st.binary(max_size=32)
    if t == "timestamp":
        return st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2100, 1, 1))
    return _strings(shape)


_MODELS: dict = {}


def _model(name: str):
    if name not in _MODELS:
        _MODELS[name] = botocore.session.get_session().get_service_model(name)
    return _MODELS[name]


def _services(server):
    return sorted(server.get("/_unkai/health")["services"])


def _send(server, model, op, params) -> httpx.Response:
    for name in WAIT_MEMBERS & set(params):
        params[name] = 0
    protocol = getattr(model, "resolved_protocol", None) or model.metadata["protocol"]  # what botocore speaks
    req = create_serializer(protocol, include_validation=False).serialize_to_request(params, op)
    headers = {k: v for k, v in req["headers"].items()}
    headers["authorization"] = SIG.format(svc=model.signing_name)
    body = req["body"]
    if isinstance(body, dict):
        body = urlencode(body)
    query = req.get("query_string") or {}
    url = server.endpoint + (req["url_path"] or "/")
    if query:
        url += ("&" if "?" in url else "?") + (urlencode(query, doseq=True) if isinstance(query, dict) else query)
    return HTTP.request(req["method"], url, headers=headers, content=body or b"")


FUZZED = ["sqs", "sns", "dynamodb", "dynamodbstreams", "s3", "lambda", "logs", "apigateway", "apigatewayv2",
          "apigatewaymanagementapi", "cloudformation", "events", "scheduler", "ssm", "ses", "sesv2", "sts",
          "kinesis", "firehose", "iam", "cognito-idp", "secretsmanager", "kms", "cloudwatch", "glue", "athena"]


@pytest.mark.parametrize("name", FUZZED)
def test_model_driven_requests_never_fail_server_side(server, name):
    if name not in _services(server):
        pytest.skip(f"{name} is not served by this build")
    _fuzz_service(server, name)


@settings(max_examples=100, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
@given(data=st.data())
def _fuzz_service(server, name, data):
    model = _model(name)
    ops = [o for o in model.operation_names if o not in NOT_FUZZED.get(name, set())]
    op = model.operation_model(data.draw(st.sampled_from(ops), label="operation"))
    params = data.draw(value_for(op.input_shape) if op.input_shape is not None else st.just({}), label="params")
    try:
        resp = _send(server, model, op, params)
    except (ValueError, TypeError, KeyError, AttributeError, UnicodeError):
        return  # botocore itself cannot serialize these params: nothing was sent
    assert resp.status_code < 500 or resp.status_code == 501, (name, op.name, params, resp.text[:500])


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "HEAD", "PATCH"]),
    path=st.text(alphabet=string.printable.replace("?", "").replace("#", ""), max_size=40),
    target=st.one_of(st.none(), st.text(max_size=30), st.sampled_from(
        ["AmazonSQS.SendMessage", "AmazonSQS.", ".SendMessage", "DynamoDB_20120810.PutItem", "AmazonSQS.ReceiveMessage",
         "Kinesis_20131202.PutRecord"])),
    ctype=st.sampled_from(["application/x-amz-json-1.0", "application/x-www-form-urlencoded", "text/xml", "",
                           "application/json", "multipart/form-data; boundary=x", "application/x-amz-cbor-1.1"]),
    body=st.one_of(st.binary(max_size=200), st.text(max_size=200).map(str.encode),
                   st.sampled_from([b"{}", b"[]", b"null", b'{"QueueUrl": 5}', b"Action=SendMessage",
                                    b"Action=SendMessage&QueueUrl=%ZZ", b"<a><b>", b'<?xml version="1.0"?><!DOCTYPE x []><x/>',
                                    json.dumps({"QueueUrl": "x", "MessageBody": "\ud800"}).encode()])),
    service=st.sampled_from(["sqs", "sns", "dynamodb", "s3", "lambda", "logs", "none"]),
)
def test_garbage_requests_never_fail_server_side(server, method, path, target, ctype, body, service):
    headers = {"content-type": ctype}
    if target is not None:
        headers["x-amz-target"] = target
    if service != "none":
        headers["authorization"] = SIG.format(svc=service)
    url = server.endpoint + "/" + path.lstrip("/")
    try:
        resp = HTTP.request(method, url, headers=headers, content=body)
    except (httpx.InvalidURL, httpx.LocalProtocolError, UnicodeEncodeError):
        return  # the client refuses to send it
    assert resp.status_code < 500 or resp.status_code == 501, (method, path, target, body[:80], resp.text[:300])
