"""Issue 21 item 15: tenant isolation (``TenancyConfig: {TenantIsolationMode: PER_TENANT}``).
Invoke's TenantId and a REST API's mapped ``X-Amz-Tenant-Id`` reach ``context.tenant_id``;
each tenant gets execution environments of its own; AWS's errors when the tenant is
missing or not expected."""

from __future__ import annotations

import json
import urllib.request

import pytest
from botocore.exceptions import ClientError
from lambda_code import ROLE, call, deploy

COUNTER = """
import json, os
count = 0
def handler(event, context):
    global count
    count += 1
    print("tenant=%s" % context.tenant_id)
    out = {"tenant": context.tenant_id, "count": count, "pid": os.getpid()}
    if "httpMethod" in event:  # through API Gateway's Lambda proxy
        return {"statusCode": 200, "body": json.dumps(out)}
    return out
"""


@pytest.fixture(scope="module")
def lam(unkai):
    return unkai.client("lambda")


@pytest.fixture(scope="module")
def isolated(lam):
    return deploy(lam, COUNTER, TenancyConfig={"TenantIsolationMode": "PER_TENANT"})


def test_the_tenancy_config_is_kept(lam, isolated):
    config = lam.get_function_configuration(FunctionName=isolated)
    assert config["TenancyConfig"] == {"TenantIsolationMode": "PER_TENANT"}


def test_each_tenant_has_environments_of_its_own(lam, isolated):
    _, blue1 = call(lam, isolated, TenantId="blue")
    _, blue2 = call(lam, isolated, TenantId="blue")
    _, green = call(lam, isolated, TenantId="green")
    assert blue1["tenant"] == "blue" and green["tenant"] == "green"
    assert (blue1["count"], blue2["count"]) == (1, 2)  # blue's environment stays warm for blue
    assert green["count"] == 1 and green["pid"] != blue1["pid"]  # never shared with green


def test_a_tenant_isolated_function_needs_a_tenant_id(lam, isolated):
    with pytest.raises(ClientError) as err:
        call(lam, isolated)
    error = err.value.response["Error"]
    assert error["Code"] == "InvalidParameterValueException"
    assert "enabled with tenancy configuration" in error["Message"]


def test_an_ordinary_function_refuses_a_tenant_id(lam):
    name = deploy(lam, COUNTER)
    with pytest.raises(ClientError) as err:
        call(lam, name, TenantId="blue")
    error = err.value.response["Error"]
    assert error["Code"] == "InvalidParameterValueException"
    assert "not enabled with tenancy configuration" in error["Message"]
    _, plain = call(lam, name)
    assert plain["tenant"] is None


def test_an_asynchronous_invocation_keeps_its_tenant(lam, unkai, isolated):
    resp = lam.invoke(FunctionName=isolated, InvocationType="Event", Payload=b"{}", TenantId="orange")
    assert resp["StatusCode"] == 202
    unkai.drain()
    events = unkai.client("logs").filter_log_events(logGroupName=f"/aws/lambda/{isolated}",
                                                    filterPattern='"tenant=orange"')["events"]
    assert events


def test_a_rest_api_maps_a_header_to_the_tenant(lam, unkai, isolated):
    apigw = unkai.client("apigateway")
    api = apigw.create_rest_api(name="tenants")["id"]
    root = apigw.get_resources(restApiId=api)["items"][0]["id"]
    arn = lam.get_function_configuration(FunctionName=isolated)["FunctionArn"]
    apigw.put_method(restApiId=api, resourceId=root, httpMethod="GET", authorizationType="NONE",
                     requestParameters={"method.request.header.x-tenant-id": True})
    apigw.put_integration(
        restApiId=api, resourceId=root, httpMethod="GET", type="AWS_PROXY", integrationHttpMethod="POST",
        uri=f"arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/{arn}/invocations",
        requestParameters={"integration.request.header.X-Amz-Tenant-Id": "method.request.header.x-tenant-id"})
    lam.add_permission(FunctionName=isolated, StatementId="apigw", Action="lambda:InvokeFunction",
                       Principal="apigateway.amazonaws.com")
    apigw.create_deployment(restApiId=api, stageName="prod")
    request = urllib.request.Request(f"{unkai.endpoint}/_unkai/execute-api/{api}/prod/",
                                     headers={"x-tenant-id": "purple"})
    with urllib.request.urlopen(request) as resp:
        body = json.loads(resp.read())
    assert body["tenant"] == "purple" and body["count"] == 1


def test_a_tenancy_config_needs_a_known_mode(lam):
    with pytest.raises(ClientError) as err:
        lam.create_function(FunctionName="bad-tenancy", Runtime="python3.12", Role=ROLE, Handler="app.handler",
                            Code={"ZipFile": b"PK\x05\x06" + b"\0" * 18},
                            TenancyConfig={"TenantIsolationMode": "SHARED"})
    assert err.value.response["Error"]["Code"] in ("ValidationException", "InvalidParameterValueException")
