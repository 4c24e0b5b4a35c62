data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

# The websocket domain's ACM certificate is assumed to exist (as in the seed); without one,
# unkai uses a stand-in ARN, since it checks no certificate.
data "aws_acm_certificate" "default" {
  domain   = var.domain_name
  statuses = ["ISSUED"]
}

# protocol_type WEBSOCKET; routes are selected on the message body's "action"
resource "aws_apigatewayv2_api" "example" {
  name                       = var.name
  protocol_type              = "WEBSOCKET"
  description                = "example websocket api"
  route_selection_expression = "$request.body.action"
}

locals {
  # route key => the handler function behind it
  routes = {
    "$connect"    = aws_lambda_function.handler["connect_handler"]
    "$disconnect" = aws_lambda_function.handler["disconnect_handler"]
    "sendmessage" = aws_lambda_function.handler["send_message_handler"]
  }
}

resource "aws_apigatewayv2_route" "route" {
  for_each  = local.routes
  api_id    = aws_apigatewayv2_api.example.id
  route_key = each.key
  target    = "integrations/${aws_apigatewayv2_integration.integration[each.key].id}"
}

resource "aws_apigatewayv2_integration" "integration" {
  for_each           = local.routes
  api_id             = aws_apigatewayv2_api.example.id
  integration_type   = "AWS_PROXY"
  integration_method = "POST"
  integration_uri    = each.value.invoke_arn
}

resource "aws_apigatewayv2_stage" "example" {
  api_id = aws_apigatewayv2_api.example.id
  name   = var.stage_name

  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.example.arn
    format = jsonencode({ "requestId" : "$context.requestId", "ip" : "$context.identity.sourceIp", "requestTime" : "$context.requestTime", "httpMethod" : "$context.httpMethod",
    "routeKey" : "$context.routeKey", "status" : "$context.status", "protocol" : "$context.protocol", "responseLength" : "$context.responseLength" })
  }

  # unset throttling_* would be 0, so the defaults are spelled out
  default_route_settings {
    data_trace_enabled       = true
    detailed_metrics_enabled = true
    logging_level            = "INFO"
    throttling_burst_limit   = 5000
    throttling_rate_limit    = 10000
  }

  deployment_id = aws_apigatewayv2_deployment.example.id
  depends_on    = [aws_apigatewayv2_deployment.example]
}

# re-created whenever a route or an integration changes
resource "aws_apigatewayv2_deployment" "example" {
  api_id      = aws_apigatewayv2_api.example.id
  description = "example deployment"

  triggers = {
    redeployment = sha1(join(",", tolist([
      jsonencode(aws_apigatewayv2_integration.integration),
      jsonencode(aws_apigatewayv2_route.route),
    ])))
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_cloudwatch_log_group" "example" {
  name = "/aws/apigateway/${aws_apigatewayv2_api.example.name}"
}

resource "aws_apigatewayv2_domain_name" "example" {
  domain_name = var.domain_name

  domain_name_configuration {
    certificate_arn = data.aws_acm_certificate.default.arn
    endpoint_type   = "REGIONAL"
    security_policy = "TLS_1_2"
  }
}

resource "aws_apigatewayv2_api_mapping" "example" {
  api_id      = aws_apigatewayv2_api.example.id
  domain_name = aws_apigatewayv2_domain_name.example.id
  stage       = aws_apigatewayv2_stage.example.id
}
