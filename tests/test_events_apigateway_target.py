"""EventBridge rules with an API Gateway target: a REST API stage's method named by an
``execute-api`` ARN, with path, query string and header parameters as AWS sends them
(issue 23, item 3: EventBridge's API Gateway targets)."""

from __future__ import annotations

import json
import time

from lambda_code import deploy

FORWARDER = """
import json, os
import boto3

def handler(event, context):
    boto3.client("sqs").send_message(QueueUrl=os.environ["QUEUE"], MessageBody=json.dumps({
        "method": event["httpMethod"], "path": event["path"], "resource": event["resource"],
        "pathParameters": event["pathParameters"], "query": event["queryStringParameters"],
        "team": {k.lower(): v for k, v in event["headers"].items()}.get("x-team"),
        "body": json.loads(event["body"])}))
    return {"statusCode": 200, "body": "ok"}
"""


def receive_one(sqs, url: str) -> dict:
    for _ in range(20):
        got = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1, MessageAttributeNames=["All"]).get("Messages")
        if got:
            return got[0]
    raise AssertionError("nothing arrived")


def test_a_rule_calls_a_rest_api_stage_with_path_query_and_header_parameters(unkai):
    sqs, lam, ag, events = (unkai.client(s) for s in ("sqs", "lambda", "apigateway", "events"))
    url = sqs.create_queue(QueueName=f"apigw-target-{time.time_ns()}")["QueueUrl"]
    fn = deploy(lam, FORWARDER, Environment={"Variables": {"QUEUE": url}})
    fn_arn = lam.get_function(FunctionName=fn)["Configuration"]["FunctionArn"]
    api = ag.create_rest_api(name=f"orders-{time.time_ns()}")
    orders = ag.create_resource(restApiId=api["id"], parentId=api["rootResourceId"], pathPart="orders")
    order = ag.create_resource(restApiId=api["id"], parentId=orders["id"], pathPart="{id}")
    ag.put_method(restApiId=api["id"], resourceId=order["id"], httpMethod="POST", authorizationType="NONE")
    ag.put_integration(restApiId=api["id"], resourceId=order["id"], httpMethod="POST", type="AWS_PROXY",
                       integrationHttpMethod="POST",
                       uri=f"arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/{fn_arn}/invocations")
    ag.create_deployment(restApiId=api["id"], stageName="prod")
    rule = f"to-api-{time.time_ns()}"
    events.put_rule(Name=rule, EventPattern=json.dumps({"source": ["shop"]}))
    events.put_targets(Rule=rule, Targets=[{
        "Id": "api", "Arn": f"arn:aws:execute-api:us-east-1:000000000000:{api['id']}/prod/POST/orders/*",
        "HttpParameters": {"PathParameterValues": ["o-42"], "QueryStringParameters": {"source": "bus"},
                           "HeaderParameters": {"x-team": "billing"}},
        "InputTransformer": {"InputPathsMap": {"total": "$.detail.total"}, "InputTemplate": '{"total": <total>}'}}])
    events.put_events(Entries=[{"Source": "shop", "DetailType": "Order", "Detail": json.dumps({"total": 12})}])
    seen = json.loads(receive_one(sqs, url)["Body"])
    assert seen == {"method": "POST", "path": "/orders/o-42", "resource": "/orders/{id}",
                    "pathParameters": {"id": "o-42"}, "query": {"source": "bus"}, "team": "billing",
                    "body": {"total": 12}}


def test_a_target_the_stage_refuses_goes_to_the_dead_letter_queue(unkai):
    sqs, events = unkai.client("sqs"), unkai.client("events")
    dlq = sqs.create_queue(QueueName=f"apigw-dlq-{time.time_ns()}")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    rule = f"to-nowhere-{time.time_ns()}"
    events.put_rule(Name=rule, EventPattern=json.dumps({"source": ["nowhere"]}))
    events.put_targets(Rule=rule, Targets=[{
        "Id": "api", "Arn": "arn:aws:execute-api:us-east-1:000000000000:nosuchapi1/prod/GET/x",
        "DeadLetterConfig": {"Arn": dlq_arn}}])
    events.put_events(Entries=[{"Source": "nowhere", "DetailType": "T", "Detail": "{}"}])
    failed = receive_one(sqs, dlq)
    assert failed["MessageAttributes"]["ERROR_CODE"]["StringValue"] == "SDK_CLIENT_ERROR"
    assert json.loads(failed["Body"])["source"] == "nowhere"


HTTP_FORWARDER = """
import json, os
import boto3

def handler(event, context):
    boto3.client("sqs").send_message(QueueUrl=os.environ["QUEUE"], MessageBody=json.dumps({
        "version": event["version"], "routeKey": event["routeKey"], "path": event["rawPath"],
        "pathParameters": event.get("pathParameters"), "query": event.get("queryStringParameters"),
        "team": event["headers"].get("x-team"), "body": json.loads(event["body"])}))
    return {"statusCode": 200, "body": "ok"}
"""


def test_a_rule_calls_an_http_api_route_on_its_default_stage(unkai):
    # AWS takes an HTTP API (v2) stage as a target too (CDK's events_targets.ApiGatewayV2 names it
    # with the route's execute-api ARN, "$default" for the default stage)
    sqs, lam, v2, events = (unkai.client(s) for s in ("sqs", "lambda", "apigatewayv2", "events"))
    url = sqs.create_queue(QueueName=f"httpapi-target-{time.time_ns()}")["QueueUrl"]
    fn = deploy(lam, HTTP_FORWARDER, Environment={"Variables": {"QUEUE": url}})
    fn_arn = lam.get_function(FunctionName=fn)["Configuration"]["FunctionArn"]
    api = v2.create_api(Name=f"orders-{time.time_ns()}", ProtocolType="HTTP")
    integration = v2.create_integration(ApiId=api["ApiId"], IntegrationType="AWS_PROXY", IntegrationUri=fn_arn,
                                        PayloadFormatVersion="2.0")
    v2.create_route(ApiId=api["ApiId"], RouteKey="POST /orders/{id}",
                    Target=f"integrations/{integration['IntegrationId']}")
    v2.create_stage(ApiId=api["ApiId"], StageName="$default", AutoDeploy=True)
    rule = f"to-http-api-{time.time_ns()}"
    events.put_rule(Name=rule, EventPattern=json.dumps({"source": ["shop-v2"]}))
    events.put_targets(Rule=rule, Targets=[{
        "Id": "api", "Arn": f"arn:aws:execute-api:us-east-1:000000000000:{api['ApiId']}/$default/POST/orders/*",
        "HttpParameters": {"PathParameterValues": ["o-7"], "QueryStringParameters": {"source": "bus"},
                           "HeaderParameters": {"x-team": "billing"}}}])
    events.put_events(Entries=[{"Source": "shop-v2", "DetailType": "Order", "Detail": json.dumps({"total": 3})}])
    seen = json.loads(receive_one(sqs, url)["Body"])
    assert seen["body"]["detail"] == {"total": 3} and seen["body"]["source"] == "shop-v2"
    assert {k: seen[k] for k in ("version", "routeKey", "path", "pathParameters", "query", "team")} == {
        "version": "2.0", "routeKey": "POST /orders/{id}", "path": "/orders/o-7", "pathParameters": {"id": "o-7"},
        "query": {"source": "bus"}, "team": "billing"}
