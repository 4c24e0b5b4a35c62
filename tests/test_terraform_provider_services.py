"""The calls the Terraform AWS provider (v5/v6) makes for the other serverless resource types,
in the provider's order, with the fields its Read functions set from the answers (see
tests/test_terraform_provider_websocket.py for the method, and docs/terraform.md for the list).
"""

from __future__ import annotations

import io
import json
import uuid
import zipfile

import pytest
from botocore.exceptions import ClientError


def code_of(exc: pytest.ExceptionInfo) -> str:
    return exc.value.response["Error"]["Code"]


def uid() -> str:
    return uuid.uuid4().hex[:8]


def test_aws_sqs_queue(unkai):
    sqs = unkai.client("sqs")
    name = f"orders-{uid()}"
    attributes = {"DelaySeconds": "0", "MaximumMessageSize": "262144", "MessageRetentionPeriod": "345600",
                  "ReceiveMessageWaitTimeSeconds": "0", "VisibilityTimeout": "30", "SqsManagedSseEnabled": "true"}
    # resourceQueueCreate: CreateQueue with attributes and tags, then waits for the attributes to read back
    url = sqs.create_queue(QueueName=name, Attributes=attributes, tags={"env": "dev"})["QueueUrl"]
    got = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert {k: got[k] for k in attributes} == attributes
    assert got["QueueArn"] == f"arn:aws:sqs:us-east-1:000000000000:{name}"
    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"env": "dev"}
    # update: SetQueueAttributes (a redrive policy), TagQueue
    dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3})
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "60", "RedrivePolicy": redrive})
    sqs.tag_queue(QueueUrl=url, Tags={"team": "a"})
    got = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert got["VisibilityTimeout"] == "60" and json.loads(got["RedrivePolicy"]) == json.loads(redrive)
    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"env": "dev", "team": "a"}
    # aws_sqs_queue_policy: SetQueueAttributes(Policy), read back from GetQueueAttributes(Policy)
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "sns.amazonaws.com"},
                                                      "Action": "sqs:SendMessage", "Resource": got["QueueArn"]}]}
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(policy)})
    assert json.loads(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])["Attributes"]["Policy"]) \
        == policy
    # resourceQueueDelete, then waitQueueDeleted: GetQueueAttributes until the queue does not exist
    sqs.delete_queue(QueueUrl=url)
    with pytest.raises(ClientError) as exc:
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])
    assert code_of(exc) == "AWS.SimpleQueueService.NonExistentQueue"


def test_aws_sns_topic_and_subscription(unkai):
    sns, sqs = unkai.client("sns"), unkai.client("sqs")
    name = f"questions-{uid()}"
    arn = sns.create_topic(Name=name, Tags=[{"Key": "env", "Value": "dev"}])["TopicArn"]
    # attributes the configuration sets are put one by one after create
    sns.set_topic_attributes(TopicArn=arn, AttributeName="DisplayName", AttributeValue="Questions")
    got = sns.get_topic_attributes(TopicArn=arn)["Attributes"]
    assert got["TopicArn"] == arn and got["Owner"] == "000000000000" and got["DisplayName"] == "Questions"
    assert json.loads(got["Policy"])["Statement"]
    assert sns.list_tags_for_resource(ResourceArn=arn)["Tags"] == [{"Key": "env", "Value": "dev"}]

    queue_url = sqs.create_queue(QueueName=f"{name}-q")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    # aws_sns_topic_subscription: Subscribe(ReturnSubscriptionArn), GetSubscriptionAttributes
    sub = sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue_arn, ReturnSubscriptionArn=True,
                        Attributes={"RawMessageDelivery": "true"})["SubscriptionArn"]
    got = sns.get_subscription_attributes(SubscriptionArn=sub)["Attributes"]
    assert {k: got[k] for k in ("TopicArn", "Endpoint", "Protocol", "RawMessageDelivery", "PendingConfirmation",
                                "Owner", "ConfirmationWasAuthenticated")} == {
        "TopicArn": arn, "Endpoint": queue_arn, "Protocol": "sqs", "RawMessageDelivery": "true",
        "PendingConfirmation": "false", "Owner": "000000000000", "ConfirmationWasAuthenticated": "true"}
    # update: SetSubscriptionAttributes for a filter policy
    sns.set_subscription_attributes(SubscriptionArn=sub, AttributeName="FilterPolicy",
                                    AttributeValue=json.dumps({"kind": ["question"]}))
    got = sns.get_subscription_attributes(SubscriptionArn=sub)["Attributes"]
    assert json.loads(got["FilterPolicy"]) == {"kind": ["question"]}
    assert got.get("FilterPolicyScope", "MessageAttributes") == "MessageAttributes"
    # deletes, each awaited until the Read answers NotFound
    sns.unsubscribe(SubscriptionArn=sub)
    with pytest.raises(ClientError) as exc:
        sns.get_subscription_attributes(SubscriptionArn=sub)
    assert code_of(exc) == "NotFound"
    sns.delete_topic(TopicArn=arn)
    with pytest.raises(ClientError) as exc:
        sns.get_topic_attributes(TopicArn=arn)
    assert code_of(exc) == "NotFound"


def _not_configured(call, code: str) -> None:
    with pytest.raises(ClientError) as exc:
        call()
    assert code_of(exc) == code


