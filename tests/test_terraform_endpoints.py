"""`unkai tf-endpoints`: the override file that points the Terraform AWS provider at unkai."""

from __future__ import annotations

import re
import subprocess
import sys

# Keys of the provider's `endpoints` block (its "Custom Service Endpoint Configuration" guide) for what
# unkai serves, each with one cheap call a refresh would make through it. A service added to unkai later
# must show up under a key the provider knows (PROVIDER_KEYS below) or in the closing comment.
CALLS = {
    "acm": ("acm", "list_certificates", {}), "apigateway": ("apigateway", "get_rest_apis", {}), "apigatewayv2": ("apigatewayv2", "get_apis", {}),
    "athena": ("athena", "list_work_groups", {}), "cloudformation": ("cloudformation", "list_stacks", {}),
    "cloudwatch": ("cloudwatch", "describe_alarms", {}), "cognitoidp": ("cognito-idp", "list_user_pools",
                                                                        {"MaxResults": 1}),
    "dynamodb": ("dynamodb", "list_tables", {}), "events": ("events", "list_rules", {}),
    "firehose": ("firehose", "list_delivery_streams", {}), "glue": ("glue", "get_databases", {}),
    "iam": ("iam", "list_roles", {}), "kinesis": ("kinesis", "list_streams", {}), "kms": ("kms", "list_keys", {}),
    "lambda": ("lambda", "list_functions", {}), "logs": ("logs", "describe_log_groups", {}),
    "s3": ("s3", "list_buckets", {}), "scheduler": ("scheduler", "list_schedules", {}),
    "secretsmanager": ("secretsmanager", "list_secrets", {}), "ses": ("ses", "list_identities", {}),
    "sesv2": ("sesv2", "list_email_identities", {}), "sns": ("sns", "list_topics", {}),
    "sqs": ("sqs", "list_queues", {}), "ssm": ("ssm", "describe_parameters", {}),
    "sts": ("sts", "get_caller_identity", {}),
}
# every key the provider's guide lists for a serverless service (a subset of its ~250 keys)
PROVIDER_KEYS = {
    "acm", "apigateway", "apigatewayv2", "appconfig", "appsync", "athena", "cloudformation", "cloudfront",
    "cloudwatch", "cognitoidentity", "cognitoidp", "dynamodb", "ec2", "ecr", "events", "firehose", "glue",
    "iam", "iot", "kinesis", "kms", "lambda", "logs", "pipes", "route53", "s3", "scheduler", "schemas",
    "secretsmanager", "ses", "sesv2", "sfn", "sns", "sqs", "ssm", "sts", "xray",
}


def tf_endpoints(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "unkai", "tf-endpoints", *args], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_override_file_names_every_served_service_at_the_running_unkai(unkai):
    text = tf_endpoints("--state-dir", str(unkai.state_dir))
    provider = text[text.index('provider "aws" {'):]
    endpoints = dict(re.findall(r'^    (\w+)\s+= "([^"]+)"$', provider, re.M))
    assert set(CALLS) <= set(endpoints) <= PROVIDER_KEYS
    assert set(endpoints.values()) == {unkai.endpoint}
    settings = dict(re.findall(r"^  (\w+)\s+= (\S+)", provider, re.M))
    assert settings["skip_credentials_validation"] == "true" and settings["skip_metadata_api_check"] == "true"
    assert settings["s3_use_path_style"] == "true" and settings["skip_requesting_account_id"] == "false"
    assert settings["access_key"] == settings["secret_key"] == '"test"'
    assert "region" not in settings  # the configuration's own region is kept
    assert "backend" not in text
    # braces balance: the file is one provider block with one endpoints block
    assert text.count("{") == text.count("}") == 2
    # what has no provider key is named, not written as an argument the provider would refuse
    assert re.search(r"^    # also served, with no endpoint setting in the provider: .*dynamodbstreams", provider, re.M)

    # every endpoint answers its service's API there
    for key, (service, operation, params) in CALLS.items():
        client = unkai.client(service)
        assert client.meta.endpoint_url == endpoints[key]
        getattr(client, operation)(**params)


def test_the_override_file_can_replace_the_backend_and_target_an_alias():
    text = tf_endpoints("--endpoint-url", "http://127.0.0.1:4999/", "--local-backend", "--alias", "tokyo")
    assert 'terraform {\n  backend "local" {}\n}' in text
    assert re.search(r'^  alias\s+= "tokyo"$', text, re.M)
    assert 'lambda         = "http://127.0.0.1:4999"' in text
