variable "zone" {
  type = string
}

variable "ttl" {
  type    = number
  default = 300
}
