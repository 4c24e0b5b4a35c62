"""Users in the Cognito user pool (USER_POOL_ID): the only place that calls cognito-idp."""

import os

import boto3
from botocore.exceptions import ClientError

from domains.user.exceptions import UserAlreadyExistsException

COGNITO = boto3.client("cognito-idp")


def admin_create_user(user_uuid, email):
    """The user, invited by email with a temporary password; its username is its uuid and
    it signs in with its (verified) email."""
    try:
        COGNITO.admin_create_user(
            UserPoolId=os.environ["USER_POOL_ID"],
            Username=user_uuid,
            UserAttributes=[{"Name": "email", "Value": email}, {"Name": "email_verified", "Value": "true"}],
            DesiredDeliveryMediums=["EMAIL"],
        )
    except ClientError as error:
        if error.response["Error"]["Code"] in ("UsernameExistsException", "AliasExistsException"):
            raise UserAlreadyExistsException(email, error) from error
        raise
