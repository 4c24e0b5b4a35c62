import boto3
import uuid

client = boto3.resource('dynamodb', region_name="ap-northeast-1")
table = client.Table('connection')


def lambda_handler(event, context):
    connection_id = event['requestContext']['connectionId']
    table.put_item(
        Item={
            'id': str(uuid.uuid4()),
            'ws_connection_id': connection_id})
    return {'statusCode': 200}
