variable "name" {
  description = "The API's name (and the access-log group's suffix)."
  type        = string
  default     = "example"
}

variable "stage_name" {
  type    = string
  default = "example"
}

variable "domain_name" {
  description = "The custom domain the API answers on (its ACM certificate is looked up)."
  type        = string
  validation {
    condition     = can(regex("^[a-z0-9.-]+\\.[a-z]+$", var.domain_name))
    error_message = "The domain name must be a DNS name such as example.com."
  }
}

variable "connection_table" {
  type    = string
  default = "connection"
}