def test_aws_s3_bucket_reads_every_sub_resource_with_awss_not_found_codes(unkai):
    s3 = unkai.client("s3")
    bucket = f"tf-bucket-{uid()}"
    # resourceBucketCreate: CreateBucket, HeadBucket until it exists, then the tags
    s3.create_bucket(Bucket=bucket)
    assert s3.head_bucket(Bucket=bucket)["BucketRegion"] == "us-east-1"
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "env", "Value": "dev"}]})

    # resourceBucketRead: every sub-resource, AWS's "nothing configured" answer where there is none
    _not_configured(lambda: s3.get_bucket_policy(Bucket=bucket), "NoSuchBucketPolicy")
    acl = s3.get_bucket_acl(Bucket=bucket)
    assert acl["Owner"]["ID"] and acl["Grants"][0]["Permission"] == "FULL_CONTROL"
    _not_configured(lambda: s3.get_bucket_cors(Bucket=bucket), "NoSuchCORSConfiguration")
    _not_configured(lambda: s3.get_bucket_website(Bucket=bucket), "NoSuchWebsiteConfiguration")
    assert "Status" not in s3.get_bucket_versioning(Bucket=bucket)
    assert "Status" not in s3.get_bucket_accelerate_configuration(Bucket=bucket)
    assert s3.get_bucket_request_payment(Bucket=bucket)["Payer"] == "BucketOwner"
    assert "LoggingEnabled" not in s3.get_bucket_logging(Bucket=bucket)
    _not_configured(lambda: s3.get_bucket_lifecycle_configuration(Bucket=bucket), "NoSuchLifecycleConfiguration")
    _not_configured(lambda: s3.get_bucket_replication(Bucket=bucket), "ReplicationConfigurationNotFoundError")
    encryption = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]
    assert encryption["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    _not_configured(lambda: s3.get_object_lock_configuration(Bucket=bucket), "ObjectLockConfigurationNotFoundError")
    assert s3.get_bucket_tagging(Bucket=bucket)["TagSet"] == [{"Key": "env", "Value": "dev"}]

    # resourceBucketDelete (force_destroy empties it first), then HeadBucket answers 404
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    for version in s3.list_object_versions(Bucket=bucket).get("Versions", []):
        s3.delete_object(Bucket=bucket, Key=version["Key"], VersionId=version["VersionId"])
    s3.delete_bucket(Bucket=bucket)
    with pytest.raises(ClientError) as exc:
        s3.head_bucket(Bucket=bucket)
    assert code_of(exc) in ("404", "NoSuchBucket")


def test_aws_s3_bucket_configuration_resources_read_back_as_written(unkai):
    s3 = unkai.client("s3")
    bucket, logs = f"tf-conf-{uid()}", f"tf-logs-{uid()}"
    s3.create_bucket(Bucket=bucket)
    s3.create_bucket(Bucket=logs)
    # aws_s3_bucket_public_access_block and aws_s3_bucket_ownership_controls
    block = {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": False,
             "RestrictPublicBuckets": False}
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=block)
    assert s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"] == block
    s3.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls={"Rules": [
        {"ObjectOwnership": "BucketOwnerPreferred"}]})
    assert s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]["Rules"] == [
        {"ObjectOwnership": "BucketOwnerPreferred"}]
    # aws_s3_bucket_versioning, _server_side_encryption_configuration, _lifecycle_configuration
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    rules = [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": "alias/app"},
              "BucketKeyEnabled": True}]
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": rules})
    assert s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"] == rules
    lifecycle = [{"ID": "expire-logs", "Status": "Enabled", "Filter": {"Prefix": "logs/"},
                  "Expiration": {"Days": 30}}]
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": lifecycle})
    got = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"][0]
    assert (got["ID"], got["Status"], got["Filter"], got["Expiration"]) == (
        "expire-logs", "Enabled", {"Prefix": "logs/"}, {"Days": 30})
    # aws_s3_bucket_accelerate_configuration, _request_payment_configuration, _logging
    s3.put_bucket_accelerate_configuration(Bucket=bucket, AccelerateConfiguration={"Status": "Enabled"})
    assert s3.get_bucket_accelerate_configuration(Bucket=bucket)["Status"] == "Enabled"
    s3.put_bucket_request_payment(Bucket=bucket, RequestPaymentConfiguration={"Payer": "Requester"})
    assert s3.get_bucket_request_payment(Bucket=bucket)["Payer"] == "Requester"
    s3.put_bucket_logging(Bucket=bucket, BucketLoggingStatus={"LoggingEnabled": {
        "TargetBucket": logs, "TargetPrefix": "access/"}})
    assert s3.get_bucket_logging(Bucket=bucket)["LoggingEnabled"] == {"TargetBucket": logs,
                                                                      "TargetPrefix": "access/"}
    with pytest.raises(ClientError) as exc:
        s3.put_bucket_logging(Bucket=bucket, BucketLoggingStatus={"LoggingEnabled": {
            "TargetBucket": f"missing-{uid()}", "TargetPrefix": "x/"}})
    assert code_of(exc) == "InvalidTargetBucketForLogging"
    s3.put_bucket_logging(Bucket=bucket, BucketLoggingStatus={})  # the resource's delete
    assert "LoggingEnabled" not in s3.get_bucket_logging(Bucket=bucket)
    # aws_s3_bucket_replication_configuration and _object_lock_configuration need versioning
    replication = {"Role": "arn:aws:iam::000000000000:role/replication", "Rules": [{
        "ID": "all", "Status": "Enabled", "Priority": 1, "Filter": {"Prefix": ""},
        "DeleteMarkerReplication": {"Status": "Disabled"}, "Destination": {"Bucket": f"arn:aws:s3:::{logs}"}}]}
    s3.put_bucket_replication(Bucket=bucket, ReplicationConfiguration=replication)
    assert s3.get_bucket_replication(Bucket=bucket)["ReplicationConfiguration"] == replication
    s3.delete_bucket_replication(Bucket=bucket)
    _not_configured(lambda: s3.get_bucket_replication(Bucket=bucket), "ReplicationConfigurationNotFoundError")
    with pytest.raises(ClientError) as exc:
        s3.put_bucket_replication(Bucket=logs, ReplicationConfiguration=replication)
    assert code_of(exc) == "InvalidRequest"
    lock = {"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}}}
    s3.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration=lock)
    assert s3.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"] == lock
    # a bucket created with object_lock_enabled = true reads back as Enabled at once
    locked = f"tf-locked-{uid()}"
    s3.create_bucket(Bucket=locked, ObjectLockEnabledForBucket=True)
    assert s3.get_object_lock_configuration(Bucket=locked)["ObjectLockConfiguration"] == {
        "ObjectLockEnabled": "Enabled"}
    assert s3.get_bucket_versioning(Bucket=locked)["Status"] == "Enabled"
    # the configuration resources' deletes
    s3.delete_public_access_block(Bucket=bucket)
    _not_configured(lambda: s3.get_public_access_block(Bucket=bucket), "NoSuchPublicAccessBlockConfiguration")
    s3.delete_bucket_ownership_controls(Bucket=bucket)
    _not_configured(lambda: s3.get_bucket_ownership_controls(Bucket=bucket), "OwnershipControlsNotFoundError")
    s3.delete_bucket_lifecycle(Bucket=bucket)
    _not_configured(lambda: s3.get_bucket_lifecycle_configuration(Bucket=bucket), "NoSuchLifecycleConfiguration")


