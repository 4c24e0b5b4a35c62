"""API Gateway (REST) answers as AWS does, in the details clients branch on (issue 23, item 3:
API Gateway): the root resource's messages, endpointConfiguration.ipAddressType, and
documentation parts and versions."""

from __future__ import annotations

import json
import time

import pytest
from botocore.exceptions import ClientError


@pytest.fixture(scope="module")
def ag(unkai):
    return unkai.client("apigateway")


@pytest.fixture
def api(ag):
    return ag.create_rest_api(name=f"fid-{time.time_ns()}")


def error_of(exc: pytest.ExceptionInfo) -> tuple[str, str]:
    return exc.value.response["Error"]["Code"], exc.value.response["Error"]["Message"]


def test_the_root_resource_cannot_change_its_path_part(ag, api):
    with pytest.raises(ClientError) as exc:
        ag.update_resource(restApiId=api["id"], resourceId=api["rootResourceId"],
                           patchOperations=[{"op": "replace", "path": "/pathPart", "value": "other"}])
    assert error_of(exc) == ("BadRequestException", "Root resource cannot update its pathPart.")
    with pytest.raises(ClientError) as exc:
        ag.delete_resource(restApiId=api["id"], resourceId=api["rootResourceId"])
    assert error_of(exc) == ("BadRequestException", "Cannot delete root resource")


def test_endpoint_configuration_names_its_ip_address_type(ag, api):
    assert api["endpointConfiguration"] == {"types": ["EDGE"], "ipAddressType": "ipv4"}
    regional = ag.create_rest_api(name=f"fid-{time.time_ns()}", endpointConfiguration={
        "types": ["REGIONAL"], "ipAddressType": "dualstack"})
    assert ag.get_rest_api(restApiId=regional["id"])["endpointConfiguration"] == {
        "types": ["REGIONAL"], "ipAddressType": "dualstack"}


def test_documentation_parts_are_created_listed_updated_and_deleted(ag, api):
    part = ag.create_documentation_part(restApiId=api["id"], location={"type": "METHOD", "path": "/pets"},
                                        properties=json.dumps({"description": "lists pets"}))
    assert part["location"] == {"type": "METHOD", "path": "/pets", "method": "*"}
    with pytest.raises(ClientError) as exc:
        ag.create_documentation_part(restApiId=api["id"], location={"type": "METHOD", "path": "/pets"},
                                     properties="{}")
    assert error_of(exc)[0] == "ConflictException"
    assert [p["id"] for p in ag.get_documentation_parts(restApiId=api["id"], type="METHOD")["items"]] == [part["id"]]
    updated = ag.update_documentation_part(restApiId=api["id"], documentationPartId=part["id"], patchOperations=[
        {"op": "replace", "path": "/properties", "value": json.dumps({"description": "all pets"})}])
    assert json.loads(updated["properties"]) == {"description": "all pets"}
    ag.delete_documentation_part(restApiId=api["id"], documentationPartId=part["id"])
    with pytest.raises(ClientError) as exc:
        ag.get_documentation_part(restApiId=api["id"], documentationPartId=part["id"])
    assert error_of(exc) == ("NotFoundException", "Invalid Documentation part identifier specified")


def test_documentation_versions_are_created_listed_and_deleted(ag, api):
    created = ag.create_documentation_version(restApiId=api["id"], documentationVersion="1.0", description="first")
    assert (created["version"], created["description"]) == ("1.0", "first") and "createdDate" in created
    assert [v["version"] for v in ag.get_documentation_versions(restApiId=api["id"])["items"]] == ["1.0"]
    with pytest.raises(ClientError) as exc:
        ag.create_documentation_version(restApiId=api["id"], documentationVersion="1.0")
    assert error_of(exc)[0] == "ConflictException"
    ag.delete_documentation_version(restApiId=api["id"], documentationVersion="1.0")
    with pytest.raises(ClientError) as exc:
        ag.get_documentation_version(restApiId=api["id"], documentationVersion="1.0")
    assert error_of(exc)[0] == "NotFoundException"
    with pytest.raises(ClientError) as exc:
        ag.get_documentation_parts(restApiId="nosuchapi1")
    assert error_of(exc) == ("NotFoundException", "Invalid API identifier specified 000000000000:nosuchapi1")


def _mock_get(ag, api: dict, path_part: str, text: str) -> None:
    res = ag.create_resource(restApiId=api["id"], parentId=api["rootResourceId"], pathPart=path_part)
    ag.put_method(restApiId=api["id"], resourceId=res["id"], httpMethod="GET", authorizationType="NONE",
                  apiKeyRequired=True)
    ag.put_integration(restApiId=api["id"], resourceId=res["id"], httpMethod="GET", type="MOCK",
                       requestTemplates={"application/json": '{"statusCode": 200}'})
    ag.put_method_response(restApiId=api["id"], resourceId=res["id"], httpMethod="GET", statusCode="200")
    ag.put_integration_response(restApiId=api["id"], resourceId=res["id"], httpMethod="GET", statusCode="200",
                                responseTemplates={"application/json": text})


def test_a_deployment_shows_its_api_summary_only_when_asked_to_embed_it(ag, api):
    # AWS: CreateDeployment, GetDeployments and a plain GetDeployment omit apiSummary; GetDeployment
    # with embed=apisummary is the one way to read it
    _mock_get(ag, api, "pets", "pets")
    created = ag.create_deployment(restApiId=api["id"], stageName="prod")
    assert "apiSummary" not in created and {"id", "createdDate"} <= set(created)
    assert "apiSummary" not in ag.get_deployment(restApiId=api["id"], deploymentId=created["id"])
    assert all("apiSummary" not in d for d in ag.get_deployments(restApiId=api["id"])["items"])
    embedded = ag.get_deployment(restApiId=api["id"], deploymentId=created["id"], embed=["apisummary"])
    assert embedded["apiSummary"] == {"/pets": {"GET": {"authorizationType": "NONE", "apiKeyRequired": True}}}
    updated = ag.update_deployment(restApiId=api["id"], deploymentId=created["id"], patchOperations=[
        {"op": "replace", "path": "/description", "value": "first"}])
    assert updated["description"] == "first" and "apiSummary" not in updated
