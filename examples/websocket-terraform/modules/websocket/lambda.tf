locals {
  handlers = {
    connect_handler      = "websocketのconnect時の処理を実施する"
    disconnect_handler   = "websocketのdisconnect時の処理を実施する"
    send_message_handler = "接続中の全クライアントへ通知を送る"
  }
}

data "archive_file" "handler_zip" {
  for_each    = local.handlers
  type        = "zip"
  source_dir  = "${path.module}/${each.key}/src"
  output_path = "dist/${each.key}.zip"
}

resource "aws_lambda_function" "handler" {
  for_each         = local.handlers
  filename         = data.archive_file.handler_zip[each.key].output_path
  function_name    = each.key
  description      = each.value
  role             = aws_iam_role.handler.arn
  source_code_hash = data.archive_file.handler_zip[each.key].output_base64sha256
  runtime          = "python3.9"
  handler          = "lambda_function.lambda_handler"
  timeout          = "300"
  memory_size      = "128"

  environment {
    variables = {
      TABLE_NAME = aws_dynamodb_table.connection.name
    }
  }

  tracing_config {
    mode = "Active"
  }

  depends_on = [aws_cloudwatch_log_group.handler]
}

# each route's handler may be called by API Gateway for this API only
resource "aws_lambda_permission" "handler" {
  for_each      = local.routes
  statement_id  = "AllowExecutionFromAPIGateway"
  action        = "lambda:InvokeFunction"
  function_name = each.value.function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "arn:aws:execute-api:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:${aws_apigatewayv2_api.example.id}/*/${aws_apigatewayv2_route.route[each.key].route_key}"
}

resource "aws_cloudwatch_log_group" "handler" {
  for_each = local.handlers
  name     = "/aws/lambda/${each.key}"
}

resource "aws_dynamodb_table" "connection" {
  name         = var.connection_table
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "id"

  attribute {
    name = "id"
    type = "S"
  }

  attribute {
    name = "ws_connection_id"
    type = "S"
  }

  global_secondary_index {
    name            = "ws_connection_id-index"
    hash_key        = "ws_connection_id"
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

data "aws_iam_policy_document" "handler" {
  statement {
    actions   = ["dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:Query", "dynamodb:Scan"]
    resources = [aws_dynamodb_table.connection.arn, "${aws_dynamodb_table.connection.arn}/index/*"]
  }
  statement {
    actions   = ["execute-api:ManageConnections"]
    resources = ["${aws_apigatewayv2_api.example.execution_arn}/*"]
  }
  statement {
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["arn:aws:logs:*:*:*"]
  }
}

resource "aws_iam_role" "handler" {
  name               = "${var.name}-websocket-handler"
  assume_role_policy = data.aws_iam_policy_document.assume.json
}

resource "aws_iam_role_policy" "handler" {
  name   = "connections"
  role   = aws_iam_role.handler.id
  policy = data.aws_iam_policy_document.handler.json
}
