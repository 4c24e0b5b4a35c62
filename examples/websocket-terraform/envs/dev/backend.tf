# The state bucket of a real deployment; `unkai up` keeps the state in its own store instead.
terraform {
  backend "s3" {
    bucket = "example-terraform-state"
    key    = "websocket/dev.tfstate"
    region = "ap-northeast-1"
  }
}
