"""``unkai tf-endpoints``: a Terraform override file that points the AWS provider at unkai.

Terraform merges ``*_override.tf`` files into the configuration's own blocks, so writing
this next to a root module (``unkai tf-endpoints > unkai_override.tf``) makes an unchanged
configuration, and a real ``terraform`` binary with the real AWS provider, talk to unkai:
every service unkai serves gets an ``endpoints`` entry, credentials are test keys, and the
checks that would reach AWS itself (EC2 metadata, credentials validation) are skipped. The
account id is still requested, from unkai's STS, because the provider builds ARNs with it
(an API's ``execution_arn``, which ``aws_lambda_permission.source_arn`` is made of). The
configuration's region is kept: unkai serves every region on the one port.
"""

from __future__ import annotations

from pathlib import Path

import click

from unkai.cli_client import endpoint_option, find_endpoint, state_option

# botocore service names whose `endpoints` key in the provider differs from the name without dashes
_RENAMED = {"cognito-idp": "cognitoidp", "stepfunctions": "sfn"}
# The provider's `endpoints` keys for the services a serverless system is made of (from the provider's
# "Custom Service Endpoint Configuration" guide). A service unkai serves that is not here (iot-data,
# dynamodbstreams, apigatewaymanagementapi: no resource calls them) is named in a comment instead, so
# the file never holds an argument the provider would refuse.
PROVIDER_KEYS = frozenset({
    "acm", "apigateway", "apigatewayv2", "appconfig", "appsync", "athena", "cloudformation", "cloudfront",
    "cloudwatch", "cognitoidentity", "cognitoidp", "dynamodb", "ec2", "ecr", "events", "firehose", "glue",
    "iam", "iot", "kinesis", "kms", "lambda", "logs", "pipes", "route53", "s3", "scheduler", "schemas",
    "secretsmanager", "ses", "sesv2", "sfn", "sns", "sqs", "ssm", "sts", "xray",
})


def _served() -> list[str]:
    from unkai.services import discover

    return sorted(discover())


def provider_keys() -> list[str]:
    """The provider's ``endpoints`` keys for every service unkai serves, sorted."""
    keys = (_RENAMED.get(name, name.replace("-", "")) for name in _served())
    return sorted(k for k in keys if k in PROVIDER_KEYS)


def render(url: str, *, local_backend: bool = False, alias: str | None = None) -> str:
    """The override file's text for an unkai at ``url``."""
    keys = provider_keys()
    width = max(len(k) for k in keys)
    lines = ["# Written by `unkai tf-endpoints`: the AWS provider talks to unkai at " + url,
             "# (keep it beside the root module as unkai_override.tf; delete it to target AWS again)"]
    if local_backend:
        lines += ["", "terraform {", '  backend "local" {}', "}"]
    lines += ["", 'provider "aws" {']
    if alias:
        lines.append(f'  alias                       = "{alias}"')
    lines += [
        '  access_key                  = "test"',
        '  secret_key                  = "test"',
        "  skip_credentials_validation = true",
        "  skip_metadata_api_check     = true",
        "  skip_requesting_account_id  = false # unkai's STS answers; ARNs need the account id",
        "  s3_use_path_style           = true",
        "",
        "  endpoints {",
    ]
    lines += [f'    {key.ljust(width)} = "{url}"' for key in keys]
    others = [n for n in _served() if _RENAMED.get(n, n.replace("-", "")) not in PROVIDER_KEYS]
    if others:
        lines.append(f"    # also served, with no endpoint setting in the provider: {', '.join(others)}")
    lines += ["  }", "}", ""]
    return "\n".join(lines)


@click.command("tf-endpoints")
@click.option("--local-backend", is_flag=True,
              help='Also override the configuration\'s backend with backend "local" (state in this directory).')
@click.option("--alias", default=None, metavar="NAME", help="Override the aws provider block with this alias.")
@endpoint_option
@state_option
def tf_endpoints(local_backend: bool, alias: str | None, endpoint_url: str | None, state_dir: Path) -> None:
    """Print a Terraform override file pointing the AWS provider at unkai:
    `unkai tf-endpoints > unkai_override.tf && terraform apply`."""
    url, _ = find_endpoint(endpoint_url, state_dir)
    click.echo(render(url, local_backend=local_backend, alias=alias), nl=False)
