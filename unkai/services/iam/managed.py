"""AWS managed policies that exist in every account by ARN (arn:aws:iam::aws:policy/...),
with the documents AWS publishes for them (the AWS Managed Policy reference guide).
Templates attach them by ARN (SAM's ``Policies: [AWSLambdaBasicExecutionRole]`` and its
generated roles), so they are served read-only from here rather than stored."""

from __future__ import annotations

import json

_LOGS = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"]


def _doc(*statements: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def _allow(actions: list[str] | str, resource: str | list[str] = "*", **extra: object) -> dict:
    return {"Effect": "Allow", "Action": actions, "Resource": resource, **extra}


# name -> (path, description, document)
POLICIES: dict[str, tuple[str, str, str]] = {
    "AdministratorAccess": ("/", "Provides full access to AWS services and resources.", _doc(_allow("*"))),
    "PowerUserAccess": ("/", "Provides full access to AWS services and resources, but does not allow management "
                        "of Users and groups.", _doc(
        {"Effect": "Allow", "NotAction": ["iam:*", "organizations:*", "account:*"], "Resource": "*"},
        _allow(["iam:CreateServiceLinkedRole", "iam:DeleteServiceLinkedRole", "iam:ListRoles",
                "organizations:DescribeOrganization", "account:ListRegions", "account:GetAccountInformation"]))),
    "ReadOnlyAccess": ("/", "Provides read-only access to AWS services and resources.", _doc(_allow(
        ["*:Describe*", "*:Get*", "*:List*", "*:BatchGet*", "dynamodb:Query", "dynamodb:Scan", "s3:Head*",
         "logs:FilterLogEvents", "logs:StartQuery", "sqs:ReceiveMessage"]))),
    "AWSLambdaBasicExecutionRole": ("/service-role/", "Provides write permissions to CloudWatch Logs.",
                                    _doc(_allow(_LOGS))),
    "AWSLambdaBasicDurableExecutionRolePolicy": ("/service-role/", "Provides write permissions to CloudWatch Logs "
                                                 "and read/write permissions to durable execution APIs used by "
                                                 "Lambda durable functions", _doc(_allow(
        [*_LOGS, "lambda:CheckpointDurableExecution", "lambda:GetDurableExecutionState"]))),
    "AWSLambdaExecute": ("/", "Provides Put, Get access to S3 and full access to CloudWatch Logs.", _doc(
        _allow("logs:*", "arn:aws:logs:*:*:*"), _allow(["s3:GetObject", "s3:PutObject"], "arn:aws:s3:::*"))),
    "AWSLambdaRole": ("/service-role/", "Default policy for AWS Lambda service role.",
                      _doc(_allow(["lambda:InvokeFunction"]))),
    "AWSLambdaSQSQueueExecutionRole": ("/service-role/", "Provides receive message, delete message, and read "
                                       "attribute access to SQS queues, and write permissions to CloudWatch logs.",
                                       _doc(_allow(["sqs:ReceiveMessage", "sqs:DeleteMessage",
                                                    "sqs:GetQueueAttributes", *_LOGS]))),
    "AWSLambdaDynamoDBExecutionRole": ("/service-role/", "Provides list and read access to DynamoDB streams and "
                                       "write permissions to CloudWatch logs.", _doc(_allow(
        ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams",
         *_LOGS]))),
    "AWSLambdaKinesisExecutionRole": ("/service-role/", "Provides list and read access to Kinesis streams and "
                                      "write permissions to CloudWatch logs.", _doc(_allow(
        ["kinesis:DescribeStream", "kinesis:DescribeStreamSummary", "kinesis:GetRecords", "kinesis:GetShardIterator",
         "kinesis:ListShards", "kinesis:ListStreams", "kinesis:SubscribeToShard", *_LOGS]))),
    "AWSLambdaVPCAccessExecutionRole": ("/service-role/", "Provides minimum permissions for a Lambda function to "
                                        "execute while accessing a resource within a VPC.", _doc(_allow(
        [*_LOGS, "ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets",
         "ec2:DeleteNetworkInterface", "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses"]))),
    "AWSXRayDaemonWriteAccess": ("/", "Allow the AWS X-Ray Daemon to relay raw trace segments data to the "
                                 "service's API and retrieve sampling data.", _doc(_allow(
        ["xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules", "xray:GetSamplingTargets",
         "xray:GetSamplingStatisticSummaries"]))),
    "AWSLambda_FullAccess": ("/", "Grants full access to AWS Lambda service.", _doc(_allow(
        ["cloudformation:DescribeStacks", "cloudformation:ListStackResources", "cloudwatch:ListMetrics",
         "cloudwatch:GetMetricData", "ec2:DescribeSecurityGroups", "ec2:DescribeSubnets", "ec2:DescribeVpcs",
         "kms:ListAliases", "iam:GetPolicy", "iam:GetPolicyVersion", "iam:GetRole", "iam:GetRolePolicy",
         "iam:ListAttachedRolePolicies", "iam:ListRolePolicies", "iam:ListRoles", "lambda:*", "logs:DescribeLogGroups",
         "states:DescribeStateMachine", "states:ListStateMachines", "tag:GetResources", "xray:GetTraceSummaries",
         "xray:BatchGetTraces"]),
        _allow("iam:PassRole", "*", Condition={"StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}}),
        _allow(["logs:DescribeLogStreams", "logs:GetLogEvents", "logs:FilterLogEvents"],
               "arn:aws:logs:*:*:log-group:/aws/lambda/*"))),
    "AmazonS3FullAccess": ("/", "Provides full access to all buckets via the AWS Management Console.",
                           _doc(_allow(["s3:*", "s3-object-lambda:*"]))),
    "AmazonS3ReadOnlyAccess": ("/", "Provides read only access to all buckets via the AWS Management Console.",
                               _doc(_allow(["s3:Get*", "s3:List*", "s3:Describe*", "s3-object-lambda:Get*",
                                            "s3-object-lambda:List*"]))),
    "AmazonSQSFullAccess": ("/", "Provides full access to Amazon SQS via the AWS Management Console.",
                            _doc(_allow(["sqs:*"]))),
    "AmazonSQSReadOnlyAccess": ("/", "Provides read only access to Amazon SQS via the AWS Management Console.",
                                _doc(_allow(["sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:ListDeadLetterSourceQueues",
                                             "sqs:ListQueues", "sqs:ListMessageMoveTasks", "sqs:ListQueueTags"]))),
    "AmazonSNSFullAccess": ("/", "Provides full access to Amazon SNS via the AWS Management Console.",
                            _doc(_allow(["sns:*"]))),
    "AmazonDynamoDBFullAccess": ("/", "Provides full access to Amazon DynamoDB via the AWS Management Console.",
                                 _doc(_allow(["dynamodb:*", "dax:*", "application-autoscaling:*", "cloudwatch:*",
                                              "iam:GetRole", "iam:ListRoles", "kms:DescribeKey", "kms:ListAliases",
                                              "sns:*", "lambda:CreateFunction", "lambda:ListFunctions",
                                              "lambda:ListEventSourceMappings", "lambda:CreateEventSourceMapping",
                                              "lambda:DeleteEventSourceMapping", "lambda:GetFunctionConfiguration",
                                              "lambda:DeleteFunction", "resource-groups:*", "tag:GetResources",
                                              "kinesis:ListStreams", "kinesis:DescribeStream",
                                              "kinesis:DescribeStreamSummary"]))),
    "AmazonDynamoDBReadOnlyAccess": ("/", "Provides read only access to Amazon DynamoDB via the AWS Management "
                                     "Console.", _doc(_allow(
        ["application-autoscaling:DescribeScalableTargets", "application-autoscaling:DescribeScalingActivities",
         "application-autoscaling:DescribeScalingPolicies", "cloudwatch:DescribeAlarmHistory",
         "cloudwatch:DescribeAlarms", "cloudwatch:DescribeAlarmsForMetric", "cloudwatch:GetMetricData",
         "cloudwatch:GetMetricStatistics", "cloudwatch:ListMetrics", "dynamodb:BatchGetItem",
         "dynamodb:Describe*", "dynamodb:GetItem", "dynamodb:GetRecords", "dynamodb:GetShardIterator",
         "dynamodb:List*", "dynamodb:PartiQLSelect", "dynamodb:Query", "dynamodb:Scan", "dynamodb:ConditionCheckItem",
         "iam:GetRole", "iam:ListRoles", "kms:DescribeKey", "kms:ListAliases", "sns:ListSubscriptionsByTopic",
         "sns:ListTopics", "lambda:ListFunctions", "lambda:ListEventSourceMappings",
         "lambda:GetFunctionConfiguration", "tag:GetResources"]))),
    "CloudWatchLogsFullAccess": ("/", "Provides full access to CloudWatch Logs",
                                 _doc(_allow(["logs:*", "cloudwatch:GenerateQuery"]))),
    "AmazonAPIGatewayPushToCloudWatchLogs": ("/service-role/", "Allows API Gateway to push logs to user's account.",
                                             _doc(_allow(["logs:CreateLogGroup", "logs:CreateLogStream",
                                                          "logs:DescribeLogGroups", "logs:DescribeLogStreams",
                                                          "logs:PutLogEvents", "logs:GetLogEvents",
                                                          "logs:FilterLogEvents"]))),
    "AmazonEventBridgeFullAccess": ("/", "Provides full access to Amazon EventBridge.",
                                    _doc(_allow(["events:*", "schemas:*", "scheduler:*", "pipes:*"]))),
    "AmazonKinesisFullAccess": ("/", "Provides full access to all streams via the AWS Management Console.",
                                _doc(_allow("kinesis:*"))),
    "AmazonSESFullAccess": ("/", "Provides full access to Amazon SES via the AWS Management Console.",
                            _doc(_allow(["ses:*"]))),
    "SecretsManagerReadWrite": ("/", "Provides read/write access to AWS Secrets Manager via the AWS Management "
                                "Console.", _doc(_allow(
        ["secretsmanager:*", "cloudformation:CreateChangeSet", "cloudformation:DescribeChangeSet",
         "cloudformation:DescribeStackResource", "cloudformation:DescribeStacks", "cloudformation:ExecuteChangeSet",
         "kms:DescribeKey", "kms:ListAliases", "kms:ListKeys", "lambda:ListFunctions", "rds:DescribeDBClusters",
         "rds:DescribeDBInstances", "tag:GetResources"]))),
    "AWSKeyManagementServicePowerUser": ("/", "Provides access to AWS Key Management Service (KMS).", _doc(_allow(
        ["kms:CreateAlias", "kms:CreateKey", "kms:DeleteAlias", "kms:Describe*", "kms:GenerateRandom", "kms:Get*",
         "kms:List*", "kms:TagResource", "kms:UntagResource", "iam:ListGroups", "iam:ListRoles",
         "iam:ListUsers"]))),
    "AmazonSSMReadOnlyAccess": ("/", "Provides read only access to Amazon SSM.",
                                _doc(_allow(["ssm:Describe*", "ssm:Get*", "ssm:List*"]))),
    "CloudWatchFullAccess": ("/", "Provides full access to CloudWatch.", _doc(_allow(
        ["autoscaling:Describe*", "cloudwatch:*", "logs:*", "sns:*", "iam:GetPolicy", "iam:GetPolicyVersion",
         "iam:GetRole", "oam:ListSinks"]))),
}

CREATED = 1423000000.0  # the date AWS reports for its oldest managed policies (2015-02)


def arn(name: str) -> str:
    path = POLICIES[name][0]
    return f"arn:aws:iam::aws:policy{path}{name}"


BY_ARN: dict[str, str] = {arn(n): n for n in POLICIES}
