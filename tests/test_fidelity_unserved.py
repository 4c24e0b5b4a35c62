"""Operations unkai does not serve answer in the service's own protocol, after the error AWS
would answer first for the same input (issue 23, item 3: "Errors for operations unkai does not
implement"). botocore parsing the error at all proves the protocol: a JSON service's client
cannot read an XML body, and a Query service's cannot read JSON."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError


def error_of(exc: pytest.ExceptionInfo) -> tuple[str, str, int]:
    resp = exc.value.response
    return resp["Error"]["Code"], resp["Error"]["Message"], resp["ResponseMetadata"]["HTTPStatusCode"]


def test_dynamodb_answers_a_missing_table_before_not_implemented(unkai):
    ddb = unkai.client("dynamodb")
    with pytest.raises(ClientError) as exc:
        ddb.describe_contributor_insights(TableName="no-such-table")
    assert error_of(exc) == ("ResourceNotFoundException", "Requested resource not found: Table: no-such-table "
                             "not found", 400)
    ddb.create_table(TableName="unserved-t", KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
                     BillingMode="PAY_PER_REQUEST")
    with pytest.raises(ClientError) as exc:
        ddb.describe_contributor_insights(TableName="unserved-t")
    assert error_of(exc) == ("NotImplemented", "unkai does not implement dynamodb:DescribeContributorInsights yet.",
                             501)


def test_validation_comes_before_not_found_and_not_implemented(unkai):
    lam = unkai.client("lambda")
    with pytest.raises(ClientError) as exc:
        lam.get_function_recursion_config(FunctionName="bad name!")
    code, message, status = error_of(exc)
    assert (code, status) == ("ValidationException", 400)
    assert message.startswith("1 validation error detected: Value 'bad name!' at 'functionName' failed to satisfy "
                              "constraint: Member must satisfy regular expression pattern:")


def test_api_gateway_answers_an_unknown_api_before_not_implemented(unkai):
    apigw = unkai.client("apigateway")
    with pytest.raises(ClientError) as exc:
        apigw.get_sdk(restApiId="nope123", stageName="prod", sdkType="javascript")
    assert error_of(exc) == ("NotFoundException", "Invalid API identifier specified 000000000000:nope123", 404)


def test_a_query_protocol_service_answers_not_implemented_in_xml(unkai):
    sns = unkai.client("sns")
    with pytest.raises(ClientError) as exc:
        sns.list_origination_numbers()
    assert error_of(exc)[0] == "NotImplemented" and error_of(exc)[2] == 501


# Every other service whose unserved operations name a resource: the missing resource is answered
# first, with the very code, message and status the service's served lookup answers for it (AWS's).
# (unserved operation, its arguments; a served operation naming the same missing resource)
ACM_ARN = "arn:aws:acm:us-east-1:000000000000:certificate/00000000-0000-4000-8000-000000000000"
UNSERVED = [
    ("s3", "get_object_torrent", {"Bucket": "no-such-bucket-unserved", "Key": "k"},
     "get_bucket_tagging", {"Bucket": "no-such-bucket-unserved"}, "NoSuchBucket"),
    ("logs", "get_log_group_fields", {"logGroupName": "/no/such/group"},
     "put_retention_policy", {"logGroupName": "/no/such/group", "retentionInDays": 1}, "ResourceNotFoundException"),
    ("kinesis", "update_stream_warm_throughput", {"StreamName": "no-such-stream", "WarmThroughputMiBps": 10},
     "describe_stream_summary", {"StreamName": "no-such-stream"}, "ResourceNotFoundException"),
    ("secretsmanager", "stop_replication_to_replica", {"SecretId": "no-such-secret"},
     "describe_secret", {"SecretId": "no-such-secret"}, "ResourceNotFoundException"),
    ("cognito-idp", "admin_list_devices", {"UserPoolId": "us-east-1_nosuch123", "Username": "u"},
     "describe_user_pool", {"UserPoolId": "us-east-1_nosuch123"}, "ResourceNotFoundException"),
    ("iam", "get_login_profile", {"UserName": "no-such-user"},
     "get_user", {"UserName": "no-such-user"}, "NoSuchEntity"),
    ("kms", "replicate_key", {"KeyId": "0b1f0e7c-1d2e-4f3a-9b8c-7d6e5f4a3b2c", "ReplicaRegion": "us-west-2"},
     "describe_key", {"KeyId": "0b1f0e7c-1d2e-4f3a-9b8c-7d6e5f4a3b2c"}, "NotFoundException"),
    ("acm", "renew_certificate", {"CertificateArn": ACM_ARN},
     "describe_certificate", {"CertificateArn": ACM_ARN}, "ResourceNotFoundException"),
    ("iot", "add_thing_to_billing_group", {"thingName": "no-such-thing", "billingGroupName": "g"},
     "describe_thing", {"thingName": "no-such-thing"}, "ResourceNotFoundException"),
    ("cloudformation", "describe_stack_events", {"StackName": "no-such-stack"},
     "describe_stacks", {"StackName": "no-such-stack"}, "ValidationError"),
    ("ses", "create_configuration_set_tracking_options",
     {"ConfigurationSetName": "no-such-set", "TrackingOptions": {"CustomRedirectDomain": "example.com"}},
     "describe_configuration_set", {"ConfigurationSetName": "no-such-set"}, "ConfigurationSetDoesNotExist"),
    ("sesv2", "put_configuration_set_archiving_options", {"ConfigurationSetName": "no-such-set"},
     "get_configuration_set", {"ConfigurationSetName": "no-such-set"}, "NotFoundException"),
    ("apigatewayv2", "get_models", {"ApiId": "nosuch1"}, "get_api", {"ApiId": "nosuch1"}, "NotFoundException"),
    ("glue", "get_column_statistics_for_table", {"DatabaseName": "nodb", "TableName": "t", "ColumnNames": ["c"]},
     "get_table", {"DatabaseName": "nodb", "Name": "t"}, "EntityNotFoundException"),
    ("athena", "list_prepared_statements", {"WorkGroup": "no-such-workgroup"},
     "get_work_group", {"WorkGroup": "no-such-workgroup"}, "InvalidRequestException"),
]


@pytest.mark.parametrize("service,unserved,args,served,served_args,code", UNSERVED,
                         ids=[f"{u[0]}:{u[1]}" for u in UNSERVED])
def test_an_unserved_operation_answers_a_missing_resource_as_the_served_lookup_does(
        unkai, service, unserved, args, served, served_args, code):
    client = unkai.client(service)
    with pytest.raises(ClientError) as served_exc:
        getattr(client, served)(**served_args)
    with pytest.raises(ClientError) as exc:
        getattr(client, unserved)(**args)
    assert error_of(exc) == error_of(served_exc)
    assert error_of(exc)[0] == code
