"""``unkai up --enforce-iam``: a template's function whose role lacks a permission is denied
as AWS would deny it (the service's AccessDenied, AWS's message, one readable log line),
and works once the permission is added; resource policies, explicit denies, boundaries,
session policies and trust policies count; ``--enforce-iam=log`` only reports."""

from __future__ import annotations

import json
import textwrap
import urllib.error
import urllib.request

import boto3
import pytest
from botocore.exceptions import ClientError

from unkai.testing import UnkaiServer

TEMPLATE = textwrap.dedent("""\
    AWSTemplateFormatVersion: '2010-09-09'
    Transform: AWS::Serverless-2016-10-31
    Resources:
      Jobs:
        Type: AWS::SQS::Queue
      Sender:
        Type: AWS::Serverless::Function
        Properties:
          FunctionName: sender
          Runtime: python3.12
          Handler: index.handler
          Environment:
            Variables:
              QUEUE_URL: !Ref Jobs
          InlineCode: |
            import os, boto3
            def handler(event, context):
                boto3.client("sqs").send_message(QueueUrl=os.environ["QUEUE_URL"], MessageBody="hi")
                return "sent"
      Hello:
        Type: AWS::Serverless::Function
        Properties:
          FunctionName: hello
          Runtime: python3.12
          Handler: index.handler
          InlineCode: |
            def handler(event, context):
                return {"statusCode": 200, "body": "hi"}
          Events:
            Rest:
              Type: Api
              Properties: {Path: "/greet/{name}", Method: get}
            Http:
              Type: HttpApi
              Properties: {Path: /hi, Method: get}
    Outputs:
      RoleName:
        Value: !Ref SenderRole
      QueueArn:
        Value: !GetAtt Jobs.Arn
    """)
TRUST = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::000000000000:root"}, "Action": "sts:AssumeRole"}]})