def test_aws_s3_object_and_bucket_policy(unkai):
    s3 = unkai.client("s3")
    bucket = f"tf-obj-{uid()}"
    s3.create_bucket(Bucket=bucket)
    # aws_s3_object: PutObject, then Read: HeadObject and GetObjectTagging
    s3.put_object(Bucket=bucket, Key="index.html", Body=b"<h1>hi</h1>", ContentType="text/html",
                  CacheControl="max-age=60", Metadata={"owner": "web"}, Tagging="env=dev")
    head = s3.head_object(Bucket=bucket, Key="index.html")
    assert (head["ContentType"], head["CacheControl"], head["Metadata"], head["ContentLength"]) == (
        "text/html", "max-age=60", {"owner": "web"}, 11)
    assert head["ETag"] == '"' + __import__("hashlib").md5(b"<h1>hi</h1>").hexdigest() + '"'
    assert head["ServerSideEncryption"] == "AES256"
    assert s3.get_object_tagging(Bucket=bucket, Key="index.html")["TagSet"] == [{"Key": "env", "Value": "dev"}]
    # aws_s3_bucket_policy
    policy = {"Version": "2012-10-17", "Statement": [{"Sid": "read", "Effect": "Allow", "Principal": "*",
                                                      "Action": "s3:GetObject",
                                                      "Resource": f"arn:aws:s3:::{bucket}/*"}]}
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    assert json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"]) == policy
    s3.delete_bucket_policy(Bucket=bucket)
    _not_configured(lambda: s3.get_bucket_policy(Bucket=bucket), "NoSuchBucketPolicy")
    s3.delete_object(Bucket=bucket, Key="index.html")
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket=bucket, Key="index.html")
    assert code_of(exc) == "404"


def test_aws_cloudwatch_event_rule_and_target(unkai):
    events, sqs = unkai.client("events"), unkai.client("sqs")
    name = f"nightly-{uid()}"
    # resourceRuleCreate: PutRule with tags; Read: DescribeRule and ListTagsForResource
    arn = events.put_rule(Name=name, ScheduleExpression="rate(5 minutes)", Description="nightly",
                          State="ENABLED", Tags=[{"Key": "env", "Value": "dev"}])["RuleArn"]
    got = events.describe_rule(Name=name, EventBusName="default")
    assert (got["Arn"], got["ScheduleExpression"], got["Description"], got["State"], got["EventBusName"]) == (
        arn, "rate(5 minutes)", "nightly", "ENABLED", "default")
    assert events.list_tags_for_resource(ResourceARN=arn)["Tags"] == [{"Key": "env", "Value": "dev"}]
    # update: PutRule again (tags are not changed by it), TagResource/UntagResource
    events.put_rule(Name=name, ScheduleExpression="rate(10 minutes)", State="DISABLED")
    events.tag_resource(ResourceARN=arn, Tags=[{"Key": "team", "Value": "a"}])
    events.untag_resource(ResourceARN=arn, TagKeys=["env"])
    got = events.describe_rule(Name=name)
    assert (got["ScheduleExpression"], got["State"]) == ("rate(10 minutes)", "DISABLED")
    assert events.list_tags_for_resource(ResourceARN=arn)["Tags"] == [{"Key": "team", "Value": "a"}]

    # aws_cloudwatch_event_target: PutTargets, then findTargetByThreePartKey over ListTargetsByRule
    queue_url = sqs.create_queue(QueueName=f"{name}-q")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    assert events.put_targets(Rule=name, EventBusName="default", Targets=[
        {"Id": "queue", "Arn": queue_arn, "Input": '{"job": "nightly"}'}])["FailedEntryCount"] == 0
    targets = events.list_targets_by_rule(Rule=name, EventBusName="default")["Targets"]
    assert targets == [{"Id": "queue", "Arn": queue_arn, "Input": '{"job": "nightly"}'}]
    assert events.remove_targets(Rule=name, EventBusName="default", Ids=["queue"])["FailedEntryCount"] == 0
    # resourceRuleDelete
    events.delete_rule(Name=name, EventBusName="default")
    with pytest.raises(ClientError) as exc:
        events.describe_rule(Name=name)
    assert code_of(exc) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as exc:
        events.list_tags_for_resource(ResourceARN=arn)
    assert code_of(exc) == "ResourceNotFoundException"


