"""The trivial handlers the API Gateway benchmark puts behind each API type."""


import boto3

_CLIENTS = {}


def hello(event, context):
    return {"statusCode": 200, "headers": {"content-type": "text/plain"}, "body": "ok"}


def ws(event, context):
    ctx = event["requestContext"]
    if ctx["routeKey"] != "ping":
        return {"statusCode": 200}
    endpoint = f"https://{ctx['domainName']}/{ctx['stage']}"
    client = _CLIENTS.get(endpoint)
    if client is None:
        client = _CLIENTS[endpoint] = boto3.client("apigatewaymanagementapi", endpoint_url=endpoint)
    client.post_to_connection(ConnectionId=ctx["connectionId"], Data=event["body"].encode())
    return {"statusCode": 200}


