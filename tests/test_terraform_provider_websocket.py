"""The calls the Terraform AWS provider (v5/v6) makes for the resources of the seed's WebSocket
system, in the provider's order, with the fields its Read functions set from the answers.

Each test follows one resource's Create -> Read -> Update -> Read -> Delete -> Read of
``hashicorp/terraform-provider-aws`` (``internal/service/<svc>/<resource>.go``): the waiters it
polls (a Lambda function ``Active``, a table ``ACTIVE``, a domain name ``AVAILABLE``), the
not-found error codes it treats as "gone" after Delete, and every field a refresh reads back
as written (a field read back differently is a perpetual diff in ``terraform plan``).
"""

from __future__ import annotations

import io
import json
import urllib.parse
import uuid
import zipfile

import pytest
from botocore.exceptions import ClientError

TRUST = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]})


def code_of(exc: pytest.ExceptionInfo) -> str:
    return exc.value.response["Error"]["Code"]


def uid() -> str:
    return uuid.uuid4().hex[:8]


def handler_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("lambda_function.py", "def lambda_handler(event, context):\n    return {'statusCode': 200}\n")
    return buf.getvalue()


def test_provider_start_up_and_data_sources_answer(unkai):
    # credentials validation and the account id (when not skipped), data "aws_caller_identity"
    me = unkai.client("sts").get_caller_identity()
    assert me["Account"] == "000000000000" and me["Arn"].startswith("arn:aws:") and me["UserId"]


def test_aws_iam_role_and_its_inline_policy_and_attachment(unkai):
    iam = unkai.client("iam")
    name = f"connect-handler-{uid()}"
    # resourceRoleCreate: CreateRole, then Read
    created = iam.create_role(RoleName=name, AssumeRolePolicyDocument=TRUST, Description="ws", Path="/",
                              MaxSessionDuration=3600, Tags=[{"Key": "env", "Value": "dev"}])["Role"]
    role = iam.get_role(RoleName=name)["Role"]
    for field in ("Arn", "CreateDate", "Path", "RoleId", "RoleName", "MaxSessionDuration", "Description"):
        assert role[field] == created[field]
    assert role["AssumeRolePolicyDocument"] == json.loads(TRUST)
    assert role["Tags"] == [{"Key": "env", "Value": "dev"}]
    # the Go SDK gets the policy URL-encoded, as AWS sends it, and the provider unescapes it
    raw: list[str] = []
    iam.meta.events.register("after-call.iam.GetRole", lambda http_response, **_: raw.append(http_response.text))
    iam.get_role(RoleName=name)
    encoded = raw[0].split("<AssumeRolePolicyDocument>")[1].split("</AssumeRolePolicyDocument>")[0]
    assert json.loads(urllib.parse.unquote(encoded)) == json.loads(TRUST)
    # inline_policy / managed_policy_arns reads
    assert iam.list_role_policies(RoleName=name)["PolicyNames"] == []
    assert iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"] == []

    # aws_iam_role_policy: PutRolePolicy, GetRolePolicy
    document = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "dynamodb:PutItem",
                                                        "Resource": "*"}]}
    iam.put_role_policy(RoleName=name, PolicyName="put", PolicyDocument=json.dumps(document))
    assert iam.get_role_policy(RoleName=name, PolicyName="put")["PolicyDocument"] == document
    # aws_iam_role_policy_attachment: AttachRolePolicy, ListAttachedRolePolicies
    managed = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
    iam.attach_role_policy(RoleName=name, PolicyArn=managed)
    assert [p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]] == [managed]

    # resourceRoleUpdate: UpdateAssumeRolePolicy, UpdateRole, TagRole
    iam.update_role(RoleName=name, Description="ws v2", MaxSessionDuration=7200)
    iam.tag_role(RoleName=name, Tags=[{"Key": "team", "Value": "a"}])
    role = iam.get_role(RoleName=name)["Role"]
    assert (role["Description"], role["MaxSessionDuration"]) == ("ws v2", 7200)
    assert {t["Key"] for t in role["Tags"]} == {"env", "team"}

    # resourceRoleDelete: instance profiles, detach, inline policies, then the role
    assert iam.list_instance_profiles_for_role(RoleName=name)["InstanceProfiles"] == []
    iam.detach_role_policy(RoleName=name, PolicyArn=managed)
    iam.delete_role_policy(RoleName=name, PolicyName="put")
    iam.delete_role(RoleName=name)
    with pytest.raises(ClientError) as exc:
        iam.get_role(RoleName=name)
    assert code_of(exc) == "NoSuchEntity"