def _doc(*statements: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("enforce")
    (root / "app").mkdir()
    (root / "app" / "template.yaml").write_text(TEMPLATE)
    with UnkaiServer(root / "state", str(root / "app" / "template.yaml"), "--enforce-iam") as srv:
        yield srv


def _outputs(server) -> dict:
    stack = server.client("cloudformation").describe_stacks(StackName="app")["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}


def test_a_function_lacking_a_permission_is_denied_until_the_policy_is_added(server):
    lam, iam = server.client("lambda"), server.client("iam")
    out = _outputs(server)
    denied = lam.invoke(FunctionName="sender")
    body = json.loads(denied["Payload"].read())
    assert denied.get("FunctionError") == "Unhandled"
    role = out["RoleName"]
    assert f"User: arn:aws:sts::000000000000:assumed-role/{role}/sender is not authorized to perform: " \
           f"sqs:SendMessage on resource: {out['QueueArn']} because no identity-based policy allows the " \
           "sqs:SendMessage action" in body["errorMessage"]
    assert f"IAM denied: arn:aws:sts::000000000000:assumed-role/{role}/sender -> sqs:SendMessage on " \
           f"{out['QueueArn']}" in server.output()
    iam.put_role_policy(RoleName=role, PolicyName="send", PolicyDocument=_doc(
        {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": out["QueueArn"]}))
    allowed = lam.invoke(FunctionName="sender")
    assert json.loads(allowed["Payload"].read()) == "sent"


def _session(server, role_name: str, policy: str | None = None) -> dict:
    iam, sts = server.client("iam"), server.client("sts")
    arn = iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=TRUST)["Role"]["Arn"]
    kwargs = {"Policy": policy} if policy else {}
    creds = sts.assume_role(RoleArn=arn, RoleSessionName="tt", **kwargs)["Credentials"]
    return {"aws_access_key_id": creds["AccessKeyId"], "aws_secret_access_key": creds["SecretAccessKey"],
            "aws_session_token": creds["SessionToken"]}


def _client(server, service: str, creds: dict):
    return boto3.client(service, endpoint_url=server.endpoint, region_name="us-east-1", **creds)


def _code(exc: pytest.ExceptionInfo) -> str:
    return exc.value.response["Error"]["Code"]


def test_explicit_deny_boundaries_session_and_resource_policies(server):
    iam = server.client("iam")
    sm = server.client("secretsmanager")
    secret = sm.create_secret(Name="enforced/db", SecretString="pw")["ARN"]
    creds = _session(server, "reader")
    iam.put_role_policy(RoleName="reader", PolicyName="p", PolicyDocument=_doc(
        {"Effect": "Allow", "Action": "secretsmanager:*", "Resource": "*"},
        {"Sid": "NoDelete", "Effect": "Deny", "Action": "secretsmanager:DeleteSecret", "Resource": "*"}))
    reader = _client(server, "secretsmanager", creds)
    assert reader.get_secret_value(SecretId="enforced/db")["SecretString"] == "pw"
    with pytest.raises(ClientError) as exc:
        reader.delete_secret(SecretId="enforced/db")
    assert _code(exc) == "AccessDeniedException"
    assert "with an explicit deny in an identity-based policy" in exc.value.response["Error"]["Message"]
    # a permissions boundary limits what the identity policy allows
    boundary = iam.create_policy(PolicyName="only-describe", PolicyDocument=_doc(
        {"Effect": "Allow", "Action": "secretsmanager:DescribeSecret", "Resource": "*"}))["Policy"]["Arn"]
    iam.put_role_permissions_boundary(RoleName="reader", PermissionsBoundary=boundary)
    reader.describe_secret(SecretId="enforced/db")
    with pytest.raises(ClientError) as exc:
        reader.get_secret_value(SecretId="enforced/db")
    assert "permissions boundary" in exc.value.response["Error"]["Message"]
    # a resource policy alone grants access to a principal it names
    other = _session(server, "outsider")
    outsider = _client(server, "secretsmanager", other)
    with pytest.raises(ClientError):
        outsider.get_secret_value(SecretId=secret)
    sm.put_resource_policy(SecretId=secret, ResourcePolicy=_doc(
        {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::000000000000:role/outsider"},
         "Action": "secretsmanager:GetSecretValue", "Resource": "*"}))
    assert outsider.get_secret_value(SecretId=secret)["SecretString"] == "pw"
    # a session policy narrows the role's permissions
    iam.create_role(RoleName="wide", AssumeRolePolicyDocument=TRUST)
    iam.attach_role_policy(RoleName="wide", PolicyArn="arn:aws:iam::aws:policy/AmazonSQSFullAccess")
    creds = server.client("sts").assume_role(
        RoleArn="arn:aws:iam::000000000000:role/wide", RoleSessionName="narrow",
        Policy=_doc({"Effect": "Allow", "Action": "sqs:ListQueues", "Resource": "*"}))["Credentials"]
    narrow = _client(server, "sqs", {"aws_access_key_id": creds["AccessKeyId"],
                                     "aws_secret_access_key": creds["SecretAccessKey"],
                                     "aws_session_token": creds["SessionToken"]})
    narrow.list_queues()
    with pytest.raises(ClientError) as exc:
        narrow.create_queue(QueueName="not-allowed")
    assert "session policy" in exc.value.response["Error"]["Message"]


def test_trust_policies_decide_who_may_assume_a_role(server):
    iam, sts = server.client("iam"), server.client("sts")
    iam.create_role(RoleName="lambda-only", AssumeRolePolicyDocument=_doc(
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}))
    creds = _session(server, "caller")
    iam.put_role_policy(RoleName="caller", PolicyName="assume", PolicyDocument=_doc(
        {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}))
    with pytest.raises(ClientError) as exc:
        _client(server, "sts", creds).assume_role(RoleArn="arn:aws:iam::000000000000:role/lambda-only",
                                                  RoleSessionName="xx")
    assert _code(exc) == "AccessDenied"
    with pytest.raises(ClientError) as exc:
        sts.assume_role(RoleArn="arn:aws:iam::000000000000:role/never-created", RoleSessionName="xx")
    assert _code(exc) == "AccessDenied"


def test_services_acting_for_the_user_need_the_resources_own_policy(server):
    """SNS delivering to a queue, S3 notifying a function and EventBridge sending to a queue
    are let in by the target's resource policy (with aws:SourceArn), as on AWS; an event
    source mapping needs its function's role to read the source."""
    sqs, sns, s3, lam, events = (server.client(s) for s in ("sqs", "sns", "s3", "lambda", "events"))

    def queue(name: str) -> tuple[str, str]:
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        return url, sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

    def allow(url: str, arn: str, service: str, source: str) -> None:
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": _doc({
            "Effect": "Allow", "Principal": {"Service": service}, "Action": "sqs:SendMessage", "Resource": arn,
            "Condition": {"ArnEquals": {"aws:SourceArn": source}}})})

    def bodies(url: str) -> list[str]:
        server.drain()
        msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0).get("Messages", [])
        for m in msgs:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        return [m["Body"] for m in msgs]

    # SNS -> SQS
    url, arn = queue("fanned")
    topic = sns.create_topic(Name="news")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})
    sns.publish(TopicArn=topic, Message="no policy")
    assert bodies(url) == []
    assert f"IAM denied: sns.amazonaws.com -> sqs:SendMessage on {arn}" in server.output()
    allow(url, arn, "sns.amazonaws.com", topic.replace(":news", ":other"))  # another topic's ARN: still refused
    sns.publish(TopicArn=topic, Message="wrong source")
    assert bodies(url) == []
    allow(url, arn, "sns.amazonaws.com", topic)
    sns.publish(TopicArn=topic, Message="allowed")
    assert bodies(url) == ["allowed"]

    # S3 -> Lambda: validated when the notification is configured, as on AWS
    s3.create_bucket(Bucket="uploads-enforced")
    function = lam.get_function(FunctionName="sender")["Configuration"]["FunctionArn"]
    config = {"LambdaFunctionConfigurations": [{"LambdaFunctionArn": function, "Events": ["s3:ObjectCreated:*"]}]}
    with pytest.raises(ClientError) as exc:
        s3.put_bucket_notification_configuration(Bucket="uploads-enforced", NotificationConfiguration=config)
    assert exc.value.response["Error"]["Code"] == "InvalidArgument"
    assert "Unable to validate the following destination configurations" in str(exc.value)
    lam.add_permission(FunctionName="sender", StatementId="s3", Action="lambda:InvokeFunction",
                       Principal="s3.amazonaws.com", SourceArn="arn:aws:s3:::uploads-enforced")
    s3.put_bucket_notification_configuration(Bucket="uploads-enforced", NotificationConfiguration=config)

    # EventBridge -> SQS: refused deliveries go to the target's dead-letter queue
    target_url, target_arn = queue("ruled")
    dlq_url, dlq_arn = queue("ruled-dlq")
    rule = events.put_rule(Name="app-events", EventPattern=json.dumps({"source": ["app"]}))["RuleArn"]
    events.put_targets(Rule="app-events", Targets=[{"Id": "q", "Arn": target_arn,
                                                    "DeadLetterConfig": {"Arn": dlq_arn}}])
    events.put_events(Entries=[{"Source": "app", "DetailType": "t", "Detail": "{}"}])
    assert bodies(target_url) == []
    dead = sqs.receive_message(QueueUrl=dlq_url, MessageAttributeNames=["All"]).get("Messages", [])
    assert dead and dead[0]["MessageAttributes"]["ERROR_CODE"]["StringValue"] == "AccessDenied"
    allow(target_url, target_arn, "events.amazonaws.com", rule)
    events.put_events(Entries=[{"Source": "app", "DetailType": "t", "Detail": "{}"}])
    assert len(bodies(target_url)) == 1

    # an event source mapping reads its queue with the function's execution role
    role = _outputs(server)["RoleName"]
    _, source = queue("work-enforced")
    with pytest.raises(ClientError) as exc:
        lam.create_event_source_mapping(FunctionName="sender", EventSourceArn=source)
    assert exc.value.response["Error"]["Code"] == "InvalidParameterValueException"
    assert exc.value.response["Error"]["Message"] == \
        "The provided execution role does not have permissions to call ReceiveMessage on SQS"
    server.client("iam").attach_role_policy(
        RoleName=role, PolicyArn="arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole")
    mapping = lam.create_event_source_mapping(FunctionName="sender", EventSourceArn=source, Enabled=False)
    lam.delete_event_source_mapping(UUID=mapping["UUID"])


