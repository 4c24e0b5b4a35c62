"""``unkai up DIR`` for a Terraform root module, without a terraform binary: the language
evaluated (variables from -var / .tfvars / TF_VAR_, locals, modules, count and for_each,
dynamic blocks, for expressions, splat, templates, built-in functions, data sources),
resources created through unkai's services, a printed plan, no change on an unchanged
re-apply, edits re-applied by the watcher, and Terraform's error wording with
file:line:column. One server for the module; each test edits the configuration."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from template_helpers import wait_for  # noqa: E402
from unkai.testing import UnkaiServer  # noqa: E402

MAIN = textwrap.dedent("""\
    terraform {
      required_providers {
        aws = { source = "hashicorp/aws", version = "~> 5.0" }
      }
      backend "s3" {
        bucket = "my-state"
        key    = "dev.tfstate"
      }
    }

    provider "aws" {
      region = "us-east-1"
    }

    variable "prefix" {
      type = string
      validation {
        condition     = length(var.prefix) >= 3
        error_message = "The prefix needs at least 3 characters."
      }
    }

    variable "stage" {
      type = string
    }

    variable "sizes" {
      type    = map(number)
      default = { small = 1, large = 3 }
    }

    variable "owner" {
      type = object({ name = string, team = optional(string, "platform") })
    }

    data "aws_caller_identity" "me" {}
    data "aws_region" "here" {}
    data "aws_partition" "p" {}

    locals {
      names  = toset(["alpha", "beta"])
      tags   = merge({ stage = var.stage }, { owner = var.owner.name })
      queues = { for name in local.names : name => upper(name) }
    }

    module "jobs" {
      source = "./modules/queues"
      prefix = "${var.prefix}-${var.stage}"
      count_ = 2
    }

    resource "aws_sqs_queue" "named" {
      for_each                   = local.queues
      name                       = "${var.prefix}-${each.key}"
      visibility_timeout_seconds = 40
      tags                       = local.tags
    }

    resource "aws_dynamodb_table" "items" {
      name         = "${var.prefix}-items"
      billing_mode = "PAY_PER_REQUEST"
      hash_key     = "pk"
      dynamic "attribute" {
        for_each = ["pk", "sk"]
        content {
          name = attribute.value
          type = "S"
        }
      }
      global_secondary_index {
        name            = "by-sk"
        hash_key        = "sk"
        projection_type = "ALL"
      }
    }

    data "aws_iam_policy_document" "assume" {
      statement {
        actions = ["sts:AssumeRole"]
        principals {
          type        = "Service"
          identifiers = ["lambda.amazonaws.com"]
        }
      }
    }

    resource "aws_ssm_parameter" "summary" {
      name = "/${var.prefix}/summary"
      type = "String"
      value = jsonencode({
        account   = data.aws_caller_identity.me.account_id
        region    = data.aws_region.here.name
        partition = data.aws_partition.p.partition
        queues    = sort(values(aws_sqs_queue.named)[*].name)
        jobs      = module.jobs.names
        first     = module.jobs.urls[0] != "" ? "yes" : "no"
        table     = aws_dynamodb_table.items.arn
        sizes     = [for k, v in var.sizes : "${k}=${v * 2}" if v > 1]
        team      = var.owner.team
        line      = format("%s-%03d", var.stage, 7)
        heredoc   = <<-EOT
          Hello ${upper(var.stage)}
          %{ for n in sort(local.names) ~}
          - ${n}
          %{ endfor ~}
        EOT
        policy    = jsondecode(data.aws_iam_policy_document.assume.json).Statement[0].Principal.Service
        sha       = sha1("unkai")
        lookup    = lookup(var.sizes, "missing", 42)
      })
    }

    output "table_arn" {
      value = aws_dynamodb_table.items.arn
    }

    output "job_urls" {
      value = module.jobs.urls
    }

    output "secret" {
      value     = sha256(var.prefix)
      sensitive = true
    }
    """)

QUEUES = textwrap.dedent("""\
    variable "prefix" {
      type = string
    }

    variable "count_" {
      type    = number
      default = 1
    }

    resource "aws_sqs_queue" "job" {
      count = var.count_
      name  = "${var.prefix}-job-${count.index}"
    }

    output "names" {
      value = aws_sqs_queue.job[*].name
    }

    output "urls" {
      value = [for q in aws_sqs_queue.job : q.url]
    }
    """)


def write(root: Path, main: str = MAIN, queues: str = QUEUES) -> None:
    (root / "modules" / "queues").mkdir(parents=True, exist_ok=True)
    (root / "modules" / "queues" / "main.tf").write_text(queues)
    (root / "main.tf").write_text(main)


@pytest.fixture(scope="module")
def tf(tmp_path_factory):
    root = tmp_path_factory.mktemp("tfroot")
    write(root)
    (root / "terraform.tfvars").write_text('stage = "dev"\n')
    server = UnkaiServer(root.parent / f"{root.name}-state", str(root), "-var", "prefix=demo",
                         env={"TF_VAR_owner": '{ name = "ana" }'})
    server.start(timeout=60)
    try:
        yield server, root
    finally:
        server.stop()


def applied(server: UnkaiServer, since: int, text: str) -> str:
    """Wait until the server printed ``text`` after offset ``since``; the output after it."""
    wait_for(lambda: text in server.output()[since:])
    return server.output()[since:]


def queue_names(server: UnkaiServer) -> set[str]:
    return {u.rsplit("/", 1)[1] for u in server.client("sqs").list_queues().get("QueueUrls", [])}


def test_apply_creates_resources_through_the_services(tf):
    server, root = tf
    out = server.output()
    assert "backend \"s3\" ignored" in out
    assert "+ aws_sqs_queue.named[\"alpha\"] will be created" in out
    assert "+ module.jobs.aws_sqs_queue.job[1] will be created" in out
    assert "Plan: 6 to add, 0 to change, 0 to destroy." in out
    assert queue_names(server) == {"demo-alpha", "demo-beta", "demo-dev-job-0", "demo-dev-job-1"}
    tags = server.client("sqs").list_queue_tags(QueueUrl=server.client("sqs").get_queue_url(
        QueueName="demo-alpha")["QueueUrl"])["Tags"]
    assert tags == {"stage": "dev", "owner": "ana"}
    table = server.client("dynamodb").describe_table(TableName="demo-items")["Table"]
    assert [a["AttributeName"] for a in table["AttributeDefinitions"]] == ["pk", "sk"]
    assert table["GlobalSecondaryIndexes"][0]["IndexName"] == "by-sk"
    # the banner shows the root module's outputs, with local URLs
    assert "table_arn  arn:aws:dynamodb:us-east-1:000000000000:table/demo-items" in out
    assert "secret     <sensitive>" in out


def test_expressions_and_functions_evaluate_as_terraform_does(tf):
    server, _ = tf
    value = server.client("ssm").get_parameter(Name="/demo/summary")["Parameter"]["Value"]
    got = json.loads(value)
    assert got == {
        "account": "000000000000", "region": "us-east-1", "partition": "aws",
        "queues": ["demo-alpha", "demo-beta"], "jobs": ["demo-dev-job-0", "demo-dev-job-1"], "first": "yes",
        "table": "arn:aws:dynamodb:us-east-1:000000000000:table/demo-items",
        "sizes": ["large=6"], "team": "platform", "line": "dev-007",
        "heredoc": "Hello DEV\n- alpha\n- beta\n", "policy": "lambda.amazonaws.com",
        "sha": "8b1d1b5c8f1e1c1c0c1e1b8d1a1b1c1d1e1f1a1b"[:0] + __import__("hashlib").sha1(b"unkai").hexdigest(),
        "lookup": 42,
    }
    # jsonencode writes keys sorted and compact, as Terraform does
    assert value.startswith('{"account":"000000000000","first":"yes",')


def test_an_unchanged_configuration_re_applies_as_no_changes(tf):
    server, root = tf
    since = len(server.output())
    (root / "main.tf").write_text(MAIN + "\n# touched\n")
    after = applied(server, since, "No changes. Your infrastructure matches the configuration.")
    assert "will be" not in after


def test_an_edit_updates_replaces_and_destroys_as_planned(tf):
    server, root = tf
    sqs = server.client("sqs")
    alpha = sqs.get_queue_url(QueueName="demo-alpha")["QueueUrl"]
    sqs.send_message(QueueUrl=alpha, MessageBody="kept")
    since = len(server.output())
    edited = MAIN.replace("visibility_timeout_seconds = 40", "visibility_timeout_seconds = 55") \
                 .replace('name         = "${var.prefix}-items"', 'name         = "${var.prefix}-things"') \
                 .replace("count_ = 2", "count_ = 1")
    (root / "main.tf").write_text(edited)
    after = applied(server, since, "Apply complete!")
    assert '~ aws_sqs_queue.named["alpha"] will be updated in-place  (visibility_timeout_seconds)' in after
    assert "-/+ aws_dynamodb_table.items will be replaced  (name forces replacement)" in after
    assert "- module.jobs.aws_sqs_queue.job[1] will be destroyed" in after
    assert "~ aws_ssm_parameter.summary will be updated in-place" in after
    assert "Resources: 1 added, 3 changed, 2 destroyed." in after
    assert sqs.get_queue_attributes(QueueUrl=alpha, AttributeNames=["VisibilityTimeout"])["Attributes"] == \
        {"VisibilityTimeout": "55"}
    assert [m["Body"] for m in sqs.receive_message(QueueUrl=alpha)["Messages"]] == ["kept"]
    assert "demo-dev-job-1" not in queue_names(server)
    assert server.client("dynamodb").list_tables()["TableNames"] == ["demo-things"]
    value = json.loads(server.client("ssm").get_parameter(Name="/demo/summary")["Parameter"]["Value"])
    assert value["jobs"] == ["demo-dev-job-0"] and value["table"].endswith("table/demo-things")
    (root / "main.tf").write_text(MAIN)  # back, for the tests after this one
    applied(server, len(server.output()) - 1, "Apply complete!")


@pytest.mark.parametrize("change, where, message", [
    (("aws_dynamodb_table.items.arn\n}\n\noutput \"job_urls\"", "aws_dynamodb_table.nope.arn\n}\n\noutput \"job_urls\""),
     "main.tf:114:11", 'Error: Reference to undeclared resource: A managed resource "aws_dynamodb_table" "nope" has '
                       "not been declared in the root module."),
    (("visibility_timeout_seconds = 40", "visibility_timeout_seconds = 40\n  colour = \"blue\""),
     "main.tf:56:3", 'Error: Unsupported argument: An argument named "colour" is not expected here.'),
    (('line      = format("%s-%03d", var.stage, 7)', 'line      = jsondecode("{nope")'),
     "main.tf:100:28", "Error: Invalid function argument"),
    (('hash_key     = "pk"', 'hash_key     = = "pk"'),
     "main.tf:62:18", "Error: Invalid expression"),
    (("global_secondary_index {", "example_route_settings {"),
     "main.tf:70:3", 'Error: Unsupported block type: Blocks of type "example_route_settings" are not expected here.'),
    (('prefix = "${var.prefix}-${var.stage}"', 'prefix = "${var.prefix}-${var.stage}"\n  colour = 1'),
     "main.tf:49:3", 'Error: Unsupported argument: An argument named "colour" is not expected here.'),
    (("upper(var.stage)", "upper(var.nothing)"),
     "main.tf:102:", 'Error: Reference to undeclared input variable: An input variable with the name "nothing" '
                     "has not been declared."),
])
def test_configuration_errors_name_file_line_and_column_and_apply_nothing(tf, change, where, message):
    server, root = tf
    before = queue_names(server)
    since = len(server.output())
    (root / "main.tf").write_text(MAIN.replace(*change))
    after = applied(server, since, "was not applied")
    line = next(x for x in after.splitlines() if "was not applied" in x)
    assert f"{root / where}" in line and message in line, line
    assert "Traceback" not in after
    assert queue_names(server) == before


def test_unsupported_types_are_reported_once_with_file_and_line_and_skipped(tf):
    server, root = tf
    since = len(server.output())
    extra = MAIN + textwrap.dedent("""\

        resource "aws_kinesis_video_stream" "cam" {
          name = "cam"
        }

        resource "aws_sqs_queue" "uses_it" {
          name = "demo-${aws_kinesis_video_stream.cam.id}"
        }
        """)
    (root / "main.tf").write_text(extra)
    after = applied(server, since, "Apply complete!")
    assert after.count("aws_kinesis_video_stream is not supported by unkai yet") == 1
    assert f"skipped aws_kinesis_video_stream.cam ({root / 'main.tf'}:126)" in after
    assert "demo-cam" in queue_names(server)
    since = len(server.output())
    (root / "main.tf").write_text(extra + "\n")
    after = applied(server, since, "No changes.")
    assert "not supported" not in after


def test_a_failing_apply_keeps_what_it_created_and_the_next_one_continues(tf):
    server, root = tf
    since = len(server.output())
    broken = MAIN + textwrap.dedent("""\

        resource "aws_sqs_queue" "first" {
          name = "demo-first"
        }

        resource "aws_sqs_queue" "bad" {
          name = "demo bad name!"
        }

        resource "aws_sqs_queue" "after_bad" {
          name = "${aws_sqs_queue.bad.name}-dlq"
        }
        """)
    (root / "main.tf").write_text(broken)
    after = applied(server, since, "Apply failed!")
    assert f"{root / 'main.tf'}:130:1: aws_sqs_queue.bad: InvalidParameterValue" in after
    assert "demo-first" in queue_names(server)
    since = len(server.output())
    (root / "main.tf").write_text(broken.replace("demo bad name!", "demo-good"))
    after = applied(server, since, "Apply complete!")
    assert "+ aws_sqs_queue.bad will be created" in after and "aws_sqs_queue.first" not in after
    assert {"demo-first", "demo-good", "demo-good-dlq"} <= queue_names(server)


LIFECYCLE = textwrap.dedent("""\

    resource "aws_sqs_queue" "source" {
      name                       = "demo-source"
      visibility_timeout_seconds = 30
    }

    resource "aws_sqs_queue" "follower" {
      name = "demo-follower"
      lifecycle {
        replace_triggered_by = [aws_sqs_queue.source]
      }
    }

    resource "aws_sqs_queue" "ignored" {
      name          = "demo-ignored"
      delay_seconds = 5
      lifecycle {
        ignore_changes = [delay_seconds]
      }
    }

    resource "aws_apigatewayv2_api" "ws" {
      name                       = "demo-ws"
      protocol_type              = "WEBSOCKET"
      route_selection_expression = "$request.body.action"
    }

    resource "aws_apigatewayv2_deployment" "d" {
      api_id = aws_apigatewayv2_api.ws.id
      triggers = {
        redeployment = sha1(jsonencode(aws_sqs_queue.source))
      }
      lifecycle {
        create_before_destroy = true
      }
    }
    """)


def test_lifecycle_and_triggers_decide_what_is_replaced(tf):
    server, root = tf
    since = len(server.output())
    (root / "main.tf").write_text(MAIN + LIFECYCLE)
    applied(server, since, "Apply complete!")
    v2 = server.client("apigatewayv2")
    api = next(a["ApiId"] for a in v2.get_apis()["Items"] if a["Name"] == "demo-ws")
    first = [d["DeploymentId"] for d in v2.get_deployments(ApiId=api)["Items"]]
    assert len(first) == 1
    since = len(server.output())
    (root / "main.tf").write_text(MAIN + LIFECYCLE.replace("visibility_timeout_seconds = 30",
                                                           "visibility_timeout_seconds = 31")
                                  .replace("delay_seconds = 5", "delay_seconds = 9"))
    after = applied(server, since, "Apply complete!")
    assert "~ aws_sqs_queue.source will be updated in-place  (visibility_timeout_seconds)" in after
    assert "-/+ aws_sqs_queue.follower will be replaced  (replace_triggered_by aws_sqs_queue.source)" in after
    assert "-/+ aws_apigatewayv2_deployment.d will be replaced  (triggers forces replacement)" in after
    assert "aws_sqs_queue.ignored" not in after
    sqs = server.client("sqs")
    ignored = sqs.get_queue_url(QueueName="demo-ignored")["QueueUrl"]
    assert sqs.get_queue_attributes(QueueUrl=ignored, AttributeNames=["DelaySeconds"])["Attributes"] == \
        {"DelaySeconds": "5"}
    assert "demo-follower" in queue_names(server)
    second = [d["DeploymentId"] for d in v2.get_deployments(ApiId=api)["Items"]]
    assert len(second) == 1 and second != first  # the new one made first, then the old one deleted
    since = len(server.output())
    (root / "main.tf").write_text(MAIN)
    after = applied(server, since, "Apply complete!")
    assert "- aws_apigatewayv2_deployment.d will be destroyed" in after
    assert after.index("- aws_apigatewayv2_deployment.d") < after.index("- aws_apigatewayv2_api.ws")
    assert "demo-ws" not in [a["Name"] for a in v2.get_apis()["Items"]]


def test_a_variable_failing_its_validation_is_reported_with_its_message(tf):
    server, root = tf
    since = len(server.output())
    (root / "main.tf").write_text(MAIN + textwrap.dedent("""\

        variable "tier" {
          type    = string
          default = "gold"
          validation {
            condition     = contains(["gold", "silver"], var.tier)
            error_message = "The tier must be gold or silver."
          }
        }
        """))
    applied(server, since, "No changes.")
    since = len(server.output())
    (root / "terraform.tfvars").write_text('stage = "dev"\ntier = "bronze"\n')
    try:
        after = applied(server, since, "was not applied")
        line = next(x for x in after.splitlines() if "was not applied" in x)
        assert "Error: Invalid value for variable: The tier must be gold or silver." in line, line
    finally:
        (root / "terraform.tfvars").write_text('stage = "dev"\n')
        (root / "main.tf").write_text(MAIN)


WIRING = textwrap.dedent("""\

    resource "aws_sqs_queue" "ticks" {
      name = "demo-ticks"
    }

    resource "aws_sqs_queue_policy" "ticks" {
      queue_url = aws_sqs_queue.ticks.id
      policy = jsonencode({
        Version   = "2012-10-17"
        Statement = [{ Effect = "Allow", Principal = { Service = "events.amazonaws.com" },
                       Action = "sqs:SendMessage", Resource = aws_sqs_queue.ticks.arn }]
      })
    }

    resource "aws_cloudwatch_event_rule" "every_minute" {
      name                = "demo-every-minute"
      schedule_expression = "rate(1 minute)"
    }

    resource "aws_cloudwatch_event_target" "to_queue" {
      rule      = aws_cloudwatch_event_rule.every_minute.name
      target_id = "queue"
      arn       = aws_sqs_queue.ticks.arn
      input     = jsonencode({ tick = true })
    }

    resource "aws_iam_role" "worker" {
      name               = "demo-worker"
      assume_role_policy = data.aws_iam_policy_document.assume.json
    }

    resource "aws_iam_role_policy_attachment" "logs" {
      role       = aws_iam_role.worker.name
      policy_arn = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
    }
    """)


def test_terraform_only_types_call_the_services_own_operations(tf):
    server, root = tf
    since = len(server.output())
    (root / "main.tf").write_text(MAIN + WIRING)
    applied(server, since, "Apply complete!")
    events, iam, sqs = server.client("events"), server.client("iam"), server.client("sqs")
    targets = events.list_targets_by_rule(Rule="demo-every-minute")["Targets"]
    assert [(t["Id"], t["Input"]) for t in targets] == [("queue", '{"tick":true}')]
    assert events.describe_rule(Name="demo-every-minute")["ScheduleExpression"] == "rate(1 minute)"
    attached = iam.list_attached_role_policies(RoleName="demo-worker")["AttachedPolicies"]
    assert [p["PolicyName"] for p in attached] == ["AWSLambdaBasicExecutionRole"]
    url = sqs.get_queue_url(QueueName="demo-ticks")["QueueUrl"]
    policy = json.loads(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])["Attributes"]["Policy"])
    assert policy["Statement"][0]["Principal"] == {"Service": "events.amazonaws.com"}
    server.advance(61)  # the schedule fires on unkai's clock and the target delivers
    server.drain()
    got = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages", [])
    assert got and json.loads(got[0]["Body"]) == {"tick": True}
    since = len(server.output())
    (root / "main.tf").write_text(MAIN)
    applied(server, since, "Apply complete!")
    assert "demo-every-minute" not in [r["Name"] for r in events.list_rules()["Rules"]]
    assert "demo-worker" not in [r["RoleName"] for r in iam.list_roles()["Roles"]]


FUNCTION = textwrap.dedent("""\

    data "archive_file" "fn" {
      type        = "zip"
      source_dir  = "${path.module}/fn"
      output_path = "build/fn.zip"
    }

    resource "aws_iam_role" "fn" {
      name               = "demo-fn"
      assume_role_policy = data.aws_iam_policy_document.assume.json
    }

    resource "aws_lambda_function" "fn" {
      function_name    = "demo-fn"
      filename         = data.archive_file.fn.output_path
      source_code_hash = data.archive_file.fn.output_base64sha256
      role             = aws_iam_role.fn.arn
      handler          = "app.handler"
      runtime          = "python3.12"
      environment {
        variables = { GREETING = "hello" }
      }
    }
    """)


def test_editing_packaged_code_rebuilds_the_zip_and_updates_the_function(tf):
    server, root = tf
    (root / "fn").mkdir(exist_ok=True)
    (root / "fn" / "app.py").write_text("import os\n\ndef handler(event, context):\n"
                                        "    return os.environ['GREETING'] + ' v1'\n")
    since = len(server.output())
    (root / "main.tf").write_text(MAIN + FUNCTION)
    applied(server, since, "Apply complete!")
    lam = server.client("lambda")

    def invoke() -> str:
        return json.loads(lam.invoke(FunctionName="demo-fn")["Payload"].read())

    assert invoke() == "hello v1"
    since = len(server.output())
    (root / "fn" / "app.py").write_text("import os\n\ndef handler(event, context):\n"
                                        "    return os.environ['GREETING'] + ' v2'\n")
    after = applied(server, since, "Apply complete!")
    assert "~ aws_lambda_function.fn will be updated in-place  (source_code_hash)" in after
    assert invoke() == "hello v2"
    since = len(server.output())
    (root / "main.tf").write_text(MAIN)
    applied(server, since, "Apply complete!")


def test_unkai_validate_checks_a_root_module_without_starting(tmp_path):
    import subprocess

    write(tmp_path)
    run = lambda: subprocess.run([sys.executable, "-m", "unkai", "validate", str(tmp_path)],  # noqa: E731
                                 capture_output=True, text=True, timeout=120)
    (tmp_path / "modules" / "queues" / "main.tf").write_text(QUEUES.replace('name  = "${var.prefix}-job-${count.index}"',
                                                                             'nme   = "x"'))
    bad = run()
    assert bad.returncode == 1
    assert f"{tmp_path / 'modules' / 'queues' / 'main.tf'}:12:3: Error: Unsupported argument: An argument named " \
           '"nme" is not expected here.' in bad.stderr, bad.stderr
    assert "Traceback" not in bad.stderr
