variable "env" {
  description = "Environment name; the record is <env>.<zone>."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{0,62}$", var.env))
    error_message = "env must be a DNS label: lowercase letters, digits and '-', at most 63 characters."
  }
}

variable "zone" {
  description = "The platform's DNS zone, e.g. platform.example.com (a trailing dot is ignored)."
  type        = string

  validation {
    condition     = can(regex("^([a-z0-9-]+\\.)+[a-z]{2,}\\.?$", lower(var.zone)))
    error_message = "zone must be a domain name such as platform.example.com."
  }
}

variable "endpoint" {
  description = "What the record points at: an IPv4 address (A record) or a host name (CNAME record)."
  type        = string
}

variable "ttl" {
  description = "Record TTL in seconds."
  type        = number
  default     = 300
}
