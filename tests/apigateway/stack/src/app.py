"""Handlers behind the test stack's REST, HTTP and WebSocket APIs."""

import base64
import json

import time

import boto3

AUTHORIZER_CALLS = {"n": 0}


def echo(event, context):
    """Lambda proxy: the event back, so tests see what API Gateway built."""
    return {"statusCode": 200, "headers": {"content-type": "application/json", "x-handler": "echo"},
            "multiValueHeaders": {"set-cookie": ["a=1", "b=2"]}, "body": json.dumps(event)}


def image(event, context):
    return {"statusCode": 200, "headers": {"content-type": "image/png"}, "isBase64Encoded": True,
            "body": base64.b64encode(b"\x89PNG\r\n\x1a\nbytes").decode()}


def malformed(event, context):
    return {"statusCode": 200, "body": {"not": "a string"}}


def fails(event, context):
    raise RuntimeError("boom")


def slow(event, context):
    time.sleep(3)
    return {"statusCode": 200, "body": "late"}


def token_authorizer(event, context):
    AUTHORIZER_CALLS["n"] += 1
    token = event["authorizationToken"]
    if token == "deny":
        effect = "Deny"
    elif token.startswith("allow"):
        effect = "Allow"
    else:
        raise Exception("Unauthorized")
    arn = event["methodArn"].rsplit("/", 2)[0] + "/*/*"
    return {"principalId": "user-" + token, "context": {"calls": AUTHORIZER_CALLS["n"], "tier": "gold"},
            "policyDocument": {"Version": "2012-10-17", "Statement": [
                {"Action": "execute-api:Invoke", "Effect": effect, "Resource": arn}]}}


def request_authorizer(event, context):
    """A REQUEST authorizer: sees the request's parts, answers with a policy."""
    token = (event.get("queryStringParameters") or {}).get("token")
    effect = "Allow" if token == "good" and event["headers"].get("X-Team") == "blue" else "Deny"
    return {"principalId": "req-user", "context": {"path": event["path"], "type": event["type"]},
            "policyDocument": {"Version": "2012-10-17", "Statement": [
                {"Action": "execute-api:Invoke", "Effect": effect, "Resource": event["methodArn"]}]}}


def question(event, context):
    """Behind the CORS page's two APIs (REST proxies must send their own CORS header)."""
    body = json.loads(base64.b64decode(event["body"]) if event.get("isBase64Encoded") else event["body"])
    return {"statusCode": 200, "headers": {"Access-Control-Allow-Origin": "*", "content-type": "application/json"},
            "body": json.dumps({"got": body, "ip": event["requestContext"].get("identity", {}).get("sourceIp")
                                or event["requestContext"].get("http", {}).get("sourceIp")})}


def form(event, context):
    """Behind a non-proxy integration: the event is what the mapping template made."""
    if event.get("project_id") == "bad":
        raise ValueError("Bad input: project_id")
    return {"received": event}


def v2(event, context):
    return {"statusCode": 201, "cookies": ["session=abc; Path=/", "theme=dark"],
            "headers": {"x-route": event.get("routeKey", "")}, "body": json.dumps(event)}


def bare(event, context):
    return {"hello": "world"}


def text(event, context):
    return "plain words"


def simple_authorizer(event, context):
    allowed = (event.get("headers") or {}).get("x-token") == "open-sesame"
    return {"isAuthorized": allowed, "context": {"who": "tester"}}


def ws(event, context):
    """WebSocket routes: $connect checks a query parameter; sendmessage pushes back to
    the sender through @connections at the URL built from requestContext."""
    ctx = event["requestContext"]
    route = ctx["routeKey"]
    if route == "$connect":
        if (event.get("queryStringParameters") or {}).get("room") == "closed":
            return {"statusCode": 403}
        return {"statusCode": 200}
    if route == "$disconnect":
        print(json.dumps({"disconnected": ctx["connectionId"], "code": ctx.get("disconnectStatusCode")}))
        return {"statusCode": 200}
    if route == "sendmessage":
        client = boto3.client("apigatewaymanagementapi",
                              endpoint_url=f"https://{ctx['domainName']}/{ctx['stage']}")
        body = json.loads(event["body"])
        client.post_to_connection(ConnectionId=ctx["connectionId"],
                                  Data=json.dumps({"notice": body.get("text"), "from": ctx["connectionId"]}).encode())
        return {"statusCode": 200}
    if route == "echo":
        return {"statusCode": 200, "body": json.dumps({"echo": json.loads(event["body"]), "route": route})}
    return {"statusCode": 200, "body": json.dumps({"default": event["body"]})}


def ws_authorizer(event, context):
    token = (event.get("queryStringParameters") or {}).get("token")
    effect = "Allow" if token == "letmein" else "Deny"
    return {"principalId": "ws-user", "context": {"plan": "pro"},
            "policyDocument": {"Version": "2012-10-17", "Statement": [
                {"Action": "execute-api:Invoke", "Effect": effect, "Resource": event["methodArn"]}]}}



