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
