"""sendmessage: push the notice to every open connection, dropping the ones that are gone."""

import json
import os

import boto3

table = boto3.resource("dynamodb").Table(os.environ.get("TABLE_NAME", "connection"))


def lambda_handler(event, context):
    ctx = event["requestContext"]
    body = json.loads(event.get("body") or "{}")
    notice = json.dumps({"from": ctx["connectionId"], "message": body.get("message", "")}, ensure_ascii=False)
    api = boto3.client("apigatewaymanagementapi", endpoint_url=f"https://{ctx['domainName']}/{ctx['stage']}")
    delivered = 0
    for item in table.scan()["Items"]:
        try:
            api.post_to_connection(ConnectionId=item["ws_connection_id"], Data=notice.encode())
            delivered += 1
        except api.exceptions.GoneException:
            table.delete_item(Key={"id": item["id"]})
    return {"statusCode": 200, "body": json.dumps({"delivered": delivered})}