def test_aws_ssm_parameter(unkai):
    ssm = unkai.client("ssm")
    name = f"/app/{uid()}/table"
    assert ssm.put_parameter(Name=name, Value="connection", Type="String", Tier="Standard", DataType="text",
                             Description="table", Tags=[{"Key": "env", "Value": "dev"}])["Version"] == 1
    # resourceParameterRead: GetParameter(WithDecryption), DescribeParameters by exact name, tags
    got = ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]
    assert (got["Value"], got["Type"], got["Version"], got["DataType"]) == ("connection", "String", 1, "text")
    assert got["ARN"] == f"arn:aws:ssm:us-east-1:000000000000:parameter{name}"
    described = ssm.describe_parameters(ParameterFilters=[{"Key": "Name", "Option": "Equals",
                                                           "Values": [name]}])["Parameters"]
    assert [(d["Name"], d["Description"], d["Tier"]) for d in described] == [(name, "table", "Standard")]
    assert ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId=name)["TagList"] == [
        {"Key": "env", "Value": "dev"}]
    # update: PutParameter(Overwrite), AddTagsToResource
    assert ssm.put_parameter(Name=name, Value="connection-v2", Type="String", Overwrite=True)["Version"] == 2
    ssm.add_tags_to_resource(ResourceType="Parameter", ResourceId=name, Tags=[{"Key": "team", "Value": "a"}])
    assert ssm.get_parameter(Name=name)["Parameter"]["Value"] == "connection-v2"
    # a SecureString reads back decrypted with WithDecryption
    secret = f"{name}-secret"
    ssm.put_parameter(Name=secret, Value="s3cr3t", Type="SecureString")
    assert ssm.get_parameter(Name=secret, WithDecryption=True)["Parameter"]["Value"] == "s3cr3t"
    ssm.delete_parameter(Name=secret)
    ssm.delete_parameter(Name=name)
    with pytest.raises(ClientError) as exc:
        ssm.get_parameter(Name=name)
    assert code_of(exc) == "ParameterNotFound"


def test_aws_lambda_event_source_mapping(unkai):
    lam, sqs = unkai.client("lambda"), unkai.client("sqs")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return None\n")
    name = f"worker-{uid()}"
    function_arn = lam.create_function(FunctionName=name, Code={"ZipFile": buf.getvalue()}, Handler="app.handler",
                                       Role="arn:aws:iam::000000000000:role/worker",
                                       Runtime="python3.12")["FunctionArn"]
    queue_url = sqs.create_queue(QueueName=f"{name}-q")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    # resourceEventSourceMappingCreate, then waitEventSourceMappingCreated (State Enabled)
    created = lam.create_event_source_mapping(FunctionName=name, EventSourceArn=queue_arn, BatchSize=10,
                                              Enabled=True, Tags={"env": "dev"})
    uuid_, arn = created["UUID"], created["EventSourceMappingArn"]
    got = lam.get_event_source_mapping(UUID=uuid_)
    assert got["State"] == "Enabled" and got["EventSourceMappingArn"] == arn
    assert arn == f"arn:aws:lambda:us-east-1:000000000000:event-source-mapping:{uuid_}"
    # tags: ListTags on the mapping's ARN (transparent tagging), TagResource/UntagResource on update
    assert lam.list_tags(Resource=arn)["Tags"] == {"env": "dev"}
    lam.tag_resource(Resource=arn, Tags={"team": "a"})
    lam.untag_resource(Resource=arn, TagKeys=["env"])
    assert lam.list_tags(Resource=arn)["Tags"] == {"team": "a"}
    assert (got["FunctionArn"], got["EventSourceArn"], got["BatchSize"]) == (function_arn, queue_arn, 10)
    assert got["MaximumBatchingWindowInSeconds"] == 0 and got["LastModified"]
    # update, then waitEventSourceMappingUpdated
    lam.update_event_source_mapping(UUID=uuid_, BatchSize=5, Enabled=False,
                                    FilterCriteria={"Filters": [{"Pattern": '{"body": {"kind": ["a"]}}'}]})
    got = lam.get_event_source_mapping(UUID=uuid_)
    assert (got["BatchSize"], got["State"]) == (5, "Disabled")
    assert got["FilterCriteria"] == {"Filters": [{"Pattern": '{"body": {"kind": ["a"]}}'}]}
    # delete, then waitEventSourceMappingDeleted until ResourceNotFoundException
    lam.delete_event_source_mapping(UUID=uuid_)
    with pytest.raises(ClientError) as exc:
        lam.get_event_source_mapping(UUID=uuid_)
    assert code_of(exc) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as exc:
        lam.list_tags(Resource=arn)
    assert code_of(exc) == "ResourceNotFoundException"