def test_kms_grants_allow_what_no_policy_does(server):
    """A grant lets its grantee use the key for its operations (within its encryption-context
    constraints) though neither the key policy nor the role's policies allow it."""
    kms = server.client("kms")
    key = kms.create_key()["KeyMetadata"]["Arn"]
    blob = kms.encrypt(KeyId=key, Plaintext=b"secret", EncryptionContext={"app": "orders"})["CiphertextBlob"]
    other = kms.encrypt(KeyId=key, Plaintext=b"secret", EncryptionContext={"app": "billing"})["CiphertextBlob"]
    granted = _client(server, "kms", _session(server, "granted"))
    with pytest.raises(ClientError) as exc:
        granted.decrypt(CiphertextBlob=blob, EncryptionContext={"app": "orders"})
    assert _code(exc) == "AccessDeniedException"
    grant = kms.create_grant(KeyId=key, GranteePrincipal="arn:aws:iam::000000000000:role/granted",
                             Operations=["Decrypt"], Constraints={"EncryptionContextSubset": {"app": "orders"}})
    out = granted.decrypt(CiphertextBlob=blob, EncryptionContext={"app": "orders"})
    assert out["Plaintext"] == b"secret"
    with pytest.raises(ClientError):  # outside the grant's constraint
        granted.decrypt(CiphertextBlob=other, EncryptionContext={"app": "billing"})
    with pytest.raises(ClientError):  # not one of its operations
        granted.encrypt(KeyId=key, Plaintext=b"x", EncryptionContext={"app": "orders"})
    kms.revoke_grant(KeyId=key, GrantId=grant["GrantId"])  # the key's grants, as read before, are not kept
    with pytest.raises(ClientError) as exc:
        granted.decrypt(CiphertextBlob=blob, EncryptionContext={"app": "orders"})
    assert _code(exc) == "AccessDeniedException"


