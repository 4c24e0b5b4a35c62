output "websocket_url" {
  description = "Connect here, then send {\"action\":\"sendmessage\",\"message\":\"hi\"}."
  value       = module.websocket.invoke_url
}

output "api_id" {
  value = module.websocket.api_id
}

output "custom_domain" {
  value = module.websocket.domain_name
}