def test_aws_api_gateway_rest_api_resources(unkai):
    gw = unkai.client("apigateway")
    # aws_api_gateway_rest_api: root_resource_id comes from GetRestApi
    api = gw.create_rest_api(name=f"rest-{uid()}", endpointConfiguration={"types": ["REGIONAL"]},
                             tags={"env": "dev"})
    api_id = api["id"]
    got = gw.get_rest_api(restApiId=api_id)
    assert got["rootResourceId"] and got["endpointConfiguration"]["types"] == ["REGIONAL"]
    assert got["apiKeySource"] == "HEADER" and got["disableExecuteApiEndpoint"] is False
    assert got["tags"] == {"env": "dev"}
    root = got["rootResourceId"]
    # findResource over GetResources: the root resource is the one whose path is "/"
    assert [r["id"] for r in gw.get_resources(restApiId=api_id)["items"] if r["path"] == "/"] == [root]
    # policy: GetRestApi answers it escaped, as AWS does; the provider unquotes it (flattenAPIPolicy)
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*",
                                                      "Action": "execute-api:Invoke",
                                                      "Resource": f"arn:aws:execute-api:us-east-1:000000000000:{api_id}/*"}]}
    gw.update_rest_api(restApiId=api_id, patchOperations=[{"op": "replace", "path": "/policy",
                                                           "value": json.dumps(policy)}])
    answered = gw.get_rest_api(restApiId=api_id)["policy"]
    assert answered.startswith('{\\"Version\\":') and "\\/" in answered
    assert json.loads(json.loads('"' + answered + '"')) == policy
    # aws_api_gateway_resource, _method, _integration, _method_response, _integration_response
    resource = gw.create_resource(restApiId=api_id, parentId=root, pathPart="hello")["id"]
    assert gw.get_resource(restApiId=api_id, resourceId=resource)["path"] == "/hello"
    gw.put_method(restApiId=api_id, resourceId=resource, httpMethod="GET", authorizationType="NONE",
                  apiKeyRequired=False)
    method = gw.get_method(restApiId=api_id, resourceId=resource, httpMethod="GET")
    assert (method["httpMethod"], method["authorizationType"], method["apiKeyRequired"]) == ("GET", "NONE", False)
    gw.put_integration(restApiId=api_id, resourceId=resource, httpMethod="GET", type="MOCK",
                       requestTemplates={"application/json": '{"statusCode": 200}'},
                       passthroughBehavior="WHEN_NO_MATCH", timeoutInMillis=29000)
    integration = gw.get_integration(restApiId=api_id, resourceId=resource, httpMethod="GET")
    assert (integration["type"], integration["passthroughBehavior"], integration["timeoutInMillis"],
            integration["connectionType"]) == ("MOCK", "WHEN_NO_MATCH", 29000, "INTERNET")
    gw.put_method_response(restApiId=api_id, resourceId=resource, httpMethod="GET", statusCode="200",
                           responseModels={"application/json": "Empty"})
    assert gw.get_method_response(restApiId=api_id, resourceId=resource, httpMethod="GET",
                                  statusCode="200")["responseModels"] == {"application/json": "Empty"}
    gw.put_integration_response(restApiId=api_id, resourceId=resource, httpMethod="GET", statusCode="200",
                                responseTemplates={"application/json": '{"ok": true}'})
    assert gw.get_integration_response(restApiId=api_id, resourceId=resource, httpMethod="GET",
                                       statusCode="200")["responseTemplates"] == {"application/json": '{"ok": true}'}
    # aws_api_gateway_deployment and _stage
    deployment = gw.create_deployment(restApiId=api_id, description="v1")["id"]
    assert gw.get_deployment(restApiId=api_id, deploymentId=deployment)["description"] == "v1"
    gw.create_stage(restApiId=api_id, stageName="prod", deploymentId=deployment, variables={"table": "t"},
                    tags={"env": "dev"})
    stage = gw.get_stage(restApiId=api_id, stageName="prod")
    assert (stage["deploymentId"], stage["variables"], stage["tags"], stage["tracingEnabled"],
            stage["cacheClusterEnabled"]) == (deployment, {"table": "t"}, {"env": "dev"}, False, False)
    # aws_api_gateway_method_settings: UpdateStage patch operations, read from methodSettings
    gw.update_stage(restApiId=api_id, stageName="prod", patchOperations=[
        {"op": "replace", "path": "/*/*/throttling/burstLimit", "value": "100"},
        {"op": "replace", "path": "/*/*/metrics/enabled", "value": "true"}])
    settings = gw.get_stage(restApiId=api_id, stageName="prod")["methodSettings"]["*/*"]
    assert settings["throttlingBurstLimit"] == 100 and settings["metricsEnabled"] is True
    # destroy in reverse order, each Read then answering NotFoundException
    gw.delete_stage(restApiId=api_id, stageName="prod")
    gw.delete_deployment(restApiId=api_id, deploymentId=deployment)
    gw.delete_integration_response(restApiId=api_id, resourceId=resource, httpMethod="GET", statusCode="200")
    gw.delete_method_response(restApiId=api_id, resourceId=resource, httpMethod="GET", statusCode="200")
    gw.delete_integration(restApiId=api_id, resourceId=resource, httpMethod="GET")
    gw.delete_method(restApiId=api_id, resourceId=resource, httpMethod="GET")
    with pytest.raises(ClientError) as exc:
        gw.get_method(restApiId=api_id, resourceId=resource, httpMethod="GET")
    assert code_of(exc) == "NotFoundException"
    gw.delete_resource(restApiId=api_id, resourceId=resource)
    gw.delete_rest_api(restApiId=api_id)
    with pytest.raises(ClientError) as exc:
        gw.get_rest_api(restApiId=api_id)
    assert code_of(exc) == "NotFoundException"


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return None\n")
    return buf.getvalue()


