output "api_id" {
  value = aws_apigatewayv2_api.example.id
}

output "invoke_url" {
  value = aws_apigatewayv2_stage.example.invoke_url
}

output "domain_name" {
  value = aws_apigatewayv2_domain_name.example.id
}
