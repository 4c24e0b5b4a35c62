"""Users in the DynamoDB table (USERS_TABLE_NAME): the only place that calls DynamoDB."""

import os
import time

import boto3
from botocore.exceptions import ClientError

from domains.user.exceptions import UserAlreadyExistsException

DYNAMODB_TABLE = boto3.resource("dynamodb").Table(os.environ["USERS_TABLE_NAME"])


def epoc_second_now():
    return int(time.time())


def create(user):
    updated_at = epoc_second_now()
    try:
        DYNAMODB_TABLE.put_item(
            Item={
                "user_uuid": user.user_uuid,
                "email": user.email,
                "company": user.company,
                "display_user_name": user.display_user_name,
                "created_at": updated_at,
                "updated_at": updated_at,
            },
            ConditionExpression="attribute_not_exists(user_uuid)",
        )
    except ClientError as error:
        if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
            raise UserAlreadyExistsException(user.user_uuid, error) from error
        raise