def test_aws_cloudwatch_log_group(unkai):
    logs = unkai.client("logs")
    name = f"/aws/apigateway/example-{uid()}"
    logs.create_log_group(logGroupName=name, tags={"env": "dev"})
    logs.put_retention_policy(logGroupName=name, retentionInDays=7)
    # findLogGroupByName: DescribeLogGroups by prefix, the exact name among them
    groups = logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"]
    group = next(g for g in groups if g["logGroupName"] == name)
    assert group["arn"].endswith(":*") and group["retentionInDays"] == 7
    assert group["logGroupClass"] == "STANDARD"
    # the provider trims ":*" and reads tags by that ARN
    arn = group["arn"].removesuffix(":*")
    assert arn == f"arn:aws:logs:us-east-1:000000000000:log-group:{name}"
    assert logs.list_tags_for_resource(resourceArn=arn)["tags"] == {"env": "dev"}
    # update: retention removed, tags changed, a KMS key associated then dissociated
    logs.delete_retention_policy(logGroupName=name)
    key = unkai.client("kms").create_key()["KeyMetadata"]["Arn"]  # AWS checks the key exists
    logs.associate_kms_key(logGroupName=name, kmsKeyId=key)
    assert logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"][0]["kmsKeyId"] == key
    logs.disassociate_kms_key(logGroupName=name)
    with pytest.raises(ClientError) as exc:
        logs.associate_kms_key(logGroupName=name, kmsKeyId="alias/not-an-arn")
    assert code_of(exc) == "InvalidParameterException"
    logs.tag_resource(resourceArn=arn, tags={"team": "a"})
    logs.untag_resource(resourceArn=arn, tagKeys=["env"])
    group = logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"][0]
    assert "retentionInDays" not in group and "kmsKeyId" not in group
    assert logs.list_tags_for_resource(resourceArn=arn)["tags"] == {"team": "a"}
    logs.delete_log_group(logGroupName=name)
    assert [g for g in logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"]
            if g["logGroupName"] == name] == []


