module "websocket" {
  source = "../../modules/websocket"

  name        = "example"
  stage_name  = "example"
  domain_name = "example.com"
}