def test_aws_lambda_alias_function_url_layer_and_event_invoke_config(unkai):
    lam, sqs = unkai.client("lambda"), unkai.client("sqs")
    name = f"fn-{uid()}"
    lam.create_function(FunctionName=name, Code={"ZipFile": _zip()}, Handler="app.handler", Publish=True,
                        Role="arn:aws:iam::000000000000:role/fn", Runtime="python3.12")
    # aws_lambda_alias: CreateAlias, GetAlias, UpdateAlias, DeleteAlias
    alias = lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1", Description="live")
    got = lam.get_alias(FunctionName=name, Name="live")
    assert (got["AliasArn"], got["FunctionVersion"], got["Description"]) == (alias["AliasArn"], "1", "live")
    lam.update_alias(FunctionName=name, Name="live", FunctionVersion="$LATEST", Description="latest")
    assert lam.get_alias(FunctionName=name, Name="live")["FunctionVersion"] == "$LATEST"

    # aws_lambda_function_url: CreateFunctionUrlConfig, GetFunctionUrlConfig (url_id from the URL's host)
    url = lam.create_function_url_config(FunctionName=name, AuthType="NONE", Cors={"AllowOrigins": ["*"]})
    got = lam.get_function_url_config(FunctionName=name)
    assert (got["FunctionUrl"], got["AuthType"], got["Cors"], got["InvokeMode"]) == (
        url["FunctionUrl"], "NONE", {"AllowOrigins": ["*"]}, "BUFFERED")
    assert got["FunctionArn"].endswith(f":function:{name}")
    lam.update_function_url_config(FunctionName=name, AuthType="AWS_IAM")
    assert lam.get_function_url_config(FunctionName=name)["AuthType"] == "AWS_IAM"
    lam.delete_function_url_config(FunctionName=name)
    with pytest.raises(ClientError) as exc:
        lam.get_function_url_config(FunctionName=name)
    assert code_of(exc) == "ResourceNotFoundException"

    # aws_lambda_function_event_invoke_config
    dlq_url = sqs.create_queue(QueueName=f"{name}-failed")["QueueUrl"]
    dlq = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    lam.put_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=1, MaximumEventAgeInSeconds=600,
                                         DestinationConfig={"OnFailure": {"Destination": dlq}})
    got = lam.get_function_event_invoke_config(FunctionName=name)
    assert (got["MaximumRetryAttempts"], got["MaximumEventAgeInSeconds"]) == (1, 600)
    assert got["DestinationConfig"]["OnFailure"] == {"Destination": dlq}
    lam.update_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=0)
    assert lam.get_function_event_invoke_config(FunctionName=name)["MaximumRetryAttempts"] == 0
    lam.delete_function_event_invoke_config(FunctionName=name)
    with pytest.raises(ClientError) as exc:
        lam.get_function_event_invoke_config(FunctionName=name)
    assert code_of(exc) == "ResourceNotFoundException"

    # aws_lambda_layer_version: PublishLayerVersion, GetLayerVersion, DeleteLayerVersion
    layer = f"deps-{uid()}"
    published = lam.publish_layer_version(LayerName=layer, Content={"ZipFile": _zip()}, Description="deps",
                                          CompatibleRuntimes=["python3.12"], CompatibleArchitectures=["x86_64"],
                                          LicenseInfo="MIT")
    got = lam.get_layer_version(LayerName=layer, VersionNumber=published["Version"])
    assert (got["LayerArn"], got["LayerVersionArn"], got["Version"], got["Description"], got["LicenseInfo"]) == (
        published["LayerArn"], published["LayerVersionArn"], 1, "deps", "MIT")
    assert got["CompatibleRuntimes"] == ["python3.12"] and got["CompatibleArchitectures"] == ["x86_64"]
    assert got["Content"]["CodeSha256"] and got["Content"]["CodeSize"] > 0 and got["CreatedDate"]
    lam.delete_layer_version(LayerName=layer, VersionNumber=1)
    with pytest.raises(ClientError) as exc:
        lam.get_layer_version(LayerName=layer, VersionNumber=1)
    assert code_of(exc) == "ResourceNotFoundException"
    lam.delete_alias(FunctionName=name, Name="live")
    with pytest.raises(ClientError) as exc:
        lam.get_alias(FunctionName=name, Name="live")
    assert code_of(exc) == "ResourceNotFoundException"


def test_aws_iam_policy_and_its_versions(unkai):
    iam = unkai.client("iam")
    name = f"table-writer-{uid()}"
    document = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "dynamodb:PutItem",
                                                        "Resource": "*"}]}
    arn = iam.create_policy(PolicyName=name, PolicyDocument=json.dumps(document), Description="writes",
                            Path="/", Tags=[{"Key": "env", "Value": "dev"}])["Policy"]["Arn"]
    # resourcePolicyRead: GetPolicy, GetPolicyVersion of the default version, ListPolicyTags
    policy = iam.get_policy(PolicyArn=arn)["Policy"]
    assert (policy["PolicyName"], policy["Description"], policy["Path"], policy["DefaultVersionId"]) == (
        name, "writes", "/", "v1")
    assert policy["PolicyId"] and policy["AttachmentCount"] == 0
    assert iam.get_policy_version(PolicyArn=arn, VersionId="v1")["PolicyVersion"]["Document"] == document
    assert iam.list_policy_tags(PolicyArn=arn)["Tags"] == [{"Key": "env", "Value": "dev"}]
    # update: ListPolicyVersions, CreatePolicyVersion(SetAsDefault), the old version deleted
    document["Statement"][0]["Action"] = ["dynamodb:PutItem", "dynamodb:DeleteItem"]
    assert len(iam.list_policy_versions(PolicyArn=arn)["Versions"]) == 1
    iam.create_policy_version(PolicyArn=arn, PolicyDocument=json.dumps(document), SetAsDefault=True)
    iam.delete_policy_version(PolicyArn=arn, VersionId="v1")
    assert iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"] == "v2"
    assert iam.get_policy_version(PolicyArn=arn, VersionId="v2")["PolicyVersion"]["Document"] == document
    # delete: the non-default versions, then the policy
    assert [v["VersionId"] for v in iam.list_policy_versions(PolicyArn=arn)["Versions"]] == ["v2"]
    iam.delete_policy(PolicyArn=arn)
    with pytest.raises(ClientError) as exc:
        iam.get_policy(PolicyArn=arn)
    assert code_of(exc) == "NoSuchEntity"