def test_aws_dynamodb_table_with_ttl_and_point_in_time_recovery(unkai):
    ddb = unkai.client("dynamodb")
    name = f"connection-{uid()}"
    ddb.create_table(TableName=name, AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}], BillingMode="PAY_PER_REQUEST",
                     Tags=[{"Key": "env", "Value": "dev"}], DeletionProtectionEnabled=False, TableClass="STANDARD")
    # waitTableActive, then the create-time settings the configuration asks for
    assert ddb.describe_table(TableName=name)["Table"]["TableStatus"] == "ACTIVE"
    ddb.update_time_to_live(TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires"})
    ddb.update_continuous_backups(TableName=name, PointInTimeRecoverySpecification={
        "PointInTimeRecoveryEnabled": True, "RecoveryPeriodInDays": 14})

    # resourceTableRead
    table = ddb.describe_table(TableName=name)["Table"]
    assert table["TableArn"] == f"arn:aws:dynamodb:us-east-1:000000000000:table/{name}"
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert table["DeletionProtectionEnabled"] is False
    assert table["AttributeDefinitions"] == [{"AttributeName": "id", "AttributeType": "S"}]
    assert table["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert table.get("TableClassSummary", {"TableClass": "STANDARD"})["TableClass"] == "STANDARD"
    pitr = ddb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"]
    assert pitr["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"
    assert pitr["PointInTimeRecoveryDescription"]["RecoveryPeriodInDays"] == 14
    assert ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"] == {
        "TimeToLiveStatus": "ENABLED", "AttributeName": "expires"}
    assert ddb.list_tags_of_resource(ResourceArn=table["TableArn"])["Tags"] == [{"Key": "env", "Value": "dev"}]

    # on_demand_throughput: UpdateTable(OnDemandThroughput), read back from DescribeTable
    ddb.update_table(TableName=name, OnDemandThroughput={"MaxReadRequestUnits": 100, "MaxWriteRequestUnits": 50})
    assert ddb.describe_table(TableName=name)["Table"]["OnDemandThroughput"] == {
        "MaxReadRequestUnits": 100, "MaxWriteRequestUnits": 50}
    # resourceTableUpdate: PITR off, stream on, tags
    ddb.update_continuous_backups(TableName=name, PointInTimeRecoverySpecification={
        "PointInTimeRecoveryEnabled": False})
    ddb.update_table(TableName=name, StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"})
    ddb.tag_resource(ResourceArn=table["TableArn"], Tags=[{"Key": "team", "Value": "a"}])
    table = ddb.describe_table(TableName=name)["Table"]
    assert table["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}
    assert table["LatestStreamArn"] and table["LatestStreamLabel"]
    pitr = ddb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"]
    assert pitr["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "DISABLED"

    # resourceTableDelete, then waitTableDeleted until ResourceNotFoundException
    ddb.delete_table(TableName=name)
    with pytest.raises(ClientError) as exc:
        ddb.describe_table(TableName=name)
    assert code_of(exc) == "ResourceNotFoundException"
    # DescribeContinuousBackups on a missing table: the code the provider tolerates
    with pytest.raises(ClientError) as exc:
        ddb.describe_continuous_backups(TableName=name)
    assert code_of(exc) == "TableNotFoundException"


def test_point_in_time_recovery_refuses_a_period_over_35_days(unkai):
    ddb = unkai.client("dynamodb")
    name = f"pitr-{uid()}"
    ddb.create_table(TableName=name, AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}], BillingMode="PAY_PER_REQUEST")
    with pytest.raises(ClientError) as exc:
        ddb.update_continuous_backups(TableName=name, PointInTimeRecoverySpecification={
            "PointInTimeRecoveryEnabled": True, "RecoveryPeriodInDays": 36})
    assert code_of(exc) == "ValidationException"


@pytest.fixture(scope="module")
def role_arn(unkai) -> str:
    return unkai.client("iam").create_role(RoleName=f"tf-fn-{uid()}", AssumeRolePolicyDocument=TRUST)["Role"]["Arn"]


def test_aws_lambda_function_as_the_connect_handler(unkai, role_arn):
    lam = unkai.client("lambda")
    name = f"connect_handler_{uid()}"
    # resourceFunctionCreate: CreateFunction (publish = false, reserved_concurrent_executions = -1)
    lam.create_function(FunctionName=name, Code={"ZipFile": handler_zip()}, Description="connect",
                        MemorySize=128, PackageType="Zip", Publish=False, Role=role_arn, Timeout=300,
                        Handler="lambda_function.lambda_handler", Runtime="python3.9",
                        TracingConfig={"Mode": "Active"}, Tags={"env": "dev"})
    # the create waiter: GetFunction until State Active (and LastUpdateStatus Successful)
    got = lam.get_function(FunctionName=name)
    config = got["Configuration"]
    assert config["State"] == "Active" and config["LastUpdateStatus"] == "Successful"

    # resourceFunctionRead: findFunction refuses an answer without Code or Configuration
    assert got["Code"]["RepositoryType"] == "S3" and got["Code"]["Location"]
    assert got["Tags"] == {"env": "dev"}
    assert "Concurrency" not in got  # read as reserved_concurrent_executions = -1
    expected = {"FunctionName": name, "Runtime": "python3.9", "Role": role_arn, "Timeout": 300, "MemorySize": 128,
                "Handler": "lambda_function.lambda_handler", "Description": "connect", "PackageType": "Zip",
                "TracingConfig": {"Mode": "Active"}, "Architectures": ["x86_64"],
                "EphemeralStorage": {"Size": 512}, "Version": "$LATEST"}
    assert {k: config.get(k) for k in expected} == expected
    assert config["FunctionArn"] == f"arn:aws:lambda:us-east-1:000000000000:function:{name}"
    assert config["CodeSha256"] and config["CodeSize"] > 0 and config["LastModified"]
    assert config["LoggingConfig"]["LogFormat"] == "Text"
    # findLatestFunctionVersionByName: the last of ListVersionsByFunction (MaxItems 10000)
    versions = lam.list_versions_by_function(FunctionName=name, MaxItems=10000)
    assert "NextMarker" not in versions and versions["Versions"][-1]["Version"] == "$LATEST"
    # code signing: an empty ARN when the function has none
    signing = lam.get_function_code_signing_config(FunctionName=name)
    assert signing["FunctionName"] == name and signing["CodeSigningConfigArn"] == ""
    assert "ReservedConcurrentExecutions" not in lam.get_function_concurrency(FunctionName=name)

    # resourceFunctionUpdate: configuration, then code (publish = true), each awaited
    lam.update_function_configuration(FunctionName=name, Timeout=60, Environment={"Variables": {"TABLE": "t"}})
    assert lam.get_function(FunctionName=name)["Configuration"]["LastUpdateStatus"] == "Successful"
    updated = lam.update_function_code(FunctionName=name, ZipFile=handler_zip(), Publish=True)
    assert updated["Version"] == "1"
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=5)
    got = lam.get_function(FunctionName=name)
    assert got["Configuration"]["Timeout"] == 60
    assert got["Configuration"]["Environment"] == {"Variables": {"TABLE": "t"}}
    assert got["Concurrency"] == {"ReservedConcurrentExecutions": 5}
    versions = lam.list_versions_by_function(FunctionName=name, MaxItems=10000)["Versions"]
    assert [v["Version"] for v in versions] == ["$LATEST", "1"]  # oldest first: qualified_arn ends :1
    assert versions[-1]["FunctionArn"].endswith(f":{name}:1")
    lam.delete_function_concurrency(FunctionName=name)

    # resourceFunctionDelete
    lam.delete_function(FunctionName=name)
    with pytest.raises(ClientError) as exc:
        lam.get_function(FunctionName=name)
    assert code_of(exc) == "ResourceNotFoundException"


def test_code_signing_config_of_a_missing_function_or_config_is_not_found(unkai, role_arn):
    lam = unkai.client("lambda")
    with pytest.raises(ClientError) as exc:
        lam.get_function_code_signing_config(FunctionName=f"missing-{uid()}")
    assert code_of(exc) == "ResourceNotFoundException"
    name = f"fn-{uid()}"
    lam.create_function(FunctionName=name, Code={"ZipFile": handler_zip()}, Role=role_arn,
                        Handler="lambda_function.lambda_handler", Runtime="python3.12")
    with pytest.raises(ClientError) as exc:
        lam.put_function_code_signing_config(
            FunctionName=name, CodeSigningConfigArn="arn:aws:lambda:us-east-1:000000000000:code-signing-config:"
                                                    "csc-0123456789abcdef0")
    assert code_of(exc) == "CodeSigningConfigNotFoundException"


def test_aws_lambda_permission_for_api_gateway(unkai, role_arn):
    lam = unkai.client("lambda")
    name = f"connect_handler_{uid()}"
    lam.create_function(FunctionName=name, Code={"ZipFile": handler_zip()}, Role=role_arn,
                        Handler="lambda_function.lambda_handler", Runtime="python3.9")
    source = "arn:aws:execute-api:us-east-1:000000000000:abcdef1234/*/$connect"
    # resourcePermissionCreate: AddPermission, then Read: GetPolicy, the statement by its Sid
    lam.add_permission(FunctionName=name, StatementId="AllowExecutionFromAPIGateway",
                       Action="lambda:InvokeFunction", Principal="apigateway.amazonaws.com", SourceArn=source)
    policy = json.loads(lam.get_policy(FunctionName=name)["Policy"])
    statement = next(s for s in policy["Statement"] if s["Sid"] == "AllowExecutionFromAPIGateway")
    assert statement["Action"] == "lambda:InvokeFunction" and statement["Effect"] == "Allow"
    assert statement["Principal"] == {"Service": "apigateway.amazonaws.com"}
    assert statement["Resource"] == f"arn:aws:lambda:us-east-1:000000000000:function:{name}"
    assert statement["Condition"] == {"ArnLike": {"AWS:SourceArn": source}}
    # a permission on a qualifier (an alias or version) is read with GetPolicy(Qualifier)
    lam.publish_version(FunctionName=name)
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    lam.add_permission(FunctionName=name, Qualifier="live", StatementId="s3", Action="lambda:InvokeFunction",
                       Principal="s3.amazonaws.com", SourceAccount="000000000000")
    aliased = json.loads(lam.get_policy(FunctionName=name, Qualifier="live")["Policy"])["Statement"]
    assert aliased[0]["Condition"] == {"StringEquals": {"AWS:SourceAccount": "000000000000"}}
    assert aliased[0]["Resource"].endswith(f":{name}:live")
    # a function URL permission: every condition the Read maps back to an argument, values as strings
    lam.add_permission(FunctionName=name, StatementId="url", Action="lambda:InvokeFunctionUrl", Principal="*",
                       FunctionUrlAuthType="NONE")
    lam.add_permission(FunctionName=name, StatementId="via-url", Action="lambda:InvokeFunction", Principal="*",
                       InvokedViaFunctionUrl=True)
    lam.add_permission(FunctionName=name, StatementId="alexa", Action="lambda:InvokeFunction",
                       Principal="alexa-appkit.amazon.com", EventSourceToken="amzn1.ask.skill.x")
    lam.add_permission(FunctionName=name, StatementId="other-account", Action="lambda:InvokeFunction",
                       Principal="123456789012")
    statements = {s["Sid"]: s for s in json.loads(lam.get_policy(FunctionName=name)["Policy"])["Statement"]}
    assert statements["url"]["Principal"] == "*"
    assert statements["url"]["Condition"] == {"StringEquals": {"lambda:FunctionUrlAuthType": "NONE"}}
    assert statements["via-url"]["Condition"] == {"Bool": {"lambda:InvokedViaFunctionUrl": "true"}}
    assert statements["alexa"]["Condition"] == {"StringEquals": {"lambda:EventSourceToken": "amzn1.ask.skill.x"}}
    assert statements["other-account"]["Principal"] == {"AWS": "arn:aws:iam::123456789012:root"}
    assert "s3" not in statements  # the alias's statement belongs to the alias's policy only
    # resourcePermissionDelete: RemovePermission, then GetPolicy until the statement is gone
    for sid in ("url", "via-url", "alexa", "other-account"):
        lam.remove_permission(FunctionName=name, StatementId=sid)
    lam.remove_permission(FunctionName=name, StatementId="AllowExecutionFromAPIGateway")
    with pytest.raises(ClientError) as exc:
        lam.get_policy(FunctionName=name)
    assert code_of(exc) == "ResourceNotFoundException"


def test_aws_apigatewayv2_websocket_api_route_integration_deployment_stage(unkai, role_arn):
    gw, logs = unkai.client("apigatewayv2"), unkai.client("logs")
    fn = unkai.client("lambda").create_function(
        FunctionName=f"connect_handler_{uid()}", Code={"ZipFile": handler_zip()}, Role=role_arn,
        Handler="lambda_function.lambda_handler", Runtime="python3.9")["FunctionArn"]
    invoke_arn = f"arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/{fn}/invocations"

    # aws_apigatewayv2_api
    api = gw.create_api(Name=f"example-{uid()}", ProtocolType="WEBSOCKET", Description="example websocket api",
                        RouteSelectionExpression="$request.body.action", Tags={"env": "dev"})
    api_id = api["ApiId"]
    got = gw.get_api(ApiId=api_id)
    for field in ("Name", "ProtocolType", "Description", "RouteSelectionExpression"):
        assert got[field] == api[field]
    assert got["ApiEndpoint"].startswith("ws") and got["ApiKeySelectionExpression"] == "$request.header.x-api-key"
    assert got["DisableExecuteApiEndpoint"] is False and got["Tags"] == {"env": "dev"}
    assert got["IpAddressType"] == "ipv4"
    gw.update_api(ApiId=api_id, Description="v2", IpAddressType="dualstack")
    got = gw.get_api(ApiId=api_id)
    assert (got["Description"], got["IpAddressType"]) == ("v2", "dualstack")
    # an HTTP API created with the provider's defaults reads them back unchanged
    http = gw.create_api(Name=f"http-{uid()}", ProtocolType="HTTP")
    assert gw.get_api(ApiId=http["ApiId"])["RouteSelectionExpression"] == "$request.method $request.path"
    gw.update_api(ApiId=http["ApiId"], CorsConfiguration={"AllowOrigins": ["https://example.com"], "MaxAge": 60})
    assert gw.get_api(ApiId=http["ApiId"])["CorsConfiguration"] == {"AllowOrigins": ["https://example.com"],
                                                                   "MaxAge": 60}
    gw.delete_cors_configuration(ApiId=http["ApiId"])  # cors_configuration removed
    assert "CorsConfiguration" not in gw.get_api(ApiId=http["ApiId"])
    gw.delete_api(ApiId=http["ApiId"])

    # aws_apigatewayv2_integration (AWS_PROXY to the function's invoke_arn)
    integration = gw.create_integration(ApiId=api_id, IntegrationType="AWS_PROXY", IntegrationMethod="POST",
                                        IntegrationUri=invoke_arn, PassthroughBehavior="WHEN_NO_MATCH",
                                        ConnectionType="INTERNET")
    got = gw.get_integration(ApiId=api_id, IntegrationId=integration["IntegrationId"])
    assert {k: got[k] for k in ("IntegrationType", "IntegrationMethod", "IntegrationUri", "ConnectionType",
                                "PassthroughBehavior", "PayloadFormatVersion", "TimeoutInMillis")} == {
        "IntegrationType": "AWS_PROXY", "IntegrationMethod": "POST", "IntegrationUri": invoke_arn,
        "ConnectionType": "INTERNET", "PassthroughBehavior": "WHEN_NO_MATCH", "PayloadFormatVersion": "1.0",
        "TimeoutInMillis": 29000}
    assert got["ApiGatewayManaged"] is False

    # aws_apigatewayv2_route ($connect to the integration)
    target = f"integrations/{integration['IntegrationId']}"
    route = gw.create_route(ApiId=api_id, RouteKey="$connect", Target=target, AuthorizationType="NONE",
                            ApiKeyRequired=False)
    got = gw.get_route(ApiId=api_id, RouteId=route["RouteId"])
    assert (got["RouteKey"], got["Target"], got["AuthorizationType"], got["ApiKeyRequired"]) == (
        "$connect", target, "NONE", False)
    gw.update_route(ApiId=api_id, RouteId=route["RouteId"], OperationName="Connect")
    assert gw.get_route(ApiId=api_id, RouteId=route["RouteId"])["OperationName"] == "Connect"

    # aws_apigatewayv2_deployment: waitDeploymentDeployed reads DeploymentStatus
    deployment = gw.create_deployment(ApiId=api_id, Description="example deployment")
    got = gw.get_deployment(ApiId=api_id, DeploymentId=deployment["DeploymentId"])
    assert got["DeploymentStatus"] == "DEPLOYED" and got["AutoDeployed"] is False
    assert got["Description"] == "example deployment"

    # aws_apigatewayv2_stage with access logs and default route settings (WebSocket: data trace, logging)
    group = f"/aws/apigateway/example-{uid()}"
    logs.create_log_group(logGroupName=group)
    destination = f"arn:aws:logs:us-east-1:000000000000:log-group:{group}"
    access_format = json.dumps({"requestId": "$context.requestId", "ip": "$context.identity.sourceIp"})
    settings = {"DataTraceEnabled": True, "DetailedMetricsEnabled": True, "LoggingLevel": "INFO",
                "ThrottlingBurstLimit": 5000, "ThrottlingRateLimit": 10000.0}
    gw.create_stage(ApiId=api_id, StageName="example", DeploymentId=deployment["DeploymentId"],
                    AccessLogSettings={"DestinationArn": destination, "Format": access_format},
                    DefaultRouteSettings=settings, Tags={"env": "dev"})
    stage = gw.get_stage(ApiId=api_id, StageName="example")
    assert stage["AccessLogSettings"] == {"DestinationArn": destination, "Format": access_format}
    assert stage["DefaultRouteSettings"] == settings
    assert stage["DeploymentId"] == deployment["DeploymentId"] and stage["AutoDeploy"] is False
    assert stage["Tags"] == {"env": "dev"} and stage["RouteSettings"] == {}
    # the stage's Read also reads the API (its protocol decides invoke_url's scheme)
    assert gw.get_api(ApiId=api_id)["ProtocolType"] == "WEBSOCKET"
    # update: route settings for $connect, new throttling
    gw.update_stage(ApiId=api_id, StageName="example", RouteSettings={"$connect": {
        "ThrottlingBurstLimit": 10, "ThrottlingRateLimit": 20.0, "DataTraceEnabled": False,
        "DetailedMetricsEnabled": False, "LoggingLevel": "OFF"}})
    assert gw.get_stage(ApiId=api_id, StageName="example")["RouteSettings"]["$connect"][
        "ThrottlingBurstLimit"] == 10
    # a route_settings block removed: DeleteRouteSettings, then UpdateStage with the rest
    gw.delete_route_settings(ApiId=api_id, StageName="example", RouteKey="$connect")
    assert gw.get_stage(ApiId=api_id, StageName="example")["RouteSettings"] == {}
    with pytest.raises(ClientError) as exc:
        gw.delete_route_settings(ApiId=api_id, StageName="example", RouteKey="$connect")
    assert code_of(exc) == "NotFoundException"
    # stage_variables: the provider sends only what changed, a removed variable as ""
    gw.update_stage(ApiId=api_id, StageName="example", StageVariables={"table": "connection", "mode": "dev"})
    gw.update_stage(ApiId=api_id, StageName="example", StageVariables={"mode": "", "level": "info"})
    assert gw.get_stage(ApiId=api_id, StageName="example")["StageVariables"] == {"table": "connection",
                                                                                 "level": "info"}

    # a replacement deployment (create_before_destroy), the stage moved to it, the old one deleted
    newer = gw.create_deployment(ApiId=api_id, Description="example deployment")
    gw.update_stage(ApiId=api_id, StageName="example", DeploymentId=newer["DeploymentId"])
    gw.delete_deployment(ApiId=api_id, DeploymentId=deployment["DeploymentId"])
    assert gw.get_stage(ApiId=api_id, StageName="example")["DeploymentId"] == newer["DeploymentId"]

    # destroy in reverse order; each Read after Delete answers NotFoundException
    gw.delete_stage(ApiId=api_id, StageName="example")
    gw.delete_deployment(ApiId=api_id, DeploymentId=newer["DeploymentId"])
    gw.delete_route(ApiId=api_id, RouteId=route["RouteId"])
    gw.delete_integration(ApiId=api_id, IntegrationId=integration["IntegrationId"])
    for call in (lambda: gw.get_stage(ApiId=api_id, StageName="example"),
                 lambda: gw.get_route(ApiId=api_id, RouteId=route["RouteId"]),
                 lambda: gw.get_integration(ApiId=api_id, IntegrationId=integration["IntegrationId"])):
        with pytest.raises(ClientError) as exc:
            call()
        assert code_of(exc) == "NotFoundException"
    gw.delete_api(ApiId=api_id)
    with pytest.raises(ClientError) as exc:
        gw.get_api(ApiId=api_id)
    assert code_of(exc) == "NotFoundException"


def test_aws_apigatewayv2_domain_name_and_api_mapping(unkai):
    gw = unkai.client("apigatewayv2")
    api_id = gw.create_api(Name=f"example-{uid()}", ProtocolType="WEBSOCKET",
                           RouteSelectionExpression="$request.body.action")["ApiId"]
    gw.create_stage(ApiId=api_id, StageName="example")
    domain = f"ws-{uid()}.example.com"
    certificate = "arn:aws:acm:us-east-1:000000000000:certificate/0f1e2d3c-aaaa-bbbb-cccc-000000000000"

    # resourceDomainNameCreate, then waitDomainNameAvailable on DomainNameConfigurations[0].DomainNameStatus
    gw.create_domain_name(DomainName=domain, DomainNameConfigurations=[{
        "CertificateArn": certificate, "EndpointType": "REGIONAL", "SecurityPolicy": "TLS_1_2"}],
        Tags={"env": "dev"})
    got = gw.get_domain_name(DomainName=domain)
    config = got["DomainNameConfigurations"][0]
    assert config["DomainNameStatus"] == "AVAILABLE"
    assert (config["CertificateArn"], config["EndpointType"], config["SecurityPolicy"]) == (
        certificate, "REGIONAL", "TLS_1_2")
    # target_domain_name and hosted_zone_id: what a Route 53 alias record would point at
    assert config["ApiGatewayDomainName"].endswith(".execute-api.us-east-1.amazonaws.com")
    assert config["HostedZoneId"] == "Z1UJRXOUMOOFQ8"
    assert got["ApiMappingSelectionExpression"] == "$request.basepath" and got["Tags"] == {"env": "dev"}
    assert got["RoutingMode"] == "API_MAPPING_ONLY" and config["IpAddressType"] == "ipv4"
    assert "MutualTlsAuthentication" not in got
    assert domain in [d["DomainName"] for d in gw.get_domain_names()["Items"]]

    # aws_apigatewayv2_api_mapping
    mapping = gw.create_api_mapping(ApiId=api_id, DomainName=domain, Stage="example")
    got = gw.get_api_mapping(ApiMappingId=mapping["ApiMappingId"], DomainName=domain)
    assert (got["ApiId"], got["Stage"], got["ApiMappingKey"]) == (api_id, "example", "")
    with pytest.raises(ClientError) as exc:
        gw.create_api_mapping(ApiId=api_id, DomainName=domain, Stage="example")
    assert code_of(exc) == "ConflictException"
    with pytest.raises(ClientError) as exc:
        gw.create_api_mapping(ApiId=api_id, DomainName=domain, Stage="nope", ApiMappingKey="v2")
    assert code_of(exc) == "BadRequestException"
    gw.update_api_mapping(ApiMappingId=mapping["ApiMappingId"], ApiId=api_id, DomainName=domain,
                          ApiMappingKey="v1")
    assert gw.get_api_mappings(DomainName=domain)["Items"][0]["ApiMappingKey"] == "v1"

    # update: a new certificate and policy, tags through the domain's ARN
    newer = certificate.replace("0000000000", "1111111111")
    gw.update_domain_name(DomainName=domain, DomainNameConfigurations=[{
        "CertificateArn": newer, "EndpointType": "REGIONAL", "SecurityPolicy": "TLS_1_2"}],
        MutualTlsAuthentication={"TruststoreUri": "s3://trust/store.pem", "TruststoreVersion": "1"})
    assert gw.get_domain_name(DomainName=domain)["MutualTlsAuthentication"] == {
        "TruststoreUri": "s3://trust/store.pem", "TruststoreVersion": "1"}
    # mutual_tls_authentication removed: the provider sends an empty truststore URI
    gw.update_domain_name(DomainName=domain, DomainNameConfigurations=[{
        "CertificateArn": newer, "EndpointType": "REGIONAL", "SecurityPolicy": "TLS_1_2"}],
        MutualTlsAuthentication={"TruststoreUri": ""})
    arn = f"arn:aws:apigateway:us-east-1::/domainnames/{domain}"
    gw.tag_resource(ResourceArn=arn, Tags={"team": "a"})
    got = gw.get_domain_name(DomainName=domain)
    assert got["DomainNameConfigurations"][0]["CertificateArn"] == newer and "MutualTlsAuthentication" not in got
    assert got["DomainNameConfigurations"][0]["ApiGatewayDomainName"] == config["ApiGatewayDomainName"]
    assert gw.get_tags(ResourceArn=arn)["Tags"] == {"env": "dev", "team": "a"}

    # delete the mapping, then the domain; reads answer NotFoundException
    gw.delete_api_mapping(ApiMappingId=mapping["ApiMappingId"], DomainName=domain)
    with pytest.raises(ClientError) as exc:
        gw.get_api_mapping(ApiMappingId=mapping["ApiMappingId"], DomainName=domain)
    assert code_of(exc) == "NotFoundException"
    gw.delete_domain_name(DomainName=domain)
    with pytest.raises(ClientError) as exc:
        gw.get_domain_name(DomainName=domain)
    assert code_of(exc) == "NotFoundException"


def test_domain_names_refuse_what_aws_refuses(unkai):
    gw = unkai.client("apigatewayv2")
    domain = f"dup-{uid()}.example.com"
    good = [{"CertificateArn": "arn:aws:acm:us-east-1:000000000000:certificate/x", "EndpointType": "REGIONAL"}]
    gw.create_domain_name(DomainName=domain, DomainNameConfigurations=good)
    with pytest.raises(ClientError) as exc:
        gw.create_domain_name(DomainName=domain, DomainNameConfigurations=good)
    assert code_of(exc) == "ConflictException"
    # names ignore case, and read back as written (no diff against the configuration)
    mixed = f"Mixed-{uid()}.Example.com"
    gw.create_domain_name(DomainName=mixed, DomainNameConfigurations=good)
    assert gw.get_domain_name(DomainName=mixed.lower())["DomainName"] == mixed
    with pytest.raises(ClientError) as exc:
        gw.create_domain_name(DomainName=mixed.upper(), DomainNameConfigurations=good)
    assert code_of(exc) == "ConflictException"
    with pytest.raises(ClientError) as exc:
        gw.create_domain_name(DomainName=f"edge-{uid()}.example.com", DomainNameConfigurations=[{
            "CertificateArn": "arn:aws:acm:us-east-1:000000000000:certificate/x", "EndpointType": "EDGE"}])
    assert code_of(exc) == "BadRequestException"
    with pytest.raises(ClientError) as exc:
        gw.create_api_mapping(ApiId="nope123456", DomainName=f"missing-{uid()}.example.com", Stage="s")
    assert code_of(exc) == "NotFoundException"
