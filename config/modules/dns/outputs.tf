output "fqdn" {
  description = "The record's fully qualified name."
  value       = terraform_data.record.output.name
}

output "record_id" {
  description = "The record's id."
  value       = terraform_data.record.id
}

output "record_type" {
  description = "A for an IPv4 endpoint, CNAME for a host name."
  value       = terraform_data.record.output.type
}

output "api_token_hash" {
  description = "SHA-256 of the record's API token (sensitive: masked in reports)."
  value       = sha256(terraform_data.api_token.id)
  sensitive   = true
}