def test_aws_sns_topic_policy_and_s3_bucket_notification(unkai):
    sns, s3, sqs = unkai.client("sns"), unkai.client("s3"), unkai.client("sqs")
    topic = sns.create_topic(Name=f"uploads-{uid()}")["TopicArn"]
    default = json.loads(sns.get_topic_attributes(TopicArn=topic)["Attributes"]["Policy"])
    # aws_sns_topic_policy: SetTopicAttributes(Policy), read back equivalent; delete puts the default back
    policy = {"Version": "2012-10-17", "Statement": [{"Sid": "s3", "Effect": "Allow",
                                                      "Principal": {"Service": "s3.amazonaws.com"},
                                                      "Action": "SNS:Publish", "Resource": topic}]}
    sns.set_topic_attributes(TopicArn=topic, AttributeName="Policy", AttributeValue=json.dumps(policy))
    assert json.loads(sns.get_topic_attributes(TopicArn=topic)["Attributes"]["Policy"]) == policy
    sns.set_topic_attributes(TopicArn=topic, AttributeName="Policy", AttributeValue=json.dumps(default))
    assert json.loads(sns.get_topic_attributes(TopicArn=topic)["Attributes"]["Policy"]) == default

    # aws_s3_bucket_notification: PutBucketNotificationConfiguration, Get...; delete puts an empty one
    bucket = f"uploads-{uid()}"
    s3.create_bucket(Bucket=bucket)
    queue_url = sqs.create_queue(QueueName=f"{bucket}-q")["QueueUrl"]
    queue = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    config = {
        "TopicConfigurations": [{"Id": "to-topic", "TopicArn": topic, "Events": ["s3:ObjectRemoved:*"]}],
        "QueueConfigurations": [{"Id": "to-queue", "QueueArn": queue, "Events": ["s3:ObjectCreated:*"],
                                 "Filter": {"Key": {"FilterRules": [{"Name": "Prefix", "Value": "in/"},
                                                                    {"Name": "Suffix", "Value": ".csv"}]}}}],
    }
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=config)
    got = s3.get_bucket_notification_configuration(Bucket=bucket)
    assert got["TopicConfigurations"] == config["TopicConfigurations"]
    rules = got["QueueConfigurations"][0]["Filter"]["Key"]["FilterRules"]
    assert {(r["Name"].lower(), r["Value"]) for r in rules} == {("prefix", "in/"), ("suffix", ".csv")}
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={})
    got = s3.get_bucket_notification_configuration(Bucket=bucket)
    assert not got.get("TopicConfigurations") and not got.get("QueueConfigurations")


def test_aws_apigatewayv2_authorizer_route_response_and_integration_response(unkai):
    gw = unkai.client("apigatewayv2")
    api_id = gw.create_api(Name=f"ws-{uid()}", ProtocolType="WEBSOCKET",
                           RouteSelectionExpression="$request.body.action")["ApiId"]
    uri = "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:000000000000:" \
          "function:auth/invocations"
    # aws_apigatewayv2_authorizer (REQUEST, for $connect)
    authorizer = gw.create_authorizer(ApiId=api_id, AuthorizerType="REQUEST", AuthorizerUri=uri, Name="auth",
                                      IdentitySource=["route.request.header.Auth"])
    got = gw.get_authorizer(ApiId=api_id, AuthorizerId=authorizer["AuthorizerId"])
    assert (got["AuthorizerType"], got["AuthorizerUri"], got["Name"], got["IdentitySource"]) == (
        "REQUEST", uri, "auth", ["route.request.header.Auth"])
    gw.update_authorizer(ApiId=api_id, AuthorizerId=authorizer["AuthorizerId"], Name="auth2")
    assert gw.get_authorizer(ApiId=api_id, AuthorizerId=authorizer["AuthorizerId"])["Name"] == "auth2"
    # aws_apigatewayv2_integration_response and _route_response (a two-way route)
    integration = gw.create_integration(ApiId=api_id, IntegrationType="MOCK",
                                        RequestTemplates={"$default": '{"statusCode": 200}'},
                                        TemplateSelectionExpression="\\$default")["IntegrationId"]
    response = gw.create_integration_response(ApiId=api_id, IntegrationId=integration,
                                              IntegrationResponseKey="/200/",
                                              ResponseTemplates={"$default": '{"ok": true}'})
    got = gw.get_integration_response(ApiId=api_id, IntegrationId=integration,
                                      IntegrationResponseId=response["IntegrationResponseId"])
    assert (got["IntegrationResponseKey"], got["ResponseTemplates"]) == ("/200/", {"$default": '{"ok": true}'})
    route = gw.create_route(ApiId=api_id, RouteKey="ping", Target=f"integrations/{integration}",
                            RouteResponseSelectionExpression="$default")["RouteId"]
    route_response = gw.create_route_response(ApiId=api_id, RouteId=route, RouteResponseKey="$default")
    got = gw.get_route_response(ApiId=api_id, RouteId=route, RouteResponseId=route_response["RouteResponseId"])
    assert got["RouteResponseKey"] == "$default"
    # deletes answer NotFoundException on the next Read
    gw.delete_route_response(ApiId=api_id, RouteId=route, RouteResponseId=route_response["RouteResponseId"])
    gw.delete_integration_response(ApiId=api_id, IntegrationId=integration,
                                   IntegrationResponseId=response["IntegrationResponseId"])
    gw.delete_authorizer(ApiId=api_id, AuthorizerId=authorizer["AuthorizerId"])
    for call in (lambda: gw.get_route_response(ApiId=api_id, RouteId=route,
                                               RouteResponseId=route_response["RouteResponseId"]),
                 lambda: gw.get_authorizer(ApiId=api_id, AuthorizerId=authorizer["AuthorizerId"])):
        with pytest.raises(ClientError) as exc:
            call()
        assert code_of(exc) == "NotFoundException"


