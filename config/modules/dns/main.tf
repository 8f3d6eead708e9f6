# The platform's DNS entry point, modelled with terraform_data only (no provider download):
# a zone, one record <env>.<zone> pointing at the platform endpoint, and an API token
# that is rotated whenever the record is recreated. Swap terraform_data for
# aws_route53_record / azurerm_dns_*_record to manage real DNS.

terraform {
  required_version = ">= 1.4"
}

locals {
  zone        = trimsuffix(lower(var.zone), ".")
  fqdn        = "${var.env}.${local.zone}"
  record_type = can(regex("^\\d{1,3}(\\.\\d{1,3}){3}$", var.endpoint)) ? "A" : "CNAME"
}

resource "terraform_data" "zone" {
  input = { name = local.zone }
}

resource "terraform_data" "record" {
  input = {
    zone  = terraform_data.zone.output.name
    name  = local.fqdn
    type  = local.record_type
    value = var.endpoint
    ttl   = var.ttl
  }

  # A record cannot be renamed or change type in place: it is deleted and created again.
  triggers_replace = [local.fqdn, local.record_type]
}

resource "terraform_data" "api_token" {
  # A new token for every new record (its id is a fresh random UUID).
  triggers_replace = [terraform_data.record.id]
}