def test_sse_kms_objects_need_the_callers_permission_on_their_key(server):
    """Reading an SSE-KMS object needs kms:Decrypt on its key (writing one kms:GenerateDataKey),
    checked for the S3 caller as S3 asks KMS for them; ``alias/aws/s3``'s key policy lets every
    principal of the account use it through S3, and only through S3."""
    s3, kms = server.client("s3"), server.client("kms")
    key = kms.create_key()["KeyMetadata"]["Arn"]
    s3.create_bucket(Bucket="sealed-enforced")
    s3.put_object(Bucket="sealed-enforced", Key="own-key", Body=b"secret", ServerSideEncryption="aws:kms",
                  SSEKMSKeyId=key)
    s3.put_object(Bucket="sealed-enforced", Key="aws-key", Body=b"managed", ServerSideEncryption="aws:kms")
    creds = _session(server, "sealed-reader")
    server.client("iam").put_role_policy(RoleName="sealed-reader", PolicyName="objects", PolicyDocument=_doc(
        {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"], "Resource": "arn:aws:s3:::sealed-enforced/*"}))
    reader, reader_kms = _client(server, "s3", creds), _client(server, "kms", creds)
    assert reader.get_object(Bucket="sealed-enforced", Key="aws-key")["Body"].read() == b"managed"
    reader.put_object(Bucket="sealed-enforced", Key="aws-key-2", Body=b"x", ServerSideEncryption="aws:kms")
    with pytest.raises(ClientError) as exc:  # the managed key is for S3's use, not direct calls
        reader_kms.encrypt(KeyId="alias/aws/s3", Plaintext=b"x")
    assert _code(exc) == "AccessDeniedException"
    with pytest.raises(ClientError) as exc:
        reader.get_object(Bucket="sealed-enforced", Key="own-key")
    assert (_code(exc), exc.value.response["ResponseMetadata"]["HTTPStatusCode"]) == ("AccessDenied", 403)
    assert exc.value.response["Error"]["Message"] == (
        "User: arn:aws:sts::000000000000:assumed-role/sealed-reader/tt is not authorized to perform: kms:Decrypt "
        f"on resource: {key} because no identity-based policy allows the kms:Decrypt action")
    with pytest.raises(ClientError) as exc:
        reader.put_object(Bucket="sealed-enforced", Key="own-key-2", Body=b"x", ServerSideEncryption="aws:kms",
                          SSEKMSKeyId=key)
    assert "kms:GenerateDataKey on resource: " + key in exc.value.response["Error"]["Message"]
    server.client("iam").put_role_policy(RoleName="sealed-reader", PolicyName="key", PolicyDocument=_doc(
        {"Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": key}))
    assert reader.get_object(Bucket="sealed-enforced", Key="own-key")["Body"].read() == b"secret"
    reader.put_object(Bucket="sealed-enforced", Key="own-key-2", Body=b"x", ServerSideEncryption="aws:kms",
                      SSEKMSKeyId=key)


def _service_role(server, name: str, service: str, *statements: dict) -> str:
    trust = _doc({"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"})
    arn = server.client("iam").create_role(RoleName=name, AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    if statements:
        server.client("iam").put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=_doc(*statements))
    return arn


def test_api_gateway_needs_the_functions_permission_to_invoke_it(server):
    """A REST API's Lambda proxy integration answers 500 {"message": "Internal server error"} and
    logs AWS's "Invalid permissions on Lambda function" until the function's policy lets
    apigateway.amazonaws.com in for the method's ARN (or an integration role may invoke it)."""
    apig, lam = server.client("apigateway"), server.client("lambda")
    api = apig.create_rest_api(name="enforced")["id"]
    root = apig.get_resources(restApiId=api)["items"][0]["id"]
    res = apig.create_resource(restApiId=api, parentId=root, pathPart="hello")["id"]
    apig.put_method(restApiId=api, resourceId=res, httpMethod="GET", authorizationType="NONE")
    fn = lam.get_function(FunctionName="hello")["Configuration"]["FunctionArn"]
    uri = f"arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/{fn}/invocations"
    apig.put_integration(restApiId=api, resourceId=res, httpMethod="GET", type="AWS_PROXY",
                         integrationHttpMethod="POST", uri=uri)
    apig.create_deployment(restApiId=api, stageName="prod")

    def call() -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(server.url(f"/_unkai/execute-api/{api}/prod/hello")) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    status, body = call()
    assert (status, json.loads(body)) == (500, {"message": "Internal server error"})
    assert "Execution failed due to configuration error: Invalid permissions on Lambda function" in server.output()
    lam.add_permission(FunctionName="hello", StatementId="other-api", Action="lambda:InvokeFunction",
                       Principal="apigateway.amazonaws.com", SourceArn="arn:aws:execute-api:us-east-1:000000000000:"
                       "otherapi/*/GET/hello")
    assert call()[0] == 500  # a permission for another API does not count
    lam.add_permission(FunctionName="hello", StatementId="api", Action="lambda:InvokeFunction",
                       Principal="apigateway.amazonaws.com",
                       SourceArn=f"arn:aws:execute-api:us-east-1:000000000000:{api}/*/GET/hello")
    assert call() == (200, b"hi")
    # An integration role instead: it must trust API Gateway and allow lambda:InvokeFunction.
    role = _service_role(server, "apigw-invoker", "apigateway.amazonaws.com")
    apig.update_integration(restApiId=api, resourceId=res, httpMethod="GET", patchOperations=[
        {"op": "replace", "path": "/credentials", "value": role}])
    apig.create_deployment(restApiId=api, stageName="prod")
    assert call()[0] == 500
    server.client("iam").put_role_policy(RoleName="apigw-invoker", PolicyName="p", PolicyDocument=_doc(
        {"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": fn}))
    assert call() == (200, b"hi")


def test_scheduler_and_firehose_act_with_the_role_they_are_given(server):
    """A schedule's target RoleArn must trust scheduler.amazonaws.com and allow sending to the
    target (else the event goes to the dead-letter queue with AccessDenied); a Firehose stream's
    RoleARN must let it write to the bucket (else S3.AccessDenied and a retry)."""
    sqs, iam = server.client("sqs"), server.client("iam")
    dlq_url = sqs.create_queue(QueueName="sched-dlq")["QueueUrl"]
    q_url = sqs.create_queue(QueueName="sched-target")["QueueUrl"]
    arn_of = lambda url: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[  # noqa: E731
        "Attributes"]["QueueArn"]
    role = _service_role(server, "sched-role", "scheduler.amazonaws.com")
    server.client("scheduler").create_schedule(
        Name="enforced", ScheduleExpression="rate(1 minute)", FlexibleTimeWindow={"Mode": "OFF"},
        Target={"Arn": arn_of(q_url), "RoleArn": role, "Input": "tick", "DeadLetterConfig": {"Arn": arn_of(dlq_url)}})
    server.advance(61)
    server.drain()
    dead = sqs.receive_message(QueueUrl=dlq_url, MessageAttributeNames=["All"], WaitTimeSeconds=1)["Messages"]
    attrs = dead[0]["MessageAttributes"]
    assert attrs["ERROR_CODE"]["StringValue"] == "AccessDenied"
    assert "sqs:SendMessage" in attrs["ERROR_MESSAGE"]["StringValue"]
    assert "Messages" not in sqs.receive_message(QueueUrl=q_url)
    iam.put_role_policy(RoleName="sched-role", PolicyName="p", PolicyDocument=_doc(
        {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": arn_of(q_url)}))
    server.advance(60)
    server.drain()
    assert sqs.receive_message(QueueUrl=q_url, WaitTimeSeconds=1)["Messages"][0]["Body"] == "tick"

    s3 = server.client("s3")
    s3.create_bucket(Bucket="firehose-enforced")
    role = _service_role(server, "firehose-role", "firehose.amazonaws.com")
    firehose = server.client("firehose")
    firehose.create_delivery_stream(DeliveryStreamName="enforced", ExtendedS3DestinationConfiguration={
        "RoleARN": role, "BucketARN": "arn:aws:s3:::firehose-enforced",
        "BufferingHints": {"IntervalInSeconds": 60, "SizeInMBs": 1}})
    firehose.put_record(DeliveryStreamName="enforced", Record={"Data": b"row\n"})
    server.advance(61)
    server.drain()
    assert s3.list_objects_v2(Bucket="firehose-enforced")["KeyCount"] == 0
    assert any(e.get("error") == "S3.AccessDenied" for e in server.feed(kind="firehose.delivery_failed"))
    iam.put_role_policy(RoleName="firehose-role", PolicyName="p", PolicyDocument=_doc(
        {"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::firehose-enforced/*"}))
    server.advance(61)
    server.drain()
    assert s3.list_objects_v2(Bucket="firehose-enforced")["KeyCount"] == 1

    # A Lambda transform is invoked with the stream's role too: without lambda:InvokeFunction the
    # records land under processing-failed/ with Firehose's Lambda.InvokeAccessDenied.
    fn = server.client("lambda").get_function(FunctionName="hello")["Configuration"]["FunctionArn"]
    firehose.create_delivery_stream(DeliveryStreamName="transformed", ExtendedS3DestinationConfiguration={
        "RoleARN": role, "BucketARN": "arn:aws:s3:::firehose-enforced", "Prefix": "ok/",
        "BufferingHints": {"IntervalInSeconds": 60, "SizeInMBs": 1},
        "ProcessingConfiguration": {"Enabled": True, "Processors": [{"Type": "Lambda", "Parameters": [
            {"ParameterName": "LambdaArn", "ParameterValue": fn}]}]}})
    firehose.put_record(DeliveryStreamName="transformed", Record={"Data": b"row\n"})
    server.advance(61)
    server.drain()
    failed = [o["Key"] for o in s3.list_objects_v2(Bucket="firehose-enforced", Prefix="processing-failed/")
              .get("Contents", [])]
    assert len(failed) == 1
    record = json.loads(s3.get_object(Bucket="firehose-enforced", Key=failed[0])["Body"].read().splitlines()[0])
    assert record["errorCode"] == "Lambda.InvokeAccessDenied"


def test_iot_rule_actions_act_with_their_role(server):
    """An IoT rule's SQS action sends with its roleArn, which must trust iot.amazonaws.com and
    allow sqs:SendMessage; a refused action runs the rule's error action with the reason."""
    sqs = server.client("sqs")
    q_url = sqs.create_queue(QueueName="iot-target")["QueueUrl"]
    err_url = sqs.create_queue(QueueName="iot-errors")["QueueUrl"]
    err_arn = sqs.get_queue_attributes(QueueUrl=err_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    bare = _service_role(server, "iot-bare", "iot.amazonaws.com")
    errors = _service_role(server, "iot-errors", "iot.amazonaws.com",
                           {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": err_arn})
    server.client("iot").create_topic_rule(ruleName="enforced", topicRulePayload={
        "sql": "SELECT * FROM 'enforced/+'", "actions": [{"sqs": {"queueUrl": q_url, "roleArn": bare}}],
        "errorAction": {"sqs": {"queueUrl": err_url, "roleArn": errors}}})
    server.client("iot-data").publish(topic="enforced/1", payload=b'{"a": 1}')
    got = sqs.receive_message(QueueUrl=err_url, WaitTimeSeconds=2)["Messages"]
    failure = json.loads(got[0]["Body"])["failures"][0]
    assert failure["failedAction"] == "SqsAction" and "sqs:SendMessage" in failure["errorMessage"]
    assert "iot-bare" in failure["errorMessage"]
    assert "Messages" not in sqs.receive_message(QueueUrl=q_url)


def test_a_pipe_delivers_with_its_role(server):
    """A pipe hands its source's records to the target with its RoleArn, which must trust
    pipes.amazonaws.com and allow sqs:SendMessage on the target queue."""
    sqs, iam = server.client("sqs"), server.client("iam")
    src_url = sqs.create_queue(QueueName="pipe-source")["QueueUrl"]
    dst_url = sqs.create_queue(QueueName="pipe-target")["QueueUrl"]
    arn_of = lambda url: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[  # noqa: E731
        "Attributes"]["QueueArn"]
    role = _service_role(server, "pipe-role", "pipes.amazonaws.com")
    server.client("pipes").create_pipe(Name="enforced", RoleArn=role, Source=arn_of(src_url), Target=arn_of(dst_url))
    sqs.send_message(QueueUrl=src_url, MessageBody="first")
    server.drain()
    assert "Messages" not in sqs.receive_message(QueueUrl=dst_url)
    failed = server.feed(kind="delivery.failed")
    assert any(e.get("source") == "pipes" and e.get("error_code") == "AccessDenied" for e in failed), failed
    iam.put_role_policy(RoleName="pipe-role", PolicyName="p", PolicyDocument=_doc(
        {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": arn_of(dst_url)}))
    sqs.send_message(QueueUrl=src_url, MessageBody="second")
    server.drain()
    got = sqs.receive_message(QueueUrl=dst_url, WaitTimeSeconds=2)["Messages"]
    assert json.loads(got[0]["Body"])["body"] == "second"


def test_sam_apis_invoke_their_functions_with_the_permissions_sam_generates(server):
    """SAM's Api and HttpApi events come with the AWS::Lambda::Permission SAM generates
    (apigateway.amazonaws.com for the API's execute-api ARN), so they work under enforcement."""
    rest = next(a for a in server.client("apigateway").get_rest_apis()["items"] if a["name"] != "enforced")["id"]
    http = server.client("apigatewayv2").get_apis()["Items"][0]["ApiId"]
    for path in (f"/_unkai/execute-api/{rest}/Prod/greet/bob", f"/_unkai/execute-api/{http}/hi"):
        with urllib.request.urlopen(server.url(path)) as r:
            assert (r.status, r.read()) == (200, b"hi"), path