def test_aws_api_gateway_domain_name_and_base_path_mapping_share_names_with_apigatewayv2(unkai):
    gw, v2 = unkai.client("apigateway"), unkai.client("apigatewayv2")
    api_id = gw.create_rest_api(name=f"rest-{uid()}")["id"]
    root = gw.get_rest_api(restApiId=api_id)["rootResourceId"]
    gw.put_method(restApiId=api_id, resourceId=root, httpMethod="GET", authorizationType="NONE")
    gw.put_integration(restApiId=api_id, resourceId=root, httpMethod="GET", type="MOCK")
    deployment = gw.create_deployment(restApiId=api_id)["id"]
    gw.create_stage(restApiId=api_id, stageName="prod", deploymentId=deployment)
    certificate = "arn:aws:acm:us-east-1:000000000000:certificate/11111111-2222-3333-4444-555555555555"

    # aws_api_gateway_domain_name (REGIONAL): CreateDomainName, GetDomainName
    name = f"api-{uid()}.example.com"
    gw.create_domain_name(domainName=name, regionalCertificateArn=certificate, securityPolicy="TLS_1_2",
                          endpointConfiguration={"types": ["REGIONAL"]}, tags={"env": "dev"})
    got = gw.get_domain_name(domainName=name)
    assert (got["domainName"], got["regionalCertificateArn"], got["securityPolicy"], got["domainNameStatus"]) == (
        name, certificate, "TLS_1_2", "AVAILABLE")
    assert got["endpointConfiguration"]["types"] == ["REGIONAL"] and got["tags"] == {"env": "dev"}
    assert got["regionalDomainName"].endswith(".execute-api.us-east-1.amazonaws.com")
    assert got["regionalHostedZoneId"] == "Z1UJRXOUMOOFQ8" and "certificateArn" not in got
    # one namespace: apigatewayv2 sees it, and refuses the same name
    assert v2.get_domain_name(DomainName=name)["DomainNameConfigurations"][0]["CertificateArn"] == certificate
    with pytest.raises(ClientError) as exc:
        v2.create_domain_name(DomainName=name, DomainNameConfigurations=[{"CertificateArn": certificate}])
    assert code_of(exc) == "ConflictException"
    # an EDGE name answers its CloudFront distribution
    edge = f"edge-{uid()}.example.com"
    gw.create_domain_name(domainName=edge, certificateArn=certificate)
    got = gw.get_domain_name(domainName=edge)
    assert got["distributionDomainName"].endswith(".cloudfront.net")
    assert got["distributionHostedZoneId"] == "Z2FDTNDATAQYW2" and got["certificateArn"] == certificate
    # update: patch operations
    gw.update_domain_name(domainName=name, patchOperations=[
        {"op": "replace", "path": "/regionalCertificateArn", "value": certificate.replace("1111", "9999")}])
    assert gw.get_domain_name(domainName=name)["regionalCertificateArn"] == certificate.replace("1111", "9999")

    # aws_api_gateway_base_path_mapping: the empty base path is "(none)"
    created = gw.create_base_path_mapping(domainName=name, restApiId=api_id, stage="prod")
    assert (created["basePath"], created["restApiId"], created["stage"]) == ("(none)", api_id, "prod")
    got = gw.get_base_path_mapping(domainName=name, basePath="(none)")
    assert (got["basePath"], got["restApiId"], got["stage"]) == ("(none)", api_id, "prod")
    with pytest.raises(ClientError) as exc:
        gw.create_base_path_mapping(domainName=name, restApiId=api_id, stage="prod")
    assert code_of(exc) == "ConflictException"
    with pytest.raises(ClientError) as exc:
        gw.create_base_path_mapping(domainName=name, restApiId=api_id, stage="nope", basePath="v2")
    assert code_of(exc) == "BadRequestException"
    gw.update_base_path_mapping(domainName=name, basePath="(none)", patchOperations=[
        {"op": "replace", "path": "/basePath", "value": "v1"}])
    assert [m["basePath"] for m in gw.get_base_path_mappings(domainName=name)["items"]] == ["v1"]
    assert v2.get_api_mappings(DomainName=name)["Items"][0]["ApiMappingKey"] == "v1"  # the same mapping
    # deletes
    gw.delete_base_path_mapping(domainName=name, basePath="v1")
    with pytest.raises(ClientError) as exc:
        gw.get_base_path_mapping(domainName=name, basePath="v1")
    assert code_of(exc) == "NotFoundException"
    gw.delete_domain_name(domainName=name)
    gw.delete_domain_name(domainName=edge)
    with pytest.raises(ClientError) as exc:
        gw.get_domain_name(domainName=name)
    assert code_of(exc) == "NotFoundException"


def test_aws_s3_bucket_website_and_cors_configuration(unkai):
    s3 = unkai.client("s3")
    bucket = f"site-{uid()}"
    s3.create_bucket(Bucket=bucket)
    # aws_s3_bucket_website_configuration: PutBucketWebsite, GetBucketWebsite, DeleteBucketWebsite
    website = {"IndexDocument": {"Suffix": "index.html"}, "ErrorDocument": {"Key": "error.html"},
               "RoutingRules": [{"Condition": {"KeyPrefixEquals": "docs/"},
                                 "Redirect": {"ReplaceKeyPrefixWith": "documents/"}}]}
    s3.put_bucket_website(Bucket=bucket, WebsiteConfiguration=website)
    got = s3.get_bucket_website(Bucket=bucket)
    assert {k: got[k] for k in website} == website
    # aws_s3_bucket_cors_configuration: PutBucketCors, GetBucketCors, DeleteBucketCors
    rules = [{"ID": "uploads", "AllowedHeaders": ["*"], "AllowedMethods": ["GET", "PUT"], "AllowedOrigins": ["*"],
              "ExposeHeaders": ["ETag"], "MaxAgeSeconds": 300}]
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": rules})
    assert s3.get_bucket_cors(Bucket=bucket)["CORSRules"] == rules
    s3.delete_bucket_website(Bucket=bucket)
    s3.delete_bucket_cors(Bucket=bucket)
    _not_configured(lambda: s3.get_bucket_website(Bucket=bucket), "NoSuchWebsiteConfiguration")
    _not_configured(lambda: s3.get_bucket_cors(Bucket=bucket), "NoSuchCORSConfiguration")
