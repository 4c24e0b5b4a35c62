"""Amazon DynamoDB and DynamoDB Streams, sharing one set of tables in the store."""

from unkai.services.dynamodb.service import DynamoDB
from unkai.services.dynamodb.streams import DynamoDBStreams

SERVICES = [DynamoDB, DynamoDBStreams]
